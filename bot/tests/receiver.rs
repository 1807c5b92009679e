//! The webhook receiver as Telegram sees it: real Update JSON over HTTP, a real Redis.

use std::collections::HashMap;
use std::time::Duration;

use obentchi_bot::receiver::SECRET_HEADER;
use obentchi_bot::{Application, ReceiverConfig, UPDATES_QUEUE};
use apalis_redis_streams::Queue;
use obentchi_core::config;
use obentchi_testkit::RedisServer;

const SECRET: &str = "s3cret-webhook_token-of-at-least-32-bytes";
const FIXTURES: [&str; 7] = [
    "message",
    "edited_message",
    "callback_query",
    "pre_checkout_query",
    "successful_payment",
    "my_chat_member",
    "newer_kind",
];

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

struct TestApp {
    url: String,
    /// The ops port's base URL (`listen.ops_addr`).
    ops: String,
    redis: RedisServer,
    queue: Queue,
    client: reqwest::Client,
}

async fn spawn_app() -> TestApp {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bot.toml");
    std::fs::write(
        &file,
        format!(
            r#"
listen = {{ addr = "127.0.0.1:0", ops_addr = "127.0.0.1:0" }}
[redis]
urls = ["{}"]
response_timeout_ms = 500
connect_timeout_ms = 300
[telegram]
bot_id = 7000000001
[webhook]
secret = "{SECRET}"
max_body_bytes = 4096
"#,
            redis.url()
        ),
    )
    .unwrap();
    let config: ReceiverConfig = config::load(&[file]).unwrap();
    let queue_config = config.queues.updates.clone();
    let app = Application::build(config.clone()).await.unwrap();
    let url = format!("http://127.0.0.1:{}/telegram/webhook", app.port());
    let ops = format!("http://127.0.0.1:{}", app.ops_port());
    tokio::spawn(app.run());
    let queue = Queue::new(UPDATES_QUEUE, queue_config, config.redis.connect().await.unwrap());
    TestApp { url, ops, redis, queue, client: reqwest::Client::new() }
}

impl TestApp {
    async fn post(&self, body: &str, secret: Option<&str>) -> u16 {
        let mut request = self.client.post(&self.url).header("content-type", "application/json").body(body.to_owned());
        if let Some(secret) = secret {
            request = request.header(SECRET_HEADER, secret);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// Every stored update's raw text, by update id.
    async fn stored(&self) -> HashMap<i64, Vec<String>> {
        self.queue.ensure_groups().await.unwrap();
        let mut stored: HashMap<i64, Vec<String>> = HashMap::new();
        for partition in self.queue.partitions() {
            for delivery in self.queue.fetch(partition, "test-reader", 1_000).await.unwrap().deliveries {
                let raw = delivery.envelope.payload.get().to_owned();
                let value: serde_json::Value = serde_json::from_str(&raw).unwrap();
                stored.entry(value["update_id"].as_i64().unwrap()).or_default().push(raw);
            }
        }
        stored
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_is_stored_verbatim_once_however_often_telegram_sends_it() {
    let app = spawn_app().await;
    for name in FIXTURES {
        for _ in 0..5 {
            assert_eq!(app.post(&fixture(name), Some(SECRET)).await, 200, "{name}");
        }
    }
    let stored = app.stored().await;
    assert_eq!(stored.len(), FIXTURES.len());
    for name in FIXTURES {
        let text = fixture(name);
        let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["update_id"].as_i64().unwrap();
        assert_eq!(stored[&id], vec![text.trim_end().to_owned()], "{name}: one copy, exactly as sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_store_nothing() {
    let app = spawn_app().await;
    let update = fixture("message");
    assert_eq!(app.post(&update, None).await, 401, "no secret");
    assert_eq!(app.post(&update, Some("wrong-secret")).await, 401, "wrong secret");
    assert_eq!(app.post(&update, Some(&SECRET[..SECRET.len() - 1])).await, 401, "a prefix of the secret");
    let oversized = update.replace("/start ref_402118833", &"x".repeat(5_000));
    assert_eq!(app.post(&oversized, Some(SECRET)).await, 413);
    assert_eq!(app.post("{\"message\":{}}", Some(SECRET)).await, 400, "no update_id");
    assert_eq!(app.post("{not json", Some(SECRET)).await, 400);
    assert_eq!(app.post("{\"update_id\":\"1\"}", Some(SECRET)).await, 400, "update_id not an integer");
    assert!(app.stored().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_redis_alone_and_ops_routes_stay_off_the_webhook_port() {
    let mut app = spawn_app().await;
    let readyz = format!("{}/readyz", app.ops);
    let ready = |app: &TestApp| app.client.get(&readyz).send();
    // The probes and metrics answer on the ops port only, which no Ingress or edge routes to.
    for path in ["/metrics", "/healthz", "/readyz"] {
        let on_webhook_port = app.client.get(app.url.replace("/telegram/webhook", path)).send().await.unwrap();
        assert_eq!(on_webhook_port.status().as_u16(), 404, "{path} on the webhook port");
    }
    assert_eq!(app.client.get(format!("{}/metrics", app.ops)).send().await.unwrap().status().as_u16(), 200);
    // The receiver runs with Redis and the webhook's settings only (no MongoDB, no bot token:
    // see spawn_app), so no mongos election can pull every receiver out of service.
    assert_eq!(ready(&app).await.unwrap().status().as_u16(), 200);
    assert_eq!(app.post(&fixture("message"), Some(SECRET)).await, 200, "updates are still taken");
    app.redis.kill();
    assert_eq!(ready(&app).await.unwrap().status().as_u16(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_telegram_is_told_to_retry_and_nothing_is_lost() {
    let mut app = spawn_app().await;
    app.redis.kill();
    assert_eq!(app.post(&fixture("message"), Some(SECRET)).await, 503);

    app.redis.restart();
    let mut status = 0;
    for _ in 0..50 {
        status = app.post(&fixture("message"), Some(SECRET)).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "accepted once Redis is back");
    assert_eq!(app.post(&fixture("message"), Some(SECRET)).await, 200);
    assert_eq!(app.stored().await.len(), 1, "the retried update is stored once");
}
