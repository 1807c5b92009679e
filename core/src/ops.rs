//! The endpoints every service serves for its operators and for Kubernetes:
//! `/healthz` (the process answers), `/readyz` (what the service uses answers: Redis, MongoDB
//! unless it never uses it, and the Bot API once answered, for the services that need it) and
//! `/metrics`.

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
    /// `None` for a service that never uses MongoDB (the webhook receiver): a slow MongoDB
    /// must not take it out of service.
    pub store: Option<Store>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    mongodb: Option<&'static str>,
    redis: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bot_api: Option<&'static str>,
}

/// Whether MongoDB (if `store` is given) and Redis answer within `DEPENDENCY_TIMEOUT`, recorded
/// as `dependency_up`, what the "dependency down" alert watches. The readiness probes and the
/// API's sampler keep it fresh.
pub async fn check_dependencies(store: Option<&Store>, redis: &RedisConn) -> (Option<bool>, bool) {
    let mut redis = redis.clone();
    let mongo = async {
        match store {
            Some(store) => Some(matches!(tokio::time::timeout(DEPENDENCY_TIMEOUT, store.ping()).await, Ok(Ok(())))),
            None => None,
        }
    };
    let (mongo_up, redis) = tokio::join!(mongo, tokio::time::timeout(DEPENDENCY_TIMEOUT, redis.ping()));
    let redis_up = matches!(redis, Ok(Ok(())));
    if let Some(up) = mongo_up {
        metrics::gauge!("dependency_up", "dependency" => "mongodb").set(f64::from(u8::from(up)));
    }
    metrics::gauge!("dependency_up", "dependency" => "redis").set(f64::from(u8::from(redis_up)));
    (mongo_up, redis_up)
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    let (mongo_up, redis_up) = check_dependencies(state.store.as_ref(), &state.redis).await;
    let verdict = |ok: bool| if ok { "ok" } else { "unavailable" };
    let bot_api_up = state.bot_api_answered.as_ref().map(|answered| answered.load(Ordering::Relaxed));
    let readiness = Readiness { mongodb: mongo_up.map(verdict), redis: verdict(redis_up), bot_api: bot_api_up.map(verdict) };
    let status = if mongo_up != Some(false) && redis_up && bot_api_up != Some(false) {
        StatusCode::OK
    } else {
        tracing::warn!(mongodb = readiness.mongodb, redis = readiness.redis, bot_api = readiness.bot_api, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
