//! Withdrawals: a state machine in MongoDB whose every transition is a compare-and-set on the
//! current status, with ledger postings keyed by the withdrawal so each happens once.
//!
//! ```text
//! requested ──approve──▶ approved ──claim──▶ processing ──sent──▶ sent
//!     │                     │                    │
//!     │ (no funds)          └──reject──┐         └──failed──▶ released
//!     ▼                                └───────────────────▶ released
//!  rejected
//! ```
//!
//! The amount plus fee is held before a withdrawal can be approved. `processing` carries a
//! lease and a claim number: only the holder of an unexpired lease talks to the provider about
//! it, so a job that is re-delivered while the first run is still waiting on the provider does
//! nothing. A run that finds `processing` with an expired lease does not send again: it claims
//! anew (the claim number goes up) and looks the payout up, and sends (with the same idempotency
//! key) only if the provider has no record of it.
//!
//! The end of a withdrawal is one transaction: the settlement or the release is posted together
//! with the status change, guarded by the claim number (`Ledger::post_guarded`). So the status
//! and the ledger never disagree, and a run that lost its claim to another cannot settle or
//! release anything. Money goes back only on a definitive refusal (see `payout`): a lookup that
//! says `failed`, or a documented final refusal of the *first* send. Everything ambiguous waits
//! for a later lookup; a withdrawal that stays in `processing` past an age is reported as stuck
//! (`stuck_processing`, the `withdrawals_stuck` gauge) for a person to resolve.
//!
//! (`releasing` is kept for withdrawals written before releases became one transaction.)

//!
//! Code map: this file holds the model and the reads; `policy` what may be withdrawn;
//! `transitions` the moves of the state machine; `reconciliation` the payout run and the
//! lookups that resolve ambiguous answers; `notices` the message to the user.

mod notices;
mod policy;
mod reconciliation;
mod transitions;

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::ids::{IdError, IdempotencyKey, UserId};
use crate::ledger::{Ledger, LedgerError, PostingError};
use crate::money::{Currency, Money};
use crate::storage::{collections, Store};

pub use notices::{notify_outcome, NoticeError};
pub use policy::{AddressFormat, PayoutAddress, PolicyViolation, WithdrawalPolicies, WithdrawalPolicy};


/// How long a claim on `processing` lasts unless configured otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    Requested,
    Approved,
    Processing,
    Sent,
    Releasing,
    Released,
    Rejected,
}

impl WithdrawalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalStatus::Requested => "requested",
            WithdrawalStatus::Approved => "approved",
            WithdrawalStatus::Processing => "processing",
            WithdrawalStatus::Sent => "sent",
            WithdrawalStatus::Releasing => "releasing",
            WithdrawalStatus::Released => "released",
            WithdrawalStatus::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withdrawal {
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: UserId,
    pub request_id: String,
    pub amount: Money,
    pub fee: Money,
    pub address: String,
    pub status: WithdrawalStatus,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub provider_reference: Option<String>,
    #[serde(default, with = "bson::serde_helpers::chrono_datetime_as_bson_datetime_optional")]
    pub lease_until: Option<DateTime<Utc>>,
    /// How many times a run claimed it for payout: the fencing token of the latest claim. Only
    /// the run holding the latest claim may settle or release.
    #[serde(default)]
    pub claim: i64,
    /// When it was first claimed for payout (how long it has been in `processing`).
    #[serde(default, with = "bson::serde_helpers::chrono_datetime_as_bson_datetime_optional")]
    pub claimed_at: Option<DateTime<Utc>>,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub updated_at: DateTime<Utc>,
    /// Whether it qualified for approval without review when it was requested: decided once,
    /// with the threshold in force then, so a replayed request cannot skip a review that a
    /// raised threshold would now waive. Absent on withdrawals recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_approve: Option<bool>,
}

/// The withdrawal job's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalJob {
    pub user_id: UserId,
    pub request_id: String,
}

impl Withdrawal {
    /// The job that drives this withdrawal.
    pub fn job(&self) -> WithdrawalJob {
        WithdrawalJob { user_id: self.user_id, request_id: self.request_id.clone() }
    }
}

impl WithdrawalJob {
    pub fn job_key(&self) -> String {
        format!("wd:{}:{}", self.user_id, self.request_id)
    }
}

pub struct NewWithdrawal {
    pub user_id: UserId,
    /// Chosen by the caller from the user's confirmation (e.g. the update id), so a repeated
    /// confirmation is the same withdrawal.
    pub request_id: IdempotencyKey,
    pub amount: Money,
    pub fee: Money,
    pub address: PayoutAddress,
}

#[derive(Debug, thiserror::Error)]
pub enum WithdrawalError {
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Posting(#[from] PostingError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("withdrawals storage: {0}")]
    Storage(#[from] mongodb::error::Error),
    #[error("withdrawal {0} not found")]
    NotFound(String),
    #[error("withdrawal {0} was already requested with different details")]
    Conflict(String),
    #[error("withdrawal {id} is {status:?}; cannot {action}")]
    InvalidState { id: String, status: WithdrawalStatus, action: &'static str },
    /// The provider may or may not have paid; a later run reconciles by lookup.
    #[error("payout outcome unknown, to be reconciled: {0}")]
    Ambiguous(String),
    /// Another run holds the lease, or the provider has not finished; try later.
    #[error("payout in progress: {0}")]
    InProgress(String),
    /// Another run claimed the withdrawal meanwhile (this run's lease expired); this run's
    /// outcome was not applied and the holder of the latest claim finishes it.
    #[error("withdrawal {0} was claimed by another run; this run changed nothing")]
    ClaimLost(String),
}

/// Which send of a payout id this is: a refusal is final only for the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendAttempt {
    First,
    Again,
}

#[derive(Clone)]
pub struct Withdrawals {
    withdrawals: Collection<Withdrawal>,
    ledger: Ledger,
    /// How long a claim on `processing` lasts; longer than the provider's request timeout.
    lease: Duration,
}

fn withdrawal_id(user_id: UserId, request_id: &str) -> String {
    format!("{user_id}:{request_id}")
}

fn key(purpose: &str, w: &Withdrawal) -> Result<IdempotencyKey, IdError> {
    IdempotencyKey::new(format!("wd-{purpose}:{}", w.request_id))
}

fn now() -> DateTime<Utc> {
    // BSON dates hold milliseconds; compare-and-set filters must match what is stored.
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now is in range")
}

fn bson_time(at: DateTime<Utc>) -> Bson {
    Bson::DateTime(mongodb::bson::DateTime::from_chrono(at))
}

impl Withdrawals {
    /// The processing lease defaults to [`DEFAULT_LEASE`]; only processors (the workers) use it.
    pub fn new(store: &Store, ledger: Ledger) -> Withdrawals {
        Withdrawals { withdrawals: store.collection(collections::WITHDRAWALS), ledger, lease: DEFAULT_LEASE }
    }

    pub fn with_lease(self, lease: Duration) -> Withdrawals {
        Withdrawals { lease, ..self }
    }

    pub async fn get(&self, user_id: UserId, request_id: &str) -> Result<Withdrawal, WithdrawalError> {
        let id = withdrawal_id(user_id, request_id);
        self.withdrawals
            .find_one(doc! { "_id": &id, "user_id": user_id.get() })
            .await?
            .ok_or(WithdrawalError::NotFound(id))
    }

    /// What the user requested in `currency` since `since`, not counting withdrawals that were
    /// rejected or released (their money came back).
    pub async fn requested_since(&self, user_id: UserId, currency: Currency, since: DateTime<Utc>) -> Result<Money, WithdrawalError> {
        let returned = [WithdrawalStatus::Rejected.as_str(), WithdrawalStatus::Released.as_str()];
        let filter = doc! {
            "user_id": user_id.get(),
            "created_at": { "$gte": bson_time(since) },
            "status": { "$nin": returned.to_vec() },
            "amount.currency": currency.code(),
        };
        let mut cursor = self.withdrawals.find(filter).await?;
        let mut total = Money::zero(currency);
        while let Some(w) = cursor.try_next().await? {
            total = total.checked_add(w.amount).map_err(PostingError::from)?;
        }
        Ok(total)
    }

    /// When the oldest withdrawal still waiting for an admin's review was requested, if any.
    pub async fn oldest_awaiting_review(&self) -> Result<Option<DateTime<Utc>>, WithdrawalError> {
        let oldest = self
            .withdrawals
            .find_one(doc! { "status": WithdrawalStatus::Requested.as_str() })
            .sort(doc! { "created_at": 1 })
            .comment(Bson::String("fan-out: oldest withdrawal awaiting review".into()))
            .await?;
        Ok(oldest.map(|w| w.created_at))
    }

    /// Withdrawals in `status` (all when `None`), most recently changed first, up to `limit`,
    /// changed before `before` when paging on.
    pub async fn list(
        &self,
        status: Option<WithdrawalStatus>,
        before: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<Withdrawal>, WithdrawalError> {
        let mut filter = Document::new();
        if let Some(status) = status {
            filter.insert("status", status.as_str());
        }
        if let Some(before) = before {
            filter.insert("updated_at", doc! { "$lt": bson_time(before) });
        }
        let cursor = self
            .withdrawals
            .find(filter)
            .sort(doc! { "updated_at": -1 })
            .limit(i64::from(limit.clamp(1, 200)))
            .comment(Bson::String("fan-out: admin withdrawal list".into()))
            .await?;
        Ok(cursor.try_collect().await?)
    }
}

