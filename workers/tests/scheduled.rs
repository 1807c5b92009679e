//! The scheduled jobs against a real Redis and MongoDB: each run does its work once, and a
//! repeated run (the same run id delivered again) enqueues nothing new.

use obentchi_core::job_reports::JobReports;
use std::time::Duration;

use mongodb::options::ClientOptions;
use apalis_redis_streams::{Queue, QueueStats};
use obentchi_core::queues::QueuesConfig;
use obentchi_core::ids::{IdempotencyKey, ProviderId, UserId};
use obentchi_core::ledger::{Ledger, Posting, UserAccount};
use obentchi_core::money::{Currency, Money};
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::payments::{PaymentJob, PaymentStatus, Payments, TELEGRAM_STARS};
use obentchi_core::scheduled::{ScheduledJob, ScheduledRun};
use obentchi_core::storage::{migrate, Store};
use obentchi_core::subscriptions::{Plan, Subscriptions};
use obentchi_core::users::Users;
use obentchi_core::withdrawals::{AddressFormat, NewWithdrawal, PayoutAddress, WithdrawalJob, WithdrawalStatus, Withdrawals};
use obentchi_core::config::{IssuedToken, RedisConfig, RedisMode};
use obentchi_testkit::{FakeBotApi, FakePayoutProvider, MongoServer, PayoutMode, RedisServer};
use obentchi_workers::scheduled::{ScheduledJobs, ScheduledJobsConfig};

struct Setup {
    _redis: RedisServer,
    _mongo: MongoServer,
    store: Store,
    jobs: ScheduledJobs,
    bot_api: FakeBotApi,
}

async fn setup(config: ScheduledJobsConfig) -> Setup {
    let redis = RedisServer::start();
    let mongo = MongoServer::start();
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
    migrate(&store).await.unwrap();
    let conn = RedisConfig::from_urls(RedisMode::Single, [redis.url()]).unwrap().connect().await.unwrap();
    let queues = QueuesConfig::default();
    let queue = |name| queues.open(name, &conn).unwrap();
    let ledger = Ledger::new(store.clone());
    let bot_api = FakeBotApi::start().await;
    let jobs = ScheduledJobs {
        config,
        users: Users::new(&store),
        payments: Payments::new(&store, ledger.clone()),
        withdrawals: Withdrawals::new(&store, ledger.clone()),
        subscriptions: Subscriptions::new(&store, ledger.clone()),
        ledger,
        payment_jobs: queue("payments"),
        withdrawal_jobs: queue("withdrawals"),
        outbound: queue("outbound"),
        all_queues: queues.open_all(&conn),
        bot: teloxide::Bot::new("7000000001:test-token").set_api_url(bot_api.url().parse().unwrap()),
        crypto_pay: None,
        job_reports: JobReports::new(&store),
    };
    for queue in &jobs.all_queues {
        queue.ensure_groups().await.unwrap();
    }
    Setup { _redis: redis, _mongo: mongo, store, jobs, bot_api }
}

fn run(job: ScheduledJob, at: i64) -> ScheduledRun {
    ScheduledRun { job, scheduled_at_ms: at }
}

/// A withdrawal of `amount` (no fee) to a TON address.
fn ton_withdrawal(user_id: UserId, request: &str, amount: Money) -> NewWithdrawal {
    NewWithdrawal {
        user_id,
        request_id: IdempotencyKey::new(request).unwrap(),
        amount,
        fee: xtr(0),
        address: PayoutAddress::parse(AddressFormat::Ton, "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG").unwrap(),
    }
}

fn xtr(minor: i64) -> Money {
    Money::from_minor(Currency::Xtr, minor)
}

async fn deposit(ledger: &Ledger, user: UserId, amount: Money) {
    let key = IdempotencyKey::new(format!("seed:{user}")).unwrap();
    let posting = Posting::deposit(user, key, ProviderId::new(TELEGRAM_STARS).unwrap(), amount, "seed").unwrap();
    ledger.post(&posting).await.unwrap();
}

/// Everything waiting on `queue`, decoded, and acknowledged.
async fn drain<T: serde::de::DeserializeOwned>(queue: &Queue) -> Vec<T> {
    let mut jobs = Vec::new();
    for partition in queue.partitions() {
        let deliveries = queue.fetch(partition, "test", 1_000).await.unwrap().deliveries;
        let ids: Vec<String> = deliveries.iter().map(|d| d.entry_id.clone()).collect();
        jobs.extend(deliveries.iter().map(|d| d.envelope.decode_payload::<T>().unwrap()));
        queue.ack(partition, &ids).await.unwrap();
    }
    jobs
}

fn no_wait() -> ScheduledJobsConfig {
    ScheduledJobsConfig { stuck_after_ms: 0, ..ScheduledJobsConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_whose_job_was_lost_is_driven_again_and_paid_once() {
    let s = setup(no_wait()).await;
    let user = UserId::new(7).unwrap();
    deposit(&s.jobs.ledger, user, xtr(1_000)).await;
    // Approved, and its job never made it to Redis.
    let w = s.jobs.withdrawals.request(ton_withdrawal(user, "lost-job", xtr(400)), xtr(1_000)).await.unwrap();
    assert_eq!(w.status, WithdrawalStatus::Approved);
    tokio::time::sleep(Duration::from_millis(5)).await;

    let first = run(ScheduledJob::ReconcileWithdrawals, 1_000);
    s.jobs.run(&first).await.unwrap();
    s.jobs.run(&first).await.unwrap();
    let jobs: Vec<WithdrawalJob> = drain(&s.jobs.withdrawal_jobs).await;
    assert_eq!(jobs, vec![WithdrawalJob { user_id: user, request_id: "lost-job".into() }], "one job per run, however often it runs");

    let provider = FakePayoutProvider::start(PayoutMode::Succeed).await;
    let provider = obentchi_core::payout::HttpPayoutProvider::new(&provider_config(&provider)).unwrap();
    // The next run re-drives it again (still approved): two jobs for one withdrawal pay once.
    s.jobs.run(&run(ScheduledJob::ReconcileWithdrawals, 2_000)).await.unwrap();
    let again: Vec<WithdrawalJob> = drain(&s.jobs.withdrawal_jobs).await;
    for job in jobs.iter().chain(&again) {
        s.jobs.withdrawals.process(job, &provider).await.unwrap();
    }
    assert_eq!(s.jobs.withdrawals.get(user, "lost-job").await.unwrap().status, WithdrawalStatus::Sent);
    assert_eq!(s.jobs.ledger.balance(user, UserAccount::Available, Currency::Xtr).await.unwrap(), xtr(600));

    // Settled withdrawals are not stuck.
    s.jobs.run(&run(ScheduledJob::ReconcileWithdrawals, 3_000)).await.unwrap();
    assert!(drain::<WithdrawalJob>(&s.jobs.withdrawal_jobs).await.is_empty());
}

fn provider_config(provider: &FakePayoutProvider) -> obentchi_core::payout::PayoutProviderConfig {
    serde_json::from_value(serde_json::json!({ "base_url": provider.base_url(), "api_token": "t", "timeout_ms": 1000 })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_payment_that_was_never_credited_is_enqueued_again() {
    let s = setup(no_wait()).await;
    let payment = PaymentJob {
        user_id: UserId::new(8).unwrap(),
        provider: ProviderId::new(TELEGRAM_STARS).unwrap(),
        external_id: "charge-1".into(),
        amount: xtr(250),
    };
    s.jobs.payments.record(&payment).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let reconcile = run(ScheduledJob::ReconcilePayments, 1_000);
    s.jobs.run(&reconcile).await.unwrap();
    s.jobs.run(&reconcile).await.unwrap();
    let jobs: Vec<PaymentJob> = drain(&s.jobs.payment_jobs).await;
    assert_eq!(jobs, vec![payment.clone()]);
    s.jobs.payments.credit(&jobs[0]).await.unwrap();
    assert_eq!(s.jobs.payments.status(&payment).await.unwrap(), Some(PaymentStatus::Credited));
    s.jobs.run(&run(ScheduledJob::ReconcilePayments, 2_000)).await.unwrap();
    assert!(drain::<PaymentJob>(&s.jobs.payment_jobs).await.is_empty(), "credited payments are left alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_finds_a_tampered_balance() {
    let s = setup(no_wait()).await;
    for id in 1..=5 {
        deposit(&s.jobs.ledger, UserId::new(id).unwrap(), xtr(100 * id)).await;
    }
    let clean = s.jobs.ledger.audit_all(2).await.unwrap();
    assert_eq!((clean.users, clean.mismatches.len()), (5, 0));
    s.jobs.run(&run(ScheduledJob::LedgerAudit, 1_000)).await.unwrap();

    let balances = s.store.collection::<mongodb::bson::Document>("balances");
    balances
        .update_one(mongodb::bson::doc! { "user_id": 3_i64 }, mongodb::bson::doc! { "$inc": { "amount": 1_i64 } })
        .await
        .unwrap();
    let tampered = s.jobs.ledger.audit_all(2).await.unwrap();
    assert_eq!(tampered.users, 5);
    assert_eq!(tampered.mismatches.len(), 1);
    assert_eq!((tampered.mismatches[0].balance, tampered.mismatches[0].sum_of_entries), (301, 300));

    // What the API exports as `ledger_audit_mismatches`: the latest run's figure, whichever
    // replica ran it, so a clean run after a bad one clears it everywhere.
    let figure = |reports: Vec<obentchi_core::job_reports::JobReport>| reports.iter().find(|r| r.check == "ledger_audit").map(|r| r.figures["ledger_audit_mismatches"]);
    assert_eq!(figure(s.jobs.job_reports.all().await.unwrap()), Some(0));
    s.jobs.run(&run(ScheduledJob::LedgerAudit, 2_000)).await.unwrap();
    assert_eq!(figure(s.jobs.job_reports.all().await.unwrap()), Some(1));
    balances
        .update_one(mongodb::bson::doc! { "user_id": 3_i64 }, mongodb::bson::doc! { "$inc": { "amount": -1_i64 } })
        .await
        .unwrap();
    s.jobs.run(&run(ScheduledJob::LedgerAudit, 3_000)).await.unwrap();
    assert_eq!(figure(s.jobs.job_reports.all().await.unwrap()), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_told_once_that_their_subscription_ends() {
    // A 1-day plan ends within the 48-hour reminder window as soon as it is bought.
    let config = ScheduledJobsConfig { remind_before_hours: 48, ..no_wait() };
    let s = setup(config).await;
    let plan = Plan::new("day", xtr(10), 1).unwrap();
    let (renewing, lapsing, muted) = (UserId::new(21).unwrap(), UserId::new(22).unwrap(), UserId::new(23).unwrap());
    // User 23 turned reminders off with /notifications.
    s.jobs.users.set_notification(muted, obentchi_core::users::Notification::Reminders, false).await.unwrap();
    for user in [renewing, lapsing, muted] {
        deposit(&s.jobs.ledger, user, xtr(100)).await;
        s.jobs.subscriptions.purchase(user, None, &plan, &IdempotencyKey::new("p1").unwrap(), 1_000).await.unwrap();
    }
    // The renewing user bought a second day: only the period that ends the subscription counts,
    // and it ends 2 days out, still inside the window.
    s.jobs.subscriptions.purchase(renewing, None, &plan, &IdempotencyKey::new("p2").unwrap(), 1_000).await.unwrap();

    let notices = run(ScheduledJob::SubscriptionNotices, 1_000);
    s.jobs.run(&notices).await.unwrap();
    s.jobs.run(&notices).await.unwrap();
    s.jobs.run(&run(ScheduledJob::SubscriptionNotices, 2_000)).await.unwrap();
    let mut messages: Vec<OutboundMessage> = drain(&s.jobs.outbound).await;
    messages.sort_by_key(|m| m.chat_id);
    assert_eq!(messages.iter().map(|m| m.chat_id).collect::<Vec<_>>(), vec![21, 22], "not 23, who turned reminders off: {messages:?}");
    assert!(messages.iter().all(|m| m.text.contains("/subscribe")), "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_lost_a_plans_channel_is_removed_and_told_once_and_who_renewed_stays() {
    const VIP: i64 = -1_002_000_000_001;
    let s = setup(no_wait()).await;
    let plan = Plan::new("vip", xtr(10), 1).unwrap().granting(VIP);
    let (lapsed, renewed) = (UserId::new(31).unwrap(), UserId::new(32).unwrap());
    for user in [lapsed, renewed] {
        deposit(&s.jobs.ledger, user, xtr(100)).await;
        s.jobs.subscriptions.purchase(user, None, &plan, &IdempotencyKey::new("first").unwrap(), 0).await.unwrap();
    }
    // Both first periods ended an hour ago; user 32 had bought a second one, running now.
    let periods = s.store.collection::<mongodb::bson::Document>("subscriptions");
    let (ended_start, ended_end) = (chrono::Utc::now() - chrono::Duration::hours(25), chrono::Utc::now() - chrono::Duration::hours(1));
    periods.update_many(mongodb::bson::doc! {}, mongodb::bson::doc! { "$set": { "starts_at": ended_start, "expires_at": ended_end } }).await.unwrap();
    s.jobs.subscriptions.purchase(renewed, None, &plan, &IdempotencyKey::new("second").unwrap(), 0).await.unwrap();

    for at in [1_000, 2_000] {
        s.jobs.run(&run(ScheduledJob::SubscriptionNotices, at)).await.unwrap();
    }
    let removals: Vec<(String, i64)> = s
        .bot_api
        .calls()
        .into_iter()
        .filter(|c| c.method.to_lowercase().ends_with("chatmember"))
        .map(|c| (c.method.to_lowercase(), c.body["user_id"].as_i64().unwrap()))
        .collect();
    assert_eq!(removals, [("banchatmember".to_owned(), 31), ("unbanchatmember".to_owned(), 31)], "only the lapsed user, once");
    let told: Vec<OutboundMessage> = drain(&s.jobs.outbound).await;
    let ended_text = obentchi_core::i18n::tr(obentchi_core::i18n::Lang::Ar, obentchi_core::i18n::Text::AccessEnded, &[]);
    let access_ended: Vec<&OutboundMessage> = told.iter().filter(|m| m.text == ended_text).collect();
    assert_eq!(access_ended.len(), 1, "{told:?}");
    assert_eq!(access_ended[0].chat_id, 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_upkeep_drops_old_dead_letters_and_departed_consumers() {
    let config = ScheduledJobsConfig { dead_letter_retention_days: 0, consumer_idle_prune_ms: 0, ..no_wait() };
    let s = setup(config).await;
    let queue = &s.jobs.payment_jobs;
    queue.enqueue(&serde_json::json!({"poison": true}), None).await.unwrap();
    for partition in queue.partitions() {
        for delivery in queue.fetch(partition, "departed", 10).await.unwrap().deliveries {
            queue.bury(&delivery, "boom").await.unwrap();
        }
    }
    assert_eq!(queue.stats().await.unwrap().dead, 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.jobs.run(&run(ScheduledJob::QueueMaintenance, 1_000)).await.unwrap();
    assert_eq!(queue.stats().await.unwrap(), QueueStats { failed_total: 1, ..QueueStats::default() }, "only the count of its failure stays");
    assert_eq!(queue.prune_consumers(Duration::ZERO).await.unwrap(), 0, "the departed consumer is already gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_on_a_money_queue_is_told_to_every_admin_once() {
    let config = ScheduledJobsConfig { admin_chat_ids: vec![900, 901], ..no_wait() };
    let s = setup(config).await;
    // One dead letter on the payments queue, one on the broadcasts queue (not money).
    let broadcasts = s.jobs.all_queues.iter().find(|q| q.name() == "broadcasts").unwrap();
    for (queue, job) in [(&s.jobs.payment_jobs, serde_json::json!({ "poison": "payment" })), (broadcasts, serde_json::json!({ "poison": "broadcast" }))] {
        queue.enqueue(&job, None).await.unwrap();
        for partition in queue.partitions() {
            for delivery in queue.fetch(partition, "worker", 10).await.unwrap().deliveries {
                queue.bury(&delivery, "provider answered 400").await.unwrap();
            }
        }
    }
    let dead = s.jobs.payment_jobs.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    // Upkeep runs again and again: each admin chat hears of it once.
    for at in [1_000, 2_000, 3_000] {
        s.jobs.run(&run(ScheduledJob::QueueMaintenance, at)).await.unwrap();
    }
    let messages: Vec<OutboundMessage> = drain(&s.jobs.outbound).await;
    assert_eq!(messages.iter().map(|m| m.chat_id).collect::<std::collections::BTreeSet<_>>(), [900, 901].into());
    assert_eq!(messages.len(), 2, "{messages:?}");
    for message in &messages {
        assert!(message.text.starts_with(&format!("Dead letter on the payments queue: {}", dead[0].id)), "{}", message.text);
        assert!(message.text.contains("Error: provider answered 400") && message.text.contains(r#"{"poison":"payment"}"#), "{}", message.text);
        assert!(message.text.contains(&format!("POST /admin/queues/payments/dead-letters/{}/retry", dead[0].id)), "{}", message.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_report_reaches_every_admin_once() {
    let config = ScheduledJobsConfig { admin_chat_ids: vec![900, 901], ..no_wait() };
    let s = setup(config).await;
    Users::new(&s.store).register(UserId::new(5).unwrap(), Default::default()).await.unwrap();
    deposit(&s.jobs.ledger, UserId::new(5).unwrap(), xtr(70)).await;
    // Over the automatic approval: it waits for an admin, and the report says so.
    let waiting = s.jobs.withdrawals.request(ton_withdrawal(UserId::new(5).unwrap(), "big", xtr(60)), xtr(10)).await.unwrap();
    assert_eq!(waiting.status, WithdrawalStatus::Requested);
    let report = run(ScheduledJob::DailyReport, 1_000);
    s.jobs.run(&report).await.unwrap();
    s.jobs.run(&report).await.unwrap();
    let messages: Vec<OutboundMessage> = drain(&s.jobs.outbound).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    for message in &messages {
        assert!(message.text.contains("Users: 1"), "{}", message.text);
        assert!(message.text.contains("70 XTR"), "{}", message.text);
        assert!(message.text.contains(&format!("Waiting for review (POST /admin/withdrawals/<id>/approve or /reject):\n{} user 5 60 XTR", waiting.id)), "{}", message.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stars_reconciler_credits_what_telegram_took_once_and_reverses_refunds() {
    let s = setup(ScheduledJobsConfig { stars_grace_ms: 0, ..no_wait() }).await;
    let (alice, bob) = (UserId::new(21).unwrap(), UserId::new(22).unwrap());
    let stars = ProviderId::new(TELEGRAM_STARS).unwrap();
    let charge = |user: UserId, id: &str, amount: i64| PaymentJob { user_id: user, provider: stars.clone(), external_id: id.into(), amount: xtr(amount) };
    // Alice's payment came through the webhook and was credited; Bob's update was lost (a Redis
    // failover before it was handled); Telegram has both. Then Telegram refunds Alice.
    s.jobs.payments.record(&charge(alice, "ch-a", 300)).await.unwrap();
    s.jobs.payments.credit(&charge(alice, "ch-a", 300)).await.unwrap();
    s.bot_api.record_star_payment("ch-a", 21, 300, "dep:a");
    s.bot_api.record_star_payment("ch-b", 22, 500, "dep:b");
    let balance = async |user| s.jobs.ledger.balance(user, UserAccount::Available, Currency::Xtr).await.unwrap();

    for at in [1_000, 2_000, 2_000] {
        s.jobs.run(&run(ScheduledJob::ReconcileStars, at)).await.unwrap();
    }
    assert_eq!((balance(alice).await, balance(bob).await), (xtr(300), xtr(500)), "each charge credited once");
    assert_eq!(s.jobs.payments.status(&charge(bob, "ch-b", 500)).await.unwrap(), Some(PaymentStatus::Credited));

    s.bot_api.record_star_refund("ch-a", 21, 300);
    for at in [3_000, 4_000] {
        s.jobs.run(&run(ScheduledJob::ReconcileStars, at)).await.unwrap();
    }
    assert_eq!((balance(alice).await, balance(bob).await), (xtr(0), xtr(500)), "the refund reversed once");
    // The same payment id cannot be reported for someone else.
    assert!(s.jobs.payments.record(&charge(bob, "ch-a", 300)).await.is_err());
    for user in [alice, bob] {
        assert!(s.jobs.ledger.audit_user(user).await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crypto_pay_reconciler_records_paid_invoices_whose_webhook_never_came() {
    use obentchi_core::config::Secret;
    use obentchi_core::cryptopay::{CryptoPay, CryptoPayConfig, DepositInvoices, CRYPTO_PAY};
    use obentchi_testkit::FakeCryptoPay;

    let mut s = setup(ScheduledJobsConfig { stars_grace_ms: 0, ..no_wait() }).await;
    let fake = FakeCryptoPay::start("reconciler-token").await;
    let config = CryptoPayConfig {
        base_url: fake.base_url(),
        api_token: Secret::new(IssuedToken::try_from("reconciler-token".to_owned()).unwrap()),
        timeout_ms: 2_000,
        assets: vec![Currency::Usdt],
        invoice_lifetime_s: 3_600,
    };
    let api = CryptoPay::new(&config).unwrap();
    let invoices = DepositInvoices::new(&s.store);
    let user = UserId::new(31).unwrap();
    let usdt = |minor| Money::from_minor(Currency::Usdt, minor);
    let paid = invoices.open(&api, user, 7, usdt(12_500_000), "deposit").await.unwrap();
    invoices.open(&api, user, 8, usdt(1_000_000), "deposit").await.unwrap();
    // Paid in @CryptoBot, but the webhook never reached us.
    fake.pay(paid.invoice_id);
    s.jobs.crypto_pay = Some((api, invoices));

    for at in [1_000, 2_000, 2_000] {
        s.jobs.run(&run(ScheduledJob::ReconcileCryptoPay, at)).await.unwrap();
    }
    let payment = PaymentJob {
        user_id: user,
        provider: ProviderId::new(CRYPTO_PAY).unwrap(),
        external_id: paid.invoice_id.to_string(),
        amount: usdt(12_500_000),
    };
    assert_eq!(s.jobs.payments.status(&payment).await.unwrap(), Some(PaymentStatus::Received));
    let queued: Vec<PaymentJob> = drain(&s.jobs.payment_jobs).await;
    assert_eq!(queued, vec![payment.clone()], "the paid invoice is enqueued once; the unpaid one not at all");
    s.jobs.payments.credit(&payment).await.unwrap();
    assert_eq!(s.jobs.ledger.balance(user, UserAccount::Available, Currency::Usdt).await.unwrap(), usdt(12_500_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stars_refund_left_without_an_answer_is_asked_again_and_refunded_once() {
    use obentchi_core::payments::{RefundAnswer, RefundOutcome};
    let s = setup(ScheduledJobsConfig { stars_grace_ms: 0, ..no_wait() }).await;
    let user = UserId::new(41).unwrap();
    let stars = ProviderId::new(TELEGRAM_STARS).unwrap();
    let payment = PaymentJob { user_id: user, provider: stars.clone(), external_id: "ch-pending".into(), amount: xtr(90) };
    s.bot_api.record_star_payment("ch-pending", 41, 90, "dep:p");
    s.jobs.payments.record(&payment).await.unwrap();
    s.jobs.payments.credit(&payment).await.unwrap();
    // An admin's refund: reversed, then Telegram did not answer.
    assert!(matches!(s.jobs.payments.start_refund(&stars, "ch-pending").await.unwrap(), RefundOutcome::Reversed(_)));
    s.jobs.payments.settle_refund(&stars, "ch-pending", &RefundAnswer::NoAnswer("timeout".into())).await.unwrap();
    assert_eq!(s.jobs.payments.pending_refunds(&stars, 10).await.unwrap(), vec![(user, "ch-pending".to_owned())]);

    for at in [1_000, 2_000] {
        s.jobs.run(&run(ScheduledJob::ReconcileStars, at)).await.unwrap();
    }
    let refunds = s.bot_api.star_transactions().iter().filter(|t| t["id"] == "ch-pending" && !t["receiver"].is_null()).count();
    assert_eq!(refunds, 1, "Telegram refunded once");
    assert!(s.jobs.payments.pending_refunds(&stars, 10).await.unwrap().is_empty());
    assert_eq!(s.jobs.ledger.balance(user, UserAccount::Available, Currency::Xtr).await.unwrap(), xtr(0));
    assert!(s.jobs.ledger.audit_user(user).await.unwrap().is_empty());
}
