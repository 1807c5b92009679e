//! The state machine's moves: request (with the hold), approve, reject, and the final postings
//! that end a withdrawal (settle, release), each a compare-and-set on the current status.

use mongodb::bson::{doc, Bson, Document};

use super::{bson_time, key, now, withdrawal_id, NewWithdrawal, Withdrawal, WithdrawalError, WithdrawalStatus, Withdrawals};
use crate::ids::UserId;
use crate::ledger::{Guard, LedgerError, PostOutcome, Posting, PostingError};
use crate::money::Money;
use crate::storage::{collections, is_duplicate_key};

impl Withdrawals {
    /// Records a withdrawal request and holds amount + fee. Approves it at once when the amount
    /// is at most `auto_approve_up_to` at the time it is first recorded (kept on it). Repeating a
    /// request returns it as it now is, and finishes what the first attempt decided.
    pub async fn request(&self, new: NewWithdrawal, auto_approve_up_to: Money) -> Result<Withdrawal, WithdrawalError> {
        let at = now();
        let w = Withdrawal {
            id: withdrawal_id(new.user_id, new.request_id.as_str()),
            user_id: new.user_id,
            request_id: new.request_id.to_string(),
            amount: new.amount,
            fee: new.fee,
            address: new.address.as_str().to_owned(),
            status: WithdrawalStatus::Requested,
            reason: None,
            provider_reference: None,
            lease_until: None,
            claim: 0,
            claimed_at: None,
            created_at: at,
            updated_at: at,
            auto_approve: Some(new.amount.minor() <= auto_approve_up_to.minor()),
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
        let auto_approve = w.auto_approve.unwrap_or(w.amount.minor() <= auto_approve_up_to.minor());
        if w.status == WithdrawalStatus::Requested && auto_approve {
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
    pub(super) async fn ensure_hold(&self, w: &Withdrawal) -> Result<bool, WithdrawalError> {
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

    /// Applies `guard`'s compare-and-set on its own (no posting); returns whether this call
    /// made the move.
    pub(super) async fn transition(&self, guard: Guard) -> Result<bool, WithdrawalError> {
        Ok(self.withdrawals.update_one(guard.filter, guard.update).await?.modified_count == 1)
    }

    /// The compare-and-set of a transition: `w` still in one of `from` (and, for a payout run,
    /// still under this run's claim), moved to `to` with `set`. Final transitions commit it with
    /// their posting (`post_final`); the others apply it alone (`transition`).
    pub(super) fn guard(w: &Withdrawal, from: &[WithdrawalStatus], claim: Option<i64>, to: WithdrawalStatus, mut set: Document) -> Guard {
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
    pub(super) async fn post_final(&self, w: &Withdrawal, posting: &Posting, guard: &Guard) -> Result<PostOutcome, WithdrawalError> {
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

    pub(super) async fn settle(&self, w: Withdrawal, reference: String) -> Result<Withdrawal, WithdrawalError> {
        let settle = Posting::payout_settle(w.user_id, key("settle", &w)?, w.amount, w.fee, format!("payout {reference}"))?;
        let guard = Self::guard(&w, &[WithdrawalStatus::Processing], Some(w.claim), WithdrawalStatus::Sent, doc! { "provider_reference": &reference });
        self.post_final(&w, &settle, &guard).await?;
        metrics::counter!("payouts_total", "outcome" => "sent").increment(1);
        self.get(w.user_id, &w.request_id).await
    }

    pub(super) async fn fail(&self, w: Withdrawal, reason: String) -> Result<Withdrawal, WithdrawalError> {
        metrics::counter!("payouts_total", "outcome" => "failed").increment(1);
        self.release(&w, &[WithdrawalStatus::Processing], Some(w.claim), &reason).await
    }

    /// Returns the hold to the user and ends the withdrawal as `released`, in one transaction.
    pub(super) async fn release(&self, w: &Withdrawal, from: &[WithdrawalStatus], claim: Option<i64>, reason: &str) -> Result<Withdrawal, WithdrawalError> {
        let held = w.amount.checked_add(w.fee).map_err(PostingError::from)?;
        let release = Posting::hold_release(w.user_id, key("release", w)?, held, format!("withdrawal {} released", w.request_id))?;
        let guard = Self::guard(w, from, claim, WithdrawalStatus::Released, doc! { "reason": reason });
        self.post_final(w, &release, &guard).await?;
        self.get(w.user_id, &w.request_id).await
    }

    /// Finishes a release begun before releases became one transaction.
    pub(super) async fn finish_release(&self, w: Withdrawal) -> Result<Withdrawal, WithdrawalError> {
        if w.status == WithdrawalStatus::Releasing {
            let reason = w.reason.clone().unwrap_or_default();
            return self.release(&w, &[WithdrawalStatus::Releasing], None, &reason).await;
        }
        Ok(w)
    }
}
