//! What travels through a queue and what comes back out of it.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What travels through the queue: our job id, its idempotency key, the attempts already used
/// by earlier stream entries of this job (retries), and the payload as raw JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(rename = "a")]
    pub attempts: u32,
    #[serde(rename = "t")]
    pub enqueued_at_ms: u64,
    #[serde(rename = "p")]
    pub payload: Box<RawValue>,
}

impl Envelope {
    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self).expect("an envelope serializes")
    }

    pub fn decode_payload<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.payload.get())
    }
}

/// One entry handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub partition: u16,
    pub entry_id: String,
    /// The consumer the entry was delivered to; only it may settle a failure.
    pub consumer: Arc<str>,
    pub envelope: Envelope,
    /// Times this stream entry was delivered (1 on first fetch; more after reclaims).
    pub deliveries: u32,
}

impl Delivery {
    /// The run this delivery is, counting earlier retries and crash re-deliveries: 1, 2, ...
    pub fn attempt(&self) -> u32 {
        self.envelope.attempts + self.deliveries
    }
}

/// What one fetch of a partition read.
#[derive(Debug, Default)]
pub struct Fetched {
    pub deliveries: Vec<Delivery>,
    /// Fewer than asked for were read, so none is left: the partition's readers are marked
    /// asleep and the next write to it wakes them.
    pub asleep: bool,
    /// When asleep: the earliest delayed job's due time, if any (when to look again).
    pub next_due_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    Added { job_id: String },
    /// The idempotency key was enqueued before; this is the first job's id.
    Duplicate { job_id: String },
}

/// A handler's answer meaning "not now": the job runs again after `wait` without using up an
/// attempt (flood control, a rate limit's `retry_after`).
#[derive(Debug, thiserror::Error)]
#[error("postponed for {} ms: {reason}", wait.as_millis())]
pub struct Postpone {
    pub wait: Duration,
    pub reason: String,
}

/// What happened to a job that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    RetryAt { due_ms: u64 },
    DeadLettered,
    /// The entry was no longer ours (reclaimed by another consumer meanwhile).
    NotOwned,
}
