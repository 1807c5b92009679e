//! Users as the platform knows them: registered, and whether they blocked the bot (learned from
//! the Bot API's 403), which stops messages to them. The bot's conversations add language and
//! referrals. `_id` is the Telegram user id, and `user_id` repeats it for the shard key.

use chrono::Utc;
use mongodb::bson::{doc, Bson};
use mongodb::Collection;

use crate::ids::UserId;
use crate::storage::{collections, Store};

#[derive(Clone)]
pub struct Users {
    users: Collection<mongodb::bson::Document>,
}

impl Users {
    pub fn new(store: &Store) -> Users {
        Users { users: store.collection(collections::USERS) }
    }

    /// Makes sure the user exists (idempotent). A referrer is recorded only when the user is
    /// new, the referrer is a known user, and is not the user themself.
    pub async fn register(&self, user_id: UserId, referrer: Option<UserId>) -> mongodb::error::Result<()> {
        let referrer = match referrer {
            Some(referrer) if referrer != user_id && self.exists(referrer).await? => Bson::Int64(referrer.get()),
            _ => Bson::Null,
        };
        let now = Bson::DateTime(mongodb::bson::DateTime::from_chrono(Utc::now()));
        self.users
            .update_one(
                doc! { "_id": user_id.get(), "user_id": user_id.get() },
                doc! { "$setOnInsert": { "created_at": now, "referrer_id": referrer } },
            )
            .upsert(true)
            .await
            .map(drop)
    }

    async fn exists(&self, user_id: UserId) -> mongodb::error::Result<bool> {
        Ok(self.users.find_one(doc! { "_id": user_id.get(), "user_id": user_id.get() }).await?.is_some())
    }

    /// The language code the user chose, if any.
    pub async fn language(&self, user_id: UserId) -> mongodb::error::Result<Option<String>> {
        let user = self.users.find_one(doc! { "_id": user_id.get(), "user_id": user_id.get() }).await?;
        Ok(user.and_then(|u| u.get_str("language").ok().map(str::to_owned)))
    }

    pub async fn set_language(&self, user_id: UserId, code: &str) -> mongodb::error::Result<()> {
        self.users
            .update_one(doc! { "_id": user_id.get(), "user_id": user_id.get() }, doc! { "$set": { "language": code } })
            .upsert(true)
            .await
            .map(drop)
    }

    /// Who referred the user, if anyone.
    pub async fn referrer(&self, user_id: UserId) -> mongodb::error::Result<Option<UserId>> {
        let user = self.users.find_one(doc! { "_id": user_id.get(), "user_id": user_id.get() }).await?;
        Ok(user.and_then(|u| u.get_i64("referrer_id").ok()).and_then(|id| UserId::new(id).ok()))
    }

    /// Records that the user blocked the bot (idempotent).
    pub async fn mark_blocked(&self, user_id: UserId) -> mongodb::error::Result<()> {
        let now = Bson::DateTime(mongodb::bson::DateTime::from_chrono(Utc::now()));
        self.users
            .update_one(
                doc! { "_id": user_id.get(), "user_id": user_id.get() },
                doc! { "$set": { "blocked_bot": true, "updated_at": now } },
            )
            .upsert(true)
            .await
            .map(drop)
    }

    pub async fn has_blocked_bot(&self, user_id: UserId) -> mongodb::error::Result<bool> {
        let user = self.users.find_one(doc! { "_id": user_id.get(), "user_id": user_id.get() }).await?;
        Ok(user.is_some_and(|u| u.get_bool("blocked_bot") == Ok(true)))
    }
}
