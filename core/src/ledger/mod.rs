//! The double-entry ledger on MongoDB.
//!
//! Applying a posting is one multi-document transaction on the user's shard: insert the posting
//! under `_id = "<user_id>:<key>"` (a duplicate means it was applied before), then `$inc` each of
//! the user's balance documents, debits only where the balance covers them (a conditional update,
//! not a read-then-write). Write conflicts between concurrent transactions are retried whole.

mod posting;

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{Error as MongoError, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use mongodb::options::{ReadConcern, WriteConcern};
use mongodb::{ClientSession, Collection};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use posting::{Account, Entry, PlatformAccount, Posting, PostingError, PostingKind, UnknownAccount, UserAccount};

use crate::ids::{IdempotencyKey, UserId};
use crate::money::{Currency, Money};
use crate::storage::{collections, is_duplicate_key, Store};

/// How often a transaction that lost a write conflict is tried again before giving up. Giving up
/// is safe (nothing was committed) and the caller's job is retried later.
const MAX_TRANSACTION_ATTEMPTS: u32 = 60;

/// A posting as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostingRecord {
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: UserId,
    pub key: String,
    pub kind: PostingKind,
    pub reason: String,
    pub entries: Vec<Entry>,
    pub fingerprint: String,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
}

/// Which postings an admin lists across all users (`Ledger::platform_postings`).
#[derive(Debug, Clone, Default)]
pub struct PostingFilter {
    pub kind: Option<PostingKind>,
    /// Postings with an entry in this currency.
    pub currency: Option<Currency>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
}

/// Where the next page of platform postings starts: after this posting (newest first). As
/// text, `<created_at ms>:<posting id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingCursor {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

impl PostingCursor {
    pub fn after(posting: &PostingRecord) -> PostingCursor {
        PostingCursor { created_at: posting.created_at, id: posting.id.clone() }
    }

    pub fn encode(&self) -> String {
        format!("{}:{}", self.created_at.timestamp_millis(), self.id)
    }

    pub fn parse(text: &str) -> Option<PostingCursor> {
        let (ms, id) = text.split_once(':')?;
        let created_at = DateTime::from_timestamp_millis(ms.parse().ok()?)?;
        (!id.is_empty()).then(|| PostingCursor { created_at, id: id.to_owned() })
    }
}

/// A user's materialized balance on one account and currency.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BalanceDoc {
    #[serde(rename = "_id")]
    id: String,
    user_id: UserId,
    account: Account,
    currency: Currency,
    amount: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub account: UserAccount,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PostOutcome {
    /// This call applied the posting.
    Applied(PostingRecord),
    /// The key was applied before (by this or another process); nothing changed.
    AlreadyApplied(PostingRecord),
}

impl PostOutcome {
    pub fn record(&self) -> &PostingRecord {
        match self {
            PostOutcome::Applied(r) | PostOutcome::AlreadyApplied(r) => r,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient funds on {} for {needed}", .account.code())]
    InsufficientFunds { account: UserAccount, needed: Money },
    #[error("idempotency key {key} was already used for a different posting")]
    KeyReused { key: String },
    /// The guarded document was not in the expected state: nothing was posted.
    #[error("posting {key} not applied: {what} changed meanwhile")]
    GuardMismatch { key: String, what: String },
    #[error("ledger storage: {0}")]
    Storage(#[from] MongoError),
}

/// A change to one document of the user's that must commit together with a posting, or not at
/// all: a compare-and-set (`filter` must match, `update` is applied) inside the posting's
/// transaction. A state machine uses it so that its status and its ledger cannot disagree (a
/// withdrawal is `sent` exactly when its settlement is posted).
#[derive(Debug, Clone)]
pub struct Guard {
    pub collection: &'static str,
    /// Must include `user_id`, so the transaction stays on the user's shard.
    pub filter: Document,
    pub update: Document,
}

/// A user balance that differs from the sum of its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditMismatch {
    pub user_id: UserId,
    pub account: UserAccount,
    pub currency: Currency,
    pub balance: i64,
    pub sum_of_entries: i64,
}

#[derive(Clone, Debug)]
pub struct Ledger {
    store: Store,
    postings: Collection<PostingRecord>,
    balances: Collection<BalanceDoc>,
}

fn posting_id(user_id: UserId, key: &str) -> String {
    format!("{user_id}:{key}")
}

fn balance_id(user_id: UserId, account: UserAccount, currency: Currency) -> String {
    format!("{user_id}:{}:{}", account.code(), currency.code())
}

impl Ledger {
    pub fn new(store: Store) -> Ledger {
        Ledger {
            postings: store.collection(collections::POSTINGS),
            balances: store.collection(collections::BALANCES),
            store,
        }
    }

    /// Applies `posting` once. Replaying the same key returns the first result and changes
    /// nothing; replaying it with different entries is refused with `KeyReused`.
    pub async fn post(&self, posting: &Posting) -> Result<PostOutcome, LedgerError> {
        self.post_inner(posting, None).await
    }

    /// Applies `posting` once, together with `guard`: both commit or neither does. If the
    /// posting's key was applied before, nothing changes and the guard is not evaluated (the
    /// first application committed it). If the guard's filter matches nothing, nothing is
    /// posted: `GuardMismatch`.
    pub async fn post_guarded(&self, posting: &Posting, guard: &Guard) -> Result<PostOutcome, LedgerError> {
        self.post_inner(posting, Some(guard)).await
    }

    async fn post_inner(&self, posting: &Posting, guard: Option<&Guard>) -> Result<PostOutcome, LedgerError> {
        let record = PostingRecord {
            id: posting_id(posting.user_id(), posting.key().as_str()),
            user_id: posting.user_id(),
            key: posting.key().to_string(),
            kind: posting.kind(),
            reason: posting.reason().to_owned(),
            entries: posting.entries().to_vec(),
            fingerprint: posting.fingerprint(),
            // BSON dates hold milliseconds; truncate now so the returned record equals the stored one.
            created_at: DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now is in range"),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.post_once(posting, &record, guard).await {
                Err(LedgerError::Storage(e))
                    if e.contains_label(TRANSIENT_TRANSACTION_ERROR) && attempt < MAX_TRANSACTION_ATTEMPTS =>
                {
                    metrics::counter!("ledger_transaction_retries_total").increment(1);
                    tokio::time::sleep(backoff(attempt)).await;
                }
                outcome => {
                    let label = match &outcome {
                        Ok(PostOutcome::Applied(_)) => "applied",
                        Ok(PostOutcome::AlreadyApplied(_)) => "already_applied",
                        Err(LedgerError::InsufficientFunds { .. }) => "insufficient_funds",
                        Err(LedgerError::KeyReused { .. }) => "key_reused",
                        Err(LedgerError::GuardMismatch { .. }) => "guard_mismatch",
                        Err(LedgerError::Storage(_)) => "storage_error",
                    };
                    metrics::counter!("ledger_postings_total", "outcome" => label).increment(1);
                    return outcome;
                }
            }
        }
    }

    async fn post_once(&self, posting: &Posting, record: &PostingRecord, guard: Option<&Guard>) -> Result<PostOutcome, LedgerError> {
        let mut session = self.store.client().start_session().await?;
        session
            .start_transaction()
            .read_concern(ReadConcern::snapshot())
            .write_concern(WriteConcern::majority())
            .await?;
        match self.write_posting(&mut session, posting, record, guard).await {
            Ok(()) => {}
            Err(err) => {
                // Best effort: the server also aborts on its own when the session ends.
                let _ = session.abort_transaction().await;
                return match err {
                    LedgerError::Storage(e) if is_duplicate_key(&e) => self.existing(record).await,
                    other => Err(other),
                };
            }
        }
        commit(&mut session).await?;
        Ok(PostOutcome::Applied(record.clone()))
    }

    async fn write_posting(
        &self,
        session: &mut ClientSession,
        posting: &Posting,
        record: &PostingRecord,
        guard: Option<&Guard>,
    ) -> Result<(), LedgerError> {
        self.postings.insert_one(record).session(&mut *session).await?;
        if let Some(guard) = guard {
            let guarded = self.store.collection::<Document>(guard.collection);
            let result = guarded.update_one(guard.filter.clone(), guard.update.clone()).session(&mut *session).await?;
            if result.matched_count == 0 {
                return Err(LedgerError::GuardMismatch { key: record.key.clone(), what: guard.collection.to_owned() });
            }
        }
        let user_id = posting.user_id();
        let now = Bson::DateTime(mongodb::bson::DateTime::from_chrono(record.created_at));
        for ((account, currency), change) in posting.user_changes() {
            let id = balance_id(user_id, account, currency);
            if change < 0 {
                let filter = doc! { "_id": &id, "user_id": user_id.get(), "amount": { "$gte": -change } };
                let update = doc! { "$inc": { "amount": change }, "$set": { "updated_at": now.clone() } };
                let result = self.balances.update_one(filter, update).session(&mut *session).await?;
                if result.matched_count == 0 {
                    return Err(LedgerError::InsufficientFunds {
                        account,
                        needed: Money::from_minor(currency, -change),
                    });
                }
            } else {
                let filter = doc! { "_id": &id, "user_id": user_id.get() };
                let update = doc! {
                    "$inc": { "amount": change },
                    "$set": { "updated_at": now.clone() },
                    "$setOnInsert": { "account": account.code(), "currency": currency.code() },
                };
                self.balances.update_one(filter, update).upsert(true).session(&mut *session).await?;
            }
        }
        Ok(())
    }

    /// The stored posting for a key that was applied before.
    async fn existing(&self, record: &PostingRecord) -> Result<PostOutcome, LedgerError> {
        let filter = doc! { "_id": &record.id, "user_id": record.user_id.get() };
        let stored = self.postings.find_one(filter).await?.ok_or_else(|| {
            // A duplicate key whose document cannot be read back: treat as transient and retry.
            LedgerError::Storage(MongoError::custom(format!("posting {} vanished after a duplicate key", record.id)))
        })?;
        if stored.fingerprint == record.fingerprint {
            Ok(PostOutcome::AlreadyApplied(stored))
        } else {
            Err(LedgerError::KeyReused { key: record.key.clone() })
        }
    }

    /// All of a user's materialized balances (accounts never touched are absent, i.e. zero).
    pub async fn balances(&self, user_id: UserId) -> Result<Vec<Balance>, LedgerError> {
        let docs: Vec<BalanceDoc> =
            self.balances.find(doc! { "user_id": user_id.get() }).await?.try_collect().await?;
        Ok(docs
            .into_iter()
            .filter_map(|d| match d.account {
                Account::User(account) => Some(Balance { account, amount: Money::from_minor(d.currency, d.amount) }),
                Account::Platform(_) => None,
            })
            .collect())
    }

    pub async fn balance(
        &self,
        user_id: UserId,
        account: UserAccount,
        currency: Currency,
    ) -> Result<Money, LedgerError> {
        let filter = doc! { "_id": balance_id(user_id, account, currency), "user_id": user_id.get() };
        let amount = self.balances.find_one(filter).await?.map_or(0, |d| d.amount);
        Ok(Money::from_minor(currency, amount))
    }

    /// A user's postings, newest first.
    pub async fn history(&self, user_id: UserId, offset: u64, limit: u32) -> Result<Vec<PostingRecord>, LedgerError> {
        Ok(self
            .postings
            .find(doc! { "user_id": user_id.get() })
            .sort(doc! { "created_at": -1, "_id": -1 })
            .skip(offset)
            .limit(i64::from(limit.min(100)))
            .await?
            .try_collect()
            .await?)
    }

    /// Postings of every user matching `filter`, newest first, `limit` (at most 200) from after
    /// `after`. Paged by cursor, never by skip: on a sharded collection a skip reads every
    /// skipped posting on every shard.
    pub async fn platform_postings(
        &self,
        filter: &PostingFilter,
        after: Option<&PostingCursor>,
        limit: u32,
    ) -> Result<Vec<PostingRecord>, LedgerError> {
        let mut query = Document::new();
        if let Some(kind) = filter.kind {
            query.insert("kind", bson_of(&kind)?);
        }
        if let Some(currency) = filter.currency {
            query.insert("entries.currency", bson_of(&currency)?);
        }
        let mut created = Document::new();
        if let Some(from) = filter.from {
            created.insert("$gte", bson::DateTime::from_chrono(from));
        }
        if let Some(to) = filter.to {
            created.insert("$lt", bson::DateTime::from_chrono(to));
        }
        if !created.is_empty() {
            query.insert("created_at", created);
        }
        if let Some(after) = after {
            let at = bson::DateTime::from_chrono(after.created_at);
            query.insert("$or", vec![doc! { "created_at": { "$lt": at } }, doc! { "created_at": at, "_id": { "$lt": &after.id } }]);
        }
        Ok(self
            .postings
            .find(query)
            .sort(doc! { "created_at": -1, "_id": -1 })
            .limit(i64::from(limit.clamp(1, 200)))
            .comment(Bson::String("fan-out: admin platform postings".into()))
            .await?
            .try_collect()
            .await?)
    }

    /// Whether the user has any posting of `kind` (e.g. has ever bought a subscription).
    /// Whether the posting with idempotency key `key` was made for the user.
    pub async fn has_posting(&self, user_id: UserId, key: &IdempotencyKey) -> Result<bool, LedgerError> {
        let filter = doc! { "_id": posting_id(user_id, key.as_str()), "user_id": user_id.get() };
        Ok(self.postings.clone_with_type::<Document>().find_one(filter).projection(doc! { "_id": 1 }).await?.is_some())
    }

    pub async fn has_posting_of_kind(&self, user_id: UserId, kind: PostingKind) -> Result<bool, LedgerError> {
        let kind = bson_of(&kind)?;
        let found = self.postings.clone_with_type::<Document>().find_one(doc! { "user_id": user_id.get(), "kind": kind }).projection(doc! { "_id": 1 }).await?;
        Ok(found.is_some())
    }

    /// What postings of `kind` added to the user's available balance, per currency (e.g. a
    /// referrer's total commissions).
    pub async fn total_of_kind(&self, user_id: UserId, kind: PostingKind) -> Result<Vec<Money>, LedgerError> {
        let kind = bson_of(&kind)?;
        let pipeline = vec![
            doc! { "$match": { "user_id": user_id.get(), "kind": kind } },
            doc! { "$unwind": "$entries" },
            doc! { "$match": { "entries.account": UserAccount::Available.code() } },
            doc! { "$group": { "_id": "$entries.currency", "total": { "$sum": "$entries.amount" } } },
        ];
        let mut totals = Vec::new();
        let mut cursor = self.postings.clone_with_type::<Document>().aggregate(pipeline).await?;
        while let Some(group) = cursor.try_next().await? {
            let currency = group.get_str("_id").ok().and_then(|c| c.parse::<Currency>().ok());
            if let Some(currency) = currency {
                totals.push(Money::from_minor(currency, int_of(&group, "total")?));
            }
        }
        totals.sort_by_key(|m| m.currency());
        Ok(totals)
    }

    /// Recomputes a user's balances from their entries and reports every account where the
    /// materialized balance differs (or is negative).
    pub async fn audit_user(&self, user_id: UserId) -> Result<Vec<AuditMismatch>, LedgerError> {
        let user_accounts: Vec<&str> = UserAccount::ALL.iter().map(|a| a.code()).collect();
        let pipeline = vec![
            doc! { "$match": { "user_id": user_id.get() } },
            doc! { "$unwind": "$entries" },
            doc! { "$match": { "entries.account": { "$in": user_accounts } } },
            doc! { "$group": {
                "_id": { "account": "$entries.account", "currency": "$entries.currency" },
                "total": { "$sum": "$entries.amount" },
            } },
        ];
        let mut sums = std::collections::BTreeMap::new();
        let mut cursor = self.postings.clone_with_type::<Document>().aggregate(pipeline).await?;
        while let Some(group) = cursor.try_next().await? {
            let id = group.get_document("_id").map_err(|e| MongoError::custom(e.to_string()))?;
            let account = id.get_str("account").ok().and_then(|a| a.parse::<Account>().ok());
            let currency = id.get_str("currency").ok().and_then(|c| c.parse::<Currency>().ok());
            let total = int_of(&group, "total")?;
            if let (Some(Account::User(account)), Some(currency)) = (account, currency) {
                sums.insert((account, currency), total);
            }
        }
        let mut mismatches = Vec::new();
        let balances = self.balances(user_id).await?;
        for balance in &balances {
            let key = (balance.account, balance.amount.currency());
            let sum = sums.remove(&key).unwrap_or(0);
            if sum != balance.amount.minor() || balance.amount.is_negative() {
                mismatches.push(AuditMismatch {
                    user_id,
                    account: balance.account,
                    currency: key.1,
                    balance: balance.amount.minor(),
                    sum_of_entries: sum,
                });
            }
        }
        // Entries on an account that has no balance document at all.
        for ((account, currency), sum) in sums.into_iter().filter(|(_, sum)| *sum != 0) {
            mismatches.push(AuditMismatch { user_id, account, currency, balance: 0, sum_of_entries: sum });
        }
        Ok(mismatches)
    }
}

/// A day's total of one kind of posting on one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DayTotal {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub amount: Money,
}

/// What a full ledger audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub users: u64,
    pub mismatches: Vec<AuditMismatch>,
}

impl Ledger {
    /// Audits every user that has a balance, `concurrency` users at a time.
    pub async fn audit_all(&self, concurrency: usize) -> Result<AuditReport, LedgerError> {
        let users = self
            .balances
            .clone_with_type::<Document>()
            .find(doc! {})
            .projection(doc! { "_id": 0, "user_id": 1 })
            .sort(doc! { "user_id": 1 })
            .comment(Bson::String("fan-out: ledger audit".into()))
            .await?
            .try_filter_map(|d| async move { Ok(d.get_i64("user_id").ok().and_then(|id| UserId::new(id).ok())) });
        // Sorted by user, so one user's balances are adjacent.
        let mut last = None;
        let users = users.try_filter(move |id| {
            let new = last != Some(*id);
            last = Some(*id);
            async move { new }
        });
        let mut report = AuditReport::default();
        let mut audits = std::pin::pin!(users
            .map_err(LedgerError::from)
            .map_ok(|id| self.audit_user(id))
            .try_buffer_unordered(concurrency.max(1)));
        while let Some(mismatches) = audits.try_next().await? {
            report.users += 1;
            report.mismatches.extend(mismatches);
        }
        report.mismatches.sort_by_key(|m| (m.user_id, m.account.code(), m.currency));
        Ok(report)
    }

    /// Per UTC day since `since`, what postings of `kind` moved on `account` (summed per currency;
    /// the sign as the account sees it).
    pub async fn totals_by_day(&self, kind: PostingKind, account: &Account, since: DateTime<Utc>) -> Result<Vec<DayTotal>, LedgerError> {
        let kind = bson_of(&kind)?;
        let pipeline = vec![
            doc! { "$match": { "kind": kind, "created_at": { "$gte": bson::DateTime::from_chrono(since) } } },
            doc! { "$unwind": "$entries" },
            doc! { "$match": { "entries.account": account.to_string() } },
            doc! { "$group": {
                "_id": {
                    "day": { "$dateToString": { "format": "%Y-%m-%d", "date": "$created_at" } },
                    "currency": "$entries.currency",
                },
                "total": { "$sum": "$entries.amount" },
            } },
            doc! { "$sort": { "_id.day": 1, "_id.currency": 1 } },
        ];
        let mut totals = Vec::new();
        let mut cursor = self
            .postings
            .clone_with_type::<Document>()
            .aggregate(pipeline)
            .comment(Bson::String("fan-out: daily totals".into()))
            .await?;
        while let Some(group) = cursor.try_next().await? {
            let id = group.get_document("_id").map_err(|e| MongoError::custom(e.to_string()))?;
            let currency = id.get_str("currency").ok().and_then(|c| c.parse::<Currency>().ok());
            if let (Ok(day), Some(currency)) = (id.get_str("day"), currency) {
                totals.push(DayTotal { day: day.to_owned(), amount: Money::from_minor(currency, int_of(&group, "total")?) });
            }
        }
        Ok(totals)
    }

    /// The referrers credited the most commission in `currency` since `since`, most first, with
    /// how many commissions each got.
    pub async fn top_referrers(&self, currency: Currency, since: DateTime<Utc>, limit: u32) -> Result<Vec<ReferrerTotal>, LedgerError> {
        let kind = bson_of(&PostingKind::ReferralCommission)?;
        let currency_code = bson_of(&currency)?;
        let pipeline = vec![
            doc! { "$match": { "kind": kind, "created_at": { "$gte": bson::DateTime::from_chrono(since) } } },
            doc! { "$unwind": "$entries" },
            doc! { "$match": { "entries.account": Account::User(UserAccount::Available).to_string(), "entries.currency": currency_code } },
            doc! { "$group": { "_id": "$user_id", "total": { "$sum": "$entries.amount" }, "commissions": { "$sum": 1 } } },
            doc! { "$sort": { "total": -1, "_id": 1 } },
            doc! { "$limit": i64::from(limit.clamp(1, 100)) },
        ];
        let mut cursor = self.postings.clone_with_type::<Document>().aggregate(pipeline).comment(Bson::String("fan-out: top referrers".into())).await?;
        let mut top = Vec::new();
        while let Some(group) = cursor.try_next().await? {
            let user_id = group.get_i64("_id").ok().and_then(|id| UserId::new(id).ok());
            if let Some(user_id) = user_id {
                let commissions = u64::try_from(int_of(&group, "commissions")?).unwrap_or(0);
                top.push(ReferrerTotal { user_id, commission: Money::from_minor(currency, int_of(&group, "total")?), commissions });
            }
        }
        Ok(top)
    }
}

/// One referrer's commissions (`Ledger::top_referrers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferrerTotal {
    pub user_id: UserId,
    pub commission: Money,
    pub commissions: u64,
}

/// An integer `field` of a `$group` stage's result (`$sum` yields an int32 for small sums).
fn int_of(group: &Document, field: &str) -> Result<i64, LedgerError> {
    match group.get(field) {
        Some(Bson::Int64(v)) => Ok(*v),
        Some(Bson::Int32(v)) => Ok(i64::from(*v)),
        other => Err(MongoError::custom(format!("unexpected {field} {other:?}")).into()),
    }
}

/// A value as it is stored (a posting kind, a currency code), for a query.
fn bson_of<T: Serialize>(value: &T) -> Result<Bson, MongoError> {
    bson::to_bson(value).map_err(|e| MongoError::custom(e.to_string()))
}

async fn commit(session: &mut ClientSession) -> Result<(), MongoError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match session.commit_transaction().await {
            Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) && attempt < MAX_TRANSACTION_ATTEMPTS => {
                tokio::time::sleep(backoff(attempt)).await;
            }
            other => return other,
        }
    }
}

/// Exponential backoff with full jitter, capped at ~64 ms: contending transactions spread out
/// instead of colliding again in lockstep.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = 1u64 << attempt.min(6);
    Duration::from_micros(rand::rng().random_range(0..=cap_ms * 1_000))
}
