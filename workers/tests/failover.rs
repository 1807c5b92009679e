//! A Redis master killed while workers process (its replica is promoted): no job is lost and
//! no payout is doubled.

mod support;

use std::time::Duration;

use support::Platform;

const PAYMENTS_PER_USER: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_during_processing_loses_no_job_and_doubles_no_payout() {
    let mut platform = Platform::start().await;
    platform.seed_payments(PAYMENTS_PER_USER).await;
    platform.seed_withdrawals().await;
    // Let replication catch up with the enqueues: Redis replicates asynchronously, and jobs
    // acknowledged by a master but not yet copied die with it (the reconciler's job, not this
    // test's; see docs/DECISIONS.md).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let worker = platform.spawn_worker();
    platform.wait_for_credits(100, worker).await;
    let slot_of_partition_0: u16 = platform.cluster.nodes()[0]
        .cli(&["cluster", "keyslot", "{q:payments:0}:stream"])
        .trim()
        .parse()
        .unwrap();
    let master = platform.cluster.master_of_slot(slot_of_partition_0);
    platform.cluster.kill_node_and_wait_for_failover(master);
    println!("master {master} killed at {} credits", platform.credited_xtr().await);

    platform.assert_everything_done_exactly_once(PAYMENTS_PER_USER as i64).await;
    assert!(platform.worker_log(worker).contains("payments"), "the worker kept running through the failover");
}
