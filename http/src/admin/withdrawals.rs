//! Withdrawal review. Approve, reject and retry are idempotent: the state machine's
//! compare-and-set transitions decide, and the job a change enqueues carries a key derived from
//! the withdrawal (and, for retries, from the state it was retried in), so repeating a call
//! enqueues nothing new and never pays twice.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use obentchi_core::ids::UserId;
use obentchi_core::money::Money;
use obentchi_core::withdrawals::{notify_outcome, Withdrawal, WithdrawalStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{audit, next_cursor, page_size};
use crate::auth::{Banker, Reader};
use crate::error::{ApiError, ErrorBody, Path, Query};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct WithdrawalView {
    /// `<user id>:<request id>`: what the actions take.
    pub id: String,
    pub user_id: i64,
    pub request_id: String,
    pub amount: Money,
    pub fee: Money,
    pub address: String,
    pub status: WithdrawalStatus,
    pub reason: Option<String>,
    pub provider_reference: Option<String>,
    /// When it was first claimed for payout (absent until then).
    pub claimed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Withdrawal> for WithdrawalView {
    fn from(w: Withdrawal) -> WithdrawalView {
        WithdrawalView {
            id: w.id,
            user_id: w.user_id.get(),
            request_id: w.request_id,
            amount: w.amount,
            fee: w.fee,
            address: w.address,
            status: w.status,
            reason: w.reason,
            provider_reference: w.provider_reference,
            claimed_at: w.claimed_at,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WithdrawalPage {
    pub withdrawals: Vec<WithdrawalView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<DateTime<Utc>>,
}

#[derive(Deserialize, IntoParams)]
pub struct WithdrawalQuery {
    pub status: Option<WithdrawalStatus>,
    /// `updated_at` of the last withdrawal of the previous page (RFC 3339).
    pub before: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
}

/// Withdrawals by status, most recently changed first.
#[utoipa::path(get, path = "/admin/withdrawals", params(WithdrawalQuery), security(("bearer" = ["read"])),
    responses((status = 200, body = WithdrawalPage), (status = 400, body = ErrorBody)))]
pub async fn list(_: Reader, State(state): State<AppState>, Query(query): Query<WithdrawalQuery>) -> Result<Json<WithdrawalPage>, ApiError> {
    let limit = page_size(query.limit);
    let withdrawals: Vec<WithdrawalView> =
        state.withdrawals.list(query.status, query.before, limit).await?.into_iter().map(WithdrawalView::from).collect();
    let next_before = next_cursor(&withdrawals, limit, |w| w.updated_at);
    Ok(Json(WithdrawalPage { withdrawals, next_before }))
}

#[derive(Deserialize, IntoParams)]
pub struct StuckQuery {
    /// In `processing` for at least this many seconds (default 3600, as the alert).
    pub older_than_s: Option<u32>,
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct StuckWithdrawals {
    /// Oldest claim first. `reason` holds the last ambiguous answer from the provider.
    pub withdrawals: Vec<WithdrawalView>,
}

/// Withdrawals in `processing` for longer than `older_than_s`: the provider never answered
/// definitively (a timeout, a 409, a lookup that never finds it, a status that never finishes).
/// Their money stays held; nothing is refunded on a guess. Resolve with the provider, then
/// `retry` (a lookup runs first).
#[utoipa::path(get, path = "/admin/withdrawals/stuck", params(StuckQuery), security(("bearer" = ["read"])),
    responses((status = 200, body = StuckWithdrawals), (status = 400, body = ErrorBody)))]
pub async fn stuck(_: Reader, State(state): State<AppState>, Query(query): Query<StuckQuery>) -> Result<Json<StuckWithdrawals>, ApiError> {
    let older_than = chrono::Duration::seconds(i64::from(query.older_than_s.unwrap_or(3_600)));
    let withdrawals = state.withdrawals.stuck_processing(Utc::now() - older_than, page_size(query.limit)).await?;
    Ok(Json(StuckWithdrawals { withdrawals: withdrawals.into_iter().map(WithdrawalView::from).collect() }))
}

fn parse_id(id: &str) -> Result<(UserId, &str), ApiError> {
    let bad = || ApiError::bad_request(format!("{id:?} is not a withdrawal id (<user id>:<request id>)"));
    let (user, request) = id.split_once(':').ok_or_else(bad)?;
    let user = user.parse::<i64>().ok().and_then(|u| UserId::new(u).ok()).ok_or_else(bad)?;
    if request.is_empty() {
        return Err(bad());
    }
    Ok((user, request))
}


async fn finish(state: &AppState, banker: &Banker, action: &str, id: &str, result: Result<Withdrawal, ApiError>) -> Result<Json<WithdrawalView>, ApiError> {
    let outcome = match &result {
        Ok(w) => w.status.as_str().to_owned(),
        Err(err) => format!("refused: {err}"),
    };
    audit(state, &banker.0, action, id, &outcome).await;
    result.map(|w| Json(w.into()))
}

/// Approve a requested withdrawal and enqueue its payout. Approving again changes nothing.
#[utoipa::path(post, path = "/admin/withdrawals/{id}/approve", params(("id" = String, Path)), security(("bearer" = ["money"])),
    responses((status = 200, body = WithdrawalView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(banker: Banker, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<WithdrawalView>, ApiError> {
    let (user, request) = parse_id(&id)?;
    let result = async {
        let w = state.withdrawals.approve(user, request).await?;
        if w.status == WithdrawalStatus::Approved {
            let job = w.job();
            state.withdrawal_jobs.enqueue(&job, Some(&job.job_key())).await?;
        }
        Ok(w)
    }
    .await;
    finish(&state, &banker, "withdrawal.approve", &id, result).await
}

#[derive(Deserialize, ToSchema)]
pub struct RejectBody {
    /// Shown to the user.
    pub reason: String,
}

/// Reject a withdrawal not yet claimed for payout; its hold returns to the user, who is told.
/// Idempotent.
#[utoipa::path(post, path = "/admin/withdrawals/{id}/reject", params(("id" = String, Path)), request_body = RejectBody,
    security(("bearer" = ["money"])),
    responses((status = 200, body = WithdrawalView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reject(
    banker: Banker,
    State(state): State<AppState>,
    Path(id): Path<String>,
    crate::error::Json(body): crate::error::Json<RejectBody>,
) -> Result<Json<WithdrawalView>, ApiError> {
    let (user, request) = parse_id(&id)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::bad_request("reason must be 1 to 500 characters"));
    }
    let result = state.withdrawals.reject(user, request, reason).await.map_err(ApiError::from);
    if let Ok(w) = &result {
        // The rejection stands either way; a notice that cannot be queued is logged, not a
        // reason to tell the admin the rejection failed.
        if let Err(err) = notify_outcome(&state.users, &state.outbound, w).await {
            tracing::warn!(withdrawal = %w.id, %err, "rejection notice not queued");
        }
    }
    finish(&state, &banker, "withdrawal.reject", &id, result).await
}

/// Drive a stuck withdrawal again (approved, processing, releasing): enqueues a job that claims
/// it by compare-and-set and, for an unknown payout outcome, looks the payout up before
/// anything is sent. Settled withdrawals are returned unchanged.
#[utoipa::path(post, path = "/admin/withdrawals/{id}/retry", params(("id" = String, Path)), security(("bearer" = ["money"])),
    responses((status = 200, body = WithdrawalView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retry(banker: Banker, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<WithdrawalView>, ApiError> {
    let (user, request) = parse_id(&id)?;
    let result = async {
        let w = state.withdrawals.get(user, request).await?;
        match w.status {
            WithdrawalStatus::Approved | WithdrawalStatus::Processing | WithdrawalStatus::Releasing => {
                // One job per state the withdrawal was retried in: a double click collapses.
                let job = w.job();
                let key = format!("{}:retry:{}", job.job_key(), w.updated_at.timestamp_millis());
                state.withdrawal_jobs.enqueue(&job, Some(&key)).await?;
                Ok(w)
            }
            WithdrawalStatus::Requested => Err(ApiError::Conflict(format!("withdrawal {id} awaits approval; approve it instead"))),
            WithdrawalStatus::Sent | WithdrawalStatus::Released | WithdrawalStatus::Rejected => Ok(w),
        }
    }
    .await;
    finish(&state, &banker, "withdrawal.retry", &id, result).await
}
