//! Withdrawals against a real MongoDB-wire server and a payout provider the test starts.

mod support;

use std::sync::Arc;
use std::time::Duration;

use obentchi_core::config::{IssuedToken, Secret};
use obentchi_core::ledger::{Ledger, Posting, UserAccount};
use obentchi_core::money::{Currency, Money};
use obentchi_core::payout::{HttpPayoutProvider, LookupOutcome, PayoutProvider, PayoutProviderConfig, PayoutRequest, SendOutcome};
use obentchi_core::withdrawals::{AddressFormat, NewWithdrawal, PayoutAddress, WithdrawalError, WithdrawalJob, WithdrawalStatus, Withdrawals};
use obentchi_testkit::{FakePayoutProvider, PayoutFaults, PayoutMode};
use support::{key, spawn_store, stars_provider, user, usdt, TestStore};

const LEASE: Duration = Duration::from_millis(800);

struct World {
    t: TestStore,
    ledger: Ledger,
    withdrawals: Withdrawals,
    fake: FakePayoutProvider,
    provider: HttpPayoutProvider,
}

async fn world(mode: PayoutMode) -> World {
    let t = spawn_store().await;
    let ledger = Ledger::new(t.store.clone());
    let withdrawals = Withdrawals::new(&t.store, ledger.clone()).with_lease(LEASE);
    let fake = FakePayoutProvider::start(mode).await;
    let provider = HttpPayoutProvider::new(&PayoutProviderConfig {
        base_url: fake.base_url(),
        api_token: Secret::new(IssuedToken::try_from("token".to_owned()).unwrap()),
        timeout_ms: 300,
    })
    .unwrap();
    // Alice has 100 USDT.
    let deposit = Posting::deposit(user(1), key("dep"), stars_provider(), usdt(100_000_000), "deposit").unwrap();
    ledger.post(&deposit).await.unwrap();
    World { t, ledger, withdrawals, fake, provider }
}

impl World {
    async fn request(&self, request_id: &str, amount: i64, auto_up_to: i64) -> WithdrawalStatus {
        let new = NewWithdrawal {
            user_id: user(1),
            request_id: key(request_id),
            amount: usdt(amount),
            fee: usdt(1_000_000),
            address: PayoutAddress::parse(AddressFormat::Tron, "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb").unwrap(),
        };
        self.withdrawals.request(new, usdt(auto_up_to)).await.unwrap().status
    }

    async fn balance(&self, account: UserAccount) -> Money {
        self.ledger.balance(user(1), account, Currency::Usdt).await.unwrap()
    }

    fn job(&self, request_id: &str) -> WithdrawalJob {
        WithdrawalJob { user_id: user(1), request_id: request_id.into() }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_that_times_out_after_the_provider_executed_it_is_not_paid_twice() {
    let w = world(PayoutMode::ExecuteThenStall(Duration::from_secs(2))).await;
    assert_eq!(w.request("wd-1", 10_000_000, 50_000_000).await, WithdrawalStatus::Approved);
    assert_eq!(w.balance(UserAccount::WithdrawalHold).await, usdt(11_000_000));

    let first = w.withdrawals.process(&w.job("wd-1"), &w.provider).await;
    assert!(matches!(first, Err(WithdrawalError::Ambiguous(_))), "{first:?}");
    // A re-delivery while the first run's lease holds does not touch the provider.
    let early = w.withdrawals.process(&w.job("wd-1"), &w.provider).await;
    assert!(matches!(early, Err(WithdrawalError::InProgress(_))), "{early:?}");

    tokio::time::sleep(LEASE).await;
    let settled = w.withdrawals.process(&w.job("wd-1"), &w.provider).await.unwrap();
    assert_eq!(settled.status, WithdrawalStatus::Sent);
    assert_eq!(settled.provider_reference.as_deref(), Some("ref-1:wd-1"));
    // Replays change nothing.
    for _ in 0..3 {
        assert_eq!(w.withdrawals.process(&w.job("wd-1"), &w.provider).await.unwrap().status, WithdrawalStatus::Sent);
    }
    assert_eq!(w.fake.executions("1:wd-1"), 1, "paid exactly once");
    assert_eq!(w.balance(UserAccount::WithdrawalHold).await, usdt(0));
    assert_eq!(w.balance(UserAccount::Available).await, usdt(89_000_000));
    assert!(w.ledger.audit_user(user(1)).await.unwrap().is_empty());
    w.t.recorder.assert_all_targeted();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_of_one_withdrawal_pay_once() {
    let w = world(PayoutMode::Succeed).await;
    w.request("wd-2", 5_000_000, 50_000_000).await;
    let runs: Vec<_> = (0..16)
        .map(|_| {
            let (withdrawals, provider, job) = (w.withdrawals.clone(), w.provider.clone(), w.job("wd-2"));
            tokio::spawn(async move { withdrawals.process(&job, &provider).await })
        })
        .collect();
    for run in runs {
        match run.await.unwrap() {
            Ok(done) => assert_eq!(done.status, WithdrawalStatus::Sent),
            Err(WithdrawalError::InProgress(_)) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(w.withdrawals.get(user(1), "wd-2").await.unwrap().status, WithdrawalStatus::Sent);
    assert_eq!(w.fake.total_executions(), 1);
    assert_eq!(w.balance(UserAccount::Available).await, usdt(94_000_000));
    w.t.recorder.assert_all_targeted();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_payout_releases_the_hold_and_admin_rules_apply() {
    let w = world(PayoutMode::Fail).await;
    // Above the automatic limit: waits for an admin.
    assert_eq!(w.request("wd-3", 30_000_000, 20_000_000).await, WithdrawalStatus::Requested);
    // The request replayed after the threshold was raised: the review it was sent to stands.
    assert_eq!(w.request("wd-3", 30_000_000, 50_000_000).await, WithdrawalStatus::Requested, "decided once");
    assert_eq!(w.withdrawals.process(&w.job("wd-3"), &w.provider).await.unwrap().status, WithdrawalStatus::Requested);
    assert_eq!(w.withdrawals.approve(user(1), "wd-3").await.unwrap().status, WithdrawalStatus::Approved);
    assert_eq!(w.withdrawals.approve(user(1), "wd-3").await.unwrap().status, WithdrawalStatus::Approved, "approve twice");

    let released = w.withdrawals.process(&w.job("wd-3"), &w.provider).await.unwrap();
    assert_eq!(released.status, WithdrawalStatus::Released);
    assert_eq!(released.reason.as_deref(), Some("address blocked"));
    assert_eq!(w.balance(UserAccount::Available).await, usdt(100_000_000));
    assert_eq!(w.balance(UserAccount::WithdrawalHold).await, usdt(0));

    // Rejected by an admin before payout: the hold returns, once.
    w.request("wd-4", 40_000_000, 0).await;
    assert_eq!(w.balance(UserAccount::Available).await, usdt(59_000_000));
    assert_eq!(w.withdrawals.reject(user(1), "wd-4", "suspicious").await.unwrap().status, WithdrawalStatus::Released);
    assert_eq!(w.withdrawals.reject(user(1), "wd-4", "suspicious").await.unwrap().status, WithdrawalStatus::Released);
    assert_eq!(w.balance(UserAccount::Available).await, usdt(100_000_000));

    // More than the balance: rejected at request, nothing held.
    assert_eq!(w.request("wd-5", 500_000_000, 0).await, WithdrawalStatus::Rejected);
    assert_eq!(w.balance(UserAccount::WithdrawalHold).await, usdt(0));
    assert_eq!(w.fake.total_executions(), 0);
    assert!(w.ledger.audit_user(user(1)).await.unwrap().is_empty());
    w.t.recorder.assert_all_targeted();
}

/// Waits until the withdrawal's lease has expired (another run may then claim it).
async fn lease_expired(w: &World, request_id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let current = w.withdrawals.get(user(1), request_id).await.unwrap();
        if current.lease_until.is_none_or(|until| until <= chrono::Utc::now()) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_payout_answered_409_while_lookups_lag_is_never_refunded() {
    // The provider executes, then times out; its lookups do not see the payout for a while; a
    // re-sent key is answered 409. Refunding on that 409 would give the money back after it
    // left: the platform would lose amount + fee.
    let w = world(PayoutMode::Succeed).await;
    w.fake.set_faults(PayoutFaults {
        conflict_on_resend: true,
        lookup_lag: Duration::from_secs(4),
        execute_then_stall_permille: 1000,
        stall: Duration::from_secs(1),
        ..PayoutFaults::default()
    });
    assert_eq!(w.request("wd-6", 10_000_000, 50_000_000).await, WithdrawalStatus::Approved);
    let first = w.withdrawals.process(&w.job("wd-6"), &w.provider).await;
    assert!(matches!(first, Err(WithdrawalError::Ambiguous(_))), "{first:?}");

    lease_expired(&w, "wd-6").await;
    // Lookup: 404 (lagging) → re-send with the same key → 409: still ambiguous, nothing returned.
    let second = w.withdrawals.process(&w.job("wd-6"), &w.provider).await;
    assert!(matches!(second, Err(WithdrawalError::Ambiguous(_))), "{second:?}");
    let pending = w.withdrawals.get(user(1), "wd-6").await.unwrap();
    assert_eq!(pending.status, WithdrawalStatus::Processing);
    assert!(pending.reason.as_deref().unwrap_or_default().contains("409"), "{pending:?}");
    assert_eq!(w.balance(UserAccount::WithdrawalHold).await, usdt(11_000_000), "the hold stays");
    assert_eq!(w.balance(UserAccount::Available).await, usdt(89_000_000), "nothing came back");
    // Listed as stuck for an admin once it is older than the threshold asked for.
    let stuck = w.withdrawals.stuck_processing(chrono::Utc::now() + chrono::Duration::seconds(1), 10).await.unwrap();
    assert_eq!(stuck.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["1:wd-6"]);
    assert_eq!(w.withdrawals.count_stuck_processing(chrono::Utc::now() - chrono::Duration::hours(1)).await.unwrap(), 0);

    // Once the provider's lookups catch up, a later run settles it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let settled = loop {
        lease_expired(&w, "wd-6").await;
        match w.withdrawals.process(&w.job("wd-6"), &w.provider).await {
            Ok(done) => break done,
            Err(WithdrawalError::Ambiguous(_) | WithdrawalError::InProgress(_)) => {
                assert!(std::time::Instant::now() < deadline, "never settled");
            }
            Err(other) => panic!("{other}"),
        }
    };
    assert_eq!(settled.status, WithdrawalStatus::Sent);
    assert_eq!(w.fake.executions("1:wd-6"), 1, "paid exactly once");
    assert_eq!(w.balance(UserAccount::WithdrawalHold).await, usdt(0));
    assert_eq!(w.balance(UserAccount::Available).await, usdt(89_000_000));
    assert!(w.ledger.audit_user(user(1)).await.unwrap().is_empty());
}

/// A provider whose send answers only when the test says, then refuses; its lookups say the
/// payout is still pending.
#[derive(Clone)]
struct HeldProvider {
    sent: Arc<tokio::sync::Notify>,
    answer: Arc<tokio::sync::Notify>,
}

impl PayoutProvider for HeldProvider {
    async fn send(&self, _: &PayoutRequest) -> SendOutcome {
        self.sent.notify_one();
        self.answer.notified().await;
        SendOutcome::Rejected { reason: "refused, late".into() }
    }
    async fn lookup(&self, _: &PayoutRequest) -> Result<LookupOutcome, String> {
        Ok(LookupOutcome::Pending)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_claim_cannot_release() {
    let w = world(PayoutMode::Succeed).await;
    assert_eq!(w.request("wd-7", 10_000_000, 50_000_000).await, WithdrawalStatus::Approved);
    let provider = HeldProvider { sent: Arc::default(), answer: Arc::default() };
    let first = {
        let (withdrawals, provider, job) = (w.withdrawals.clone(), provider.clone(), w.job("wd-7"));
        tokio::spawn(async move { withdrawals.process(&job, &provider).await })
    };
    provider.sent.notified().await;
    // The first run's lease expires while it waits; a second run claims and looks up.
    lease_expired(&w, "wd-7").await;
    let second = w.withdrawals.process(&w.job("wd-7"), &provider).await;
    assert!(matches!(second, Err(WithdrawalError::InProgress(_))), "{second:?}");
    // Now the first run's refusal arrives: it must not release under a claim it lost.
    provider.answer.notify_one();
    let first = first.await.unwrap();
    assert!(matches!(first, Err(WithdrawalError::ClaimLost(_))), "{first:?}");
    let current = w.withdrawals.get(user(1), "wd-7").await.unwrap();
    assert_eq!((current.status, current.claim), (WithdrawalStatus::Processing, 2));
    assert_eq!(w.balance(UserAccount::WithdrawalHold).await, usdt(11_000_000));
    assert!(w.ledger.audit_user(user(1)).await.unwrap().is_empty());
}
