//! Support threads: one per user, kept in MongoDB. `/support` (or `/paysupport`, tagged as a
//! payment question) opens the user's thread; what they write next is added to it and
//! forwarded to the admin chats; an admin answers by replying to that forward in Telegram or
//! through the admin API, and the answer is added to the thread and sent to the user.
//!
//! Every message carries a key (the update or API request it came from) and is added once per
//! key, so a redelivered update or a repeated request adds nothing.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use apalis_redis_streams::{Queue, QueueError};

use crate::i18n::{tr, Text};
use crate::ids::UserId;
use crate::outbound::OutboundMessage;
use crate::storage::{collections, Store};
use crate::users::Users;

/// Messages a thread keeps: the oldest go first beyond this.
const KEPT_MESSAGES: i32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    General,
    /// From `/paysupport`: Telegram requires bots that sell for Stars to answer it.
    Payment,
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::General => "general",
            Topic::Payment => "payment",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThreadStatus {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    User,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SupportMessage {
    /// What it came from (`tg:<update id>`, `api:<idempotency key>`): added once per key.
    pub key: String,
    pub from: Author,
    /// The admin who answered: their Telegram id, or the API token's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    pub text: String,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Thread {
    /// The user's id: one thread per user, reopened by their next `/support`.
    #[serde(rename = "_id")]
    #[schema(value_type = i64)]
    pub user_id: UserId,
    pub topic: Topic,
    pub status: ThreadStatus,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    pub messages: Vec<SupportMessage>,
}

impl Thread {
    /// Whether the last word is the user's: the thread waits for an admin.
    pub fn waits_for_admin(&self) -> bool {
        self.status == ThreadStatus::Open && self.messages.last().is_some_and(|m| m.from == Author::User)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    #[error("user {0} has no support thread")]
    NoThread(UserId),
    #[error(transparent)]
    Storage(#[from] mongodb::error::Error),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The support threads (platform-wide, small, not sharded).
#[derive(Clone)]
pub struct SupportThreads {
    threads: Collection<Thread>,
}

impl SupportThreads {
    pub fn new(store: &Store) -> SupportThreads {
        SupportThreads { threads: store.collection(collections::SUPPORT_THREADS) }
    }

    /// Opens the user's thread (created the first time, reopened after), on `topic`.
    pub async fn open(&self, user: UserId, topic: Topic, now: DateTime<Utc>) -> mongodb::error::Result<()> {
        let update = doc! {
            "$set": { "status": "open", "topic": topic.as_str(), "updated_at": now },
            "$setOnInsert": { "messages": [] },
        };
        self.threads.update_one(doc! { "_id": user.get() }, update).upsert(true).await?;
        Ok(())
    }

    /// Adds `message` to the user's thread, reopening it; `false` if its key was added before.
    pub async fn add(&self, user: UserId, message: &SupportMessage) -> Result<bool, SupportError> {
        let value = bson::to_bson(message).map_err(mongodb::error::Error::from)?;
        let added = self
            .threads
            .update_one(
                doc! { "_id": user.get(), "messages.key": { "$ne": &message.key } },
                doc! {
                    "$push": { "messages": { "$each": [value], "$slice": -KEPT_MESSAGES } },
                    "$set": { "status": "open", "updated_at": message.at },
                },
            )
            .await?
            .matched_count
            == 1;
        self.unless_missing(user, added).await
    }

    /// `changed`, unless nothing changed because the user has no thread at all.
    async fn unless_missing(&self, user: UserId, changed: bool) -> Result<bool, SupportError> {
        if !changed && self.get(user).await?.is_none() {
            return Err(SupportError::NoThread(user));
        }
        Ok(changed)
    }

    pub async fn get(&self, user: UserId) -> mongodb::error::Result<Option<Thread>> {
        self.threads.find_one(doc! { "_id": user.get() }).await
    }

    /// Closes the thread; `false` if it was closed already.
    pub async fn close(&self, user: UserId, now: DateTime<Utc>) -> Result<bool, SupportError> {
        let closed = self
            .threads
            .update_one(doc! { "_id": user.get(), "status": "open" }, doc! { "$set": { "status": "closed", "updated_at": now } })
            .await?
            .matched_count
            == 1;
        self.unless_missing(user, closed).await
    }

    /// Threads with `status` (any if `None`), most recently active first, `limit` from after
    /// `after` (the `(updated_at, user)` of the previous page's last thread).
    pub async fn list(
        &self,
        status: Option<ThreadStatus>,
        after: Option<(DateTime<Utc>, UserId)>,
        limit: u32,
    ) -> mongodb::error::Result<Vec<Thread>> {
        let mut query = doc! {};
        if let Some(status) = status {
            query.insert("status", bson::to_bson(&status)?);
        }
        if let Some((at, user)) = after {
            let at = Bson::DateTime(at.into());
            query.insert("$or", vec![doc! { "updated_at": { "$lt": at.clone() } }, doc! { "updated_at": at, "_id": { "$lt": user.get() } }]);
        }
        self.threads
            .find(query)
            .sort(doc! { "updated_at": -1, "_id": -1 })
            .limit(i64::from(limit.clamp(1, 200)))
            .await?
            .try_collect()
            .await
    }

    /// An admin's answer to `user`, keyed by `key` (the update or API request it came from):
    /// added to their thread and sent to them once, in their language. `false` if the key was
    /// there already. Shared by the admin chats and the admin API.
    pub async fn answer(&self, users: &Users, outbound: &Queue, user: UserId, key: &str, admin: &str, text: &str) -> Result<bool, SupportError> {
        let entry = SupportMessage { key: key.to_owned(), from: Author::Admin, admin: Some(admin.to_owned()), text: text.to_owned(), at: Utc::now() };
        let added = self.add(user, &entry).await?;
        let lang = users.language(user).await?;
        let message = OutboundMessage::text(user.get(), tr(lang, Text::SupportAnswer, &[("text", &text)]));
        // Sent even when the entry was there already: an earlier attempt may have stopped
        // between the two. The key sends it once.
        outbound.enqueue(&message, Some(&format!("support-answer:{user}:{key}"))).await?;
        Ok(added)
    }

    /// Closes the user's thread and tells them; `false` if it was closed already.
    pub async fn close_and_tell(&self, users: &Users, outbound: &Queue, user: UserId) -> Result<bool, SupportError> {
        let closed = self.close(user, Utc::now()).await?;
        if closed {
            let lang = users.language(user).await?;
            let message = OutboundMessage::text(user.get(), tr(lang, Text::SupportClosed, &[]));
            let updated_at = self.get(user).await?.map_or(0, |t| t.updated_at.timestamp_millis());
            outbound.enqueue(&message, Some(&format!("support-closed:{user}:{updated_at}"))).await?;
        }
        Ok(closed)
    }
}
