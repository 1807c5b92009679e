//! Queues for ops: depth, age, in-flight and dead letters per queue, the worker pools' sizes
//! and recent scaling decisions; dead letters can be retried or discarded.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::Json;
use apalis_redis_streams::{DeadLetter, Queue, QueueStats, now_ms};
use obentchi_core::pools::PoolView;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::audit;
use crate::auth::{Reader, Writer};
use crate::error::{ApiError, ErrorBody, Path, Query};
use crate::AppState;

#[derive(Clone, Serialize, ToSchema)]
pub struct QueueView {
    pub name: String,
    pub partitions: u16,
    #[serde(flatten)]
    pub stats: QueueStats,
}

#[derive(Serialize, ToSchema)]
pub struct QueuesOverview {
    #[schema(value_type = Vec<QueueView>)]
    pub queues: Arc<Vec<QueueView>>,
    pub pools: Vec<PoolView>,
}

/// The last reading of every queue's stats, with when it was taken.
pub type StatsCache = Arc<tokio::sync::Mutex<Option<(Instant, Arc<Vec<QueueView>>)>>>;

/// Every queue's stats, at most `queue_stats_cache_ms` old. Reading them costs one Lua call
/// per partition (72 with the defaults): dashboards and scrapers polling at once share one
/// reading per interval instead of each paying for their own.
pub async fn queue_views(state: &AppState) -> Result<Arc<Vec<QueueView>>, ApiError> {
    let mut cached = state.queue_stats.lock().await;
    if let Some((at, views)) = cached.as_ref() {
        if at.elapsed() < state.queue_stats_ttl {
            return Ok(views.clone());
        }
    }
    let stats = futures::future::try_join_all(state.queues.values().map(|queue| queue.stats())).await?;
    let views: Arc<Vec<QueueView>> = Arc::new(
        state
            .queues
            .values()
            .zip(stats)
            .map(|(queue, stats)| QueueView { name: queue.name().to_owned(), partitions: queue.config().partitions, stats })
            .collect(),
    );
    *cached = Some((Instant::now(), views.clone()));
    Ok(views)
}

/// Every queue's stats and every worker pool's size and recent decisions.
#[utoipa::path(get, path = "/admin/queues", security(("bearer" = ["read"])),
    responses((status = 200, body = QueuesOverview), (status = 401, body = ErrorBody)))]
pub async fn overview(_: Reader, State(state): State<AppState>) -> Result<Json<QueuesOverview>, ApiError> {
    let (queues, pools) = tokio::try_join!(queue_views(&state), async { Ok(state.pools.view(now_ms()).await?) })?;
    Ok(Json(QueuesOverview { queues, pools }))
}

pub fn queue<'a>(state: &'a AppState, name: &str) -> Result<&'a Queue, ApiError> {
    state.queues.get(name).ok_or_else(|| ApiError::NotFound(format!("queue {name:?}")))
}

#[derive(Deserialize, IntoParams)]
pub struct DeadLetterQuery {
    /// At most this many per partition (default 20, at most 100).
    pub limit: Option<usize>,
}

/// A queue's oldest dead letters with their last error.
#[utoipa::path(get, path = "/admin/queues/{queue}/dead-letters", params(("queue" = String, Path), DeadLetterQuery),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<DeadLetter>), (status = 404, body = ErrorBody)))]
pub async fn dead_letters(
    _: Reader,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    Ok(Json(queue(&state, &name)?.dead_letters(limit).await?))
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterAction {
    pub queue: String,
    pub id: String,
    /// `retried` or `discarded`.
    pub outcome: &'static str,
}

async fn act(state: AppState, writer: Writer, name: String, id: String, retry: bool) -> Result<Json<DeadLetterAction>, ApiError> {
    let queue = queue(&state, &name)?;
    let done = if retry { queue.retry_dead(&id).await? } else { queue.discard_dead(&id).await? };
    let (action, outcome) = if retry { ("dead_letter.retry", "retried") } else { ("dead_letter.discard", "discarded") };
    if !done {
        // Gone already (retried or discarded by someone else, or never existed).
        return Err(ApiError::NotFound(format!("dead letter {id} in {name}")));
    }
    audit(&state, &writer.0, action, &format!("{name}/{id}"), outcome).await;
    Ok(Json(DeadLetterAction { queue: name, id, outcome }))
}

/// Put a dead letter back on its queue with fresh attempts. A second call finds it gone (404).
#[utoipa::path(post, path = "/admin/queues/{queue}/dead-letters/{id}/retry", params(("queue" = String, Path), ("id" = String, Path)),
    security(("bearer" = ["write"])),
    responses((status = 200, body = DeadLetterAction), (status = 404, body = ErrorBody)))]
pub async fn retry_dead_letter(writer: Writer, State(state): State<AppState>, Path((name, id)): Path<(String, String)>) -> Result<Json<DeadLetterAction>, ApiError> {
    act(state, writer, name, id, true).await
}

/// Delete a dead letter for good.
#[utoipa::path(post, path = "/admin/queues/{queue}/dead-letters/{id}/discard", params(("queue" = String, Path), ("id" = String, Path)),
    security(("bearer" = ["write"])),
    responses((status = 200, body = DeadLetterAction), (status = 404, body = ErrorBody)))]
pub async fn discard_dead_letter(writer: Writer, State(state): State<AppState>, Path((name, id)): Path<(String, String)>) -> Result<Json<DeadLetterAction>, ApiError> {
    act(state, writer, name, id, false).await
}
