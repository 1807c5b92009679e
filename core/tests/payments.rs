//! Payments against a real MongoDB-wire server.

mod support;

use obentchi_core::ids::ProviderId;
use obentchi_core::ledger::{Ledger, PostOutcome, UserAccount};
use obentchi_core::money::{Currency, Money};
use obentchi_core::payments::{PaymentError, PaymentJob, PaymentStatus, Payments, TELEGRAM_STARS};
use support::{spawn_store, user, usdt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_recorded_once_and_credited_once() {
    let t = spawn_store().await;
    let ledger = Ledger::new(t.store.clone());
    let payments = Payments::new(&t.store, ledger.clone());
    let stars = PaymentJob {
        user_id: user(5),
        provider: ProviderId::new(TELEGRAM_STARS).unwrap(),
        external_id: "stxAbC123".into(),
        amount: Money::from_minor(Currency::Xtr, 250),
    };
    payments.record(&stars).await.unwrap();
    payments.record(&stars).await.unwrap();
    assert_eq!(payments.status(&stars).await.unwrap(), Some(PaymentStatus::Received));

    assert!(matches!(payments.credit(&stars).await.unwrap(), PostOutcome::Applied(_)));
    for _ in 0..3 {
        assert!(matches!(payments.credit(&stars).await.unwrap(), PostOutcome::AlreadyApplied(_)));
    }
    assert_eq!(payments.status(&stars).await.unwrap(), Some(PaymentStatus::Credited));
    assert_eq!(ledger.balance(user(5), UserAccount::Available, Currency::Xtr).await.unwrap().minor(), 250);

    // The same provider id reported with another amount is refused, not credited.
    let tampered = PaymentJob { amount: Money::from_minor(Currency::Xtr, 9_999), ..stars.clone() };
    assert!(matches!(payments.record(&tampered).await, Err(PaymentError::Conflict(_))));
    // So is the same provider id reported for another user: one payment, one user, one credit.
    let stolen = PaymentJob { user_id: user(6), ..stars.clone() };
    assert!(matches!(payments.record(&stolen).await, Err(PaymentError::Conflict(_))));
    assert!(matches!(payments.credit(&stolen).await, Err(PaymentError::Conflict(_))), "a job never recorded is not credited");
    assert_eq!(ledger.balance(user(6), UserAccount::Available, Currency::Xtr).await.unwrap().minor(), 0);

    let gateway = PaymentJob {
        user_id: user(5),
        provider: ProviderId::new("gateway-x").unwrap(),
        external_id: "tx-778".into(),
        amount: usdt(12_500_000),
    };
    payments.record(&gateway).await.unwrap();
    payments.credit(&gateway).await.unwrap();
    assert_eq!(ledger.balance(user(5), UserAccount::Available, Currency::Usdt).await.unwrap(), usdt(12_500_000));
    assert!(ledger.audit_user(user(5)).await.unwrap().is_empty());
    t.recorder.assert_all_targeted();
}
