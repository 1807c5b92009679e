//! Broadcasts: one message to every user who has not blocked the bot and is not banned, as a
//! chain of jobs with progress that an admin can follow and cancel.
//!
//! Each broadcast job handles one batch: it enqueues an outbound message per user (keyed
//! `bc:<broadcast>:<user>`, so a replayed batch sends nothing twice), advances the broadcast's
//! cursor by compare-and-set, and enqueues the next step keyed by the new cursor. A cancelled
//! broadcast stops at the next step.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::outbound::OutboundMessage;
use apalis_redis_streams::{Queue, QueueError};
use crate::storage::{collections, is_duplicate_key, Store};


/// Marks a query that must visit every shard; the shard-targeting test accepts only these.
pub const FAN_OUT_COMMENT: &str = "fan-out: broadcast recipients";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastJob {
    pub broadcast_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastStatus {
    Running,
    Cancelled,
    Done,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    #[serde(rename = "_id")]
    pub id: String,
    pub text: String,
    pub status: BroadcastStatus,
    /// The last user id whose message was enqueued.
    pub cursor: i64,
    /// Messages enqueued so far.
    pub enqueued: u64,
    /// Messages Telegram accepted (counted by the sender; at-least-once, so a redelivered send
    /// can count twice).
    pub sent: u64,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    #[error("broadcasts storage: {0}")]
    Storage(#[from] mongodb::error::Error),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("broadcast {0} not found")]
    NotFound(String),
}

/// What a broadcast job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// More users remain; the next step's job is enqueued.
    Continued { cursor: i64 },
    Finished,
}

#[derive(Clone)]
pub struct Broadcasts {
    broadcasts: Collection<Broadcast>,
    users: Collection<Document>,
    outbound: Queue,
    steps: Queue,
    batch: usize,
}

impl Broadcasts {
    /// `outbound` receives the messages, `steps` the broadcast's own jobs; `batch` users per step.
    pub fn new(store: &Store, outbound: Queue, steps: Queue, batch: usize) -> Broadcasts {
        Broadcasts {
            broadcasts: store.collection(collections::BROADCASTS),
            users: store.collection(collections::USERS),
            outbound,
            steps,
            batch: batch.max(1),
        }
    }

    /// Starts a broadcast (idempotent on `id`) and enqueues its first step.
    pub async fn start(&self, id: &str, text: &str) -> Result<Broadcast, BroadcastError> {
        let broadcast = Broadcast {
            id: id.to_owned(),
            text: text.to_owned(),
            status: BroadcastStatus::Running,
            cursor: 0,
            enqueued: 0,
            sent: 0,
            created_at: Utc::now(),
        };
        match self.broadcasts.insert_one(&broadcast).await {
            Ok(_) => self.enqueue_step(id, 0).await?,
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
        self.get(id).await
    }

    async fn enqueue_step(&self, id: &str, cursor: i64) -> Result<(), QueueError> {
        let job = BroadcastJob { broadcast_id: id.to_owned() };
        self.steps.enqueue(&job, Some(&format!("bc-step:{id}:{cursor}"))).await.map(drop)
    }

    pub async fn get(&self, id: &str) -> Result<Broadcast, BroadcastError> {
        self.broadcasts.find_one(doc! { "_id": id }).await?.ok_or_else(|| BroadcastError::NotFound(id.to_owned()))
    }

    /// Stops a running broadcast at its next step (idempotent).
    pub async fn cancel(&self, id: &str) -> Result<Broadcast, BroadcastError> {
        self.broadcasts
            .update_one(doc! { "_id": id, "status": "running" }, doc! { "$set": { "status": "cancelled" } })
            .await?;
        self.get(id).await
    }

    /// Counts a message of this broadcast that Telegram accepted.
    pub async fn record_sent(&self, id: &str) -> Result<(), BroadcastError> {
        self.broadcasts.update_one(doc! { "_id": id }, doc! { "$inc": { "sent": 1 } }).await?;
        Ok(())
    }

    /// The broadcast job: one batch of recipients.
    pub async fn step(&self, job: &BroadcastJob) -> Result<Step, BroadcastError> {
        let broadcast = self.get(&job.broadcast_id).await?;
        if broadcast.status != BroadcastStatus::Running {
            return Ok(Step::Finished);
        }
        // Every user, in id order, from every shard: the one sanctioned fan-out over users.
        let recipients: Vec<Document> = self
            .users
            .find(doc! { "_id": { "$gt": broadcast.cursor }, "blocked_bot": { "$ne": true }, "banned": { "$ne": true } })
            .sort(doc! { "_id": 1 })
            .limit(self.batch as i64)
            .projection(doc! { "_id": 1 })
            .comment(Bson::String(FAN_OUT_COMMENT.into()))
            .await?
            .try_collect()
            .await?;
        let mut cursor = broadcast.cursor;
        for user in &recipients {
            let Ok(user_id) = user.get_i64("_id") else { continue };
            let message = OutboundMessage { broadcast: Some(broadcast.id.clone()), ..OutboundMessage::text(user_id, &broadcast.text) };
            self.outbound.enqueue(&message, Some(&format!("bc:{}:{user_id}", broadcast.id))).await?;
            cursor = user_id;
        }
        let finished = recipients.len() < self.batch;
        let mut set = doc! { "cursor": cursor };
        if finished {
            set.insert("status", "done");
        }
        // Only the run that saw this cursor advances it; a replayed step re-enqueued nothing new.
        self.broadcasts
            .update_one(
                doc! { "_id": &broadcast.id, "cursor": broadcast.cursor, "status": "running" },
                doc! { "$set": set, "$inc": { "enqueued": recipients.len() as i64 } },
            )
            .await?;
        if finished {
            return Ok(Step::Finished);
        }
        self.enqueue_step(&broadcast.id, cursor).await?;
        Ok(Step::Continued { cursor })
    }
}
