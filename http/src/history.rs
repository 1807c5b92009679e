//! The last hour of each queue's depth and age, for the dashboard's charts. Every API replica
//! samples every queue on the same clock-aligned buckets and writes them to a Redis sorted set
//! per queue (score = bucket time); replicas writing the same bucket write near-identical
//! samples, and readers keep one per bucket. Losing this to a failover loses only chart history.

use apalis_redis_streams::{Queue, RedisConn, now_ms};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;

use crate::platform_gauges::PlatformGauges;
use serde::{Deserialize, Serialize};

/// How far back samples are kept and shown.
pub const WINDOW_MS: u64 = 3_600_000;

fn key(queue: &str) -> String {
    format!("{{qhist}}:{queue}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sample {
    /// Start of the sampling bucket, Unix ms.
    pub at_ms: u64,
    pub depth: u64,
    pub in_flight: u64,
    pub dead: u64,
    pub oldest_age_ms: u64,
    /// The queue's running totals when sampled (`QueueStats::done_total`, `failed_total`):
    /// throughput is their rate between samples.
    #[serde(default)]
    pub done_total: u64,
    #[serde(default)]
    pub failed_total: u64,
}

#[derive(Clone)]
pub struct QueueHistory {
    redis: RedisConn,
}

impl QueueHistory {
    pub fn new(redis: RedisConn) -> QueueHistory {
        QueueHistory { redis }
    }

    pub async fn record(&self, queue: &str, sample: &Sample) -> redis::RedisResult<()> {
        let key = key(queue);
        let member = serde_json::to_string(sample).expect("a sample serializes");
        let oldest = sample.at_ms.saturating_sub(WINDOW_MS);
        let mut redis = self.redis.clone();
        redis::pipe()
            .zadd(&key, member, sample.at_ms)
            .zrembyscore(&key, 0, oldest)
            .query_async::<()>(&mut redis)
            .await
    }

    /// The last hour of `queue`, oldest first, one sample per bucket.
    pub async fn read(&self, queue: &str, now_ms: u64) -> redis::RedisResult<Vec<Sample>> {
        let raw: Vec<String> = self.redis.clone().zrangebyscore(key(queue), now_ms.saturating_sub(WINDOW_MS), "+inf").await?;
        let by_bucket: BTreeMap<u64, Sample> =
            raw.iter().filter_map(|m| serde_json::from_str::<Sample>(m).ok()).map(|s| (s.at_ms, s)).collect();
        Ok(by_bucket.into_values().collect())
    }
}

/// Samples every queue every `every`, on buckets aligned to the clock, and exports the queues'
/// stats and the platform's gauges (`PlatformGauges`).
pub struct Sampler {
    history: QueueHistory,
    queues: Arc<BTreeMap<String, Queue>>,
    platform: PlatformGauges,
    every: Duration,
}

impl Sampler {
    pub fn new(history: QueueHistory, queues: Arc<BTreeMap<String, Queue>>, platform: PlatformGauges, every: Duration) -> Sampler {
        Sampler { history, queues, platform, every }
    }

    pub async fn run(self) {
        let every_ms = self.every.as_millis().max(1) as u64;
        let mut tick = tokio::time::interval(self.every);
        loop {
            tick.tick().await;
            let at_ms = now_ms() / every_ms * every_ms;
            for queue in self.queues.values() {
                let sampled = async {
                    let stats = queue.stats().await?;
                    queue.export_stats(&stats);
                    let sample = Sample {
                        at_ms,
                        depth: stats.depth,
                        in_flight: stats.in_flight,
                        dead: stats.dead,
                        oldest_age_ms: stats.oldest_age_ms,
                        done_total: stats.done_total,
                        failed_total: stats.failed_total,
                    };
                    self.history.record(queue.name(), &sample).await.map_err(apalis_redis_streams::QueueError::from)
                };
                if let Err(err) = sampled.await {
                    tracing::warn!(queue = queue.name(), %err, "queue sample not taken");
                }
            }
            self.platform.export().await;
        }
    }
}
