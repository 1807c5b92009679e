//! Flood control decisions on a real Redis Cluster, with the clock passed in (no sleeping, no
//! timing assertions).

mod support;

use obentchi_core::config::{RedisConfig, RedisMode};
use obentchi_core::outbound::{FloodConfig, FloodControl, Permit};
use obentchi_testkit::RedisCluster;

const T0: u64 = 1_800_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_chat_and_per_bot_limits_and_pauses_hold_across_replicas() {
    let cluster = RedisCluster::start();
    let redis = RedisConfig::from_urls(RedisMode::Cluster, cluster.urls()).unwrap().connect().await.unwrap();
    let config = FloodConfig { per_bot_per_second: 30, per_chat_per_second: 1, bot_burst: 30 };
    // Two replicas sharing the same Redis state.
    let replica_a = FloodControl::new(redis.clone(), "12345", &config);
    let replica_b = FloodControl::new(redis.clone(), "12345", &config);

    // One chat: one message per second, whichever replica asks.
    assert_eq!(replica_a.acquire(7, T0).await.unwrap(), Permit::Granted);
    assert_eq!(replica_b.acquire(7, T0).await.unwrap(), Permit::RetryIn(1_000));
    assert_eq!(replica_b.acquire(7, T0 + 400).await.unwrap(), Permit::RetryIn(600));
    assert_eq!(replica_b.acquire(7, T0 + 1_000).await.unwrap(), Permit::Granted);

    // The bot: a burst of 30 across chats at once, then one every ~33 ms.
    for chat in 100..129 {
        assert_eq!(replica_a.acquire(chat, T0 + 1_000).await.unwrap(), Permit::Granted, "chat {chat}");
    }
    let Permit::RetryIn(wait) = replica_b.acquire(500, T0 + 1_000).await.unwrap() else { panic!("burst exceeded") };
    assert!(wait <= 33, "{wait}");
    assert_eq!(replica_b.acquire(500, T0 + 1_000 + wait).await.unwrap(), Permit::Granted);

    // Another bot has its own limits.
    let other_bot = FloodControl::new(redis.clone(), "999", &config);
    assert_eq!(other_bot.acquire(7, T0).await.unwrap(), Permit::Granted);

    // A 429's retry_after pauses the bot and the chat for everyone.
    replica_a.pause(8, T0 + 60_000, T0 + 2_000).await.unwrap();
    assert_eq!(replica_b.acquire(9, T0 + 2_000).await.unwrap(), Permit::RetryIn(58_000));
    assert_eq!(replica_b.acquire(8, T0 + 61_000).await.unwrap(), Permit::Granted);
}
