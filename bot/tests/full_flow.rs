//! The whole platform as processes — a webhook receiver, an update consumer and the workers —
//! against real Redis and MongoDB servers, the fake Bot API and the fake payout provider:
//! /start with a referral → deposit in Stars → subscribe → the referrer is paid → the referrer
//! withdraws, with Telegram re-sending some updates on the way.

mod support;

use std::time::Duration;

use mongodb::options::ClientOptions;
use obentchi_core::ids::UserId;
use obentchi_core::ledger::{Ledger, UserAccount};
use obentchi_core::money::Currency;
use obentchi_core::storage::{migrate, Store};
use obentchi_core::withdrawals::{WithdrawalStatus, Withdrawals};
use obentchi_testkit::updates::{self, TelegramUser};
use obentchi_testkit::{free_port, FakeBotApi, FakePayoutProvider, MongoServer, PayoutMode, RedisServer};
use support::{deliver, shared_settings, spawn, spawn_bot, wait_healthy, workspace_binary};

const SECRET: &str = "full-flow-webhook-secret-of-at-least-32-bytes";
const REFERRER: i64 = 402_118_833;
const AMINA: i64 = 581_234_567;
const TON: &str = "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG";

fn person(id: i64) -> TelegramUser {
    TelegramUser::new(id, "User", Some("en"))
}

fn message(update_id: u32, from: i64, text: &str) -> String {
    updates::message(update_id, update_id, &person(from), updates::text(text)).to_string()
}

fn press(update_id: u32, from: i64, data: &str) -> String {
    updates::callback_query(update_id, &person(from), 1, data).to_string()
}

/// Waits until the fake Bot API has delivered to `chat` a message starting with `prefix`;
/// returns that call's body.
async fn delivered(bot_api: &FakeBotApi, chat: i64, prefix: &str) -> serde_json::Value {
    for _ in 0..300 {
        let calls = bot_api.calls_to(chat);
        if let Some(call) = calls.iter().find(|c| c.status == 200 && c.body["text"].as_str().is_some_and(|t| t.starts_with(prefix))) {
            return call.body.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no message starting with {prefix:?} reached chat {chat}: {:#?}", bot_api.calls_to(chat));
}

/// Waits for a Bot API call of `method` (case-insensitive) matching `predicate`.
async fn called(bot_api: &FakeBotApi, method: &str, predicate: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    for _ in 0..300 {
        let calls = bot_api.calls();
        if let Some(call) = calls.iter().find(|c| c.method.eq_ignore_ascii_case(method) && predicate(&c.body)) {
            return call.body.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {method} call: {:#?}", bot_api.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referral_deposit_subscription_commission_and_withdrawal_end_to_end() {
    let (redis, mongo) = (RedisServer::start(), MongoServer::start());
    let bot_api = FakeBotApi::start().await;
    let provider = FakePayoutProvider::start(PayoutMode::Succeed).await;
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
    migrate(&store).await.unwrap();

    // One configuration file for every service, as a Kubernetes ConfigMap would give them.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("platform.toml");
    let settings = shared_settings(&mongo.uri(), &redis.url(), &bot_api.url(), SECRET)
        + &format!(
            r#"
[payout]
base_url = "{provider}"
api_token = "test-token"
timeout_ms = 2000
[subscriptions]
referral_commission_bps = 1000
plans = [{{ id = "month", price = "100 XTR", days = 30 }}]
[withdrawals]
min = "5 XTR"
max = "1000 XTR"
daily_limit = "2000 XTR"
fee = "1 XTR"
auto_approve_up_to = "100 XTR"
address_format = "ton"
"#,
            provider = provider.base_url(),
        );
    std::fs::write(&config, settings).unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port(false)).collect();
    let receiver = ports[0];
    let _receiver = spawn_bot(&config, &["serve"], receiver, &dir.path().join("receiver.log"));
    let _consumer = spawn_bot(&config, &["consume"], ports[1], &dir.path().join("consumer.log"));
    let _workers = spawn(&workspace_binary("obentchi-workers"), &config, &[], ports[2], &dir.path().join("workers.log"));
    let client = reqwest::Client::new();
    for port in &ports {
        wait_healthy(&client, *port).await;
    }
    let send = |update: String| {
        let client = client.clone();
        async move { assert_eq!(deliver(&client, receiver, SECRET, update).await, 200) }
    };

    // Both start; Amina from the referrer's link. Telegram sends Amina's /start twice.
    send(message(1, REFERRER, "/start")).await;
    delivered(&bot_api, REFERRER, "Welcome!").await;
    send(message(2, AMINA, &format!("/start ref_{REFERRER}"))).await;
    send(message(2, AMINA, &format!("/start ref_{REFERRER}"))).await;
    delivered(&bot_api, AMINA, "Welcome!").await;

    // Deposit 250 Stars: invoice, pre-checkout approved, payment credited by the workers.
    send(message(3, AMINA, "/deposit 250")).await;
    let invoice = called(&bot_api, "sendInvoice", |b| b["chat_id"] == AMINA).await;
    assert_eq!((invoice["currency"].as_str(), invoice["prices"][0]["amount"].as_u64()), (Some("XTR"), Some(250)));
    let payload = invoice["payload"].as_str().unwrap().to_owned();
    send(updates::pre_checkout_query(4, "1946127383265712345", &person(AMINA), 250, &payload).to_string()).await;
    let answer = called(&bot_api, "answerPreCheckoutQuery", |b| b["pre_checkout_query_id"] == "1946127383265712345").await;
    assert_eq!(answer["ok"], true);
    let paid = updates::message(5, 5, &person(AMINA), updates::successful_payment(250, &payload, "stxFullFlowCharge0001"));
    send(paid.to_string()).await;
    send(paid.to_string()).await;
    delivered(&bot_api, AMINA, "Payment received: 250 XTR").await;
    let ledger = Ledger::new(store.clone());
    let (amina, referrer) = (UserId::new(AMINA).unwrap(), UserId::new(REFERRER).unwrap());
    let available = |who: UserId| {
        let ledger = ledger.clone();
        async move { ledger.balance(who, UserAccount::Available, Currency::Xtr).await.unwrap().minor() }
    };
    for _ in 0..100 {
        if available(amina).await == 250 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(available(amina).await, 250, "credited once");

    // Subscribe to the month plan, confirm with a double tap.
    send(message(6, AMINA, "/subscribe")).await;
    delivered(&bot_api, AMINA, "Choose a plan:").await;
    send(press(7, AMINA, "sub:month")).await;
    let confirm = delivered(&bot_api, AMINA, "Buy month").await;
    let confirm_data = confirm["reply_markup"]["inline_keyboard"][0][0]["callback_data"].as_str().unwrap().to_owned();
    send(press(8, AMINA, &confirm_data)).await;
    send(press(9, AMINA, &confirm_data)).await;
    delivered(&bot_api, AMINA, "Done: month until").await;

    // The referrer earned 10 % and was told.
    delivered(&bot_api, REFERRER, "You earned 10 XTR").await;
    assert_eq!((available(amina).await, available(referrer).await), (150, 10));

    // The referrer withdraws 9 XTR (+ 1 fee) to a TON wallet; the workers pay it out once.
    for (update, text, reply) in [
        (10, "/withdraw", "How much"),
        (11, "9", "Send the TON address"),
        (12, TON, "Withdraw 9 XTR (fee 1 XTR)"),
    ] {
        send(message(update, REFERRER, text)).await;
        delivered(&bot_api, REFERRER, reply).await;
    }
    send(press(13, REFERRER, "wd:ok:10")).await;
    send(press(13, REFERRER, "wd:ok:10")).await;
    delivered(&bot_api, REFERRER, "Withdrawal of 9 XTR approved").await;
    let withdrawals = Withdrawals::new(&store, ledger.clone());
    let mut status = None;
    for _ in 0..100 {
        status = Some(withdrawals.get(referrer, "tg:10").await.unwrap().status);
        if status == Some(WithdrawalStatus::Sent) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, Some(WithdrawalStatus::Sent), "{}", std::fs::read_to_string(dir.path().join("workers.log")).unwrap());
    assert_eq!(provider.total_executions(), 1, "one payout");
    delivered(&bot_api, REFERRER, "Your withdrawal of 9 XTR was sent").await;
    assert_eq!(available(referrer).await, 0);
    let hold = ledger.balance(referrer, UserAccount::WithdrawalHold, Currency::Xtr).await.unwrap().minor();
    assert_eq!(hold, 0, "the hold was settled");

    // Invariants: every balance equals the sum of its entries.
    for who in [amina, referrer] {
        assert_eq!(ledger.audit_user(who).await.unwrap(), vec![], "audit of {who}");
    }
}
