//! Broadcasts: a message to every user who takes broadcasts (not blocked, not banned, not
//! turned off), or to an audience among them, with a text per language, sent by the workers in
//! batches under flood control. Creating one is idempotent on the `Idempotency-Key` header.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use obentchi_core::broadcasts::{Audience, Broadcast, BroadcastMessage, BroadcastStatus};
use obentchi_core::i18n::Lang;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{audit, idempotency_key, message_text};
use crate::auth::{Reader, Writer};
use crate::error::{ApiError, ErrorBody, Path};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct BroadcastView {
    pub id: String,
    pub text: String,
    /// By language code.
    pub texts: BTreeMap<String, String>,
    pub audience: Audience,
    pub status: BroadcastStatus,
    /// Messages enqueued so far.
    pub enqueued: u64,
    /// Messages Telegram accepted.
    pub sent: u64,
    pub created_at: DateTime<Utc>,
}

impl From<Broadcast> for BroadcastView {
    fn from(b: Broadcast) -> BroadcastView {
        let BroadcastMessage { text, texts, audience } = b.message;
        BroadcastView { id: b.id, text, texts, audience, status: b.status, enqueued: b.enqueued, sent: b.sent, created_at: b.created_at }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewBroadcast {
    /// For every language without its own text.
    pub text: String,
    /// A text per language code (`ar`, `en`, `fr`, `es`, `de`, `ru`, `zh`).
    #[serde(default)]
    pub texts: BTreeMap<String, String>,
    /// Who gets it; everyone who takes broadcasts if absent.
    #[serde(default)]
    pub audience: Audience,
}

/// Start a broadcast. With an `Idempotency-Key` header (1–64 of `A-Za-z0-9_-`), repeating the
/// request returns the broadcast it started instead of starting another.
#[utoipa::path(post, path = "/admin/broadcasts", request_body = NewBroadcast, security(("bearer" = ["write"])),
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = BroadcastView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    writer: Writer,
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::error::Json(body): crate::error::Json<NewBroadcast>,
) -> Result<Json<BroadcastView>, ApiError> {
    let text = message_text(&body.text)?.to_owned();
    let mut texts = BTreeMap::new();
    for (code, translated) in &body.texts {
        let lang = Lang::from_code(code).filter(|l| l.code() == code).ok_or_else(|| ApiError::bad_request(format!("texts: {code:?} is not one of our languages")))?;
        texts.insert(lang.code().to_owned(), message_text(translated)?.to_owned());
    }
    let message = BroadcastMessage { text, texts, audience: body.audience };
    let id = match idempotency_key(&headers)? {
        None => uuid::Uuid::now_v7().to_string(),
        Some(key) => format!("key-{key}"),
    };
    let broadcast = state.broadcasts.start(&id, &message).await?;
    audit(&state, &writer.0, "broadcast.create", &id, "started").await;
    Ok(Json(broadcast.into()))
}

/// A broadcast's progress.
#[utoipa::path(get, path = "/admin/broadcasts/{id}", params(("id" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = BroadcastView), (status = 404, body = ErrorBody)))]
pub async fn progress(_: Reader, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<BroadcastView>, ApiError> {
    Ok(Json(state.broadcasts.get(&id).await?.into()))
}

/// Stop a running broadcast at its next batch. Idempotent.
#[utoipa::path(post, path = "/admin/broadcasts/{id}/cancel", params(("id" = String, Path)), security(("bearer" = ["write"])),
    responses((status = 200, body = BroadcastView), (status = 404, body = ErrorBody)))]
pub async fn cancel(writer: Writer, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<BroadcastView>, ApiError> {
    let broadcast = state.broadcasts.cancel(&id).await?;
    audit(&state, &writer.0, "broadcast.cancel", &id, "cancelled").await;
    Ok(Json(broadcast.into()))
}
