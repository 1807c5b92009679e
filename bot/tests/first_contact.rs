//! Every user the bot meets is a user: whatever their first update is (a command other than
//! /start, a button press, a payment), they show in the admin API with their balance, count in
//! the stats and receive broadcasts. Names stay current: an @username that moves to someone
//! else is found on its new holder only. And a consumer started while the Bot API is down
//! waits for it, not ready, and then handles what was queued meanwhile.
//!
//! Everything runs as processes (receiver, consumer, workers, admin API) and is driven through
//! the webhook and the admin API only.

mod support;

use std::path::Path;
use std::time::Duration;

use mongodb::options::ClientOptions;
use obentchi_core::api_tokens::{ApiTokens, Scope};
use obentchi_core::storage::{migrate, Store};
use obentchi_testkit::updates::{self, TelegramUser};
use obentchi_testkit::{free_port, FakeBotApi, MongoServer, RedisServer};
use serde_json::{json, Value};
use support::{deliver, shared_settings, spawn, spawn_bot, start_platform, wait_healthy, workspace_binary};

const SECRET: &str = "first-contact-webhook-secret-of-at-least-32-bytes";

fn settings(mongo: &MongoServer, redis: &RedisServer, bot_api_url: &str) -> String {
    shared_settings(&mongo.uri(), &redis.url(), bot_api_url, SECRET)
        + r#"
[payout]
base_url = "http://127.0.0.1:9"
api_token = "unused"
[subscriptions]
plans = [{ id = "month", price = "100 XTR", days = 30 }]
"#
}

/// Polls `check` until it gives a value, for at most 90 s: the consumer's getMe backoff grows
/// to 30 s, and a first run on a slow machine is slow.
async fn eventually<T>(what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
    support::eventually(what, Duration::from_secs(90), check).await
}

struct Admin {
    client: reqwest::Client,
    port: u16,
    token: String,
}

impl Admin {
    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(format!("http://127.0.0.1:{}{path}", self.port)).bearer_auth(&self.token).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The user ids an admin search for `q` finds.
    async fn search(&self, q: &str) -> Vec<i64> {
        let (status, page) = self.get(&format!("/admin/users?q={q}")).await;
        assert_eq!(status, 200, "{page}");
        page["users"].as_array().unwrap().iter().map(|u| u["user_id"].as_i64().unwrap()).collect()
    }
}

fn message(update_id: u32, from: &TelegramUser, text: &str) -> String {
    updates::message(update_id, update_id, from, updates::text(text)).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_first_seen_through_any_update_are_users_everywhere_and_usernames_follow_their_holder() {
    let (redis, mongo) = (RedisServer::start(), MongoServer::start());
    let bot_api = FakeBotApi::start().await;
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
    migrate(&store).await.unwrap();
    let (_, token) = ApiTokens::new(&store).create("first-contact", &[Scope::Write]).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("platform.toml");
    std::fs::write(&config, settings(&mongo, &redis, &bot_api.url())).unwrap();
    let (_platform, ports) = start_platform(&config, dir.path()).await;
    let client = reqwest::Client::new();
    let admin = Admin { client: client.clone(), port: ports.api, token };
    let receiver = ports.receiver;
    let send = |update: String| {
        let client = client.clone();
        async move { assert_eq!(deliver(&client, receiver, SECRET, update).await, 200) }
    };

    // Nobody here ever sends /start.
    let depositor = TelegramUser::new(581_000_001, "Depositor", Some("en"));
    let presser = TelegramUser::new(581_000_002, "Presser", Some("en"));
    let payer = TelegramUser::new(581_000_003, "Payer", Some("en"));

    // The depositor's first update is /deposit 300; they pay the invoice.
    send(message(1, &depositor, "/deposit 300")).await;
    let invoice = eventually("the invoice", async || {
        bot_api.calls().into_iter().find(|c| c.method.eq_ignore_ascii_case("sendInvoice") && c.body["chat_id"] == depositor.user_id)
    })
    .await;
    let payload = invoice.body["payload"].as_str().unwrap().to_owned();
    send(updates::message(2, 2, &depositor, updates::successful_payment(300, &payload, "stxFirstContact0001")).to_string()).await;
    // The presser's first update is a button press on an old message.
    send(updates::callback_query(3, &presser, 1, "history:1").to_string()).await;
    // The payer's first update is a payment (an invoice the bot sent them before this database).
    let foreign_payload = format!("deposit:{}:77", payer.user_id);
    send(updates::message(4, 4, &payer, updates::successful_payment(50, &foreign_payload, "stxFirstContact0002")).to_string()).await;

    // Each is a user the admin API knows, with their balance.
    for (user, stars) in [(&depositor, 300), (&presser, 0), (&payer, 50)] {
        let detail = eventually("the user's balance", async || {
            let (status, detail) = admin.get(&format!("/admin/users/{}", user.user_id)).await;
            let available: i64 = detail["balances"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|b| b["account"] == "user:available")
                .map(|b| b["amount"]["minor"].as_i64().unwrap_or_default())
                .sum();
            (status == 200 && available == stars).then_some(detail)
        })
        .await;
        assert_eq!(detail["user"]["first_name"], user.first_name.as_str(), "{detail}");
    }
    let (_, stats) = admin.get("/admin/stats").await;
    assert!(stats["users"].as_u64().unwrap() >= 3, "{stats}");

    // A broadcast reaches all three.
    let created = client
        .post(format!("http://127.0.0.1:{}/admin/broadcasts", ports.api))
        .bearer_auth(&admin.token)
        .json(&json!({ "text": "Hello from the team" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    for user in [&depositor, &presser, &payer] {
        eventually("the broadcast", async || {
            bot_api.delivered_to(user.user_id).iter().any(|t| t == "Hello from the team").then_some(())
        })
        .await;
    }

    // @moving_name belongs to the depositor, then they rename and the presser takes it.
    send(message(10, &depositor.with_username(Some("moving_name")), "/balance")).await;
    eventually("the depositor's username", async || (admin.search("moving").await == vec![depositor.user_id]).then_some(())).await;
    send(message(11, &depositor.with_username(Some("renamed_one")), "/balance")).await;
    send(message(12, &presser.with_username(Some("moving_name")), "/help")).await;
    eventually("the presser's claim", async || (admin.search("moving_name").await == vec![presser.user_id]).then_some(())).await;
    assert_eq!(admin.search("renamed").await, vec![depositor.user_id]);
}

async fn readiness(client: &reqwest::Client, port: u16) -> (u16, Value) {
    let response = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_started_while_the_bot_api_is_down_waits_then_handles_what_was_queued() {
    let (redis, mongo) = (RedisServer::start(), MongoServer::start());
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
    migrate(&store).await.unwrap();
    // The Bot API's address is known, but nothing answers there yet.
    let bot_api_port = free_port(false);
    let bot_api_addr = format!("127.0.0.1:{bot_api_port}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("platform.toml");
    std::fs::write(&config, settings(&mongo, &redis, &format!("http://{bot_api_addr}"))).unwrap();
    let (receiver, consumer, workers) = (free_port(false), free_port(false), free_port(false));
    let _receiver = spawn_bot(&config, &["serve"], receiver, &dir.path().join("receiver.log"));
    let _consumer = spawn_bot(&config, &["consume"], consumer, &dir.path().join("consumer.log"));
    // The workers send the replies.
    let _workers = spawn(&workspace_binary("obentchi-workers"), &config, &[], workers, &dir.path().join("workers.log"));
    let client = reqwest::Client::new();
    for port in [receiver, consumer, workers] {
        wait_healthy(&client, port).await;
    }

    // Alive, not ready, and it says why.
    let consumer_log = dir.path().join("consumer.log");
    eventually("a failed getMe", async || log_mentions(&consumer_log, "getMe failed").then_some(())).await;
    let (status, body) = readiness(&client, consumer).await;
    assert_eq!((status, &body["bot_api"]), (503, &json!("unavailable")), "{body}");

    // Updates arrive meanwhile and wait in their queue.
    let user = TelegramUser::new(581_000_010, "Early", Some("en"));
    for (update_id, text) in [(1, "/help"), (2, "/balance")] {
        assert_eq!(deliver(&client, receiver, SECRET, message(update_id, &user, text)).await, 200);
    }

    let bot_api = FakeBotApi::start_on(&bot_api_addr).await;
    eventually("the consumer to be ready", async || (readiness(&client, consumer).await.0 == 200).then_some(())).await;
    let replies = eventually("both replies", async || {
        let delivered = bot_api.delivered_to(user.user_id);
        (delivered.len() >= 2).then_some(delivered)
    })
    .await;
    // (The order replies reach Telegram in is the reply path's business, not this test's.)
    assert!(replies.iter().any(|r| r.starts_with("/start — start")), "the /help reply: {replies:?}");
    assert!(replies.iter().any(|r| r == "Your balance is 0."), "the /balance reply: {replies:?}");
}

fn log_mentions(log: &Path, text: &str) -> bool {
    std::fs::read_to_string(log).is_ok_and(|l| l.contains(text))
}
