//! Moving money by hand (`money` scope, audited, idempotent): refunding a Stars payment, and
//! correcting a balance, with a second admin's approval above a threshold.

use axum::extract::State;
use axum::Json;
use obentchi_core::adjustments::{AdjustmentError, AdjustmentOutcome, AdjustmentRequest};
use obentchi_core::ids::{IdempotencyKey, ProviderId};
use obentchi_core::ledger::PostOutcome;
use obentchi_core::money::Money;
use obentchi_core::payments::{RefundAnswer, RefundOutcome, TELEGRAM_STARS};
use serde::{Deserialize, Serialize};
use teloxide::prelude::Requester;
use teloxide::types::TelegramTransactionId;
use utoipa::ToSchema;

use super::{audit, user_id};
use crate::auth::Banker;
use crate::error::{ApiError, ErrorBody, Path};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct RefundView {
    pub charge_id: String,
    pub user_id: i64,
    pub amount: Money,
    /// `refunded` (Telegram confirmed, now or before) or `pending` (no definitive answer: the
    /// balance is already reversed, and the Stars reconciler asks Telegram again until it
    /// answers; calling again is safe).
    pub status: &'static str,
}

/// Refund a Stars payment: the deposit is reversed first (refused, changing nothing, if the
/// user has spent the money), then Telegram is asked (`refundStarPayment`). Telegram's
/// definitive refusal gives the balance back; no answer leaves the refund pending, and the
/// Stars reconciler asks Telegram again. Idempotent.
#[utoipa::path(post, path = "/admin/payments/stars/{charge_id}/refund", params(("charge_id" = String, Path)),
    security(("bearer" = ["money"])),
    responses((status = 200, body = RefundView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn refund_stars(banker: Banker, State(state): State<AppState>, Path(charge_id): Path<String>) -> Result<Json<RefundView>, ApiError> {
    let result = refund(&state, &charge_id).await;
    let outcome = match &result {
        Ok(view) => view.status.to_owned(),
        Err(err) => format!("refused: {err}"),
    };
    audit(&state, &banker.0, "payment.refund", &format!("{TELEGRAM_STARS}:{charge_id}"), &outcome).await;
    result.map(Json)
}

async fn refund(state: &AppState, charge_id: &str) -> Result<RefundView, ApiError> {
    let bot = state.bot.as_ref().ok_or_else(|| ApiError::Unavailable(anyhow::anyhow!("the Telegram bot token is not configured here")))?;
    let provider = ProviderId::new(TELEGRAM_STARS).map_err(ApiError::bad_request)?;
    let (user, amount) = state.payments.payer(&provider, charge_id).await?.ok_or_else(|| ApiError::NotFound(format!("Stars payment {charge_id}")))?;
    if state.payments.refund_was_refused(&provider, charge_id).await? {
        return Err(ApiError::Conflict(format!("Telegram refused to refund {charge_id} before; the balance was given back")));
    }
    match state.payments.start_refund(&provider, charge_id).await? {
        RefundOutcome::Reversed(_) => {}
        RefundOutcome::Uncovered => {
            return Err(ApiError::Conflict(format!("user {user} has already spent part of the {amount} paid; nothing was refunded")));
        }
        RefundOutcome::UnknownPayment => return Err(ApiError::NotFound(format!("Stars payment {charge_id}"))),
    }
    let asked = bot.refund_star_payment(teloxide::types::UserId(user.get() as u64), TelegramTransactionId(charge_id.to_owned())).await;
    let answer = match &asked {
        Ok(_) => RefundAnswer::from_telegram(None),
        Err(teloxide::RequestError::Api(err)) => RefundAnswer::from_telegram(Some(&err.to_string())),
        Err(other) => RefundAnswer::NoAnswer(other.to_string()),
    };
    state.payments.settle_refund(&provider, charge_id, &answer).await?;
    let view = |status| RefundView { charge_id: charge_id.to_owned(), user_id: user.get(), amount, status };
    match answer {
        RefundAnswer::Refunded => Ok(view("refunded")),
        RefundAnswer::Refused(reason) => Err(ApiError::Conflict(format!("Telegram refused the refund ({reason}); the balance is as before"))),
        RefundAnswer::NoAnswer(reason) => {
            tracing::warn!(charge_id, reason, "refundStarPayment gave no definitive answer; the Stars reconciler asks again");
            Ok(view("pending"))
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewAdjustment {
    /// Positive credits, negative debits: `{"currency": "USDT", "minor": -2500000}`.
    pub change: Money,
    /// Why; kept with the posting and in the audit log.
    pub reason: String,
    /// The caller's idempotency key: the same key is the same correction.
    pub key: String,
}

#[derive(Serialize, ToSchema)]
pub struct AdjustmentView {
    /// `applied` or `awaiting_approval`.
    pub status: &'static str,
    /// For `awaiting_approval`: what `POST /admin/adjustments/{id}/approve` takes.
    pub id: Option<String>,
}

impl From<AdjustmentError> for ApiError {
    fn from(err: AdjustmentError) -> ApiError {
        use AdjustmentError as E;
        match err {
            E::NotFound(id) => ApiError::NotFound(format!("correction {id}")),
            err @ E::SameAdmin(_) => ApiError::NotAllowed(err.to_string()),
            err @ (E::KeyReused(_) | E::InsufficientFunds(_)) => ApiError::Conflict(err.to_string()),
            err @ (E::NoReason | E::CurrencyNotAllowed(_) | E::OverLimit { .. } | E::Posting(_) | E::Id(_)) => {
                ApiError::BadRequest(err.to_string())
            }
            err @ (E::Ledger(_) | E::Storage(_)) => ApiError::Unavailable(err.into()),
        }
    }
}

/// Credit or debit a user's balance by hand. Above the currency's threshold it waits for a
/// second admin; within it, it is posted at once. Idempotent on `key`.
#[utoipa::path(post, path = "/admin/users/{id}/adjustments", params(("id" = i64, Path)), request_body = NewAdjustment,
    security(("bearer" = ["money"])),
    responses((status = 200, body = AdjustmentView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn adjust(
    banker: Banker,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    crate::error::Json(body): crate::error::Json<NewAdjustment>,
) -> Result<Json<AdjustmentView>, ApiError> {
    let result = async {
        let request = AdjustmentRequest {
            user_id: user_id(id)?,
            change: body.change,
            reason: body.reason.clone(),
            key: IdempotencyKey::new(body.key.clone()).map_err(ApiError::bad_request)?,
            requested_by: banker.0.token_id.clone(),
        };
        Ok::<_, ApiError>(match state.adjustments.request(&state.adjustment_policy, request).await? {
            AdjustmentOutcome::Applied(_) => AdjustmentView { status: "applied", id: None },
            AdjustmentOutcome::AwaitingApproval { id } => AdjustmentView { status: "awaiting_approval", id: Some(id) },
        })
    }
    .await;
    let outcome = match &result {
        Ok(view) => format!("{} {} ({})", view.status, body.change, body.reason),
        Err(err) => format!("refused: {err}"),
    };
    audit(&state, &banker.0, "balance.adjust", &format!("user:{id}"), &outcome).await;
    result.map(Json)
}

/// A second admin approves a correction waiting for approval; it is posted once. The admin who
/// asked for it cannot approve it.
#[utoipa::path(post, path = "/admin/adjustments/{id}/approve", params(("id" = String, Path)), security(("bearer" = ["money"])),
    responses((status = 200, body = AdjustmentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(banker: Banker, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<AdjustmentView>, ApiError> {
    let result = state.adjustments.approve(&id, &banker.0.token_id).await.map_err(ApiError::from);
    let outcome = match &result {
        Ok(PostOutcome::Applied(_)) => "applied".to_owned(),
        Ok(_) => "already applied".to_owned(),
        Err(err) => format!("refused: {err}"),
    };
    audit(&state, &banker.0, "balance.adjust.approve", &id, &outcome).await;
    result.map(|_| Json(AdjustmentView { status: "applied", id: Some(id) }))
}
