//! The platform's queues: their names and settings (`queues.<name>` in the configuration). The
//! queue machinery itself is the `apalis-redis-streams` crate, which names none of them.

use apalis_redis_streams::{Queue, QueueConfig, RedisConn};
use serde::{Deserialize, Serialize};

/// Telegram updates: receivers enqueue, the bot's consumers drain it, one chat in order.
pub const UPDATES_QUEUE: &str = "updates";
/// Recorded payments to credit (`payments::PaymentJob`).
pub const PAYMENTS_QUEUE: &str = "payments";
/// Confirmed withdrawals to pay out (`withdrawals::WithdrawalJob`).
pub const WITHDRAWALS_QUEUE: &str = "withdrawals";
/// Messages to the Bot API, sent under flood control (`outbound::OutboundMessage`).
pub const OUTBOUND_QUEUE: &str = "outbound";
/// Broadcast fan-out pages (`broadcasts::BroadcastJob`).
pub const BROADCASTS_QUEUE: &str = "broadcasts";
/// Jobs the scheduler's leader enqueues (`scheduled::ScheduledJob`).
pub const SCHEDULED_QUEUE: &str = "scheduled";

/// Every queue of the platform, one section per queue (`queues.<name>`). Every service reads the
/// same section, so one ConfigMap keeps producers and consumers agreeing on partitions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuesConfig {
    #[serde(default = "updates_queue")]
    pub updates: QueueConfig,
    #[serde(default)]
    pub payments: QueueConfig,
    #[serde(default = "withdrawals_queue")]
    pub withdrawals: QueueConfig,
    #[serde(default)]
    pub outbound: QueueConfig,
    #[serde(default)]
    pub broadcasts: QueueConfig,
    #[serde(default)]
    pub scheduled: QueueConfig,
}

/// Many partitions: a chat's updates are consumed in order within its partition, so more
/// partitions means more chats in parallel.
fn updates_queue() -> QueueConfig {
    QueueConfig { partitions: 32, ..QueueConfig::default() }
}

/// Withdrawals are slow (an external call each): fetch few at a time so none waits fetched but
/// unstarted, and give each run longer before it is presumed dead.
fn withdrawals_queue() -> QueueConfig {
    QueueConfig { fetch_batch: 10, visibility_timeout_ms: 120_000, ..QueueConfig::default() }
}

impl Default for QueuesConfig {
    fn default() -> Self {
        QueuesConfig {
            updates: updates_queue(),
            payments: QueueConfig::default(),
            withdrawals: withdrawals_queue(),
            outbound: QueueConfig::default(),
            broadcasts: QueueConfig::default(),
            scheduled: QueueConfig::default(),
        }
    }
}

impl QueuesConfig {
    /// Every queue by name.
    pub fn all(&self) -> [(&'static str, &QueueConfig); 6] {
        [
            (UPDATES_QUEUE, &self.updates),
            (PAYMENTS_QUEUE, &self.payments),
            (WITHDRAWALS_QUEUE, &self.withdrawals),
            (OUTBOUND_QUEUE, &self.outbound),
            (BROADCASTS_QUEUE, &self.broadcasts),
            (SCHEDULED_QUEUE, &self.scheduled),
        ]
    }

    /// The queue called `name`, on `redis`; `None` for a name that is not ours.
    pub fn open(&self, name: &str, redis: &RedisConn) -> Option<Queue> {
        let (name, config) = self.all().into_iter().find(|(n, _)| *n == name)?;
        Some(Queue::new(name, config.clone(), redis.clone()))
    }

    /// Every queue, opened on `redis`.
    pub fn open_all(&self, redis: &RedisConn) -> Vec<Queue> {
        self.all().into_iter().map(|(name, config)| Queue::new(name, config.clone(), redis.clone())).collect()
    }
}
