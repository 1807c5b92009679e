//! The ledger against a real MongoDB-wire server.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use obentchi_core::ledger::{Ledger, LedgerError, PostOutcome, Posting, UserAccount};
use obentchi_core::money::{Currency, Money};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use support::{key, spawn_store, stars_provider, user, usdt};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replaying_a_key_returns_the_first_result_and_changes_nothing() {
    let t = spawn_store().await;
    let ledger = Ledger::new(t.store.clone());
    let deposit = Posting::deposit(user(1), key("stars:charge-1"), stars_provider(), usdt(5_000_000), "deposit").unwrap();

    let first = ledger.post(&deposit).await.unwrap();
    assert!(matches!(first, PostOutcome::Applied(_)));
    for _ in 0..3 {
        let again = ledger.post(&deposit).await.unwrap();
        assert_eq!(again, PostOutcome::AlreadyApplied(first.record().clone()));
    }
    assert_eq!(ledger.balance(user(1), UserAccount::Available, Currency::Usdt).await.unwrap(), usdt(5_000_000));

    let different = Posting::deposit(user(1), key("stars:charge-1"), stars_provider(), usdt(9), "deposit").unwrap();
    assert!(matches!(ledger.post(&different).await, Err(LedgerError::KeyReused { .. })));
    assert_eq!(ledger.balance(user(1), UserAccount::Available, Currency::Usdt).await.unwrap(), usdt(5_000_000));
    assert_eq!(ledger.history(user(1), 0, 10).await.unwrap().len(), 1);
    t.recorder.assert_all_targeted();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_debit_never_takes_a_balance_below_zero() {
    let t = spawn_store().await;
    let ledger = Ledger::new(t.store.clone());
    let purchase = Posting::subscription_purchase(user(2), key("sub:1"), usdt(1), "plan").unwrap();
    let err = ledger.post(&purchase).await.unwrap_err();
    assert!(matches!(err, LedgerError::InsufficientFunds { account: UserAccount::Available, .. }), "{err}");
    assert!(ledger.history(user(2), 0, 10).await.unwrap().is_empty(), "a refused posting leaves no trace");
    assert!(ledger.balances(user(2)).await.unwrap().is_empty());
    t.recorder.assert_all_targeted();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_withdrawal_holds_never_overdraw() {
    let t = spawn_store().await;
    let ledger = Ledger::new(t.store.clone());
    let alice = user(3);
    ledger.post(&Posting::deposit(alice, key("dep"), stars_provider(), usdt(1_000), "deposit").unwrap()).await.unwrap();

    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let hold = Posting::withdrawal_hold(alice, key(format!("wd:{i}")), usdt(30), "withdrawal").unwrap();
                ledger.post(&hold).await
            })
        })
        .collect();
    let mut held = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(PostOutcome::Applied(_)) => held += 1,
            Err(LedgerError::InsufficientFunds { .. }) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(held, 33, "1000 covers exactly 33 holds of 30");
    assert_eq!(ledger.balance(alice, UserAccount::Available, Currency::Usdt).await.unwrap(), usdt(10));
    assert_eq!(ledger.balance(alice, UserAccount::WithdrawalHold, Currency::Usdt).await.unwrap(), usdt(990));
    assert!(ledger.audit_user(alice).await.unwrap().is_empty());
    t.recorder.assert_all_targeted();
}

const USERS: i64 = 40;
const POSTINGS: usize = 10_000;
const TASKS: usize = 32;

/// A random posting of any kind; amounts are small so debits succeed often enough.
fn random_posting(rng: &mut StdRng, index: usize) -> Posting {
    let who = user(rng.random_range(1..=USERS));
    let k = key(format!("k{index}"));
    let currency = if rng.random_bool(0.8) { Currency::Usdt } else { Currency::Xtr };
    let amount = Money::from_minor(currency, rng.random_range(1..=1_000));
    match rng.random_range(0..100) {
        0..40 => Posting::deposit(who, k, stars_provider(), amount, "deposit"),
        40..60 => Posting::subscription_purchase(who, k, amount, "subscription"),
        60..68 => Posting::referral_commission(who, k, amount, "referral"),
        68..80 => Posting::withdrawal_hold(who, k, amount, "withdrawal"),
        80..86 => Posting::hold_release(who, k, amount, "release"),
        86..92 => {
            let fee = Money::from_minor(currency, rng.random_range(0..=amount.minor() / 10));
            Posting::payout_settle(who, k, amount, fee, "payout")
        }
        _ => {
            let change = if rng.random_bool(0.5) { amount } else { amount.checked_neg().unwrap() };
            Posting::admin_adjustment(who, k, change, "adjustment")
        }
    }
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_concurrent_postings_with_replays_keep_every_invariant() {
    let t = spawn_store().await;
    let ledger = Ledger::new(t.store.clone());
    let seed = rand::rng().random::<u64>();
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    // Every posting is submitted 1 to 4 times, in random order, from 32 tasks.
    let mut submissions: Vec<Arc<Posting>> = Vec::new();
    for i in 0..POSTINGS {
        let posting = Arc::new(random_posting(&mut rng, i));
        for _ in 0..rng.random_range(1..=4) {
            submissions.push(posting.clone());
        }
    }
    submissions.shuffle(&mut rng);
    let chunk = submissions.len().div_ceil(TASKS);
    let tasks: Vec<_> = submissions
        .chunks(chunk)
        .map(|part| {
            let part = part.to_vec();
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::with_capacity(part.len());
                for posting in part {
                    let outcome = match ledger.post(&posting).await {
                        Ok(PostOutcome::Applied(_)) => "applied",
                        Ok(PostOutcome::AlreadyApplied(_)) => "already",
                        Err(LedgerError::InsufficientFunds { .. }) => "insufficient",
                        Err(e) => panic!("posting {} failed: {e}", posting.key()),
                    };
                    outcomes.push((posting.key().to_string(), posting.user_id(), outcome));
                }
                outcomes
            })
        })
        .collect();

    let mut applied_per_key: BTreeMap<String, usize> = BTreeMap::new();
    let mut ok_keys = BTreeSet::new();
    for task in tasks {
        for (k, _, outcome) in task.await.unwrap() {
            if outcome == "applied" {
                *applied_per_key.entry(k.clone()).or_default() += 1;
            }
            if outcome != "insufficient" {
                ok_keys.insert(k);
            }
        }
    }
    assert!(applied_per_key.values().all(|n| *n == 1), "a key was applied twice");

    let mut stored_keys = BTreeSet::new();
    for id in 1..=USERS {
        let who = user(id);
        assert_eq!(ledger.audit_user(who).await.unwrap(), vec![], "user {id}: balance differs from its entries");
        // Recompute independently of the audit's aggregation, from the stored postings.
        let mut sums: BTreeMap<(UserAccount, Currency), i64> = BTreeMap::new();
        let mut offset = 0;
        loop {
            let page = ledger.history(who, offset, 100).await.unwrap();
            if page.is_empty() {
                break;
            }
            offset += page.len() as u64;
            for record in page {
                assert!(stored_keys.insert(record.key.clone()), "key {} stored twice", record.key);
                for entry in &record.entries {
                    if let obentchi_core::ledger::Account::User(account) = entry.account {
                        *sums.entry((account, entry.amount.currency())).or_default() += entry.amount.minor();
                    }
                }
            }
        }
        for balance in ledger.balances(who).await.unwrap() {
            assert!(!balance.amount.is_negative(), "user {id} has a negative balance {balance:?}");
            let sum = sums.remove(&(balance.account, balance.amount.currency())).unwrap_or(0);
            assert_eq!(balance.amount.minor(), sum, "user {id} {:?}", balance.account);
        }
        assert!(sums.values().all(|s| *s == 0), "user {id}: entries on accounts without a balance");
    }
    assert_eq!(stored_keys, ok_keys, "stored postings are exactly the keys that were applied");
    t.recorder.assert_all_targeted();
}
