//! The handler tree on real Update JSON, with real MongoDB and Redis.

use mongodb::options::ClientOptions;
use obentchi_bot::handlers::{handle, Deps};
use obentchi_core::config::{RedisConfig, RedisMode};
use obentchi_core::ids::{IdempotencyKey, ProviderId, UserId};
use obentchi_core::ledger::{Ledger, Posting};
use obentchi_core::money::{Currency, Money};
use obentchi_core::outbound::{OutboundMessage, OUTBOUND_QUEUE};
use obentchi_core::queue::{Queue, QueueConfig};
use obentchi_core::redis_conn::RedisConn;
use obentchi_core::storage::{migrate, Store};
use obentchi_core::users::Users;
use obentchi_testkit::{MongoServer, RedisServer};
use teloxide::types::Me;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn me() -> Me {
    serde_json::from_value(serde_json::json!({
        "id": 7_000_000_001_i64, "is_bot": true, "first_name": "Obentchi", "username": "obentchi_bot",
        "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
        "has_main_web_app": false,
    }))
    .unwrap()
}

async fn replies(queue: &Queue) -> Vec<OutboundMessage> {
    queue.ensure_groups().await.unwrap();
    let mut replies = Vec::new();
    for partition in queue.partitions() {
        for delivery in queue.fetch(partition, "test", 100).await.unwrap() {
            replies.push(delivery.envelope.decode_payload().unwrap());
        }
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_once_per_update_from_the_ledger() {
    let (redis, mongo) = (RedisServer::start(), MongoServer::start());
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
    migrate(&store).await.unwrap();
    let redis_config = RedisConfig::from_urls(RedisMode::Single, [redis.url()]).expect("a redis URL");
    let outbound = Queue::new(OUTBOUND_QUEUE, QueueConfig::default(), RedisConn::connect(&redis_config).await.unwrap());
    let ledger = Ledger::new(store.clone());
    let users = Users::new(&store);
    let deps = Deps { users: users.clone(), ledger: ledger.clone(), outbound: outbound.clone(), bot_id: "7000000001".into() };
    let amina = UserId::new(581_234_567).unwrap();

    // /start, handled twice (a redelivery): registered, one reply.
    let start = fixture("message");
    handle(&start, &me(), &deps).await.unwrap();
    handle(&start, &me(), &deps).await.unwrap();
    let sent = replies(&outbound).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].chat_id, 581_234_567);
    assert!(!users.has_blocked_bot(amina).await.unwrap());

    // /balance after a deposit.
    let deposit = Posting::deposit(
        amina,
        IdempotencyKey::new("stars:x").unwrap(),
        ProviderId::new("telegram_stars").unwrap(),
        Money::from_minor(Currency::Xtr, 250),
        "deposit",
    )
    .unwrap();
    ledger.post(&deposit).await.unwrap();
    let balance = start.replace("815203001", "815203010").replace("/start ref_402118833", "/balance").replace("\"length\":6", "\"length\":8");
    handle(&balance, &me(), &deps).await.unwrap();
    let sent = replies(&outbound).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].text.contains("250 XTR"), "{}", sent[0].text);

    // Kinds the tree does not handle, including newer ones, are left alone.
    for name in ["newer_kind", "my_chat_member", "pre_checkout_query"] {
        handle(&fixture(name), &me(), &deps).await.unwrap();
    }
    assert!(replies(&outbound).await.is_empty());
}
