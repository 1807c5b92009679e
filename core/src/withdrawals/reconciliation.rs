//! Driving an approved withdrawal to its end: the claim, the send, and the lookups that resolve
//! an ambiguous answer; and the withdrawals that stopped moving (for the reconciler and for
//! people).

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};

use super::{bson_time, now, SendAttempt, Withdrawal, WithdrawalError, WithdrawalJob, WithdrawalStatus, Withdrawals};
use crate::payout::{LookupOutcome, PayoutProvider, PayoutRequest, SendOutcome};

/// A deliberately broken build, for the chaos checker's own test (a checker that cannot fail
/// proves nothing): `OBENTCHI_BREAK=refund_on_409` makes a 409 to a re-sent payout release the
/// hold, the bug this module's rules exist to prevent. Debug builds only: release builds never
/// read the variable.
fn deliberately_broken(switch: &str) -> bool {
    cfg!(debug_assertions) && std::env::var("OBENTCHI_BREAK").is_ok_and(|set| set == switch)
}

impl Withdrawals {
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
    pub(super) async fn claim(&self, w: &Withdrawal, from: &[WithdrawalStatus]) -> Result<Option<Withdrawal>, WithdrawalError> {
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

    pub(super) async fn pay<P: PayoutProvider>(&self, w: Withdrawal, provider: &P, attempt: SendAttempt) -> Result<Withdrawal, WithdrawalError> {
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

    pub(super) async fn reconcile<P: PayoutProvider>(&self, w: Withdrawal, provider: &P) -> Result<Withdrawal, WithdrawalError> {
        match provider.lookup(&PayoutRequest::new(w.id.clone(), w.address.clone(), w.amount)).await {
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
    pub(super) async fn ambiguous(&self, w: &Withdrawal, reason: String) -> Result<Withdrawal, WithdrawalError> {
        metrics::counter!("payouts_total", "outcome" => "ambiguous").increment(1);
        let filter = doc! { "_id": &w.id, "user_id": w.user_id.get(), "claim": w.claim };
        self.withdrawals.update_one(filter, doc! { "$set": { "reason": &reason } }).await?;
        Err(WithdrawalError::Ambiguous(reason))
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

    pub(super) fn stuck_processing_filter(cutoff: DateTime<Utc>) -> Document {
        doc! { "status": WithdrawalStatus::Processing.as_str(), "claimed_at": { "$lt": bson_time(cutoff) } }
    }
}
