//! `/admin/support/threads`: users' support threads (`obentchi_core::support`), and answering
//! or closing them from the API. An answer is idempotent on the `Idempotency-Key` header.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, TimeZone, Utc};
use obentchi_core::ids::UserId;
use obentchi_core::support::{Thread, ThreadStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{audit, idempotency_key, message_text, next_cursor, page_size, user_id};
use crate::auth::{Reader, Writer};
use crate::error::{ApiError, ErrorBody, Path, Query};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
pub struct ThreadQuery {
    /// `open` or `closed`; both if absent.
    pub status: Option<ThreadStatus>,
    /// `next` of the previous page.
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ThreadPage {
    /// Most recently active first.
    pub threads: Vec<Thread>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// A page's cursor: the last thread's activity time (ms) and user.
fn cursor(thread: &Thread) -> String {
    format!("{}:{}", thread.updated_at.timestamp_millis(), thread.user_id)
}

fn parse_cursor(text: &str) -> Result<(DateTime<Utc>, UserId), ApiError> {
    let bad = || ApiError::bad_request("after: not a cursor this API gave");
    let (ms, user) = text.split_once(':').ok_or_else(bad)?;
    let at = ms.parse::<i64>().ok().and_then(|ms| Utc.timestamp_millis_opt(ms).single()).ok_or_else(bad)?;
    let user = user.parse::<i64>().ok().and_then(|id| UserId::new(id).ok()).ok_or_else(bad)?;
    Ok((at, user))
}

/// Support threads, most recently active first.
#[utoipa::path(get, path = "/admin/support/threads", params(ThreadQuery), security(("bearer" = ["read"])),
    responses((status = 200, body = ThreadPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(_: Reader, State(state): State<AppState>, Query(query): Query<ThreadQuery>) -> Result<Json<ThreadPage>, ApiError> {
    let after = query.after.as_deref().map(parse_cursor).transpose()?;
    let limit = page_size(query.limit);
    let threads = state.support.list(query.status, after, limit).await?;
    let next = next_cursor(&threads, limit, cursor);
    Ok(Json(ThreadPage { threads, next }))
}

/// One user's support thread, every message.
#[utoipa::path(get, path = "/admin/support/threads/{user}", params(("user" = i64, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = Thread), (status = 404, body = ErrorBody)))]
pub async fn detail(_: Reader, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Thread>, ApiError> {
    detail_of(&state, user_id(id)?).await
}

#[derive(Deserialize, ToSchema)]
pub struct Answer {
    pub text: String,
}

/// Answer a user: added to their thread and sent to them in Telegram. With an
/// `Idempotency-Key` header, repeating the request adds and sends nothing more.
#[utoipa::path(post, path = "/admin/support/threads/{user}/messages", params(("user" = i64, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = Answer, security(("bearer" = ["write"])),
    responses((status = 200, body = Thread), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn answer(
    writer: Writer,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    crate::error::Json(body): crate::error::Json<Answer>,
) -> Result<Json<Thread>, ApiError> {
    let id = user_id(id)?;
    let text = message_text(&body.text)?;
    let key = match idempotency_key(&headers)? {
        Some(key) => format!("api:{key}"),
        None => format!("api:{}", uuid::Uuid::now_v7()),
    };
    let target = id.to_string();
    let added = state.support.answer(&state.users, &state.outbound, id, &key, &writer.0.token_name, text).await?;
    audit(&state, &writer.0, "support.answer", &target, if added { "sent" } else { "unchanged" }).await;
    detail_of(&state, id).await
}

/// Close a thread; the user is told, and their next `/support` opens it again. Idempotent.
#[utoipa::path(post, path = "/admin/support/threads/{user}/close", params(("user" = i64, Path)), security(("bearer" = ["write"])),
    responses((status = 200, body = Thread), (status = 404, body = ErrorBody)))]
pub async fn close(writer: Writer, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Thread>, ApiError> {
    let id = user_id(id)?;
    let closed = state.support.close_and_tell(&state.users, &state.outbound, id).await?;
    audit(&state, &writer.0, "support.close", &id.to_string(), if closed { "closed" } else { "unchanged" }).await;
    detail_of(&state, id).await
}

async fn detail_of(state: &AppState, id: UserId) -> Result<Json<Thread>, ApiError> {
    let thread = state.support.get(id).await?.ok_or_else(|| ApiError::NotFound(format!("support thread of user {id}")))?;
    Ok(Json(thread))
}
