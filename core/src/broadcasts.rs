//! Broadcasts: one message to every user who has not blocked the bot, is not banned and has not
//! turned broadcasts off (/notifications), or to an audience among them (languages, subscribers,
//! seen since a date), with a text per language, as a chain of jobs with progress that an admin
//! can follow and cancel.
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

use std::collections::{BTreeMap, HashSet};

use crate::i18n::Lang;
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

/// Who among the users who take broadcasts gets one; every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Audience {
    /// Users who read one of these languages (`ar`, `en` …); all if empty.
    #[schema(value_type = Vec<String>)]
    pub languages: Vec<Lang>,
    /// Only users with a subscription running when their batch is sent.
    pub subscribers_only: bool,
    /// Only users seen (an update of theirs handled) on or after this day.
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime_optional")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub seen_since: Option<DateTime<Utc>>,
}

/// What a broadcast says: `text`, or the text of the recipient's language if it has one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BroadcastMessage {
    pub text: String,
    /// By language code; a language without one gets `text`.
    #[serde(default)]
    pub texts: BTreeMap<String, String>,
    #[serde(default)]
    pub audience: Audience,
}

impl BroadcastMessage {
    pub fn to_everyone(text: &str) -> BroadcastMessage {
        BroadcastMessage { text: text.to_owned(), ..BroadcastMessage::default() }
    }

    fn text_for(&self, lang: Lang) -> &str {
        self.texts.get(lang.code()).unwrap_or(&self.text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(flatten)]
    pub message: BroadcastMessage,
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
    subscriptions: Collection<Document>,
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
            subscriptions: store.collection(collections::SUBSCRIPTIONS),
            outbound,
            steps,
            batch: batch.max(1),
        }
    }

    /// Starts a broadcast (idempotent on `id`) and enqueues its first step.
    pub async fn start(&self, id: &str, message: &BroadcastMessage) -> Result<Broadcast, BroadcastError> {
        let broadcast = Broadcast {
            id: id.to_owned(),
            message: message.clone(),
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
        let audience = &broadcast.message.audience;
        // Every user, in id order, from every shard: the one sanctioned fan-out over users.
        let mut query = doc! {
            "_id": { "$gt": broadcast.cursor },
            "blocked_bot": { "$ne": true },
            "banned": { "$ne": true },
            "mute_broadcasts": { "$ne": true },
        };
        if let Some(since) = audience.seen_since {
            query.insert("last_seen_at", doc! { "$gte": since });
        }
        let batch: Vec<Profiled> = self
            .users
            .clone_with_type::<Profiled>()
            .find(query)
            .sort(doc! { "_id": 1 })
            .limit(self.batch as i64)
            .projection(doc! { "_id": 1, "language": 1, "telegram_language": 1 })
            .comment(Bson::String(FAN_OUT_COMMENT.into()))
            .await?
            .try_collect()
            .await?;
        let subscribers = if audience.subscribers_only { self.subscribers_among(&batch).await? } else { HashSet::new() };
        let mut enqueued = 0_i64;
        for user in &batch {
            let lang = user.lang();
            let wanted = (audience.languages.is_empty() || audience.languages.contains(&lang))
                && (!audience.subscribers_only || subscribers.contains(&user.id));
            if !wanted {
                continue;
            }
            let text = broadcast.message.text_for(lang);
            let message = OutboundMessage { broadcast: Some(broadcast.id.clone()), ..OutboundMessage::text(user.id, text) };
            self.outbound.enqueue(&message, Some(&format!("bc:{}:{}", broadcast.id, user.id))).await?;
            enqueued += 1;
        }
        let cursor = batch.last().map_or(broadcast.cursor, |user| user.id);
        let finished = batch.len() < self.batch;
        let mut set = doc! { "cursor": cursor };
        if finished {
            set.insert("status", "done");
        }
        // Only the run that saw this cursor advances it; a replayed step re-enqueued nothing new.
        self.broadcasts
            .update_one(
                doc! { "_id": &broadcast.id, "cursor": broadcast.cursor, "status": "running" },
                doc! { "$set": set, "$inc": { "enqueued": enqueued } },
            )
            .await?;
        if finished {
            return Ok(Step::Finished);
        }
        self.enqueue_step(&broadcast.id, cursor).await?;
        Ok(Step::Continued { cursor })
    }

    /// Which users of `batch` have a subscription running now (one query for the batch).
    async fn subscribers_among(&self, batch: &[Profiled]) -> mongodb::error::Result<HashSet<i64>> {
        let now = Utc::now();
        let ids: Vec<i64> = batch.iter().map(|user| user.id).collect();
        let periods: Vec<Document> = self
            .subscriptions
            .find(doc! { "user_id": { "$in": ids }, "starts_at": { "$lte": now }, "expires_at": { "$gt": now } })
            .projection(doc! { "user_id": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(periods.iter().filter_map(|period| period.get_i64("user_id").ok()).collect())
    }
}

/// A recipient as a batch reads them: their id and what decides their language.
#[derive(Deserialize)]
struct Profiled {
    #[serde(rename = "_id")]
    id: i64,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    telegram_language: Option<String>,
}

impl Profiled {
    fn lang(&self) -> Lang {
        Lang::chosen_or(self.language.as_deref(), self.telegram_language.as_deref())
    }
}
