use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use obentchi_core::money::{Currency, Money};
use obentchi_core::stats::{self, PlatformStats};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::currency;
use crate::auth::Reader;
use crate::error::{ApiError, ErrorBody, Query};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
pub struct StatsQuery {
    /// UTC days back, today included (default 7, at most 90).
    pub days: Option<u32>,
}

/// Users, active subscriptions, and per day: deposits, payouts, revenue and commissions.
#[utoipa::path(get, path = "/admin/stats", params(StatsQuery), security(("bearer" = ["read"])),
    responses((status = 200, body = PlatformStats), (status = 400, body = ErrorBody)))]
pub async fn figures(_: Reader, State(state): State<AppState>, Query(query): Query<StatsQuery>) -> Result<Json<PlatformStats>, ApiError> {
    let days = query.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(ApiError::bad_request("days must be 1 to 90"));
    }
    Ok(Json(stats::collect(&state.ledger, &state.users, &state.subscriptions, days, chrono::Utc::now()).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct ReferrersQuery {
    /// `XTR` or `USDT` (default `XTR`).
    pub currency: Option<String>,
    /// UTC days back, today included (default 30, at most 365).
    pub days: Option<u32>,
    /// How many (default 10, at most 100).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ReferrerView {
    pub user_id: i64,
    pub commission: Money,
    /// How many commissions were credited.
    pub commissions: u64,
}

#[derive(Serialize, ToSchema)]
pub struct TopReferrers {
    pub since: DateTime<Utc>,
    pub referrers: Vec<ReferrerView>,
}

/// The referrers credited the most commission, most first.
#[utoipa::path(get, path = "/admin/referrers/top", params(ReferrersQuery), security(("bearer" = ["read"])),
    responses((status = 200, body = TopReferrers), (status = 400, body = ErrorBody)))]
pub async fn top_referrers(_: Reader, State(state): State<AppState>, Query(query): Query<ReferrersQuery>) -> Result<Json<TopReferrers>, ApiError> {
    let days = query.days.unwrap_or(30);
    if !(1..=365).contains(&days) {
        return Err(ApiError::bad_request("days must be 1 to 365"));
    }
    let currency = query.currency.as_deref().map(currency).transpose()?.unwrap_or(Currency::Xtr);
    let limit = query.limit.unwrap_or(10).clamp(1, 100);
    let since = stats::days_back(days, Utc::now());
    let top = state.ledger.top_referrers(currency, since, limit).await?;
    let referrers = top.into_iter().map(|r| ReferrerView { user_id: r.user_id.get(), commission: r.commission, commissions: r.commissions }).collect();
    Ok(Json(TopReferrers { since, referrers }))
}
