//! `/admin/settings`: the plans on sale, the referral commission and each currency's
//! withdrawal policy, changed at run time (`obentchi_core::settings`). Reading needs `read`;
//! changing them moves money, so it needs `money`, is audited, and states the version it
//! changes (a change made meanwhile by another admin is refused with 409, never overwritten).
//! Every replica decides with the new values within seconds.

use axum::extract::State;
use axum::Json;
use obentchi_core::settings::{RuntimeSettings, Versioned};
use serde::Deserialize;
use utoipa::ToSchema;

use super::audit;
use crate::auth::{Banker, Reader};
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// The settings in force. Amounts are text (`"100 XTR"`); `version` 0 means the configuration's.
#[utoipa::path(get, path = "/admin/settings", security(("bearer" = ["read"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody)))]
pub async fn current(_: Reader, State(state): State<AppState>) -> Result<Json<Versioned>, ApiError> {
    Ok(Json(state.settings.current().await?))
}

#[derive(Deserialize, ToSchema)]
pub struct SettingsChange {
    /// The version these settings replace (from `GET /admin/settings`).
    pub version: i64,
    /// `subscriptions` (`plans`: `[{id, price, days}]`, `referral_commission_bps` ≤ 10000) and
    /// `withdrawals` (one policy per currency: `min`, `max`, `daily_limit`, `fee`,
    /// `auto_approve_up_to`, `address_format`), as `GET` shows them.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
}

/// Replace the settings. Checked as the configuration is (a plan's price positive, limits in
/// order and in one currency per policy, the commission at most the whole price) before
/// anything is written.
#[utoipa::path(put, path = "/admin/settings", request_body = SettingsChange, security(("bearer" = ["money"])),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn replace(
    banker: Banker,
    State(state): State<AppState>,
    crate::error::Json(change): crate::error::Json<SettingsChange>,
) -> Result<Json<Versioned>, ApiError> {
    // Every field stated: an omitted one would otherwise take a built-in default, not the
    // configuration's or the current value.
    for field in ["/subscriptions/plans", "/subscriptions/referral_commission_bps", "/withdrawals"] {
        if change.settings.pointer(field).is_none() {
            return Err(ApiError::bad_request(format!("settings{}: missing (state every field, as GET shows them)", field.replace('/', "."))));
        }
    }
    let settings: RuntimeSettings = serde_json::from_value(change.settings).map_err(|err| ApiError::bad_request(format!("settings: {err}")))?;
    let target = format!("settings:{}", change.version);
    let outcome = state.settings.replace(change.version, settings, &banker.0.token_name).await;
    audit(&state, &banker.0, "settings.replace", &target, match &outcome {
        Ok(_) => "replaced",
        Err(_) => "refused",
    })
    .await;
    Ok(Json(outcome?))
}
