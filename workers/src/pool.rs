//! A worker pool: an apalis worker on a queue whose concurrency changes at run time between a
//! minimum and a maximum, driven by the queue's depth.
//!
//! The limit is a semaphore shared with tower's `ConcurrencyLimit` layer: growing adds permits,
//! shrinking takes permits away as running jobs return them. The scaler reads queue stats every
//! `evaluate_every_ms`, exports them (what KEDA scales pods on), and decides with `decide`.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apalis_core::error::BoxDynError;
use apalis_core::task::Task;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_redis_streams::{Queue, QueueBackend, QueueStats, consumer_name, now_ms};
use obentchi_core::pools::{PoolInstance, PoolRegistry, ScaleDecision};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::limit::GlobalConcurrencyLimitLayer;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolConfig {
    pub min: usize,
    pub max: usize,
    #[serde(default = "default_evaluate_every_ms")]
    pub evaluate_every_ms: u64,
    /// Consecutive quiet evaluations before the pool shrinks one step.
    #[serde(default = "default_scale_down_after")]
    pub scale_down_after: u32,
}

fn default_evaluate_every_ms() -> u64 {
    30_000
}
fn default_scale_down_after() -> u32 {
    3
}

impl PoolConfig {
    pub fn new(min: usize, max: usize) -> PoolConfig {
        PoolConfig { min, max, evaluate_every_ms: default_evaluate_every_ms(), scale_down_after: default_scale_down_after() }
    }
}

/// The scaling rule. Up fast: when more jobs wait than there are slots, double (or jump to the
/// backlog), up to `max`. Down slowly: only after `scale_down_after` consecutive evaluations
/// with nothing waiting and under half the slots busy, a quarter at a time, down to `min`.
/// Between the two thresholds the pool holds (hysteresis). Returns the new size, the updated
/// quiet-round count and the reason.
pub fn decide(config: &PoolConfig, current: usize, stats: &QueueStats, quiet_rounds: u32) -> (usize, u32, &'static str) {
    let current = current.clamp(config.min, config.max);
    if stats.ready > current as u64 {
        let wanted = (current * 2).max(stats.ready.min(config.max as u64) as usize);
        return (wanted.min(config.max), 0, "backlog exceeds slots");
    }
    let quiet = stats.ready == 0 && stats.in_flight * 2 < current as u64;
    if !quiet {
        return (current, 0, "holding");
    }
    let quiet_rounds = quiet_rounds + 1;
    if quiet_rounds < config.scale_down_after {
        return (current, quiet_rounds, "quiet; waiting before shrinking");
    }
    let step = current.div_ceil(4).max(1);
    (current.saturating_sub(step).max(config.min), 0, "idle")
}

/// A resizable concurrency limit.
#[derive(Clone)]
pub struct Concurrency {
    semaphore: Arc<Semaphore>,
    limit: Arc<AtomicUsize>,
}

impl Concurrency {
    fn new(limit: usize) -> Concurrency {
        Concurrency { semaphore: Arc::new(Semaphore::new(limit)), limit: Arc::new(AtomicUsize::new(limit)) }
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    fn set(&self, limit: usize) {
        let old = self.limit.swap(limit, Ordering::Relaxed);
        if limit > old {
            self.semaphore.add_permits(limit - old);
        } else if limit < old {
            // Take the surplus permits as running jobs give them back, then drop them for good.
            let semaphore = self.semaphore.clone();
            let surplus = (old - limit) as u32;
            tokio::spawn(async move {
                if let Ok(permits) = semaphore.acquire_many_owned(surplus).await {
                    permits.forget();
                }
            });
        }
    }
}

/// A running pool's handle: its current limit.
#[derive(Clone)]
pub struct PoolHandle {
    pub name: &'static str,
    pub concurrency: Concurrency,
}

/// Starts a pool as a task (see `run`).
pub fn spawn<Args, H, Fut>(
    name: &'static str,
    queue: Queue,
    config: PoolConfig,
    handler: H,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<()>>
where
    Args: DeserializeOwned + Send + Sync + Unpin + 'static,
    H: Fn(Args) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxDynError>> + Send + 'static,
{
    tokio::spawn(run(name, queue, config, handler, stop.clone(), |_| {}))
}

/// Runs `handler` on `queue` until `stop`, then lets running jobs finish. `on_start` receives
/// the pool's handle (its live concurrency).
pub async fn run<Args, H, Fut>(
    name: &'static str,
    queue: Queue,
    config: PoolConfig,
    handler: H,
    stop: CancellationToken,
    on_start: impl FnOnce(PoolHandle),
) -> anyhow::Result<()>
where
    Args: DeserializeOwned + Send + Sync + Unpin + 'static,
    H: Fn(Args) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxDynError>> + Send + 'static,
{
    anyhow::ensure!(config.min >= 1 && config.min <= config.max, "pool {name}: need 1 <= min <= max");
    queue.ensure_groups().await?;
    let handle = PoolHandle { name, concurrency: Concurrency::new(config.min) };
    on_start(handle.clone());
    let worker_name = consumer_name(name);
    let registry = PoolRegistry::new(queue.redis().clone());
    let scaler = tokio::spawn(scale(handle.clone(), queue.clone(), config, registry, worker_name.clone(), stop.clone()));

    let backend = QueueBackend::<Args>::start(queue, worker_name.clone());
    let service = tower::service_fn(move |task: Task<Args>| handler(task.args));
    let worker = WorkerBuilder::new(worker_name)
        .backend(backend)
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(handle.concurrency.semaphore.clone()))
        .build(service);
    let result = worker
        .run_until(async move {
            stop.cancelled().await;
            Ok::<(), std::io::Error>(())
        })
        .await;
    scaler.abort();
    result.map_err(|e| anyhow::anyhow!("pool {name}: {e}"))
}

/// Evaluates the pool every `evaluate_every_ms`; reports its size (and any change, with the
/// reason) to the registry the admin API reads.
async fn scale(handle: PoolHandle, queue: Queue, config: PoolConfig, registry: PoolRegistry, worker: String, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(config.evaluate_every_ms));
    let mut quiet_rounds = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let stats = match queue.stats().await {
            Ok(stats) => stats,
            Err(err) => {
                tracing::warn!(pool = handle.name, %err, "cannot read queue stats; keeping the pool as it is");
                continue;
            }
        };
        queue.export_stats(&stats);
        let current = handle.concurrency.limit();
        let (next, quiet, reason) = decide(&config, current, &stats, quiet_rounds);
        quiet_rounds = quiet;
        if next != current {
            handle.concurrency.set(next);
            tracing::info!(pool = handle.name, from = current, to = next, reason, ready = stats.ready, "pool resized");
            let decision = ScaleDecision {
                at_ms: now_ms(),
                worker: worker.clone(),
                from: current,
                to: next,
                ready: stats.ready,
                in_flight: stats.in_flight,
                reason: reason.to_owned(),
            };
            if let Err(err) = registry.record_decision(handle.name, &decision).await {
                tracing::warn!(pool = handle.name, %err, "cannot record the scaling decision");
            }
        }
        metrics::gauge!("worker_pool_concurrency", "pool" => handle.name).set(next as f64);
        let instance = PoolInstance {
            pool: handle.name.to_owned(),
            worker: worker.clone(),
            concurrency: next,
            min: config.min,
            max: config.max,
            at_ms: now_ms(),
        };
        if let Err(err) = registry.report(&instance).await {
            tracing::warn!(pool = handle.name, %err, "cannot report the pool's size");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(ready: u64, in_flight: u64) -> QueueStats {
        QueueStats { ready, in_flight, depth: ready, ..QueueStats::default() }
    }

    #[test]
    fn scales_up_fast_and_down_slowly_within_bounds() {
        let config = PoolConfig::new(3, 50);
        assert_eq!(decide(&config, 3, &stats(4, 3), 0).0, 6, "doubles");
        assert_eq!(decide(&config, 3, &stats(40, 3), 0).0, 40, "jumps to the backlog");
        assert_eq!(decide(&config, 40, &stats(10_000, 40), 0).0, 50, "never above max");
        assert_eq!(decide(&config, 20, &stats(15, 20), 0), (20, 0, "holding"), "waiting but fewer than slots");
        assert_eq!(decide(&config, 20, &stats(0, 15), 2), (20, 0, "holding"), "busy resets the quiet count");
        assert_eq!(decide(&config, 20, &stats(0, 2), 0), (20, 1, "quiet; waiting before shrinking"));
        assert_eq!(decide(&config, 20, &stats(0, 2), 1), (20, 2, "quiet; waiting before shrinking"));
        assert_eq!(decide(&config, 20, &stats(0, 2), 2), (15, 0, "idle"), "a quarter at a time");
        assert_eq!(decide(&config, 4, &stats(0, 0), 2), (3, 0, "idle"), "never below min");
        assert_eq!(decide(&config, 3, &stats(0, 0), 2).0, 3);
    }
}
