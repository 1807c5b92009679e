//! How much a queue holds, read from Redis and published as gauges.

use serde::Serialize;

use crate::queue::GROUP;
use crate::{now_ms, Queue, QueueError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueStats {
    /// Jobs waiting to run: ready in the streams plus delayed retries.
    pub depth: u64,
    pub ready: u64,
    pub delayed: u64,
    pub in_flight: u64,
    pub dead: u64,
    /// Age of the oldest job waiting to start, in milliseconds (0 when none waits). Running jobs
    /// do not count: a long job is not a backlog.
    pub oldest_age_ms: u64,
    /// Jobs finished (acknowledged) since the queue began: throughput is its rate. A running
    /// total in Redis, so a failover can set it back; readers of rates treat a drop as a reset.
    pub done_total: u64,
    /// Failed attempts (retried or dead-lettered) since the queue began, likewise.
    pub failed_total: u64,
}

impl Queue {
    /// Depth, age, in-flight and dead-letter counts, summed over partitions.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut stats = QueueStats::default();
        let mut oldest_ms = u64::MAX;
        for partition in self.partitions() {
            let (length, in_flight, delayed, dead, oldest, done, failed): (u64, u64, u64, u64, String, u64, u64) = self
                .scripts
                .stats
                .key(self.stream_key(partition))
                .key(self.delayed_key(partition))
                .key(self.dead_key(partition))
                .key(self.counts_key(partition))
                .arg(GROUP)
                .invoke_async(&mut self.redis.clone())
                .await?;
            stats.ready += length.saturating_sub(in_flight);
            stats.in_flight += in_flight;
            stats.delayed += delayed;
            stats.dead += dead;
            stats.done_total += done;
            stats.failed_total += failed;
            if let Some(ms) = oldest.split('-').next().and_then(|ms| ms.parse::<u64>().ok()) {
                oldest_ms = oldest_ms.min(ms);
            }
        }
        stats.depth = stats.ready + stats.delayed;
        stats.oldest_age_ms = if oldest_ms == u64::MAX { 0 } else { now_ms().saturating_sub(oldest_ms) };
        Ok(stats)
    }

    /// Publishes `stats` as gauges labelled with the queue's name (what KEDA scales on).
    pub fn export_stats(&self, stats: &QueueStats) {
        let name = self.name.to_string();
        metrics::gauge!("queue_depth", "queue" => name.clone()).set(stats.depth as f64);
        metrics::gauge!("queue_in_flight", "queue" => name.clone()).set(stats.in_flight as f64);
        metrics::gauge!("queue_dead_letters", "queue" => name.clone()).set(stats.dead as f64);
        metrics::gauge!("queue_oldest_age_seconds", "queue" => name).set(stats.oldest_age_ms as f64 / 1000.0);
    }
}
