//! `/admin/*`: JSON endpoints for admins. Reads need the `read` scope, changes `write`, moving
//! money by hand (refunds, balance corrections) `money`; every change is written to the audit
//! log with the token that made it.

pub mod audit_log;
pub mod broadcasts;
pub mod money;
pub mod postings;
pub mod queues;
pub mod settings;
pub mod stats;
pub mod support;
pub mod users;
pub mod withdrawals;

use axum::http::HeaderMap;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};
use axum::Router;

use obentchi_core::ids::UserId;
use obentchi_core::money::Currency;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::limits::{enforce, Class, Limiters};
use crate::AppState;

pub fn router(limits: &Limiters) -> Router<AppState> {
    let reads = Router::new()
        .route("/admin/users", get(users::list))
        .route("/admin/users/{id}", get(users::detail))
        .route("/admin/withdrawals", get(withdrawals::list))
        .route("/admin/withdrawals/stuck", get(withdrawals::stuck))
        .route("/admin/broadcasts/{id}", get(broadcasts::progress))
        .route("/admin/queues", get(queues::overview))
        .route("/admin/queues/{queue}/dead-letters", get(queues::dead_letters))
        .route("/admin/stats", get(stats::figures))
        .route("/admin/postings", get(postings::list))
        .route("/admin/audit", get(audit_log::list))
        .route("/admin/referrers/top", get(stats::top_referrers))
        .route("/admin/settings", get(settings::current))
        .route("/admin/support/threads", get(support::list))
        .route("/admin/support/threads/{user}", get(support::detail))
        .route_layer(from_fn_with_state(limits.limiter(Class::Read), enforce));
    let writes = Router::new()
        .route("/admin/users/{id}/ban", post(users::ban))
        .route("/admin/users/{id}/unban", post(users::unban))
        .route("/admin/broadcasts", post(broadcasts::create))
        .route("/admin/broadcasts/{id}/cancel", post(broadcasts::cancel))
        .route("/admin/support/threads/{user}/messages", post(support::answer))
        .route("/admin/support/threads/{user}/close", post(support::close))
        .route("/admin/queues/{queue}/dead-letters/{id}/retry", post(queues::retry_dead_letter))
        .route("/admin/queues/{queue}/dead-letters/{id}/discard", post(queues::discard_dead_letter))
        .route_layer(from_fn_with_state(limits.limiter(Class::Write), enforce));
    let money = Router::new()
        .route("/admin/withdrawals/{id}/approve", post(withdrawals::approve))
        .route("/admin/withdrawals/{id}/reject", post(withdrawals::reject))
        .route("/admin/withdrawals/{id}/retry", post(withdrawals::retry))
        .route("/admin/payments/stars/{charge_id}/refund", post(money::refund_stars))
        .route("/admin/users/{id}/adjustments", post(money::adjust))
        .route("/admin/adjustments/{id}/approve", post(money::approve))
        .route("/admin/settings", put(settings::replace))
        .route_layer(from_fn_with_state(limits.limiter(Class::Money), enforce));
    reads.merge(writes).merge(money)
}

/// Writes an audit entry for a change `caller` made.
pub async fn audit(state: &AppState, caller: &Caller, action: &str, target: &str, outcome: &str) {
    state.audit.record(&caller.audit_entry(action, target, outcome)).await;
}

/// A user id from a path.
pub fn user_id(id: i64) -> Result<UserId, ApiError> {
    UserId::new(id).map_err(ApiError::bad_request)
}

/// A currency code from a query (`XTR`, `USDT`).
pub fn currency(code: &str) -> Result<Currency, ApiError> {
    code.parse().map_err(|_| ApiError::bad_request(format!("currency: unknown currency {code:?}")))
}

/// Where the page after `page` starts (`cursor` of its last item), if it was full: a shorter
/// page is the last.
pub fn next_cursor<T, C>(page: &[T], limit: u32, cursor: impl Fn(&T) -> C) -> Option<C> {
    (page.len() == limit as usize).then(|| page.last().map(cursor)).flatten()
}

/// The request's `Idempotency-Key` header (1–64 of `A-Za-z0-9_-`), if it has one.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(key) = headers.get("idempotency-key") else { return Ok(None) };
    let key = key.to_str().unwrap_or_default();
    let valid = (1..=64).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(ApiError::bad_request("Idempotency-Key must be 1 to 64 of A-Za-z0-9_-"));
    }
    Ok(Some(key))
}

/// Telegram's limit on a message's text.
const MAX_TEXT_CHARS: usize = 4_096;

/// A message for users, trimmed: 1 to 4,096 characters, as Telegram takes it.
pub fn message_text(text: &str) -> Result<&str, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::bad_request(format!("text must be 1 to {MAX_TEXT_CHARS} characters")));
    }
    Ok(text)
}

/// Page sizes: 50 unless asked, never more than 200.
pub fn page_size(limit: Option<u32>) -> u32 {
    limit.unwrap_or(50).clamp(1, 200)
}
