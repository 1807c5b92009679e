//! Incoming payments: recorded in MongoDB when a provider reports them (Telegram Stars
//! `successful_payment`, a signed gateway callback), then credited by a payment job.
//!
//! The record comes first and the job second, so a job lost by Redis is found again from the
//! record (status `received`). Crediting is a ledger deposit keyed by provider and the
//! provider's own id, so any number of deliveries credit once.
//!
//! A provider's payment id belongs to one user. The ledger's keys are per user (they live on the
//! user's shard), so the first report of an id claims it in `payment_ids` under a key without
//! the user; a report of the same id for another user, or with another amount, is refused, and
//! only a claimed payment is credited.

use chrono::{DateTime, Utc};
use mongodb::bson::doc;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::ids::{IdError, IdempotencyKey, ProviderId, UserId};
use crate::ledger::{Ledger, LedgerError, PostOutcome, Posting, PostingError};
use crate::money::Money;
use crate::storage::{collections, is_duplicate_key, Store};


/// The provider name Telegram Stars payments are recorded under.
pub const TELEGRAM_STARS: &str = "telegram_stars";

/// A payment to credit; also the payment job's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentJob {
    pub user_id: UserId,
    pub provider: ProviderId,
    /// The provider's id for the payment (`telegram_payment_charge_id`, a transaction id).
    pub external_id: String,
    pub amount: Money,
}

impl PaymentJob {
    /// The queue's idempotency key for this payment's job.
    pub fn job_key(&self) -> String {
        format!("pay:{}:{}", self.provider, self.external_id)
    }

    fn record_id(&self) -> String {
        record_id(self.user_id, &claim_id(&self.provider, &self.external_id))
    }

    fn claim_id(&self) -> String {
        claim_id(&self.provider, &self.external_id)
    }

    fn deposit_key(&self) -> Result<IdempotencyKey, IdError> {
        IdempotencyKey::new(format!("deposit:{}:{}", self.provider, self.external_id))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Received,
    Credited,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PaymentDoc {
    #[serde(rename = "_id")]
    id: String,
    user_id: UserId,
    provider: ProviderId,
    external_id: String,
    amount: Money,
    status: PaymentStatus,
    /// The provider definitively refused a refund we asked for (see `settle_refund`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    refund_refused: bool,
    /// We reversed the deposit and asked the provider to refund, without an answer yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    refund_pending: bool,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    created_at: DateTime<Utc>,
}

/// `_id` of a payment's claim: the same for every user.
fn claim_id(provider: &ProviderId, external_id: &str) -> String {
    format!("{provider}:{external_id}")
}

/// `_id` of a payment's record: user first, so it lives on the user's shard.
fn record_id(user_id: UserId, claim_id: &str) -> String {
    format!("{user_id}:{claim_id}")
}

/// `_id` of the cursor over a provider's transaction list.
fn cursor_id(provider: &ProviderId) -> String {
    format!("transactions:{provider}")
}

/// Which user a provider's payment id belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PaymentClaim {
    #[serde(rename = "_id")]
    id: String,
    user_id: UserId,
    amount: Money,
}

impl PaymentClaim {
    /// The payment's record on its payer's shard.
    fn record_filter(&self) -> mongodb::bson::Document {
        doc! { "_id": record_id(self.user_id, &self.id), "user_id": self.user_id.get() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("payment id: {0}")]
    Id(#[from] IdError),
    #[error("payment amount: {0}")]
    Posting(#[from] PostingError),
    #[error("a payment {0} was already recorded with different details")]
    Conflict(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("payments storage: {0}")]
    Storage(#[from] mongodb::error::Error),
}

/// What recording a provider's refund did.
#[derive(Debug, Clone, PartialEq)]
pub enum RefundOutcome {
    /// The deposit was reversed now, or had been before.
    Reversed(PostOutcome),
    /// The user had already spent the money: nothing reversed, the payment is marked
    /// `refund_uncovered` for an admin (the platform carries the loss).
    Uncovered,
    /// No payment with this id was ever recorded: nothing to reverse.
    UnknownPayment,
}

/// What a provider answered when asked to refund a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundAnswer {
    /// Refunded now, or before.
    Refunded,
    /// A definitive refusal: the refund did not and will not happen.
    Refused(String),
    /// No answer, or one that says nothing for sure (5xx, flood control): it may have happened.
    NoAnswer(String),
}

impl RefundAnswer {
    /// Telegram's answer to `refundStarPayment`, from the error it gave (`None`: success; teloxide
    /// shows an unrecognised one as `Unknown error: "Bad Request: CHARGE_NOT_FOUND"`).
    /// Only Telegram's documented refusals about the charge itself are definitive; anything
    /// else, including a 5xx that teloxide reports as an API error, is no answer.
    pub fn from_telegram(error: Option<&str>) -> RefundAnswer {
        const REFUSALS: [&str; 2] = ["CHARGE_NOT_FOUND", "CHARGE_ID_INVALID"];
        match error {
            None => RefundAnswer::Refunded,
            Some(e) if e.contains("CHARGE_ALREADY_REFUNDED") => RefundAnswer::Refunded,
            Some(e) if e.contains("Bad Request") && REFUSALS.iter().any(|r| e.contains(r)) => RefundAnswer::Refused(e.to_owned()),
            Some(e) => RefundAnswer::NoAnswer(e.to_owned()),
        }
    }
}

#[cfg(test)]
mod refund_answer_tests {
    use super::RefundAnswer;

    #[test]
    fn only_telegrams_refusals_about_the_charge_are_final() {
        assert_eq!(RefundAnswer::from_telegram(None), RefundAnswer::Refunded);
        assert_eq!(RefundAnswer::from_telegram(Some("Unknown error: \"Bad Request: CHARGE_ALREADY_REFUNDED\"")), RefundAnswer::Refunded);
        assert!(matches!(RefundAnswer::from_telegram(Some("Unknown error: \"Bad Request: CHARGE_NOT_FOUND\"")), RefundAnswer::Refused(_)));
        for unsure in ["Unknown error: \"Internal Server Error\"", "Unknown error: \"Bad Request: something new\"", "timeout"] {
            assert!(matches!(RefundAnswer::from_telegram(Some(unsure)), RefundAnswer::NoAnswer(_)), "{unsure}");
        }
    }
}

#[derive(Clone)]
pub struct Payments {
    payments: Collection<PaymentDoc>,
    claims: Collection<PaymentClaim>,
    cursors: Collection<mongodb::bson::Document>,
    ledger: Ledger,
}

impl Payments {
    pub fn new(store: &Store, ledger: Ledger) -> Payments {
        Payments {
            payments: store.collection(collections::PAYMENTS),
            claims: store.collection(collections::PAYMENT_IDS),
            cursors: store.collection(collections::CURSORS),
            ledger,
        }
    }

    /// Records a payment a provider reported. Reporting it again is harmless; reporting the same
    /// provider id with another user or amount is refused.
    pub async fn record(&self, payment: &PaymentJob) -> Result<(), PaymentError> {
        // Validates the key's shape before anything is stored.
        payment.deposit_key()?;
        let claim = PaymentClaim { id: payment.claim_id(), user_id: payment.user_id, amount: payment.amount };
        match self.claims.insert_one(&claim).await {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => self.check_claim(payment).await?,
            Err(e) => return Err(e.into()),
        }
        let doc = PaymentDoc {
            id: payment.record_id(),
            user_id: payment.user_id,
            provider: payment.provider.clone(),
            external_id: payment.external_id.clone(),
            amount: payment.amount,
            status: PaymentStatus::Received,
            refund_refused: false,
            refund_pending: false,
            created_at: Utc::now(),
        };
        match self.payments.insert_one(&doc).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => {
                let existing = self.payments.find_one(doc! { "_id": &doc.id, "user_id": doc.user_id.get() }).await?;
                match existing {
                    Some(existing) if existing.amount == doc.amount => Ok(()),
                    _ => Err(PaymentError::Conflict(doc.id)),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Credits a recorded payment: a ledger deposit keyed by provider and provider id, then the
    /// record is marked credited. Safe to run any number of times.
    pub async fn credit(&self, payment: &PaymentJob) -> Result<PostOutcome, PaymentError> {
        self.check_claim(payment).await?;
        let posting = Posting::deposit(
            payment.user_id,
            payment.deposit_key()?,
            payment.provider.clone(),
            payment.amount,
            format!("deposit via {}", payment.provider),
        )?;
        let outcome = self.ledger.post(&posting).await?;
        self.payments
            .update_one(
                doc! { "_id": payment.record_id(), "user_id": payment.user_id.get() },
                doc! { "$set": { "status": "credited" } },
            )
            .await?;
        Ok(outcome)
    }

    /// The payment's claim names this user and amount (it was recorded as this payment).
    async fn check_claim(&self, payment: &PaymentJob) -> Result<(), PaymentError> {
        let claim = self.claims.find_one(doc! { "_id": payment.claim_id() }).await?;
        match claim {
            Some(claim) if claim.user_id == payment.user_id && claim.amount == payment.amount => Ok(()),
            _ => Err(PaymentError::Conflict(payment.claim_id())),
        }
    }

    /// The provider gave payment `external_id` back to its payer: reverses its deposit, once
    /// (keyed by the payment). A refund of money the user already spent cannot be taken from
    /// them (balances never go negative): it is marked on the payment instead. A refund the
    /// provider refused earlier (its reversal undone) is taken again under a key of its own.
    pub async fn refund(&self, provider: &ProviderId, external_id: &str) -> Result<RefundOutcome, PaymentError> {
        let Some(claim) = self.claim(provider, external_id).await? else { return Ok(RefundOutcome::UnknownPayment) };
        let refused_before = self.payments.find_one(claim.record_filter()).await?.is_some_and(|r| r.refund_refused);
        let key = if refused_before { format!("refund-after-refusal:{}", claim.id) } else { format!("refund:{}", claim.id) };
        let outcome = self.reverse(provider, &claim, &key).await?;
        match outcome {
            RefundOutcome::Reversed(_) => {
                let done = doc! { "$set": { "refunded": true }, "$unset": { "refund_uncovered": "", "refund_pending": "" } };
                self.payments.update_one(claim.record_filter(), done).await?;
            }
            RefundOutcome::Uncovered => {
                metrics::counter!("payment_refunds_uncovered_total").increment(1);
                self.payments.update_one(claim.record_filter(), doc! { "$set": { "refund_uncovered": true } }).await?;
            }
            RefundOutcome::UnknownPayment => {}
        }
        Ok(outcome)
    }

    /// Starts a refund we ask the provider for: takes the deposit back from its payer first
    /// (once, keyed by the payment), so the money cannot be spent while the provider is asked,
    /// and marks the refund pending until `settle_refund` hears the provider's answer.
    /// `Uncovered` when the user has spent the money: then nothing changed.
    pub async fn start_refund(&self, provider: &ProviderId, external_id: &str) -> Result<RefundOutcome, PaymentError> {
        let Some(claim) = self.claim(provider, external_id).await? else { return Ok(RefundOutcome::UnknownPayment) };
        let outcome = self.reverse(provider, &claim, &format!("refund:{}", claim.id)).await?;
        if let RefundOutcome::Reversed(_) = outcome {
            self.payments.update_one(claim.record_filter(), doc! { "$set": { "refund_pending": true } }).await?;
        }
        Ok(outcome)
    }

    /// What the provider answered to a refund `start_refund` began.
    /// - `Refunded`: the payment is marked refunded.
    /// - `Refused`: a definitive refusal. The deposit is given back (once, keyed) and the
    ///   payment marked `refund_refused`, so nobody asks again by hand. If the provider refunds
    ///   after all, `refund` takes it again.
    /// - `NoAnswer`: stays pending. The Stars reconciler asks again (`pending_refunds`), and
    ///   reads the refund if it happened.
    pub async fn settle_refund(&self, provider: &ProviderId, external_id: &str, answer: &RefundAnswer) -> Result<(), PaymentError> {
        match answer {
            RefundAnswer::Refunded => self.refund(provider, external_id).await.map(drop),
            RefundAnswer::NoAnswer(_) => Ok(()),
            RefundAnswer::Refused(_) => {
                let claim = self.claim(provider, external_id).await?.ok_or_else(|| PaymentError::Conflict(external_id.to_owned()))?;
                let key = IdempotencyKey::new(format!("refund-refused:{}", claim.id))?;
                let restore = Posting::deposit(claim.user_id, key, provider.clone(), claim.amount, format!("refund refused by {provider}"))?;
                self.ledger.post(&restore).await?;
                let refused = doc! { "$set": { "refund_refused": true }, "$unset": { "refund_pending": "" } };
                self.payments.update_one(claim.record_filter(), refused).await?;
                Ok(())
            }
        }
    }

    /// Whether the provider refused a refund of this payment before.
    pub async fn refund_was_refused(&self, provider: &ProviderId, external_id: &str) -> Result<bool, PaymentError> {
        let Some(claim) = self.claim(provider, external_id).await? else { return Ok(false) };
        Ok(self.payments.find_one(claim.record_filter()).await?.is_some_and(|r| r.refund_refused))
    }

    /// Refunds of `provider`'s payments we started without hearing a definitive answer, up to
    /// `limit`: `(payer, payment id)`.
    pub async fn pending_refunds(&self, provider: &ProviderId, limit: u32) -> Result<Vec<(UserId, String)>, PaymentError> {
        let filter = doc! { "provider": provider.as_str(), "refund_pending": true };
        let cursor = self.payments.find(filter).limit(i64::from(limit)).comment(bson::Bson::String("fan-out: pending refunds".into())).await?;
        let docs: Vec<PaymentDoc> = futures::TryStreamExt::try_collect(cursor).await?;
        Ok(docs.into_iter().map(|d| (d.user_id, d.external_id)).collect())
    }

    /// Posts the reversal of `claim`'s deposit under `key`.
    async fn reverse(&self, provider: &ProviderId, claim: &PaymentClaim, key: &str) -> Result<RefundOutcome, PaymentError> {
        let reversal = Posting::payment_refund(claim.user_id, IdempotencyKey::new(key)?, provider.clone(), claim.amount, format!("refunded by {provider}"))?;
        match self.ledger.post(&reversal).await {
            Ok(outcome) => Ok(RefundOutcome::Reversed(outcome)),
            Err(LedgerError::InsufficientFunds { .. }) => Ok(RefundOutcome::Uncovered),
            Err(e) => Err(e.into()),
        }
    }

    /// The claim of a recorded payment: its payer and amount.
    async fn claim(&self, provider: &ProviderId, external_id: &str) -> Result<Option<PaymentClaim>, PaymentError> {
        Ok(self.claims.find_one(doc! { "_id": claim_id(provider, external_id) }).await?)
    }

    /// Who paid payment `external_id`, and how much; `None` if it was never recorded.
    pub async fn payer(&self, provider: &ProviderId, external_id: &str) -> Result<Option<(UserId, Money)>, PaymentError> {
        Ok(self.claim(provider, external_id).await?.map(|c| (c.user_id, c.amount)))
    }

    /// How many of a provider's transactions a reconciler has read (0 at first).
    pub async fn transactions_read(&self, provider: &ProviderId) -> Result<u64, PaymentError> {
        let cursor = self.cursors.find_one(doc! { "_id": cursor_id(provider) }).await?;
        Ok(cursor.and_then(|c| c.get_i64("read").ok()).map_or(0, |n| n.max(0) as u64))
    }

    /// Records that `read` of the provider's transactions have been handled.
    pub async fn set_transactions_read(&self, provider: &ProviderId, read: u64) -> Result<(), PaymentError> {
        let filter = doc! { "_id": cursor_id(provider) };
        self.cursors.update_one(filter, doc! { "$set": { "read": read as i64 } }).upsert(true).await?;
        Ok(())
    }

    pub async fn status(&self, payment: &PaymentJob) -> Result<Option<PaymentStatus>, PaymentError> {
        let filter = doc! { "_id": payment.record_id(), "user_id": payment.user_id.get() };
        Ok(self.payments.find_one(filter).await?.map(|d| d.status))
    }

    /// Payments recorded before `cutoff` and still not credited: their job was lost (Redis
    /// failover) or dead-lettered. The reconciler enqueues them again.
    pub async fn stuck(&self, cutoff: DateTime<Utc>, limit: u32) -> Result<Vec<PaymentJob>, PaymentError> {
        let filter = doc! { "status": "received", "created_at": { "$lt": bson::DateTime::from_chrono(cutoff) } };
        let cursor = self
            .payments
            .find(filter)
            .sort(doc! { "created_at": 1 })
            .limit(i64::from(limit))
            .comment(bson::Bson::String("fan-out: payment reconciler".into()))
            .await?;
        let docs: Vec<PaymentDoc> = futures::TryStreamExt::try_collect(cursor).await?;
        Ok(docs
            .into_iter()
            .map(|d| PaymentJob { user_id: d.user_id, provider: d.provider, external_id: d.external_id, amount: d.amount })
            .collect())
    }
}
