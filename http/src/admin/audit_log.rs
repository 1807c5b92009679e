//! `GET /admin/audit`: the audit log the admin API writes, newest first, paged by cursor.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use obentchi_core::admin_audit::{AuditFilter, StoredAuditEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{next_cursor, page_size};
use crate::auth::Reader;
use crate::error::{ApiError, ErrorBody, Query};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// `withdrawal.approve`, `user.ban`, `dead_letter.retry` …
    pub action: Option<String>,
    /// What the change targeted (a user id, a withdrawal id …).
    pub target: Option<String>,
    /// The id of the token that made it.
    pub token_id: Option<String>,
    /// `next` of the previous page.
    pub before: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: String,
    pub token_id: String,
    pub token_name: String,
    pub action: String,
    pub target: String,
    /// `attempted` while the change runs (or if it never finished), then how it ended.
    pub outcome: String,
    pub at: DateTime<Utc>,
}

impl From<StoredAuditEntry> for AuditEntryView {
    fn from(stored: StoredAuditEntry) -> Self {
        let e = stored.entry;
        AuditEntryView { id: stored.id.to_hex(), token_id: e.token_id, token_name: e.token_name, action: e.action, target: e.target, outcome: e.outcome, at: e.at }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// Who changed what through the admin API, newest first.
#[utoipa::path(get, path = "/admin/audit", params(AuditQuery), security(("bearer" = ["read"])),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(_: Reader, State(state): State<AppState>, Query(query): Query<AuditQuery>) -> Result<Json<AuditPage>, ApiError> {
    let before = query.before.map(|b| ObjectId::parse_str(&b).map_err(|_| ApiError::bad_request("before: not a cursor this API gave"))).transpose()?;
    let filter = AuditFilter { action: query.action, target: query.target, token_id: query.token_id };
    let limit = page_size(query.limit);
    let entries = state.audit.list(&filter, before, limit).await?;
    let next = next_cursor(&entries, limit, |e| e.id.to_hex());
    Ok(Json(AuditPage { entries: entries.into_iter().map(AuditEntryView::from).collect(), next }))
}
