//! `GET /admin/postings`: the ledger across all users, filtered and paged by cursor.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use obentchi_core::ledger::{PostingCursor, PostingFilter, PostingKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{currency, next_cursor, page_size};
use super::users::PostingView;
use crate::auth::Reader;
use crate::error::{ApiError, ErrorBody, Query};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
pub struct PostingQuery {
    /// `deposit`, `subscription_purchase`, `referral_commission`, `withdrawal_hold`,
    /// `hold_release`, `payout_settle`, `admin_adjustment`, `payment_refund`.
    pub kind: Option<String>,
    /// Postings with an entry in this currency: `XTR` or `USDT`.
    pub currency: Option<String>,
    /// Created at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// `next` of the previous page.
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct PostingPage {
    /// Newest first.
    pub postings: Vec<PostingView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// Postings of every user, newest first, by kind, currency and time.
#[utoipa::path(get, path = "/admin/postings", params(PostingQuery), security(("bearer" = ["read"])),
    responses((status = 200, body = PostingPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(_: Reader, State(state): State<AppState>, Query(query): Query<PostingQuery>) -> Result<Json<PostingPage>, ApiError> {
    let kind = query
        .kind
        .map(|k| serde_json::from_value::<PostingKind>(serde_json::Value::String(k.clone())).map_err(|_| ApiError::bad_request(format!("kind: unknown kind {k:?}"))))
        .transpose()?;
    let currency = query.currency.as_deref().map(currency).transpose()?;
    let after = query.after.map(|a| PostingCursor::parse(&a).ok_or_else(|| ApiError::bad_request("after: not a cursor this API gave"))).transpose()?;
    let filter = PostingFilter { kind, currency, from: query.from, to: query.to };
    let limit = page_size(query.limit);
    let postings = state.ledger.platform_postings(&filter, after.as_ref(), limit).await?;
    let next = next_cursor(&postings, limit, |p| PostingCursor::after(p).encode());
    Ok(Json(PostingPage { postings: postings.into_iter().map(PostingView::from).collect(), next }))
}
