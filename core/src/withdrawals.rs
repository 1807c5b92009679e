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

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::ids::{IdError, IdempotencyKey, UserId};
use crate::ledger::{Guard, Ledger, LedgerError, PostOutcome, Posting, PostingError};
use crate::money::{Currency, Money};
use crate::payout::{LookupOutcome, PayoutProvider, PayoutRequest, SendOutcome};
use crate::storage::{collections, is_duplicate_key, Store};
use crate::i18n::{tr, Lang, Text};
use crate::outbound::OutboundMessage;
use apalis_redis_streams::{Queue, QueueError};
use crate::users::Users;


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

/// The address formats payouts can go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressFormat {
    /// TON: user-friendly (48 base64url characters) or raw (`0:` or `-1:` and 64 hex digits).
    Ton,
    /// TRON (TRC-20): `T` and 33 more base58 characters.
    Tron,
    /// Ethereum and compatible chains: `0x` and 40 hex digits.
    Evm,
}

impl std::fmt::Display for AddressFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressFormat::Ton => "TON",
            AddressFormat::Tron => "TRON",
            AddressFormat::Evm => "EVM",
        })
    }
}

/// An address in the configured format, so a withdrawal never goes to text that cannot be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutAddress(String);

impl PayoutAddress {
    pub fn parse(format: AddressFormat, text: &str) -> Result<PayoutAddress, PolicyViolation> {
        let text = text.trim();
        let base58 = |c: char| c.is_ascii_alphanumeric() && !matches!(c, '0' | 'O' | 'I' | 'l');
        let valid = match format {
            AddressFormat::Ton => {
                let friendly = text.len() == 48 && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/'));
                let raw = ["0:", "-1:"].iter().any(|workchain| {
                    text.strip_prefix(workchain).is_some_and(|hash| hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()))
                });
                friendly || raw
            }
            AddressFormat::Tron => text.len() == 34 && text.starts_with('T') && text.chars().all(base58),
            AddressFormat::Evm => {
                text.strip_prefix("0x").is_some_and(|hex| hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()))
            }
        };
        if valid {
            Ok(PayoutAddress(text.to_owned()))
        } else {
            Err(PolicyViolation::BadAddress(format))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What users may withdraw: one currency, per-withdrawal and daily limits, a flat fee, and up to
/// which amount requests are approved without an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyConfig", into = "PolicyConfig")]
pub struct WithdrawalPolicy(PolicyConfig);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PolicyConfig {
    #[serde(with = "crate::money::text")]
    min: Money,
    #[serde(with = "crate::money::text")]
    max: Money,
    /// Over a rolling 24 hours, counting requests not rejected or released.
    #[serde(with = "crate::money::text")]
    daily_limit: Money,
    #[serde(with = "crate::money::text")]
    fee: Money,
    #[serde(with = "crate::money::text")]
    auto_approve_up_to: Money,
    address_format: AddressFormat,
}

impl TryFrom<PolicyConfig> for WithdrawalPolicy {
    type Error = String;
    fn try_from(c: PolicyConfig) -> Result<Self, String> {
        let currency = c.min.currency();
        if [c.max, c.daily_limit, c.fee, c.auto_approve_up_to].iter().any(|m| m.currency() != currency) {
            return Err("withdrawal limits, fee and auto-approval must be in one currency".into());
        }
        if !c.min.is_positive() || c.min.minor() > c.max.minor() || c.max.minor() > c.daily_limit.minor() {
            return Err("withdrawal limits must satisfy 0 < min <= max <= daily_limit".into());
        }
        if c.fee.is_negative() || c.auto_approve_up_to.is_negative() {
            return Err("the withdrawal fee and auto-approval limit must not be negative".into());
        }
        Ok(WithdrawalPolicy(c))
    }
}

impl From<WithdrawalPolicy> for PolicyConfig {
    fn from(p: WithdrawalPolicy) -> Self {
        p.0
    }
}

impl Default for WithdrawalPolicy {
    /// Telegram Stars to a TON wallet, the way Stars are cashed out.
    fn default() -> Self {
        let xtr = |minor| Money::from_minor(Currency::Xtr, minor);
        WithdrawalPolicy(PolicyConfig {
            min: xtr(100),
            max: xtr(100_000),
            daily_limit: xtr(250_000),
            fee: xtr(0),
            auto_approve_up_to: xtr(1_000),
            address_format: AddressFormat::Ton,
        })
    }
}

/// Why a withdrawal cannot be requested as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("the minimum withdrawal is {0}")]
    BelowMin(Money),
    #[error("the maximum withdrawal is {0}")]
    AboveMax(Money),
    #[error("over the daily limit: {left} left today")]
    OverDailyLimit { left: Money },
    #[error("not a {0} address")]
    BadAddress(AddressFormat),
}

impl WithdrawalPolicy {
    pub fn currency(&self) -> Currency {
        self.0.min.currency()
    }
    pub fn min(&self) -> Money {
        self.0.min
    }
    pub fn max(&self) -> Money {
        self.0.max
    }
    pub fn fee(&self) -> Money {
        self.0.fee
    }
    pub fn auto_approve_up_to(&self) -> Money {
        self.0.auto_approve_up_to
    }
    pub fn address_format(&self) -> AddressFormat {
        self.0.address_format
    }

    /// Checks `amount` (in the policy's currency) given what the user requested in the last 24 h.
    pub fn check_amount(&self, amount: Money, requested_last_day: Money) -> Result<(), PolicyViolation> {
        if amount.minor() < self.0.min.minor() {
            return Err(PolicyViolation::BelowMin(self.0.min));
        }
        if amount.minor() > self.0.max.minor() {
            return Err(PolicyViolation::AboveMax(self.0.max));
        }
        let left = (self.0.daily_limit.minor() - requested_last_day.minor()).max(0);
        if amount.minor() > left {
            return Err(PolicyViolation::OverDailyLimit { left: Money::from_minor(self.currency(), left) });
        }
        Ok(())
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

/// A deliberately broken build, for the chaos checker's own test (a checker that cannot fail
/// proves nothing): `OBENTCHI_BREAK=refund_on_409` makes a 409 to a re-sent payout release the
/// hold, the bug this module's rules exist to prevent. Debug builds only: release builds never
/// read the variable.
fn deliberately_broken(switch: &str) -> bool {
    cfg!(debug_assertions) && std::env::var("OBENTCHI_BREAK").is_ok_and(|set| set == switch)
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

    /// Applies `guard`'s compare-and-set on its own (no posting); returns whether this call
    /// made the move.
    async fn transition(&self, guard: Guard) -> Result<bool, WithdrawalError> {
        Ok(self.withdrawals.update_one(guard.filter, guard.update).await?.modified_count == 1)
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

    /// Withdrawals a worker should be driving but that have not moved since `cutoff`: approved
    /// (their job was lost), processing with an expired lease (the worker died or the outcome was
    /// ambiguous), releasing (the release was interrupted). The reconciler enqueues a job for each.
    pub async fn stuck(&self, cutoff: DateTime<Utc>, limit: u32) -> Result<Vec<WithdrawalJob>, WithdrawalError> {
        let stuck = [WithdrawalStatus::Approved, WithdrawalStatus::Processing, WithdrawalStatus::Releasing].map(|s| s.as_str());
        let filter = doc! {
            "status": { "$in": stuck.to_vec() },
            "updated_at": { "$lt": bson_time(cutoff) },
            "$or": [ { "lease_until": Bson::Null }, { "lease_until": { "$lt": bson_time(now()) } } ],
        };
        let cursor = self
            .withdrawals
            .find(filter)
            .sort(doc! { "updated_at": 1 })
            .limit(i64::from(limit))
            .comment(Bson::String("fan-out: withdrawal reconciler".into()))
            .await?;
        let stuck: Vec<Withdrawal> = cursor.try_collect().await?;
        Ok(stuck.iter().map(Withdrawal::job).collect())
    }

    /// Records a withdrawal request and holds amount + fee. Approves it at once when the amount
    /// is at most `auto_approve_up_to`. Repeating a request returns it as it now is.
    pub async fn request(&self, new: NewWithdrawal, auto_approve_up_to: Money) -> Result<Withdrawal, WithdrawalError> {
        let at = now();
        let w = Withdrawal {
            id: withdrawal_id(new.user_id, new.request_id.as_str()),
            user_id: new.user_id,
            request_id: new.request_id.to_string(),
            amount: new.amount,
            fee: new.fee,
            address: new.address.0,
            status: WithdrawalStatus::Requested,
            reason: None,
            provider_reference: None,
            lease_until: None,
            claim: 0,
            claimed_at: None,
            created_at: at,
            updated_at: at,
        };
        match self.withdrawals.insert_one(&w).await {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {
                let existing = self.get(w.user_id, &w.request_id).await?;
                if (existing.amount, existing.fee, &existing.address) != (w.amount, w.fee, &w.address) {
                    return Err(WithdrawalError::Conflict(w.id));
                }
            }
            Err(e) => return Err(e.into()),
        }
        let w = self.get(w.user_id, &w.request_id).await?;
        if w.status == WithdrawalStatus::Requested && w.amount.minor() <= auto_approve_up_to.minor() {
            return self.approve(w.user_id, &w.request_id).await;
        }
        if w.status == WithdrawalStatus::Requested {
            self.ensure_hold(&w).await?;
        }
        self.get(w.user_id, &w.request_id).await
    }

    /// Places the hold (once). Without funds the withdrawal becomes `rejected`; returns whether
    /// the hold is in place.
    ///
    /// The hold and the rejection exclude each other: the hold is posted only while the
    /// withdrawal is `requested`, marking it `held` in the same transaction, and the rejection
    /// only happens while it is not `held`. (Otherwise a deposit landing between a failed hold
    /// and the rejection could let a concurrent approval hold money that nothing releases.)
    async fn ensure_hold(&self, w: &Withdrawal) -> Result<bool, WithdrawalError> {
        let held = w.amount.checked_add(w.fee).map_err(PostingError::from)?;
        let hold = Posting::withdrawal_hold(w.user_id, key("hold", w)?, held, format!("withdrawal {}", w.request_id))?;
        let guard = Guard {
            collection: collections::WITHDRAWALS,
            filter: doc! { "_id": &w.id, "user_id": w.user_id.get(), "status": WithdrawalStatus::Requested.as_str() },
            update: doc! { "$set": { "held": true } },
        };
        match self.ledger.post_guarded(&hold, &guard).await {
            Ok(_) => Ok(true),
            // No longer `requested` and never held (rejected meanwhile).
            Err(LedgerError::GuardMismatch { .. }) => Ok(false),
            Err(LedgerError::InsufficientFunds { .. }) => {
                let mut reject = Self::guard(w, &[WithdrawalStatus::Requested], None, WithdrawalStatus::Rejected, doc! { "reason": "insufficient funds" });
                reject.filter.insert("held", doc! { "$ne": true });
                let rejected = self.transition(reject).await?;
                // Not rejected: a concurrent call held it after all.
                Ok(!rejected && self.get(w.user_id, &w.request_id).await?.status != WithdrawalStatus::Rejected)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Approves a requested withdrawal (idempotent: approving again changes nothing).
    pub async fn approve(&self, user_id: UserId, request_id: &str) -> Result<Withdrawal, WithdrawalError> {
        let w = self.get(user_id, request_id).await?;
        if w.status == WithdrawalStatus::Requested && self.ensure_hold(&w).await? {
            self.transition(Self::guard(&w, &[WithdrawalStatus::Requested], None, WithdrawalStatus::Approved, doc! {})).await?;
        }
        let w = self.get(user_id, request_id).await?;
        match w.status {
            // Approved, then claimed for payout and returned (the provider refused it): this or
            // a concurrent approval took effect, so approving again is not an error.
            WithdrawalStatus::Releasing | WithdrawalStatus::Released if w.claimed_at.is_some() => Ok(w),
            WithdrawalStatus::Requested | WithdrawalStatus::Releasing | WithdrawalStatus::Released => {
                Err(WithdrawalError::InvalidState { id: w.id, status: w.status, action: "approve" })
            }
            _ => Ok(w),
        }
    }

    /// Rejects a withdrawal that has not been claimed for payout, returning the hold.
    pub async fn reject(&self, user_id: UserId, request_id: &str, reason: &str) -> Result<Withdrawal, WithdrawalError> {
        let w = self.get(user_id, request_id).await?;
        let cancellable = [WithdrawalStatus::Requested, WithdrawalStatus::Approved];
        if cancellable.contains(&w.status) && self.ensure_hold(&w).await? {
            // A claim that wins meanwhile makes the guard miss: the payout goes ahead instead.
            match self.release(&w, &cancellable, None, reason).await {
                Ok(_) | Err(WithdrawalError::ClaimLost(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let w = self.get(user_id, request_id).await?;
        match w.status {
            WithdrawalStatus::Releasing => self.finish_release(w).await,
            WithdrawalStatus::Released | WithdrawalStatus::Rejected => Ok(w),
            status => Err(WithdrawalError::InvalidState { id: w.id, status, action: "reject" }),
        }
    }

    /// The withdrawal job: drives an approved withdrawal to `sent` or `released`. Safe to run
    /// any number of times, concurrently too.
    pub async fn process<P: PayoutProvider>(&self, job: &WithdrawalJob, provider: &P) -> Result<Withdrawal, WithdrawalError> {
        let w = self.get(job.user_id, &job.request_id).await?;
        match w.status {
            WithdrawalStatus::Approved => match self.claim(&w, &[WithdrawalStatus::Approved]).await? {
                Some(claimed) => self.pay(claimed, provider, SendAttempt::First).await,
                None => Err(WithdrawalError::InProgress("claimed by another run".into())),
            },
            WithdrawalStatus::Processing => {
                if w.lease_until.is_some_and(|until| until > Utc::now()) {
                    return Err(WithdrawalError::InProgress("another run holds the lease".into()));
                }
                match self.claim(&w, &[WithdrawalStatus::Processing]).await? {
                    Some(claimed) => self.reconcile(claimed, provider).await,
                    None => Err(WithdrawalError::InProgress("claimed by another run".into())),
                }
            }
            WithdrawalStatus::Releasing => self.finish_release(w).await,
            WithdrawalStatus::Requested
            | WithdrawalStatus::Sent
            | WithdrawalStatus::Released
            | WithdrawalStatus::Rejected => Ok(w),
        }
    }

    /// Compare-and-set into `processing` with a fresh lease. The filter includes the lease seen,
    /// so of two runs that both saw an expired lease only one wins.
    async fn claim(&self, w: &Withdrawal, from: &[WithdrawalStatus]) -> Result<Option<Withdrawal>, WithdrawalError> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let lease_until = now() + chrono::Duration::from_std(self.lease).expect("lease fits");
        let seen_lease = w.lease_until.map_or(Bson::Null, bson_time);
        let filter = doc! { "_id": &w.id, "user_id": w.user_id.get(), "status": { "$in": from }, "lease_until": seen_lease };
        let at = now();
        let claimed_at = w.claimed_at.unwrap_or(at);
        let update = doc! {
            "$set": {
                "status": WithdrawalStatus::Processing.as_str(),
                "lease_until": bson_time(lease_until),
                "claimed_at": bson_time(claimed_at),
                "updated_at": bson_time(at),
            },
            "$inc": { "claim": 1_i64 },
        };
        let won = self.withdrawals.update_one(filter, update).await?.modified_count == 1;
        Ok(won.then(|| Withdrawal {
            status: WithdrawalStatus::Processing,
            lease_until: Some(lease_until),
            claim: w.claim + 1,
            claimed_at: Some(claimed_at),
            ..w.clone()
        }))
    }

    async fn pay<P: PayoutProvider>(&self, w: Withdrawal, provider: &P, attempt: SendAttempt) -> Result<Withdrawal, WithdrawalError> {
        let request = PayoutRequest::new(w.id.clone(), w.address.clone(), w.amount);
        match provider.send(&request).await {
            SendOutcome::Sent { reference } => self.settle(w, reference).await,
            SendOutcome::Rejected { reason } if attempt == SendAttempt::First => self.fail(w, reason).await,
            // A refusal of a re-send says nothing about the first send, which may have paid.
            SendOutcome::Rejected { reason } => self.ambiguous(&w, format!("re-send refused: {reason}")).await,
            SendOutcome::Ambiguous { reason } if deliberately_broken("refund_on_409") && reason.contains("409") => self.fail(w, reason).await,
            SendOutcome::Ambiguous { reason } => self.ambiguous(&w, reason).await,
        }
    }

    async fn reconcile<P: PayoutProvider>(&self, w: Withdrawal, provider: &P) -> Result<Withdrawal, WithdrawalError> {
        match provider.lookup(&w.id).await {
            Ok(LookupOutcome::Sent { reference }) => self.settle(w, reference).await,
            Ok(LookupOutcome::Failed { reason }) => self.fail(w, reason).await,
            Ok(LookupOutcome::Pending) => Err(WithdrawalError::InProgress("provider has not finished".into())),
            // Not seen by the provider, or not yet visible to its lookups: sending again under
            // the same idempotency key is safe either way, and its refusal is not final.
            Ok(LookupOutcome::NotFound) => self.pay(w, provider, SendAttempt::Again).await,
            Err(reason) => self.ambiguous(&w, format!("lookup failed: {reason}")).await,
        }
    }

    /// Leaves the withdrawal in `processing` for a later lookup, noting why (admins see it).
    async fn ambiguous(&self, w: &Withdrawal, reason: String) -> Result<Withdrawal, WithdrawalError> {
        metrics::counter!("payouts_total", "outcome" => "ambiguous").increment(1);
        let filter = doc! { "_id": &w.id, "user_id": w.user_id.get(), "claim": w.claim };
        self.withdrawals.update_one(filter, doc! { "$set": { "reason": &reason } }).await?;
        Err(WithdrawalError::Ambiguous(reason))
    }

    /// The compare-and-set of a transition: `w` still in one of `from` (and, for a payout run,
    /// still under this run's claim), moved to `to` with `set`. Final transitions commit it with
    /// their posting (`post_final`); the others apply it alone (`transition`).
    fn guard(w: &Withdrawal, from: &[WithdrawalStatus], claim: Option<i64>, to: WithdrawalStatus, mut set: Document) -> Guard {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let mut filter = doc! { "_id": &w.id, "user_id": w.user_id.get(), "status": { "$in": from } };
        if let Some(claim) = claim {
            filter.insert("claim", claim);
        }
        set.insert("status", to.as_str());
        set.insert("updated_at", bson_time(now()));
        set.insert("lease_until", Bson::Null);
        Guard { collection: collections::WITHDRAWALS, filter, update: doc! { "$set": set } }
    }

    /// Posts `posting` together with `guard`; a guard that misses means another run owns `w`.
    async fn post_final(&self, w: &Withdrawal, posting: &Posting, guard: &Guard) -> Result<PostOutcome, WithdrawalError> {
        match self.ledger.post_guarded(posting, guard).await {
            Err(LedgerError::GuardMismatch { .. }) => Err(WithdrawalError::ClaimLost(w.id.clone())),
            // Posted before: by the same transaction as the status change, except for
            // withdrawals left half-way by the older two-step code; move those on (the guard's
            // filter keeps this a compare-and-set).
            Ok(outcome @ PostOutcome::AlreadyApplied(_)) => {
                self.transition(guard.clone()).await?;
                Ok(outcome)
            }
            other => Ok(other?),
        }
    }

    async fn settle(&self, w: Withdrawal, reference: String) -> Result<Withdrawal, WithdrawalError> {
        let settle = Posting::payout_settle(w.user_id, key("settle", &w)?, w.amount, w.fee, format!("payout {reference}"))?;
        let guard = Self::guard(&w, &[WithdrawalStatus::Processing], Some(w.claim), WithdrawalStatus::Sent, doc! { "provider_reference": &reference });
        self.post_final(&w, &settle, &guard).await?;
        metrics::counter!("payouts_total", "outcome" => "sent").increment(1);
        self.get(w.user_id, &w.request_id).await
    }

    async fn fail(&self, w: Withdrawal, reason: String) -> Result<Withdrawal, WithdrawalError> {
        metrics::counter!("payouts_total", "outcome" => "failed").increment(1);
        self.release(&w, &[WithdrawalStatus::Processing], Some(w.claim), &reason).await
    }

    /// Returns the hold to the user and ends the withdrawal as `released`, in one transaction.
    async fn release(&self, w: &Withdrawal, from: &[WithdrawalStatus], claim: Option<i64>, reason: &str) -> Result<Withdrawal, WithdrawalError> {
        let held = w.amount.checked_add(w.fee).map_err(PostingError::from)?;
        let release = Posting::hold_release(w.user_id, key("release", w)?, held, format!("withdrawal {} released", w.request_id))?;
        let guard = Self::guard(w, from, claim, WithdrawalStatus::Released, doc! { "reason": reason });
        self.post_final(w, &release, &guard).await?;
        self.get(w.user_id, &w.request_id).await
    }

    /// Finishes a release begun before releases became one transaction.
    async fn finish_release(&self, w: Withdrawal) -> Result<Withdrawal, WithdrawalError> {
        if w.status == WithdrawalStatus::Releasing {
            let reason = w.reason.clone().unwrap_or_default();
            return self.release(&w, &[WithdrawalStatus::Releasing], None, &reason).await;
        }
        Ok(w)
    }

    /// Withdrawals in `processing` since before `cutoff`: the provider never gave a definitive
    /// answer (or keeps answering a status that never finishes). A person has to look.
    pub async fn stuck_processing(&self, cutoff: DateTime<Utc>, limit: u32) -> Result<Vec<Withdrawal>, WithdrawalError> {
        let cursor = self
            .withdrawals
            .find(Self::stuck_processing_filter(cutoff))
            .sort(doc! { "claimed_at": 1 })
            .limit(i64::from(limit.clamp(1, 200)))
            .comment(Bson::String("fan-out: stuck withdrawals".into()))
            .await?;
        Ok(cursor.try_collect().await?)
    }

    /// How many withdrawals `stuck_processing` would list (the alert's gauge).
    pub async fn count_stuck_processing(&self, cutoff: DateTime<Utc>) -> Result<u64, WithdrawalError> {
        Ok(self
            .withdrawals
            .count_documents(Self::stuck_processing_filter(cutoff))
            .comment(Bson::String("fan-out: stuck withdrawals".into()))
            .await?)
    }

    fn stuck_processing_filter(cutoff: DateTime<Utc>) -> Document {
        doc! { "status": WithdrawalStatus::Processing.as_str(), "claimed_at": { "$lt": bson_time(cutoff) } }
    }
}

/// Tells the user how their withdrawal ended (sent, or returned to their balance) in their
/// language; nothing for a withdrawal still under way. The message is keyed by withdrawal and
/// outcome, so the redeliveries a finished withdrawal's job can get tell the user once.
pub async fn notify_outcome(users: &Users, outbound: &Queue, w: &Withdrawal) -> Result<(), NoticeError> {
    let text = match w.status {
        WithdrawalStatus::Sent => Text::WithdrawalSent,
        WithdrawalStatus::Released => Text::WithdrawalReturned,
        _ => return Ok(()),
    };
    let profile = users.profile(w.user_id).await?.unwrap_or_default();
    let lang = Lang::for_user(&profile, profile.telegram_language.as_deref());
    let message = OutboundMessage::text(w.user_id.get(), tr(lang, text, &[("amount", &w.amount.to_string())]));
    outbound.enqueue(&message, Some(&format!("wd-notice:{}:{}", w.id, w.status.as_str()))).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("users storage: {0}")]
    Storage(#[from] mongodb::error::Error),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_per_format() {
        let ok = [
            (AddressFormat::Ton, "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG"),
            (AddressFormat::Ton, "0:83dfd552e63729b472fcbcc8c45ebcc6691702558b68ec7527e1ba403a0f31a8"),
            (AddressFormat::Tron, "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"),
            (AddressFormat::Evm, "0x52908400098527886E0F7030069857D2E4169EE7"),
        ];
        for (format, text) in ok {
            assert_eq!(PayoutAddress::parse(format, &format!(" {text}\n")).unwrap().as_str(), text);
        }
        let bad = [
            (AddressFormat::Ton, "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0Xgg"),
            (AddressFormat::Tron, "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWw0"),
            (AddressFormat::Evm, "52908400098527886E0F7030069857D2E4169EE7"),
            (AddressFormat::Ton, "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"),
        ];
        for (format, text) in bad {
            assert_eq!(PayoutAddress::parse(format, text), Err(PolicyViolation::BadAddress(format)), "{text}");
        }
    }

    #[test]
    fn amounts_are_checked_against_the_limits_and_the_day() {
        let policy = WithdrawalPolicy::default();
        let xtr = |minor| Money::from_minor(Currency::Xtr, minor);
        assert_eq!(policy.check_amount(xtr(99), xtr(0)), Err(PolicyViolation::BelowMin(xtr(100))));
        assert_eq!(policy.check_amount(xtr(100_001), xtr(0)), Err(PolicyViolation::AboveMax(xtr(100_000))));
        assert_eq!(policy.check_amount(xtr(100_000), xtr(200_000)), Err(PolicyViolation::OverDailyLimit { left: xtr(50_000) }));
        assert_eq!(policy.check_amount(xtr(50_000), xtr(200_000)), Ok(()));
    }

    #[test]
    fn a_policy_in_mixed_currencies_or_with_crossed_limits_is_refused() {
        let parse = |toml: &str| serde_json::from_value::<WithdrawalPolicy>(serde_json::from_str(toml).unwrap());
        let valid = r#"{"min":"1 USDT","max":"10 USDT","daily_limit":"20 USDT","fee":"0.5 USDT","auto_approve_up_to":"5 USDT","address_format":"tron"}"#;
        assert_eq!(parse(valid).unwrap().currency(), Currency::Usdt);
        assert!(parse(&valid.replace("\"0.5 USDT\"", "\"1 XTR\"")).is_err());
        assert!(parse(&valid.replace("\"10 USDT\"", "\"30 USDT\"")).is_err());
    }
}
