//! `RedisConn` in cluster mode against a real 6-node Redis Cluster started by the testkit,
//! including a master killed and its replica promoted.

use apalis_redis_streams::{ConnectOptions, RedisConn, RedisMode};
use obentchi_testkit::RedisCluster;
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_connection_spans_slots_and_survives_a_failover() {
    let mut cluster = RedisCluster::start();
    let mut redis = RedisConn::connect(&ConnectOptions::new(RedisMode::Cluster, cluster.urls())).await.unwrap();
    redis.ping().await.unwrap();
    for i in 0..100 {
        let () = redis.set(format!("key:{i}"), i).await.unwrap();
    }

    // Replication is asynchronous: the writes must be on the replica before its master dies, or
    // the failover may lose them (it did once under CI load). WAIT on that master says so.
    assert_eq!(redis.wait_for_replicas("key:0", 1, std::time::Duration::from_secs(10)).await.unwrap(), 1);

    // Kill the master that owns the slot of "key:0".
    let slot: u16 = cluster.nodes()[0].cli(&["cluster", "keyslot", "key:0"]).trim().parse().unwrap();
    let master = cluster.master_of_slot(slot);
    cluster.kill_node_and_wait_for_failover(master);

    let mut value = None;
    for _ in 0..50 {
        match redis.get::<_, Option<i64>>("key:0").await {
            Ok(v) => {
                value = v;
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    assert_eq!(value, Some(0));
    for i in 0..100 {
        let v: i64 = redis.get(format!("key:{i}")).await.unwrap();
        assert_eq!(v, i);
    }
}
