//! Subscriptions against a real MongoDB-wire server.

mod support;

use obentchi_core::ledger::{Ledger, Posting, UserAccount};
use obentchi_core::money::{Currency, Money};
use obentchi_core::subscriptions::{Plan, Subscriptions};
use support::{key, spawn_store, stars_provider, user};

fn stars(minor: i64) -> Money {
    Money::from_minor(Currency::Xtr, minor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_purchase_pays_the_referrer_fixed_at_purchase_time_only() {
    let t = spawn_store().await;
    let ledger = Ledger::new(t.store.clone());
    let subscriptions = Subscriptions::new(&t.store, ledger.clone());
    let plan = Plan::new("month", stars(100), 30).unwrap();
    let (buyer, referrer, other) = (user(10), user(11), user(12));
    ledger.post(&Posting::deposit(buyer, key("dep"), stars_provider(), stars(1_000), "deposit").unwrap()).await.unwrap();

    // Bought without a referrer (say, from a group, before any /start).
    for purchase in ["tg:1", "tg:2"] {
        assert_eq!(subscriptions.purchase(buyer, None, &plan, &key(purchase), 1_000).await.unwrap().commission, None);
    }
    // Later the buyer gains a referrer and presses the old confirm buttons again: the purchases
    // replay as made, and nobody is paid for them.
    for purchase in ["tg:1", "tg:2", "tg:1"] {
        let replay = subscriptions.purchase(buyer, Some(referrer), &plan, &key(purchase), 1_000).await.unwrap();
        assert_eq!((replay.commission, replay.period.referrer), (None, None), "{purchase}");
    }
    assert_eq!(ledger.balance(referrer, UserAccount::Available, Currency::Xtr).await.unwrap(), stars(0));

    // A new purchase with the referrer pays them 10 %, once, and a replay naming someone else
    // still pays the referrer of the purchase.
    let bought = subscriptions.purchase(buyer, Some(referrer), &plan, &key("tg:3"), 1_000).await.unwrap();
    assert_eq!(bought.commission, Some((referrer, stars(10))));
    let replay = subscriptions.purchase(buyer, Some(other), &plan, &key("tg:3"), 1_000).await.unwrap();
    assert_eq!(replay.commission, Some((referrer, stars(10))));
    assert_eq!(ledger.balance(referrer, UserAccount::Available, Currency::Xtr).await.unwrap(), stars(10));
    assert_eq!(ledger.balance(other, UserAccount::Available, Currency::Xtr).await.unwrap(), stars(0));
    assert_eq!(ledger.balance(buyer, UserAccount::Available, Currency::Xtr).await.unwrap(), stars(700));
    for u in [buyer, referrer, other] {
        assert!(ledger.audit_user(u).await.unwrap().is_empty());
    }
    t.recorder.assert_all_targeted();
}
