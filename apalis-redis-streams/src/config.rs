//! A queue's settings.

use serde::{Deserialize, Serialize};

/// One queue's settings; every producer and consumer of a queue must use the same `partitions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueConfig {
    /// Streams the queue is split into. More than the number of masters spreads load.
    pub partitions: u16,
    /// Runs a job gets, counting crash re-deliveries, before it is dead-lettered.
    pub max_attempts: u32,
    /// How long a consumer may hold a job before another consumer takes it over.
    pub visibility_timeout_ms: u64,
    pub retry_backoff_base_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// Most entries one fetch reads from one partition.
    pub fetch_batch: usize,
    /// How long an idempotency key of an enqueued job is remembered.
    pub dedupe_ttl_ms: u64,
    /// Dead letters kept per partition (approximate cap; older ones are trimmed).
    pub dead_letter_cap: u32,
    /// Pause between fetch rounds that found nothing while wakes do not arrive (the wake
    /// subscription is down).
    pub idle_poll_ms: u64,
    /// The longest an idle reader sleeps without a wake (see the `wake` module): the bound on
    /// how late a job is picked up if its wake was lost.
    pub idle_wait_max_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            partitions: 8,
            max_attempts: 5,
            visibility_timeout_ms: 60_000,
            retry_backoff_base_ms: 1_000,
            retry_backoff_max_ms: 300_000,
            fetch_batch: 100,
            dedupe_ttl_ms: 24 * 3_600_000,
            dead_letter_cap: 100_000,
            idle_poll_ms: 50,
            idle_wait_max_ms: 30_000,
        }
    }
}
