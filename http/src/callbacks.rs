//! Payment gateway callbacks: `POST /payments/callback/{provider}`, and Crypto Pay's webhook,
//! `POST /payments/cryptopay` (see `obentchi_core::cryptopay`).
//!
//! Generic gateways: `POST /payments/callback/{provider}`. The raw body is signed by the
//! gateway with HMAC-SHA256 under the provider's secret and the signature sent as
//! `X-Signature: sha256=<hex>`; it is checked in constant time before the body is even parsed.
//! An unknown provider, a missing or wrong signature → 401. A paid callback is recorded in
//! MongoDB and then enqueued as a payment job (so a job lost by Redis is found again from the
//! record); the gateway's retries credit once, keyed by the gateway's payment id.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::middleware::from_fn_with_state;
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use obentchi_core::cryptopay::{self, DepositError, WebhookUpdate};
use obentchi_core::ids::{ProviderId, UserId};
use obentchi_core::money::Money;
use obentchi_core::payments::PaymentJob;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody, Path, RawBody};
use crate::limits::{enforce, Class, Limiters};
use crate::AppState;

pub const SIGNATURE_HEADER: &str = "x-signature";

pub fn router(limits: &Limiters) -> Router<AppState> {
    Router::new()
        .route("/payments/callback/{provider}", post(callback))
        .route("/payments/cryptopay", post(crypto_pay_webhook))
        .route_layer(from_fn_with_state(limits.limiter(Class::Callback), enforce))
}

/// What a gateway reports.
#[derive(Deserialize, ToSchema)]
pub struct GatewayCallback {
    /// The gateway's id for the payment: the idempotency key of the credit.
    pub payment_id: String,
    pub user_id: i64,
    /// In minor units: `{"currency": "USDT", "minor": 12500000}`.
    pub amount: Money,
    /// Only `paid` credits; other states are acknowledged and ignored.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct CallbackAnswer {
    /// `accepted` (recorded and enqueued, or already was) or `ignored` (not a paid state).
    pub status: &'static str,
}

/// The HMAC-SHA256 of `body` under `secret`, as the gateway sends it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, body).finalize().into_bytes()))
}

fn mac(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

fn signature_valid(secret: &[u8], body: &[u8], headers: &HeaderMap) -> bool {
    let Some(presented) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else { return false };
    let Some(Ok(presented)) = presented.strip_prefix("sha256=").map(hex::decode) else { return false };
    // Constant-time comparison.
    mac(secret, body).verify_slice(&presented).is_ok()
}

/// A signed payment callback from a gateway.
#[utoipa::path(post, path = "/payments/callback/{provider}", params(("provider" = String, Path), ("X-Signature" = String, Header)),
    request_body = GatewayCallback,
    responses((status = 200, body = CallbackAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<CallbackAnswer>, ApiError> {
    let gateway = state.gateways.get(&provider).ok_or(ApiError::BadSignature)?;
    if !signature_valid(gateway.secret.expose().as_str().as_bytes(), &body, &headers) {
        metrics::counter!("payment_callbacks_total", "outcome" => "bad_signature").increment(1);
        return Err(ApiError::BadSignature);
    }
    let report: GatewayCallback = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("callback body: {e}")))?;
    if report.status != "paid" {
        metrics::counter!("payment_callbacks_total", "outcome" => "ignored").increment(1);
        return Ok(Json(CallbackAnswer { status: "ignored" }));
    }
    let payment = PaymentJob {
        user_id: UserId::new(report.user_id).map_err(ApiError::bad_request)?,
        provider: ProviderId::new(provider).map_err(ApiError::bad_request)?,
        external_id: report.payment_id,
        amount: report.amount,
    };
    if payment.external_id.is_empty() || !payment.amount.is_positive() {
        return Err(ApiError::bad_request("payment_id must not be empty and amount must be positive"));
    }
    state.payments.record(&payment).await?;
    state.payment_jobs.enqueue(&payment, Some(&payment.job_key())).await?;
    metrics::counter!("payment_callbacks_total", "outcome" => "accepted").increment(1);
    Ok(Json(CallbackAnswer { status: "accepted" }))
}

/// Crypto Pay's webhook: an `invoice_paid` update, signed with the HMAC-SHA-256 of the raw body
/// under the SHA-256 of the app token. The paid invoice is checked against the one we created
/// (same id, asset and amount), recorded, then enqueued as a payment job: Crypto Pay's
/// re-deliveries credit once, keyed by the invoice id. An invoice that is not ours or does not
/// match is acknowledged (Crypto Pay would otherwise retry it for days) and reported, never
/// credited.
#[utoipa::path(post, path = "/payments/cryptopay", params(("crypto-pay-api-signature" = String, Header)),
    responses((status = 200, body = CallbackAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn crypto_pay_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<CallbackAnswer>, ApiError> {
    let token = state.crypto_pay_token.as_ref().ok_or(ApiError::BadSignature)?;
    let signature = headers.get(cryptopay::SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !cryptopay::signature_valid(token.expose().as_str(), &body, signature) {
        metrics::counter!("payment_callbacks_total", "outcome" => "bad_signature").increment(1);
        return Err(ApiError::BadSignature);
    }
    let update: WebhookUpdate = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("webhook body: {e}")))?;
    if update.update_type != "invoice_paid" || update.payload.status != "paid" {
        metrics::counter!("payment_callbacks_total", "outcome" => "ignored").increment(1);
        return Ok(Json(CallbackAnswer { status: "ignored" }));
    }
    let payment = match state.deposit_invoices.payment_for(&update.payload).await {
        Ok(payment) => payment,
        Err(DepositError::Storage(err)) => return Err(ApiError::Unavailable(err.into())),
        Err(err) => {
            metrics::counter!("payment_callbacks_total", "outcome" => "mismatch").increment(1);
            tracing::error!(invoice = update.payload.invoice_id, %err, "a paid Crypto Pay invoice was not credited");
            state.deposit_invoices.mismatched(&update.payload).await.map_err(|e| ApiError::Unavailable(e.into()))?;
            return Ok(Json(CallbackAnswer { status: "ignored" }));
        }
    };
    state.payments.record(&payment).await?;
    state.payment_jobs.enqueue(&payment, Some(&payment.job_key())).await?;
    state.deposit_invoices.recorded(&payment).await.map_err(|e| ApiError::Unavailable(e.into()))?;
    metrics::counter!("payment_callbacks_total", "outcome" => "accepted").increment(1);
    Ok(Json(CallbackAnswer { status: "accepted" }))
}
