//! Balance corrections by admins: a signed amount with a reason, posted as an
//! `admin_adjustment` against the platform's adjustments account. Each is keyed (a repeated
//! request changes nothing) and capped per currency. Once a user's corrections in a currency
//! over the last 24 hours (this one included) pass a per-currency amount, it waits for a second
//! admin: it is stored as pending, and only an approval by another token posts it. (Summing
//! keeps one admin from splitting a large correction into small ones; two requests racing can
//! both pass as small, which the audit log shows.) Every correction is kept in `adjustments`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::ids::{IdError, IdempotencyKey, UserId};
use crate::ledger::{Ledger, LedgerError, PostOutcome, Posting, PostingError};
use crate::money::{Currency, Money};
use crate::storage::{collections, is_duplicate_key, Store};

/// Limits for one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentLimits {
    /// The largest correction, either way.
    #[serde(with = "crate::money::text")]
    pub max: Money,
    /// Corrections larger than this (either way) need a second admin.
    #[serde(with = "crate::money::text")]
    pub second_approval_above: Money,
}

/// Limits per currency; a currency without limits cannot be corrected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentPolicy(pub BTreeMap<Currency, AdjustmentLimits>);

impl Default for AdjustmentPolicy {
    fn default() -> Self {
        let limits = |max: Money, second: Money| AdjustmentLimits { max, second_approval_above: second };
        AdjustmentPolicy(BTreeMap::from([
            (Currency::Usdt, limits(Money::from_minor(Currency::Usdt, 1_000_000_000), Money::from_minor(Currency::Usdt, 100_000_000))),
            (Currency::Xtr, limits(Money::from_minor(Currency::Xtr, 100_000), Money::from_minor(Currency::Xtr, 10_000))),
        ]))
    }
}

/// What an admin asks for.
#[derive(Debug, Clone)]
pub struct AdjustmentRequest {
    pub user_id: UserId,
    /// Positive credits, negative debits.
    pub change: Money,
    pub reason: String,
    /// The admin's idempotency key for this correction.
    pub key: IdempotencyKey,
    /// The API token that asked.
    pub requested_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AdjustmentOutcome {
    /// Posted now, or had been.
    Applied(PostOutcome),
    /// Stored; waits for a second admin (`approve`).
    AwaitingApproval { id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum AdjustmentError {
    #[error("a correction needs a reason")]
    NoReason,
    #[error("{0} is not corrected by hand here (no limits configured)")]
    CurrencyNotAllowed(Currency),
    #[error("{change} is beyond the limit of {max} per correction")]
    OverLimit { change: Money, max: Money },
    #[error("correction {0} not found")]
    NotFound(String),
    #[error("the admin who asked for correction {0} cannot approve it too")]
    SameAdmin(String),
    #[error("key {0} was used for a different correction")]
    KeyReused(String),
    #[error("the user does not have {0} to take")]
    InsufficientFunds(Money),
    #[error(transparent)]
    Posting(#[from] PostingError),
    #[error(transparent)]
    Id(#[from] IdError),
    #[error("ledger: {0}")]
    Ledger(LedgerError),
    #[error("storage: {0}")]
    Storage(#[from] mongodb::error::Error),
}

impl From<LedgerError> for AdjustmentError {
    fn from(err: LedgerError) -> Self {
        match err {
            LedgerError::InsufficientFunds { needed, .. } => AdjustmentError::InsufficientFunds(needed),
            LedgerError::KeyReused { key } => AdjustmentError::KeyReused(key),
            other => AdjustmentError::Ledger(other),
        }
    }
}

/// A correction as kept in `adjustments`: `applied` at once, `pending` a second admin, or
/// `approved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentRecord {
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: UserId,
    pub change: Money,
    pub reason: String,
    pub requested_by: String,
    /// `applied`, `pending` or `approved`.
    pub status: String,
    #[serde(default)]
    pub approved_by: Option<String>,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Adjustments {
    ledger: Ledger,
    records: Collection<AdjustmentRecord>,
}

impl Adjustments {
    pub fn new(store: &Store, ledger: Ledger) -> Adjustments {
        Adjustments { ledger, records: store.collection(collections::ADJUSTMENTS) }
    }

    /// Posts the correction, or stores it for a second admin when it is above the threshold.
    /// Idempotent on the key.
    pub async fn request(&self, policy: &AdjustmentPolicy, request: AdjustmentRequest) -> Result<AdjustmentOutcome, AdjustmentError> {
        let reason = request.reason.trim();
        if reason.is_empty() {
            return Err(AdjustmentError::NoReason);
        }
        let currency = request.change.currency();
        let limits = policy.0.get(&currency).ok_or(AdjustmentError::CurrencyNotAllowed(currency))?;
        let size = request.change.minor().unsigned_abs();
        if size > limits.max.minor().unsigned_abs() {
            return Err(AdjustmentError::OverLimit { change: request.change, max: limits.max });
        }
        let id = format!("{}:{}", request.user_id, request.key);
        let recent = self.recent_total(request.user_id, currency).await?;
        let small = recent.saturating_add(size) <= limits.second_approval_above.minor().unsigned_abs();
        let record = AdjustmentRecord {
            id: id.clone(),
            user_id: request.user_id,
            change: request.change,
            reason: reason.to_owned(),
            requested_by: request.requested_by,
            status: if small { "applied" } else { "pending" }.into(),
            approved_by: None,
            created_at: Utc::now(),
        };
        let stored = match self.records.insert_one(&record).await {
            Ok(_) => record,
            Err(e) if is_duplicate_key(&e) => {
                let stored = self.get(&id).await?;
                if stored.change != record.change || stored.user_id != record.user_id {
                    return Err(AdjustmentError::KeyReused(id));
                }
                stored
            }
            Err(e) => return Err(e.into()),
        };
        match stored.status.as_str() {
            "pending" => Ok(AdjustmentOutcome::AwaitingApproval { id }),
            _ => self.post(&id, stored.user_id, stored.change, &stored.reason).await.map(AdjustmentOutcome::Applied),
        }
    }

    /// The size of `user`'s corrections in `currency` over the last 24 hours, whatever their
    /// state, in minor units.
    async fn recent_total(&self, user: UserId, currency: Currency) -> Result<u64, AdjustmentError> {
        let since = Bson::DateTime((Utc::now() - chrono::Duration::hours(24)).into());
        let filter = doc! { "user_id": user.get(), "change.currency": currency.code(), "created_at": { "$gte": since } };
        let recent: Vec<AdjustmentRecord> = self.records.find(filter).await?.try_collect().await?;
        Ok(recent.iter().map(|r| r.change.minor().unsigned_abs()).sum())
    }

    pub async fn get(&self, id: &str) -> Result<AdjustmentRecord, AdjustmentError> {
        self.records.find_one(doc! { "_id": id }).await?.ok_or_else(|| AdjustmentError::NotFound(id.to_owned()))
    }

    /// A second admin approves a pending correction: it is posted (once). The admin who asked
    /// cannot approve their own.
    pub async fn approve(&self, id: &str, approver: &str) -> Result<PostOutcome, AdjustmentError> {
        let pending = self.get(id).await?;
        if pending.status == "applied" {
            return Err(AdjustmentError::NotFound(format!("{id} (applied without approval)")));
        }
        if pending.requested_by == approver {
            return Err(AdjustmentError::SameAdmin(id.to_owned()));
        }
        let outcome = self.post(id, pending.user_id, pending.change, &pending.reason).await?;
        let approved = doc! { "$set": { "status": "approved", "approved_by": approver, "approved_at": Bson::DateTime(Utc::now().into()) } };
        self.records.update_one(doc! { "_id": id, "status": "pending" }, approved).await?;
        Ok(outcome)
    }

    async fn post(&self, id: &str, user: UserId, change: Money, reason: &str) -> Result<PostOutcome, AdjustmentError> {
        let posting = Posting::admin_adjustment(user, IdempotencyKey::new(format!("adj:{id}"))?, change, reason)?;
        Ok(self.ledger.post(&posting).await?)
    }
}
