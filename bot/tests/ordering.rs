//! Two receiver processes and two consumer processes: each chat's updates are handled in the
//! order Telegram sent them, also when a consumer is killed and the other takes over.

mod support;

use std::time::{Duration, Instant};

use mongodb::options::ClientOptions;
use apalis_redis_streams::{Queue, QueueConfig};
use obentchi_core::queues::{OUTBOUND_QUEUE, UPDATES_QUEUE};
use obentchi_core::config::{RedisConfig, RedisMode};
use obentchi_core::storage::{migrate, Store};
use obentchi_testkit::{free_port, FakeBotApi, MongoServer, RedisServer};
use support::{deliver, spawn_bot, wait_healthy};

const SECRET: &str = "order-test-webhook-secret-of-at-least-32-bytes";
const PARTITIONS: u16 = 8;
const UPDATES_PER_PHASE: i64 = 30;
/// How long a condition may take on a cold, busy machine before the test gives up.
const DEADLINE: Duration = Duration::from_secs(120);

/// A counter's value from a process's /metrics (0 when absent).
async fn metric(client: &reqwest::Client, port: u16, name: &str) -> f64 {
    let text = client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The first chat ids that together fall on every partition of the updates queue, so whichever
/// partitions a consumer holds, it has chats to handle.
fn chats_on_every_partition(updates: &Queue) -> Vec<i64> {
    let mut covered = std::collections::BTreeSet::new();
    let mut chats = Vec::new();
    for chat in 1.. {
        if covered.insert(updates.partition_of(&format!("chat:{chat}"))) {
            chats.push(chat);
        }
        if covered.len() == usize::from(PARTITIONS) {
            return chats;
        }
    }
    unreachable!()
}

/// Sends `UPDATES_PER_PHASE` updates per chat: each chat's one after another (Telegram waits for
/// each answer), the chats at once, alternating between the two receivers.
async fn send_phase(client: &reqwest::Client, receivers: [u16; 2], chats: &[i64], phase: i64) {
    let chats: Vec<_> = chats
        .iter()
        .copied()
        .map(|chat| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..UPDATES_PER_PHASE {
                    let sequence = phase * UPDATES_PER_PHASE + i;
                    let update_id = 1_000 + sequence * 10 + chat;
                    let body = format!(
                        r#"{{"update_id":{update_id},"message":{{"message_id":{sequence},"from":{{"id":{chat},"is_bot":false,"first_name":"U"}},"chat":{{"id":{chat},"type":"private","first_name":"U"}},"date":1763712000,"text":"/help"}}}}"#
                    );
                    let port = receivers[(sequence % 2) as usize];
                    assert_eq!(deliver(&client, port, SECRET, body).await, 200);
                }
            })
        })
        .collect();
    for chat in chats {
        chat.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_chat_is_handled_in_order_across_replicas_and_a_takeover() {
    let redis = RedisServer::start();
    let mongo = MongoServer::start();
    let bot_api = FakeBotApi::start().await;
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
    migrate(&store).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bot.toml");
    std::fs::write(
        &config,
        format!(
            r#"
partition_lease_ms = 1500
[telemetry]
log_format = "json"
[mongodb]
uri = "{}"
[redis]
urls = ["{}"]
[telegram]
bot_token = "7000000001:test-token"
api_url = "{}"
[webhook]
secret = "{SECRET}"
[queues.updates]
partitions = {PARTITIONS}
"#,
            mongo.uri(),
            redis.url(),
            bot_api.url()
        ),
    )
    .unwrap();
    let ports: Vec<u16> = (0..4).map(|_| free_port(false)).collect();
    let receivers = [ports[0], ports[1]];
    let _r1 = spawn_bot(&config, &["serve"], ports[0], &dir.path().join("r1.log"));
    let _r2 = spawn_bot(&config, &["serve"], ports[1], &dir.path().join("r2.log"));
    let mut c1 = spawn_bot(&config, &["consume"], ports[2], &dir.path().join("c1.log"));
    let _c2 = spawn_bot(&config, &["consume"], ports[3], &dir.path().join("c2.log"));
    let client = reqwest::Client::new();
    for port in &ports {
        wait_healthy(&client, *port).await;
    }
    let redis_config = RedisConfig::from_urls(RedisMode::Single, [redis.url()]).expect("a redis URL");
    let redis_conn = redis_config.connect().await.unwrap();
    let replies = Queue::new(OUTBOUND_QUEUE, QueueConfig::default(), redis_conn.clone());
    let updates = Queue::new(UPDATES_QUEUE, QueueConfig { partitions: PARTITIONS, ..QueueConfig::default() }, redis_conn);
    let wait_for_replies = |expected: u64| {
        let replies = replies.clone();
        let dir = dir.path().to_owned();
        async move {
            let deadline = Instant::now() + DEADLINE;
            while Instant::now() < deadline {
                if replies.stats().await.unwrap().depth == expected {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let logs: Vec<String> = ["c1.log", "c2.log"].iter().map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default()).collect();
            panic!("expected {expected} replies, got {:?}\n{}", replies.stats().await.unwrap(), logs.join("\n---\n"));
        }
    };

    // Phase 1: both consumers share the partitions. Wait until they do (a consumer takes its
    // share on its first ticks, which a cold machine can delay by seconds), then send to chats
    // on every partition, so each consumer has chats to handle.
    let chats = chats_on_every_partition(&updates);
    let total = chats.len() as i64 * UPDATES_PER_PHASE;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let held = [
            metric(&client, ports[2], "update_partitions_held").await,
            metric(&client, ports[3], "update_partitions_held").await,
        ];
        if held.iter().all(|h| *h > 0.0) && held.iter().sum::<f64>() == f64::from(PARTITIONS) {
            break;
        }
        assert!(Instant::now() < deadline, "the consumers never shared the partitions: {held:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send_phase(&client, receivers, &chats, 0).await;
    wait_for_replies(total as u64).await;
    let handled = [
        metric(&client, ports[2], "updates_total{outcome=\"handled\"}").await,
        metric(&client, ports[3], "updates_total{outcome=\"handled\"}").await,
    ];
    assert_eq!(handled.iter().sum::<f64>(), total as f64, "{handled:?}");
    assert!(handled.iter().all(|h| *h > 0.0), "both consumers took partitions: {handled:?}");
    for port in &ports[2..] {
        assert_eq!(metric(&client, *port, "updates_out_of_order_total").await, 0.0);
    }

    // Phase 2: one consumer dies; the other must take over its partitions (after its heartbeat
    // and lease expire) to handle those chats at all, and keep them in order.
    c1.0.kill().unwrap();
    c1.0.wait().unwrap();
    send_phase(&client, receivers, &chats, 1).await;
    wait_for_replies(2 * total as u64).await;
    let survivor = metric(&client, ports[3], "updates_total{outcome=\"handled\"}").await;
    assert_eq!(survivor, handled[1] + total as f64, "the survivor handled all of phase 2");
    assert_eq!(metric(&client, ports[3], "updates_out_of_order_total").await, 0.0, "the survivor saw no chat out of order");
}
