//! Users as the platform knows them: registration with an optional referrer, the chosen
//! language, and whether they blocked the bot (learned from the Bot API's 403), which stops
//! messages to them. `_id` is the Telegram user id, and `user_id` repeats it for the shard key.

use chrono::Utc;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;

use crate::ids::UserId;
use crate::storage::{collections, Store};

#[derive(Clone)]
pub struct Users {
    users: Collection<Document>,
}

impl Users {
    pub fn new(store: &Store) -> Users {
        Users { users: store.collection(collections::USERS) }
    }

    /// `_id` and the shard key: targeted to the user's shard.
    fn filter(user_id: UserId) -> Document {
        doc! { "_id": user_id.get(), "user_id": user_id.get() }
    }

    async fn find(&self, user_id: UserId) -> mongodb::error::Result<Option<Document>> {
        self.users.find_one(Self::filter(user_id)).await
    }

    async fn upsert(&self, user_id: UserId, update: Document) -> mongodb::error::Result<()> {
        self.users.update_one(Self::filter(user_id), update).upsert(true).await.map(drop)
    }

    fn now() -> Bson {
        Bson::DateTime(mongodb::bson::DateTime::from_chrono(Utc::now()))
    }

    /// Makes sure the user exists (idempotent). A referrer is recorded only when the user is
    /// new, the referrer is a known user, and is not the user themself.
    pub async fn register(&self, user_id: UserId, referrer: Option<UserId>) -> mongodb::error::Result<()> {
        let referrer = match referrer {
            Some(referrer) if referrer != user_id && self.find(referrer).await?.is_some() => Bson::Int64(referrer.get()),
            _ => Bson::Null,
        };
        self.upsert(user_id, doc! { "$setOnInsert": { "created_at": Self::now(), "referrer_id": referrer } }).await
    }

    /// Who referred the user, if anyone.
    pub async fn referrer(&self, user_id: UserId) -> mongodb::error::Result<Option<UserId>> {
        let user = self.find(user_id).await?;
        Ok(user.and_then(|u| u.get_i64("referrer_id").ok()).and_then(|id| UserId::new(id).ok()))
    }

    /// The language code the user chose, if any.
    pub async fn language(&self, user_id: UserId) -> mongodb::error::Result<Option<String>> {
        Ok(self.find(user_id).await?.and_then(|u| u.get_str("language").ok().map(str::to_owned)))
    }

    pub async fn set_language(&self, user_id: UserId, code: &str) -> mongodb::error::Result<()> {
        self.upsert(user_id, doc! { "$set": { "language": code } }).await
    }

    /// Records that the user blocked the bot (idempotent).
    pub async fn mark_blocked(&self, user_id: UserId) -> mongodb::error::Result<()> {
        self.upsert(user_id, doc! { "$set": { "blocked_bot": true, "updated_at": Self::now() } }).await
    }

    pub async fn has_blocked_bot(&self, user_id: UserId) -> mongodb::error::Result<bool> {
        Ok(self.find(user_id).await?.is_some_and(|u| u.get_bool("blocked_bot") == Ok(true)))
    }
}
