use axum::extract::State;
use axum::Json;
use obentchi_core::stats::{self, PlatformStats};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Reader;
use crate::error::{ApiError, ErrorBody, Query};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
pub struct StatsQuery {
    /// UTC days back, today included (default 7, at most 90).
    pub days: Option<u32>,
}

/// Users, active subscriptions, and deposits and payouts per day.
#[utoipa::path(get, path = "/admin/stats", params(StatsQuery), security(("bearer" = ["read"])),
    responses((status = 200, body = PlatformStats), (status = 400, body = ErrorBody)))]
pub async fn figures(_: Reader, State(state): State<AppState>, Query(query): Query<StatsQuery>) -> Result<Json<PlatformStats>, ApiError> {
    let days = query.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(ApiError::bad_request("days must be 1 to 90"));
    }
    Ok(Json(stats::collect(&state.ledger, &state.users, &state.subscriptions, days, chrono::Utc::now()).await?))
}
