//! Users as the platform knows them: registered at their first update of any kind, with who
//! they are on Telegram (name, @username, client language) kept current from later updates; an
//! optional referrer; the chosen language; a ban set by admins; and whether they blocked the bot
//! (learned from the Bot API's 403), which stops messages to them. `_id` is the Telegram user
//! id, and `user_id` repeats it for the shard key.
//!
//! An @username belongs to one user at a time: Telegram lets a released name be claimed by
//! someone else, so whoever shows up with it last holds it here, and earlier holders lose it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::i18n::Lang;
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
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    /// The user has written to the bot in private, so the bot may write to them there.
    #[serde(default)]
    pub private_chat: bool,
    /// Turned off with /notifications: no broadcasts.
    #[serde(default)]
    pub mute_broadcasts: bool,
    /// Turned off with /notifications: no subscription reminders.
    #[serde(default)]
    pub mute_reminders: bool,
    /// When an update of theirs was last handled, to the day (written at most once a day per
    /// user, so seeing a user costs no write): broadcasts can target who was seen lately.
    #[serde(default, with = "bson::serde_helpers::chrono_datetime_as_bson_datetime_optional")]
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// What a user can turn off with /notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notification {
    Broadcasts,
    Reminders,
}

impl Notification {
    pub const ALL: [Notification; 2] = [Notification::Broadcasts, Notification::Reminders];

    pub fn name(self) -> &'static str {
        match self {
            Notification::Broadcasts => "broadcasts",
            Notification::Reminders => "reminders",
        }
    }

    pub fn from_name(name: &str) -> Option<Notification> {
        Notification::ALL.into_iter().find(|n| n.name() == name)
    }

    fn field(self) -> &'static str {
        match self {
            Notification::Broadcasts => "mute_broadcasts",
            Notification::Reminders => "mute_reminders",
        }
    }

    /// Whether the user gets these.
    pub fn is_on_for(self, profile: &Profile) -> bool {
        match self {
            Notification::Broadcasts => !profile.mute_broadcasts,
            Notification::Reminders => !profile.mute_reminders,
        }
    }
}

impl Profile {
    /// Whether `sender` shows something stored here out of date. A client that does not tell
    /// its language leaves the stored one as it is.
    fn is_outdated_by(&self, sender: &Sender<'_>) -> bool {
        self.username.as_deref() != sender.username
            || self.first_name.as_deref() != sender.first_name
            || self.last_name.as_deref() != sender.last_name
            || sender.telegram_language.is_some_and(|l| self.telegram_language.as_deref() != Some(l))
            || (sender.in_private && !self.private_chat)
            || self.last_seen_at.is_none_or(|at| at.date_naive() < Utc::now().date_naive())
    }
}

/// Who sent an update, as Telegram describes them in it (`from`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sender<'a> {
    /// The @username, if they have one (admins search by it).
    pub username: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    /// The Telegram client's language tag, if the client tells.
    pub telegram_language: Option<&'a str>,
    /// The update came from the user's private chat with the bot.
    pub in_private: bool,
}

/// What `register` records about a new user.
#[derive(Debug, Clone, Copy, Default)]
pub struct Registration<'a> {
    pub referrer: Option<UserId>,
    pub sender: Sender<'a>,
}

/// A user as the admin API lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSummary {
    pub user_id: UserId,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
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
/// Taking an @username away from its earlier holders: they may live on any shard.
const FAN_OUT_USERNAME: &str = "fan-out: username taken over";

#[derive(Clone)]
pub struct Users {
    users: Collection<Document>,
    cache: Option<Arc<ProfileCache>>,
}

/// Profiles this process read recently, so an update from a user seen moments ago costs no
/// database read. A change made by another process (a ban through the admin API) is seen here
/// within `ttl`; changes made through this `Users` drop the entry at once.
struct ProfileCache {
    ttl: Duration,
    entries: Mutex<HashMap<UserId, (Profile, Instant)>>,
}

/// Profiles a cache holds at most; past that it starts over (a bound, not an LRU: cheap, and
/// a refill costs one read per user).
const PROFILE_CACHE_CAPACITY: usize = 100_000;

impl ProfileCache {
    fn get(&self, user_id: UserId) -> Option<Profile> {
        let entries = self.entries.lock().expect("profile cache lock");
        entries.get(&user_id).filter(|(_, at)| at.elapsed() < self.ttl).map(|(profile, _)| profile.clone())
    }

    fn put(&self, user_id: UserId, profile: &Profile) {
        let mut entries = self.entries.lock().expect("profile cache lock");
        if entries.len() >= PROFILE_CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(user_id, (profile.clone(), Instant::now()));
    }

    fn forget(&self, user_id: UserId) {
        self.entries.lock().expect("profile cache lock").remove(&user_id);
    }
}

impl Users {
    pub fn new(store: &Store) -> Users {
        Users { users: store.collection(collections::USERS), cache: None }
    }

    /// `observe` answers from profiles read within `ttl` (the update consumers: every update
    /// observes its sender).
    pub fn with_profile_cache(self, ttl: Duration) -> Users {
        Users { cache: Some(Arc::new(ProfileCache { ttl, entries: Mutex::default() })), ..self }
    }

    fn forget(&self, user_id: UserId) {
        if let Some(cache) = &self.cache {
            cache.forget(user_id);
        }
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
    /// referrer is recorded only when the user is new (see `set_referrer` for later). Who they
    /// are on Telegram is stored either way.
    pub async fn register(&self, user_id: UserId, registration: Registration<'_>) -> mongodb::error::Result<bool> {
        let Registration { referrer, sender } = registration;
        let referrer = self.valid_referrer(user_id, referrer).await?;
        let mut update = doc! {
            "$setOnInsert": {
                "created_at": Self::now(),
                "referrer_id": referrer.map_or(Bson::Null, |r| Bson::Int64(r.get())),
            },
            "$set": Self::identity(&sender),
        };
        if sender.telegram_language.is_none() {
            update.get_document_mut("$setOnInsert").expect("built above").insert("telegram_language", Bson::Null);
        }
        let created = self.users.update_one(Self::filter(user_id), update).upsert(true).await?.upserted_id.is_some();
        self.take_username(user_id, sender.username).await?;
        if let (true, Some(referrer)) = (created, referrer) {
            self.upsert(referrer, doc! { "$inc": { "referrals": 1_i64 } }).await?;
        }
        Ok(created)
    }

    /// Called with every update: registers a user at their first update of any kind, and
    /// stores who they are on Telegram when an update shows it changed (no write otherwise).
    /// Returns their profile.
    pub async fn observe(&self, user_id: UserId, sender: &Sender<'_>) -> mongodb::error::Result<Profile> {
        let cached = self.cache.as_ref().and_then(|cache| cache.get(user_id));
        if let Some(profile) = cached.filter(|p| !p.is_outdated_by(sender)) {
            return Ok(profile);
        }
        let profile = self.observe_stored(user_id, sender).await?;
        if let Some(cache) = &self.cache {
            cache.put(user_id, &profile);
        }
        Ok(profile)
    }

    async fn observe_stored(&self, user_id: UserId, sender: &Sender<'_>) -> mongodb::error::Result<Profile> {
        match self.profile(user_id).await? {
            Some(profile) if !profile.is_outdated_by(sender) => Ok(profile),
            Some(_) => {
                self.users.update_one(Self::filter(user_id), doc! { "$set": Self::identity(sender) }).await?;
                self.take_username(user_id, sender.username).await?;
                Ok(self.profile(user_id).await?.unwrap_or_default())
            }
            None => {
                self.register(user_id, Registration { referrer: None, sender: *sender }).await?;
                Ok(self.profile(user_id).await?.unwrap_or_default())
            }
        }
    }

    /// Sets the referrer of a user who has none yet (a `/start ref_…` after their first update);
    /// returns whether it was set. The caller checks that they have bought nothing yet.
    pub async fn set_referrer(&self, user_id: UserId, referrer: UserId) -> mongodb::error::Result<bool> {
        let Some(referrer) = self.valid_referrer(user_id, Some(referrer)).await? else { return Ok(false) };
        let mut unset = Self::filter(user_id);
        unset.insert("referrer_id", Bson::Null);
        let set = self.users.update_one(unset, doc! { "$set": { "referrer_id": referrer.get() } }).await?.modified_count == 1;
        self.forget(user_id);
        if set {
            self.upsert(referrer, doc! { "$inc": { "referrals": 1_i64 } }).await?;
        }
        Ok(set)
    }

    /// A referrer counts when it is a known user other than the user themself.
    async fn valid_referrer(&self, user_id: UserId, referrer: Option<UserId>) -> mongodb::error::Result<Option<UserId>> {
        Ok(match referrer {
            Some(referrer) if referrer != user_id && self.find(referrer).await?.is_some() => Some(referrer),
            _ => None,
        })
    }

    /// The fields an update tells about its sender. A missing client language keeps the one
    /// stored.
    fn identity(sender: &Sender<'_>) -> Document {
        let mut set = doc! {
            "username": sender.username,
            "username_lc": sender.username.map(str::to_lowercase),
            "first_name": sender.first_name,
            "last_name": sender.last_name,
            "updated_at": Self::now(),
            "last_seen_at": Self::now(),
        };
        if let Some(language) = sender.telegram_language {
            set.insert("telegram_language", language);
        }
        if sender.in_private {
            set.insert("private_chat", true);
        }
        set
    }

    /// `username` now belongs to `user_id`: every other user who had it loses it.
    async fn take_username(&self, user_id: UserId, username: Option<&str>) -> mongodb::error::Result<()> {
        let Some(username) = username else { return Ok(()) };
        self.users
            .update_many(
                doc! { "username_lc": username.to_lowercase(), "_id": { "$ne": user_id.get() } },
                doc! { "$set": { "username": Bson::Null, "username_lc": Bson::Null, "updated_at": Self::now() } },
            )
            .comment(Bson::String(FAN_OUT_USERNAME.into()))
            .await
            .map(drop)
    }

    /// The user's profile; `None` if they never registered.
    pub async fn profile(&self, user_id: UserId) -> mongodb::error::Result<Option<Profile>> {
        let found = self.users.clone_with_type::<Profile>().find_one(Self::filter(user_id)).await?;
        Ok(found)
    }

    /// The language the user reads: the one they chose, else their Telegram client's, else
    /// Arabic (`Lang::for_user`).
    pub async fn language(&self, user_id: UserId) -> mongodb::error::Result<Lang> {
        let profile = self.profile(user_id).await?.unwrap_or_default();
        Ok(Lang::for_user(&profile, profile.telegram_language.as_deref()))
    }

    /// Turns `notification` on or off for the user (idempotent).
    pub async fn set_notification(&self, user_id: UserId, notification: Notification, on: bool) -> mongodb::error::Result<()> {
        let written = self.upsert(user_id, doc! { "$set": { notification.field(): !on, "updated_at": Self::now() } }).await;
        self.forget(user_id);
        written
    }

    /// Bans or unbans (idempotent). A banned user gets a polite refusal and nothing else.
    pub async fn set_banned(&self, user_id: UserId, banned: bool) -> mongodb::error::Result<()> {
        let written = self.upsert(user_id, doc! { "$set": { "banned": banned, "updated_at": Self::now() } }).await;
        // After the write: a read between the two cannot bring the old profile back.
        self.forget(user_id);
        written
    }

    pub async fn set_language(&self, user_id: UserId, code: &str) -> mongodb::error::Result<()> {
        let written = self.upsert(user_id, doc! { "$set": { "language": code } }).await;
        self.forget(user_id);
        written
    }

    /// Records that the user blocked the bot (idempotent).
    pub async fn mark_blocked(&self, user_id: UserId) -> mongodb::error::Result<()> {
        let written = self.upsert(user_id, doc! { "$set": { "blocked_bot": true, "updated_at": Self::now() } }).await;
        self.forget(user_id);
        written
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
        self.users.estimated_document_count().comment(Bson::String(FAN_OUT_ADMIN.into())).await
    }
}

/// Which users `Users::search` returns.
#[derive(Debug, Clone, Copy)]
pub enum UserFilter<'a> {
    All,
    Id(UserId),
    UsernamePrefix(&'a str),
}
