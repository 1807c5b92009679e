//! Subscriptions: plans from configuration, bought from the available balance, each purchase
//! adding a period that starts when the user's current subscription ends. The user's referrer
//! earns a commission in basis points of the price.
//!
//! A purchase is three idempotent steps keyed by the caller's purchase key, so replaying it after
//! a crash at any point completes it without doing anything twice:
//! 1. the purchase posting (debits the buyer; a replay returns the first result);
//! 2. the period document `_id = "<user_id>:<key>"` (a duplicate means it exists);
//! 3. the commission posting on the referrer, keyed by the buyer and the purchase key.
//!
//! A plan can grant access to a private channel or group (`channel`): the period keeps the
//! channel it granted; the bot sends a one-use invite link on purchase and approves join
//! requests while a period granting the channel runs; when the last such period ends the
//! scheduled jobs remove the user and tell them (`due_access_removals`).
//!
//! The referrer and the commission are fixed at purchase time and stored with the period; the
//! commission step pays what the period says, never who the buyer's referrer is now. So a
//! purchase replayed after the buyer gained a referrer (a late `/start ref_…`, then an old
//! confirm button pressed again) pays nobody for it.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::doc;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::ids::{IdError, IdempotencyKey, UserId};
use crate::ledger::{Ledger, LedgerError, Posting, PostingError};
use crate::money::{Money, MoneyError};
use crate::storage::{collections, is_duplicate_key, Store};

/// A plan users can buy, as configured (`[[subscriptions.plans]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PlanConfig", into = "PlanConfig")]
pub struct Plan {
    id: String,
    price: Money,
    days: u32,
    channel: Option<i64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanConfig {
    id: String,
    #[serde(with = "crate::money::text")]
    price: Money,
    days: u32,
    /// The private channel or group (its chat id) the plan grants access to; the bot must be an
    /// admin there, allowed to invite and ban.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel: Option<i64>,
}

impl TryFrom<PlanConfig> for Plan {
    type Error = String;
    fn try_from(c: PlanConfig) -> Result<Self, String> {
        let plan = Plan::new(c.id, c.price, c.days)?;
        match c.channel {
            Some(chat) if chat >= 0 => Err(format!("plan {}: channel {chat} is not a group or channel id (those are negative)", plan.id)),
            Some(chat) => Ok(plan.granting(chat)),
            None => Ok(plan),
        }
    }
}

impl From<Plan> for PlanConfig {
    fn from(p: Plan) -> Self {
        PlanConfig { id: p.id, price: p.price, days: p.days, channel: p.channel }
    }
}

impl Plan {
    /// `id` goes into inline-button data (Telegram allows 64 bytes), so it is short and plain.
    pub fn new(id: impl Into<String>, price: Money, days: u32) -> Result<Plan, String> {
        let id = id.into();
        if id.is_empty() || id.len() > 16 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(format!("plan id {id:?}: use 1 to 16 of A-Z, a-z, 0-9, _ and -"));
        }
        if !price.is_positive() {
            return Err(format!("plan {id}: the price must be positive"));
        }
        if !(1..=3660).contains(&days) {
            return Err(format!("plan {id}: days must be 1 to 3660"));
        }
        Ok(Plan { id, price, days, channel: None })
    }

    /// The plan, granting access to the group or channel `chat` (a negative chat id).
    pub fn granting(self, chat: i64) -> Plan {
        Plan { channel: Some(chat), ..self }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn price(&self) -> Money {
        self.price
    }
    pub fn days(&self) -> u32 {
        self.days
    }
    pub fn channel(&self) -> Option<i64> {
        self.channel
    }
}

/// Plans on sale and the referral commission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionsConfig {
    /// Each id once (buttons name plans by id).
    #[serde(default = "default_plans", deserialize_with = "distinct_plans")]
    pub plans: Vec<Plan>,
    /// The referrer's share of each purchase, in basis points (1,000 = 10 %); at most 10,000
    /// (a larger share would pay out more than the purchase brought in).
    #[serde(default = "default_commission_bps", deserialize_with = "commission_bps")]
    pub referral_commission_bps: u32,
}

impl Default for SubscriptionsConfig {
    fn default() -> Self {
        SubscriptionsConfig { plans: default_plans(), referral_commission_bps: default_commission_bps() }
    }
}

fn default_plans() -> Vec<Plan> {
    use crate::money::Currency::Xtr;
    vec![
        Plan::new("month", Money::from_minor(Xtr, 100), 30).expect("valid"),
        Plan::new("year", Money::from_minor(Xtr, 1_000), 365).expect("valid"),
    ]
}

fn commission_bps<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let bps = u32::deserialize(deserializer)?;
    if bps > 10_000 {
        return Err(serde::de::Error::custom(format!("{bps} basis points is more than the whole price (at most 10000)")));
    }
    Ok(bps)
}

fn distinct_plans<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Plan>, D::Error> {
    let plans = Vec::<Plan>::deserialize(deserializer)?;
    for (i, plan) in plans.iter().enumerate() {
        if plans[..i].iter().any(|p| p.id == plan.id) {
            return Err(serde::de::Error::custom(format!("two plans with the id {:?}", plan.id)));
        }
    }
    Ok(plans)
}

fn default_commission_bps() -> u32 {
    1_000
}

impl SubscriptionsConfig {
    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }
}

/// One bought period of a subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Period {
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: UserId,
    pub plan: String,
    pub price: Money,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub starts_at: DateTime<Utc>,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub expires_at: DateTime<Utc>,
    /// The buyer's referrer when this period was bought, and their commission on it.
    #[serde(default, rename = "referrer_id")]
    pub referrer: Option<UserId>,
    #[serde(default)]
    pub commission: Option<Money>,
    /// The group or channel this period grants access to, as the plan said when it was bought.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<i64>,
    /// The one-use invite link sent for it (created once, kept so a replay sends the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_link: Option<String>,
}

/// What a purchase did.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchase {
    pub period: Period,
    /// The referrer and what they earned, if the buyer has a referrer and the share is not zero.
    pub commission: Option<(UserId, Money)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("not enough balance for {0}")]
    InsufficientFunds(Money),
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Posting(#[from] PostingError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Id(#[from] IdError),
    #[error("subscriptions storage: {0}")]
    Storage(#[from] mongodb::error::Error),
}

impl From<LedgerError> for SubscriptionError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::InsufficientFunds { needed, .. } => SubscriptionError::InsufficientFunds(needed),
            other => SubscriptionError::Ledger(other),
        }
    }
}

#[derive(Clone)]
pub struct Subscriptions {
    periods: Collection<Period>,
    ledger: Ledger,
}

impl Subscriptions {
    pub fn new(store: &Store, ledger: Ledger) -> Subscriptions {
        Subscriptions { periods: store.collection(collections::SUBSCRIPTIONS), ledger }
    }

    /// Buys `plan` for `user`, once per `key` (see the module docs for the steps). `referrer` is
    /// the user's referrer now and `commission_bps` the referral share in force; both count only
    /// for a purchase not made before under `key` (a replay pays what the first attempt fixed).
    pub async fn purchase(
        &self,
        user: UserId,
        referrer: Option<UserId>,
        plan: &Plan,
        key: &IdempotencyKey,
        commission_bps: u32,
    ) -> Result<Purchase, SubscriptionError> {
        let purchase_key = IdempotencyKey::new(format!("sub:{key}"))?;
        let posting = Posting::subscription_purchase(user, purchase_key, plan.price, format!("plan {}", plan.id))?;
        self.ledger.post(&posting).await?;
        let commission = match referrer {
            Some(_) => Some(plan.price.share_bps(commission_bps)?).filter(|c| c.is_positive()),
            None => None,
        };
        let period = self.add_period(user, plan, key, referrer.zip(commission)).await?;
        let commission = match period.referrer.zip(period.commission) {
            Some((referrer, commission)) => Some(self.pay_commission(user, referrer, commission, plan, key).await?),
            None => None,
        };
        Ok(Purchase { commission, period })
    }

    async fn add_period(
        &self,
        user: UserId,
        plan: &Plan,
        key: &IdempotencyKey,
        commission: Option<(UserId, Money)>,
    ) -> Result<Period, SubscriptionError> {
        let id = format!("{user}:{key}");
        if let Some(existing) = self.periods.find_one(doc! { "_id": &id, "user_id": user.get() }).await? {
            return Ok(existing);
        }
        // BSON dates hold milliseconds; truncate so the returned period equals the stored one.
        let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now is in range");
        let starts_at = self.active_until(user).await?.filter(|until| *until > now).unwrap_or(now);
        let period = Period {
            id: id.clone(),
            user_id: user,
            plan: plan.id.clone(),
            price: plan.price,
            starts_at,
            expires_at: starts_at + chrono::Duration::days(i64::from(plan.days)),
            referrer: commission.map(|(referrer, _)| referrer),
            commission: commission.map(|(_, amount)| amount),
            channel: plan.channel,
            invite_link: None,
        };
        match self.periods.insert_one(&period).await {
            Ok(_) => Ok(period),
            Err(e) if is_duplicate_key(&e) => {
                Ok(self.periods.find_one(doc! { "_id": &id, "user_id": user.get() }).await?.unwrap_or(period))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn pay_commission(
        &self,
        buyer: UserId,
        referrer: UserId,
        commission: Money,
        plan: &Plan,
        key: &IdempotencyKey,
    ) -> Result<(UserId, Money), SubscriptionError> {
        let key = IdempotencyKey::new(format!("refc:{buyer}:{key}"))?;
        let posting = Posting::referral_commission(referrer, key, commission, format!("referral: {buyer} bought {}", plan.id))?;
        self.ledger.post(&posting).await?;
        Ok((referrer, commission))
    }

    /// Whether a purchase under `key` was begun (its payment posted): a replay must finish it as
    /// it began, whatever the plans say now.
    pub async fn purchase_started(&self, user: UserId, key: &IdempotencyKey) -> Result<bool, SubscriptionError> {
        Ok(self.ledger.has_posting(user, &IdempotencyKey::new(format!("sub:{key}"))?).await?)
    }

    /// When the user's subscription (all bought periods) ends, if they ever had one.
    pub async fn active_until(&self, user: UserId) -> Result<Option<DateTime<Utc>>, SubscriptionError> {
        let latest = self.periods.find_one(doc! { "user_id": user.get() }).sort(doc! { "expires_at": -1 }).await?;
        Ok(latest.map(|p| p.expires_at))
    }

    /// The user's periods, newest first.
    pub async fn periods(&self, user: UserId) -> Result<Vec<Period>, SubscriptionError> {
        let cursor = self.periods.find(doc! { "user_id": user.get() }).sort(doc! { "expires_at": -1 }).limit(100).await?;
        Ok(cursor.try_collect().await?)
    }

    /// Periods whose notice is due and not yet recorded as given: for `EndsSoon`, periods ending
    /// within `window` from `now`; for `Ended`, periods that ended within `window` before `now`.
    /// A period followed by another (the user renewed) is due too: `notice_given` with
    /// `send = false` retires it; `is_last` tells the two apart.
    pub async fn due_notices(&self, notice: Notice, now: DateTime<Utc>, window: chrono::Duration, limit: u32) -> Result<Vec<Period>, SubscriptionError> {
        let (from, to) = match notice {
            Notice::EndsSoon => (now, now + window),
            Notice::Ended => (now - window, now),
        };
        let filter = doc! {
            "expires_at": { "$gt": bson::DateTime::from_chrono(from), "$lte": bson::DateTime::from_chrono(to) },
            notice.field(): { "$exists": false },
        };
        let cursor = self
            .periods
            .find(filter)
            .sort(doc! { "expires_at": 1 })
            .limit(i64::from(limit))
            .comment(bson::Bson::String("fan-out: subscription notices".into()))
            .await?;
        Ok(cursor.try_collect().await?)
    }

    /// Users with a period running at `now`.
    pub async fn active_count(&self, now: DateTime<Utc>) -> Result<u64, SubscriptionError> {
        let now = bson::DateTime::from_chrono(now);
        let pipeline = vec![
            doc! { "$match": { "expires_at": { "$gt": now }, "starts_at": { "$lte": now } } },
            doc! { "$group": { "_id": "$user_id" } },
            doc! { "$count": "users" },
        ];
        let mut cursor = self
            .periods
            .clone_with_type::<bson::Document>()
            .aggregate(pipeline)
            .comment(bson::Bson::String("fan-out: active subscriptions".into()))
            .await?;
        let counted = cursor.try_next().await?;
        Ok(counted.and_then(|d| d.get_i32("users").ok()).map_or(0, |n| n as u64))
    }

    /// Whether `period` ends the user's subscription (no later period was bought).
    pub async fn is_last(&self, period: &Period) -> Result<bool, SubscriptionError> {
        Ok(self.active_until(period.user_id).await? == Some(period.expires_at))
    }

    /// The period's invite link: `link` if it had none (created by the caller just now), else
    /// the one kept from an earlier attempt (the caller's extra link is never sent).
    pub async fn keep_invite_link(&self, period: &Period, link: &str) -> Result<String, SubscriptionError> {
        let filter = doc! { "_id": &period.id, "user_id": period.user_id.get(), "invite_link": { "$exists": false } };
        self.periods.update_one(filter, doc! { "$set": { "invite_link": link } }).await?;
        let stored = self.periods.find_one(doc! { "_id": &period.id, "user_id": period.user_id.get() }).await?;
        Ok(stored.and_then(|p| p.invite_link).unwrap_or_else(|| link.to_owned()))
    }

    /// Whether a period granting `chat` runs for `user` at `now`.
    pub async fn grants_access(&self, user: UserId, chat: i64, now: DateTime<Utc>) -> Result<bool, SubscriptionError> {
        let now = bson::DateTime::from_chrono(now);
        let filter = doc! { "user_id": user.get(), "channel": chat, "starts_at": { "$lte": now }, "expires_at": { "$gt": now } };
        Ok(self.periods.find_one(filter).await?.is_some())
    }

    /// Ended periods that granted a channel and whose access is not settled yet, oldest first.
    pub async fn due_access_removals(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Period>, SubscriptionError> {
        let filter = doc! {
            "expires_at": { "$lte": bson::DateTime::from_chrono(now) },
            "channel": { "$exists": true },
            "access_settled_at": { "$exists": false },
            "$or": [{ "access_retry_at": { "$exists": false } }, { "access_retry_at": { "$lte": bson::DateTime::from_chrono(now) } }],
        };
        let cursor = self
            .periods
            .find(filter)
            .sort(doc! { "expires_at": 1 })
            .limit(i64::from(limit))
            .comment(bson::Bson::String("fan-out: channel access removals".into()))
            .await?;
        Ok(cursor.try_collect().await?)
    }

    /// Removing the user failed (Telegram refused): try again after `at`, so periods that keep
    /// failing do not hold back the others.
    pub async fn access_retry_after(&self, period: &Period, at: DateTime<Utc>) -> Result<(), SubscriptionError> {
        let filter = doc! { "_id": &period.id, "user_id": period.user_id.get() };
        self.periods.update_one(filter, doc! { "$set": { "access_retry_at": bson::DateTime::from_chrono(at) } }).await?;
        Ok(())
    }

    /// Records that the end of `period`'s access was handled (the user removed, or kept on by a
    /// later period), so it is not due again.
    pub async fn access_settled(&self, period: &Period) -> Result<(), SubscriptionError> {
        let filter = doc! { "_id": &period.id, "user_id": period.user_id.get() };
        self.periods.update_one(filter, doc! { "$set": { "access_settled_at": bson::DateTime::now() } }).await?;
        Ok(())
    }

    /// Records that `notice` for `period` was handled, so it is not due again.
    pub async fn notice_given(&self, period: &Period, notice: Notice) -> Result<(), SubscriptionError> {
        let filter = doc! { "_id": &period.id, "user_id": period.user_id.get() };
        let set = doc! { "$set": { notice.field(): bson::DateTime::now() } };
        self.periods.update_one(filter, set).await?;
        Ok(())
    }
}

/// The messages a subscriber gets about the end of their subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    EndsSoon,
    Ended,
}

impl Notice {
    fn field(self) -> &'static str {
        match self {
            Notice::EndsSoon => "reminded_at",
            Notice::Ended => "ended_notice_at",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Notice::EndsSoon => "ends_soon",
            Notice::Ended => "ended",
        }
    }
}
