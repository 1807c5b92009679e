//! The endpoints every service serves for its operators and for Kubernetes:
//! `/healthz` (the process answers), `/readyz` (its MongoDB and Redis answer, and the Bot API
//! once answered, for the services that need it) and `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use apalis_redis_streams::RedisConn;
use crate::storage::Store;

/// How long a readiness probe waits for each dependency. Below Kubernetes' default probe timeout.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_millis(800);

#[derive(Clone)]
pub struct OpsState {
    pub store: Store,
    pub redis: RedisConn,
    pub metrics: PrometheusHandle,
    /// Set once the Telegram Bot API answered, for a service that cannot work before (the
    /// update consumer needs the bot's own username from `getMe`).
    pub bot_api_answered: Option<Arc<AtomicBool>>,
}

pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|State(s): State<OpsState>| async move { s.metrics.render() }))
        .with_state(state)
}

#[derive(Serialize)]
struct Readiness {
    mongodb: &'static str,
    redis: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bot_api: Option<&'static str>,
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    let mut redis = state.redis.clone();
    let (mongo, redis) = tokio::join!(
        tokio::time::timeout(DEPENDENCY_TIMEOUT, state.store.ping()),
        tokio::time::timeout(DEPENDENCY_TIMEOUT, redis.ping()),
    );
    let (mongo_up, redis_up) = (matches!(mongo, Ok(Ok(()))), matches!(redis, Ok(Ok(()))));
    // What the "dependency down" alert watches; the readiness probes keep it fresh.
    metrics::gauge!("dependency_up", "dependency" => "mongodb").set(f64::from(u8::from(mongo_up)));
    metrics::gauge!("dependency_up", "dependency" => "redis").set(f64::from(u8::from(redis_up)));
    let verdict = |ok: bool| if ok { "ok" } else { "unavailable" };
    let bot_api_up = state.bot_api_answered.as_ref().map(|answered| answered.load(Ordering::Relaxed));
    let readiness = Readiness { mongodb: verdict(mongo_up), redis: verdict(redis_up), bot_api: bot_api_up.map(verdict) };
    let status = if mongo_up && redis_up && bot_api_up != Some(false) {
        StatusCode::OK
    } else {
        tracing::warn!(mongodb = readiness.mongodb, redis = readiness.redis, bot_api = readiness.bot_api, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
