//! Pool concurrency follows the backlog within its bounds.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis_core::error::BoxDynError;
use apalis_redis_streams::{Queue, now_ms};
use obentchi_core::pools::PoolRegistry;
use obentchi_testkit::RedisCluster;
use obentchi_workers::pool::{self, PoolConfig, PoolHandle};
use serde::{Deserialize, Serialize};
use support::{queue_config, redis_config};
use tokio_util::sync::CancellationToken;

#[derive(Serialize, Deserialize)]
struct Slow {
    n: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_rises_under_backlog_and_falls_back_when_idle() {
    let cluster = RedisCluster::start();
    let redis = redis_config(&cluster).connect().await.unwrap();
    let queue = Queue::new("slow", queue_config(), redis.clone());
    queue.ensure_groups().await.unwrap();
    queue.enqueue_batch(&(0..1_500).map(|n| Slow { n }).collect::<Vec<_>>()).await.unwrap();

    let running = Arc::new(AtomicUsize::new(0));
    let most_running = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (running, most_running) = (running.clone(), most_running.clone());
        move |_job: Slow| {
            let (running, most_running) = (running.clone(), most_running.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most_running.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), BoxDynError>(())
            }
        }
    };
    let config = PoolConfig { min: 2, max: 16, evaluate_every_ms: 200, scale_down_after: 2 };
    let handle: Arc<Mutex<Option<PoolHandle>>> = Arc::default();
    let stop = CancellationToken::new();
    let pool = tokio::spawn(pool::run("slow", queue.clone(), config, handler, stop.clone(), {
        let handle = handle.clone();
        move |h| *handle.lock().unwrap() = Some(h)
    }));
    while handle.lock().unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let handle = handle.lock().unwrap().clone().unwrap();

    let mut highest = 0;
    loop {
        highest = highest.max(handle.concurrency.limit());
        let stats = queue.stats().await.unwrap();
        if stats.depth == 0 && stats.in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(highest, 16, "scaled up to max under a 1,500-job backlog");
    assert!(most_running.load(Ordering::SeqCst) <= 16, "never more jobs at once than the limit");
    assert!(most_running.load(Ordering::SeqCst) > 2, "ran above the minimum");

    let mut lowest = usize::MAX;
    for _ in 0..100 {
        lowest = handle.concurrency.limit();
        if lowest == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(lowest, 2, "scaled back down to min when idle");
    // What the admin API shows: this instance's size, and the decisions up and down.
    // The scaler reports right after resizing; give it that moment.
    let registry = PoolRegistry::new(redis);
    let mut view = None;
    for _ in 0..50 {
        let views = registry.view(now_ms()).await.unwrap();
        view = views.into_iter().find(|v| v.pool == "slow");
        if view.as_ref().is_some_and(|v| v.concurrency == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let view = view.expect("the pool reported itself");
    assert_eq!((view.instances.len(), view.concurrency), (1, 2));
    let decisions = &view.recent_decisions;
    assert!(decisions.iter().any(|d| d.to > d.from) && decisions.iter().any(|d| d.to < d.from), "{decisions:?}");
    assert!(decisions.iter().all(|d| (2..=16).contains(&d.to)));

    stop.cancel();
    pool.await.unwrap().unwrap();
}
