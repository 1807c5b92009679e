//! Incoming payments: recorded in MongoDB when a provider reports them (Telegram Stars
//! `successful_payment`, a signed gateway callback), then credited by a payment job.
//!
//! The record comes first and the job second, so a job lost by Redis is found again from the
//! record (status `received`). Crediting is a ledger deposit keyed by provider and the
//! provider's own id, so any number of deliveries credit once.

use chrono::{DateTime, Utc};
use mongodb::bson::doc;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::ids::{IdError, IdempotencyKey, ProviderId, UserId};
use crate::ledger::{Ledger, LedgerError, PostOutcome, Posting, PostingError};
use crate::money::Money;
use crate::storage::{collections, is_duplicate_key, Store};

pub const PAYMENTS_QUEUE: &str = "payments";

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

    /// `_id` of the payment's record: user first, so it lives on the user's shard.
    fn record_id(&self) -> String {
        format!("{}:{}:{}", self.user_id, self.provider, self.external_id)
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
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    created_at: DateTime<Utc>,
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

#[derive(Clone)]
pub struct Payments {
    payments: Collection<PaymentDoc>,
    ledger: Ledger,
}

impl Payments {
    pub fn new(store: &Store, ledger: Ledger) -> Payments {
        Payments { payments: store.collection(collections::PAYMENTS), ledger }
    }

    /// Records a payment a provider reported. Reporting it again is harmless; reporting the same
    /// provider id with another user or amount is refused.
    pub async fn record(&self, payment: &PaymentJob) -> Result<(), PaymentError> {
        // Validates the key's shape before anything is stored.
        payment.deposit_key()?;
        let doc = PaymentDoc {
            id: payment.record_id(),
            user_id: payment.user_id,
            provider: payment.provider.clone(),
            external_id: payment.external_id.clone(),
            amount: payment.amount,
            status: PaymentStatus::Received,
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
