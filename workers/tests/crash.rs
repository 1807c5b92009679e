//! A worker process killed with SIGKILL in the middle of its batches: every payment is still
//! credited exactly once and every withdrawal paid exactly once.

mod support;

use support::Platform;

const PAYMENTS_PER_USER: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing() {
    let mut platform = Platform::start().await;
    platform.seed_payments(PAYMENTS_PER_USER).await;
    platform.seed_withdrawals().await;

    let first = platform.spawn_worker();
    // Kill it once it has visibly started, well before it could have finished.
    platform.wait_for_credits(100, first).await;
    platform.kill_worker(first);
    let at_kill = platform.credited_xtr().await;
    println!("killed the first worker after {at_kill} of {} credits", PAYMENTS_PER_USER * 20);

    let second = platform.spawn_worker();
    platform.assert_everything_done_exactly_once(PAYMENTS_PER_USER as i64).await;
    let stats = Platform::settled(&platform.payments_queue).await;
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 0, 0), "{stats:?}\n{}", platform.worker_log(second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_running_jobs_and_gives_back_the_rest() {
    let mut platform = Platform::start().await;
    platform.seed_payments(PAYMENTS_PER_USER).await;
    platform.seed_withdrawals().await;
    let first = platform.spawn_worker();
    platform.wait_for_credits(100, first).await;
    assert!(platform.terminate_worker(first), "clean exit on SIGTERM:\n{}", platform.worker_log(first));
    let stats = platform.payments_queue.stats().await.unwrap();
    assert_eq!(stats.in_flight, 0, "nothing held by the stopped worker: {stats:?}");
    assert!(platform.worker_log(first).contains("shutdown signal received"));

    platform.spawn_worker();
    platform.assert_everything_done_exactly_once(PAYMENTS_PER_USER as i64).await;
}
