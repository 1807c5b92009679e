//! Moving money by hand through the admin API, against real MongoDB and Redis and the fake Bot
//! API: Stars refunds (money moves once, the ledger reverses once, a replay changes nothing, a
//! spent payment is refused without a change) and balance corrections (capped, keyed, a second
//! admin above the threshold, both in the audit log).

mod support;

use mongodb::bson::doc;
use obentchi_core::api_tokens::{ApiTokens, Scope};
use obentchi_core::ids::{IdempotencyKey, ProviderId, UserId};
use obentchi_core::ledger::{Ledger, UserAccount};
use obentchi_core::money::{Currency, Money};
use obentchi_core::payments::{PaymentJob, Payments, RefundOutcome, TELEGRAM_STARS};
use obentchi_core::subscriptions::{Plan, Subscriptions};
use obentchi_testkit::FakeBotApi;
use serde_json::{json, Value};
use support::{error_code, spawn_app, TestApp, GENEROUS};

const PAYER: i64 = 5_550_001;

async fn app_with_bot(bot_api: &FakeBotApi) -> TestApp {
    let extra = format!(
        "{GENEROUS}[telegram]\nbot_token = \"7000000001:test-token\"\napi_url = \"{}\"\n\
         [adjustments.USDT]\nmax = \"1000 USDT\"\nsecond_approval_above = \"100 USDT\"\n",
        bot_api.url()
    );
    spawn_app(&extra).await
}

async fn money_token(app: &TestApp, name: &str) -> String {
    ApiTokens::new(&app.store).create(name, &[Scope::Money]).await.unwrap().1
}

/// A Stars payment of `stars`, paid and credited as the bot and workers would.
async fn paid_stars(app: &TestApp, bot_api: &FakeBotApi, charge: &str, stars: i64) -> Payments {
    let payments = Payments::new(&app.store, Ledger::new(app.store.clone()));
    bot_api.record_star_payment(charge, PAYER, stars as u32, "deposit:5550001:1");
    let job = PaymentJob {
        user_id: UserId::new(PAYER).unwrap(),
        provider: ProviderId::new(TELEGRAM_STARS).unwrap(),
        external_id: charge.to_owned(),
        amount: Money::from_minor(Currency::Xtr, stars),
    };
    payments.record(&job).await.unwrap();
    payments.credit(&job).await.unwrap();
    payments
}

async fn available(app: &TestApp, currency: Currency) -> i64 {
    Ledger::new(app.store.clone()).balance(UserId::new(PAYER).unwrap(), UserAccount::Available, currency).await.unwrap().minor()
}

fn refunds_in(bot_api: &FakeBotApi, charge: &str) -> usize {
    bot_api.star_transactions().iter().filter(|t| t["id"] == charge && !t["receiver"].is_null()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stars_refund_moves_money_once_and_a_spent_payment_is_refused_unchanged() {
    let bot_api = FakeBotApi::start().await;
    let app = app_with_bot(&bot_api).await;
    let banker = app.money_token.clone();
    paid_stars(&app, &bot_api, "stxRefundMe0001", 250).await;

    // `write` is not enough to move money.
    let path = "/admin/payments/stars/stxRefundMe0001/refund";
    let (status, _) = error_code(app.post(path, Some(&app.write_token), None).await).await;
    assert_eq!(status, 403);

    for _ in 0..3 {
        let answer = app.post(path, Some(&banker), None).await;
        assert_eq!(answer.status(), 200);
        let view: Value = answer.json().await.unwrap();
        assert_eq!(view["status"], "refunded", "{view}");
    }
    assert_eq!(refunds_in(&bot_api, "stxRefundMe0001"), 1, "Telegram refunded once");
    assert_eq!(available(&app, Currency::Xtr).await, 0);
    let ledger = Ledger::new(app.store.clone());
    let payer = UserId::new(PAYER).unwrap();
    let reversals = app.store.collection::<mongodb::bson::Document>("postings").count_documents(doc! { "user_id": PAYER, "kind": "payment_refund" }).await.unwrap();
    assert_eq!(reversals, 1, "the ledger reversed once");
    assert_eq!(ledger.audit_user(payer).await.unwrap(), vec![]);

    // A payment whose Stars were spent on a subscription: refused, and nothing changes.
    paid_stars(&app, &bot_api, "stxSpent0002", 100).await;
    let subscriptions = Subscriptions::new(&app.store, ledger.clone());
    let plan = Plan::new("month", Money::from_minor(Currency::Xtr, 100), 30).unwrap();
    subscriptions.purchase(payer, None, &plan, &IdempotencyKey::new("tg:9").unwrap(), 0).await.unwrap();
    let answer = app.post("/admin/payments/stars/stxSpent0002/refund", Some(&banker), None).await;
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(status, 409);
    assert!(body["error"]["message"].as_str().unwrap().contains("already spent"), "{body}");
    assert_eq!(refunds_in(&bot_api, "stxSpent0002"), 0, "Telegram was not asked");
    assert_eq!(available(&app, Currency::Xtr).await, 0);
    assert_eq!(ledger.audit_user(payer).await.unwrap(), vec![]);

    // Telegram does not answer (flood control): pending, the balance already reversed; asked
    // again, it refunds once.
    paid_stars(&app, &bot_api, "stxBusy0004", 70).await;
    assert_eq!(available(&app, Currency::Xtr).await, 70);
    bot_api.rate_limit_next(1, 1);
    let view: Value = app.post("/admin/payments/stars/stxBusy0004/refund", Some(&banker), None).await.json().await.unwrap();
    assert_eq!(view["status"], "pending", "{view}");
    assert_eq!(available(&app, Currency::Xtr).await, 0, "reversed while Telegram is asked");
    assert_eq!(refunds_in(&bot_api, "stxBusy0004"), 0);
    let view: Value = app.post("/admin/payments/stars/stxBusy0004/refund", Some(&banker), None).await.json().await.unwrap();
    assert_eq!(view["status"], "refunded", "{view}");
    assert_eq!((refunds_in(&bot_api, "stxBusy0004"), available(&app, Currency::Xtr).await), (1, 0));
    assert_eq!(ledger.audit_user(payer).await.unwrap(), vec![]);

    // An unknown charge.
    let (status, _) = error_code(app.post("/admin/payments/stars/stxNobody/refund", Some(&banker), None).await).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_telegram_refuses_gives_the_balance_back() {
    let bot_api = FakeBotApi::start().await;
    let app = app_with_bot(&bot_api).await;
    let banker = app.money_token.clone();
    // Recorded and credited here, but Telegram has no such charge of this user.
    let payments = Payments::new(&app.store, Ledger::new(app.store.clone()));
    let app_path = "/admin/payments/stars/stxUnknownToTelegram/refund";
    let job = PaymentJob {
        user_id: UserId::new(PAYER).unwrap(),
        provider: ProviderId::new(TELEGRAM_STARS).unwrap(),
        external_id: "stxUnknownToTelegram".into(),
        amount: Money::from_minor(Currency::Xtr, 100),
    };
    payments.record(&job).await.unwrap();
    payments.credit(&job).await.unwrap();
    assert_eq!(available(&app, Currency::Xtr).await, 100);

    let answer = app.post(app_path, Some(&banker), None).await;
    assert_eq!(answer.status(), 409);
    let body: Value = answer.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("CHARGE_NOT_FOUND"), "{body}");
    assert_eq!(available(&app, Currency::Xtr).await, 100, "the balance is as before");
    // Not tried again by hand.
    assert_eq!(app.post(app_path, Some(&banker), None).await.status(), 409);
    assert_eq!(available(&app, Currency::Xtr).await, 100);
    // Should Telegram refund it after all (as the reconciler or a refunded_payment update would
    // report), the money is taken again, once, however often that is reported.
    let provider = ProviderId::new(TELEGRAM_STARS).unwrap();
    for _ in 0..3 {
        assert!(matches!(payments.refund(&provider, "stxUnknownToTelegram").await.unwrap(), RefundOutcome::Reversed(_)));
    }
    assert_eq!(available(&app, Currency::Xtr).await, 0);
    assert_eq!(Ledger::new(app.store.clone()).audit_user(UserId::new(PAYER).unwrap()).await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_above_the_threshold_waits_for_a_second_admin() {
    let bot_api = FakeBotApi::start().await;
    let app = app_with_bot(&bot_api).await;
    let (first, second) = (money_token(&app, "first-admin").await, money_token(&app, "second-admin").await);
    let usdt = |minor: i64| json!({ "currency": "USDT", "minor": minor });
    let path = format!("/admin/users/{PAYER}/adjustments");

    // Within the threshold: applied at once, once per key.
    for _ in 0..2 {
        let body = json!({ "change": usdt(50_000_000), "reason": "goodwill for a failed deposit", "key": "ticket-1" });
        let view: Value = app.post(&path, Some(&first), Some(body)).await.json().await.unwrap();
        assert_eq!(view["status"], "applied", "{view}");
    }
    assert_eq!(available(&app, Currency::Usdt).await, 50_000_000);
    // A second small one that takes the day's corrections past the threshold waits too: a
    // large correction cannot be split into small ones.
    let body = json!({ "change": usdt(60_000_000), "reason": "the rest of it", "key": "ticket-1b" });
    let view: Value = app.post(&path, Some(&first), Some(body)).await.json().await.unwrap();
    assert_eq!(view["status"], "awaiting_approval", "{view}");
    assert_eq!(available(&app, Currency::Usdt).await, 50_000_000);

    // Beyond the cap, without a reason, or in a currency without limits: refused.
    for (body, what) in [
        (json!({ "change": usdt(1_000_000_001), "reason": "too much", "key": "k2" }), "over the cap"),
        (json!({ "change": usdt(1_000_000), "reason": " ", "key": "k3" }), "no reason"),
        (json!({ "change": { "currency": "XTR", "minor": 5 }, "reason": "stars", "key": "k4" }), "no XTR limits"),
    ] {
        let (status, _) = error_code(app.post(&path, Some(&first), Some(body)).await).await;
        assert_eq!(status, 400, "{what}");
    }

    // Above the threshold: nothing moves until another admin approves.
    let body = json!({ "change": usdt(300_000_000), "reason": "exchange outage compensation", "key": "ticket-2" });
    let view: Value = app.post(&path, Some(&first), Some(body)).await.json().await.unwrap();
    assert_eq!(view["status"], "awaiting_approval", "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    assert_eq!(available(&app, Currency::Usdt).await, 50_000_000);
    let approve = format!("/admin/adjustments/{id}/approve");
    let (status, _) = error_code(app.post(&approve, Some(&first), None).await).await;
    assert_eq!(status, 403, "the requester cannot approve their own");
    assert_eq!(available(&app, Currency::Usdt).await, 50_000_000);
    for _ in 0..2 {
        assert_eq!(app.post(&approve, Some(&second), None).await.status(), 200);
    }
    assert_eq!(available(&app, Currency::Usdt).await, 350_000_000, "applied once");

    // A debit larger than the balance is refused.
    let body = json!({ "change": usdt(-400_000_000), "reason": "chargeback", "key": "ticket-3" });
    let view: Value = app.post(&path, Some(&first), Some(body)).await.json().await.unwrap();
    let debit = format!("/admin/adjustments/{}/approve", view["id"].as_str().unwrap());
    let (status, _) = error_code(app.post(&debit, Some(&second), None).await).await;
    assert_eq!(status, 409);
    assert_eq!(available(&app, Currency::Usdt).await, 350_000_000);

    // Both admins are in the audit log.
    let entries: Vec<mongodb::bson::Document> = {
        use futures::TryStreamExt;
        app.store.collection("admin_audit").find(doc! {}).await.unwrap().try_collect().await.unwrap()
    };
    let by = |name: &str, action: &str| entries.iter().any(|e| e.get_str("token_name") == Ok(name) && e.get_str("action") == Ok(action));
    assert!(by("first-admin", "balance.adjust") && by("second-admin", "balance.adjust.approve"), "{entries:#?}");
    assert_eq!(Ledger::new(app.store.clone()).audit_user(UserId::new(PAYER).unwrap()).await.unwrap(), vec![]);
}
