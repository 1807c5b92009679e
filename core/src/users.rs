//! Users as the platform knows them: registration with an optional referrer, the chosen
//! language, a ban set by admins, and whether they blocked the bot (learned from the Bot API's
//! 403), which stops messages to them. `_id` is the Telegram user id, and `user_id` repeats it
//! for the shard key.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::storage::{collections, Store};

/// What the bot needs to know about a user for every update, read in one query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Profile {
    /// Chosen with /language.
    #[serde(default)]
    pub language: Option<String>,
    /// The user's Telegram client language when they registered: for messages the user did not
    /// ask for (a referral commission), when no update of theirs is at hand.
    #[serde(default)]
    pub telegram_language: Option<String>,
    #[serde(default)]
    pub banned: bool,
    #[serde(default, rename = "referrer_id")]
    pub referrer: Option<UserId>,
    /// How many users registered with this user as their referrer.
    #[serde(default)]
    pub referrals: i64,
}

/// What `register` learns from the user's `/start`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Registration<'a> {
    pub referrer: Option<UserId>,
    /// The Telegram client's language tag.
    pub telegram_language: Option<&'a str>,
    /// The Telegram @username, refreshed at every `/start` (admins search by it).
    pub username: Option<&'a str>,
}

/// A user as the admin API lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSummary {
    pub user_id: UserId,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub banned: bool,
    #[serde(default)]
    pub blocked_bot: bool,
    #[serde(default, rename = "referrer_id")]
    pub referrer: Option<UserId>,
    #[serde(default)]
    pub referrals: i64,
    #[serde(default, with = "bson::serde_helpers::chrono_datetime_as_bson_datetime_optional")]
    pub created_at: Option<DateTime<Utc>>,
}

/// Admin lists and stats read users across every shard.
const FAN_OUT_ADMIN: &str = "fan-out: admin user list";

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

    /// Makes sure the user exists (idempotent); returns whether this call created them. A
    /// referrer is recorded only when the user is new, the referrer is a known user, and is not
    /// the user themself; the referrer's `referrals` count then goes up by one. That count is for
    /// display only (it could miss one if the process died between the two writes); money never
    /// depends on it.
    pub async fn register(&self, user_id: UserId, registration: Registration<'_>) -> mongodb::error::Result<bool> {
        let Registration { referrer, telegram_language, username } = registration;
        let referrer = match referrer {
            Some(referrer) if referrer != user_id && self.find(referrer).await?.is_some() => Some(referrer),
            _ => None,
        };
        let insert = doc! {
            "$setOnInsert": {
                "created_at": Self::now(),
                "referrer_id": referrer.map_or(Bson::Null, |r| Bson::Int64(r.get())),
                "telegram_language": telegram_language,
            },
            "$set": { "username": username, "username_lc": username.map(str::to_lowercase) },
        };
        let created = self.users.update_one(Self::filter(user_id), insert).upsert(true).await?.upserted_id.is_some();
        if let (true, Some(referrer)) = (created, referrer) {
            self.upsert(referrer, doc! { "$inc": { "referrals": 1_i64 } }).await?;
        }
        Ok(created)
    }

    /// The user's profile; `None` if they never registered.
    pub async fn profile(&self, user_id: UserId) -> mongodb::error::Result<Option<Profile>> {
        let found = self.users.clone_with_type::<Profile>().find_one(Self::filter(user_id)).await?;
        Ok(found)
    }

    /// Bans or unbans (idempotent). A banned user gets a polite refusal and nothing else.
    pub async fn set_banned(&self, user_id: UserId, banned: bool) -> mongodb::error::Result<()> {
        self.upsert(user_id, doc! { "$set": { "banned": banned, "updated_at": Self::now() } }).await
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

    /// Users in id order after `after`, up to `limit`: all of them, or those whose @username
    /// starts with `username_prefix` (case-insensitive), or the one whose id is `user_id`.
    pub async fn search(
        &self,
        filter: UserFilter<'_>,
        after: Option<UserId>,
        limit: u32,
    ) -> mongodb::error::Result<Vec<UserSummary>> {
        let after = after.map_or(0, UserId::get);
        let mut query = doc! { "user_id": { "$gt": after } };
        match filter {
            UserFilter::All => {}
            UserFilter::Id(id) => return Ok(self.summary(id).await?.into_iter().filter(|u| u.user_id.get() > after).collect()),
            UserFilter::UsernamePrefix(prefix) => {
                let escaped: String = prefix.to_lowercase().chars().flat_map(|c| {
                    let special = !c.is_alphanumeric() && c != '_';
                    special.then_some('\\').into_iter().chain([c])
                }).collect();
                query.insert("username_lc", doc! { "$regex": format!("^{escaped}") });
            }
        }
        self.users
            .clone_with_type::<UserSummary>()
            .find(query)
            .sort(doc! { "user_id": 1 })
            .limit(i64::from(limit.clamp(1, 200)))
            .comment(Bson::String(FAN_OUT_ADMIN.into()))
            .await?
            .try_collect()
            .await
    }

    pub async fn summary(&self, user_id: UserId) -> mongodb::error::Result<Option<UserSummary>> {
        self.users.clone_with_type::<UserSummary>().find_one(Self::filter(user_id)).await
    }

    /// Registered users (the collection's count from metadata: cheap, may lag after a crash).
    pub async fn count(&self) -> mongodb::error::Result<u64> {
        self.users.estimated_document_count().await
    }
}

/// Which users `Users::search` returns.
#[derive(Debug, Clone, Copy)]
pub enum UserFilter<'a> {
    All,
    Id(UserId),
    UsernamePrefix(&'a str),
}
