#![doc = include_str!("../README.md")]

mod backend;
mod config;
mod connection;
mod dead_letters;
mod job;
mod lease;
mod queue;
mod scripts;
mod stats;
mod wake;

use std::time::{SystemTime, UNIX_EPOCH};

use redis::RedisError;

pub use backend::{job_span, AckLayer, AckService, QueueBackend};
pub use config::QueueConfig;
pub use connection::{ConnectOptions, RedisConn, RedisMode};
pub use dead_letters::DeadLetter;
pub use job::{Delivery, Enqueued, Envelope, FailOutcome, Fetched, Postpone};
pub use lease::{Acquired, Lease};
pub use queue::Queue;
pub use stats::QueueStats;
pub use wake::{Bell, Doorbell, Woken};

/// Everything a queue operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("job payload: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("unexpected reply from redis: {0}")]
    Reply(String),
    #[error("unexpected reply from redis: {0}")]
    Parse(#[from] redis::ParsingError),
}

/// A consumer name unique to this process start: `<role>-<host>-<pid>-<random>`. A restarted
/// process must not reuse its predecessor's name, or it would inherit that one's pending
/// entries as if it had fetched them itself.
pub fn consumer_name(role: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{role}-{host}-{}-{}", std::process::id(), &random[..8])
}

/// Milliseconds since the Unix epoch: the clock of due times, ages and stream ids.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
