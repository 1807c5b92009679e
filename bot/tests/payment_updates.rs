//! Telegram sends a payment once we answer 200, and never again: a receiver and a consumer as
//! processes, against a Redis master with a replica and a MongoDB that goes away.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use mongodb::options::ClientOptions;
use apalis_redis_streams::{Queue, QueueConfig};
use obentchi_core::queues::{PAYMENTS_QUEUE, UPDATES_QUEUE};
use obentchi_core::config::{RedisConfig, RedisMode};
use obentchi_core::ids::{ProviderId, UserId};
use obentchi_core::ledger::Ledger;
use obentchi_core::money::{Currency, Money};
use obentchi_core::payments::{PaymentJob, PaymentStatus, Payments, TELEGRAM_STARS};
use obentchi_core::storage::{migrate, Store};
use obentchi_testkit::updates::{self, TelegramUser};
use obentchi_testkit::{free_port, FakeBotApi, MongoServer, RedisServer};
use support::{deliver, spawn_bot, wait_healthy};

const SECRET: &str = "payment-updates-webhook-secret-of-32-bytes";
const BUYER: i64 = 730_001_002;
/// Conditions may take this long on a cold, busy machine.
const DEADLINE: Duration = Duration::from_secs(120);

fn payment(update_id: u32, stars: u32, charge: &str) -> String {
    let from = TelegramUser::new(BUYER, "Buyer", Some("en"));
    updates::message(update_id, update_id, &from, updates::successful_payment(stars, "dep:x", charge)).to_string()
}

fn write_config(path: &Path, mongo: &str, redis: &str, bot_api: &str) {
    let config = format!(
        "[mongodb]\nuri = \"{mongo}\"\nserver_selection_timeout_ms = 500\n[redis]\nurls = [\"{redis}\"]\n\
         [telegram]\nbot_token = \"7000000001:test-token\"\napi_url = \"{bot_api}\"\n\
         [webhook]\nsecret = \"{SECRET}\"\npayment_replicas_timeout_ms = 200\n"
    );
    std::fs::write(path, config).unwrap();
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_update_is_acknowledged_only_once_a_replica_has_it() {
    let redis = RedisServer::start();
    let replica = redis.start_replica();
    let mongo = MongoServer::start();
    let bot_api = FakeBotApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bot.toml");
    write_config(&config, &mongo.uri(), &redis.url(), &bot_api.url());
    let port = free_port(false);
    let _receiver = spawn_bot(&config, &["serve"], port, &dir.path().join("receiver.log"));
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;

    assert_eq!(deliver(&client, port, SECRET, payment(1, 50, "charge-1")).await, 200);
    // The replica stops answering: the payment is on the master only, so it is not acknowledged
    // (Telegram re-sends). A plain message does not wait.
    replica.freeze();
    assert_eq!(deliver(&client, port, SECRET, payment(2, 60, "charge-2")).await, 503);
    let hello = updates::message(3, 3, &TelegramUser::new(BUYER, "Buyer", None), updates::text("/help")).to_string();
    assert_eq!(deliver(&client, port, SECRET, hello).await, 200);
    replica.thaw();
    // Telegram's re-send is acknowledged once the replica has it (a duplicate, but it waits too).
    wait_for("the re-sent payment to be acknowledged", async || deliver(&client, port, SECRET, payment(2, 60, "charge-2")).await == 200).await;

    // A receiver over a Redis without any replica says so when it starts.
    let lone = RedisServer::start();
    let lone_config = dir.path().join("lone.toml");
    write_config(&lone_config, &mongo.uri(), &lone.url(), &bot_api.url());
    let lone_port = free_port(false);
    let log = dir.path().join("lone.log");
    let _lone_receiver = spawn_bot(&lone_config, &["serve"], lone_port, &log);
    wait_healthy(&client, lone_port).await;
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("no replica"), "{said}");
    assert_eq!(deliver(&client, lone_port, SECRET, payment(4, 70, "charge-4")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_update_waits_out_a_mongodb_outage_instead_of_being_dead_lettered() {
    let redis = RedisServer::start();
    let mut mongo = MongoServer::start();
    let bot_api = FakeBotApi::start().await;
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
    migrate(&store).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bot.toml");
    write_config(&config, &mongo.uri(), &redis.url(), &bot_api.url());
    let (receiver_port, consumer_port) = (free_port(false), free_port(false));
    let _receiver = spawn_bot(&config, &["serve"], receiver_port, &dir.path().join("receiver.log"));
    let consumer_log = dir.path().join("consumer.log");
    let _consumer = spawn_bot(&config, &["consume"], consumer_port, &consumer_log);
    let client = reqwest::Client::new();
    wait_healthy(&client, receiver_port).await;
    wait_healthy(&client, consumer_port).await;

    mongo.stop();
    assert_eq!(deliver(&client, receiver_port, SECRET, payment(10, 250, "charge-outage")).await, 200);
    // Well past the attempts an ordinary update gets before it is dead-lettered.
    wait_for("the consumer to retry the payment update", async || {
        std::fs::read_to_string(&consumer_log).unwrap_or_default().matches("update handling failed").count() >= 5
    })
    .await;
    mongo.resume();
    // Recorded and enqueued as a payment job once MongoDB is back (no worker runs here).
    let redis_config = RedisConfig::from_urls(RedisMode::Single, [redis.url()]).unwrap();
    let conn = redis_config.connect().await.unwrap();
    let payment_jobs = Queue::new(PAYMENTS_QUEUE, QueueConfig::default(), conn.clone());
    wait_for("the payment job", async || payment_jobs.stats().await.is_ok_and(|s| s.depth == 1)).await;
    let recorded = PaymentJob {
        user_id: UserId::new(BUYER).unwrap(),
        provider: ProviderId::new(TELEGRAM_STARS).unwrap(),
        external_id: "charge-outage".into(),
        amount: Money::from_minor(Currency::Xtr, 250),
    };
    let payments = Payments::new(&store, Ledger::new(store.clone()));
    assert_eq!(payments.status(&recorded).await.unwrap(), Some(PaymentStatus::Received));
    let updates_queue = Queue::new(UPDATES_QUEUE, QueueConfig::default(), conn);
    assert_eq!(updates_queue.stats().await.unwrap().dead, 0, "nothing dead-lettered");
}
