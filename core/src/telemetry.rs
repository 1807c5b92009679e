//! Logs, request/job ids and the Prometheus recorder.
//!
//! Every HTTP request runs inside a `request` span carrying `request_id` (the caller's
//! `x-request-id` if it sent one, a fresh UUID otherwise; echoed in the response) and every job
//! inside a `job` span carrying `job_id` (`apalis_redis_streams::job_span`). The JSON format writes the current span's fields on
//! every line, so each log line a request or job causes names its id.

use std::io;
use std::time::Duration;

use axum::http::{HeaderName, Request};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, TelemetryConfig};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Installs the global `tracing` subscriber. Call once, first thing in `main`.
pub fn init(config: &TelemetryConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log_filter)
        .map_err(|e| anyhow::anyhow!("telemetry.log_filter: {e}"))?;
    Registry::default()
        .with(format_layer(config.log_format, io::stdout).with_filter(filter))
        .try_init()?;
    Ok(())
}

/// The formatting layer for either format, writing to `writer` (stdout in services, a buffer in
/// tests).
pub fn format_layer<W>(format: LogFormat, writer: W) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Json => Box::new(base.json().with_current_span(true).with_span_list(true).flatten_event(true)),
        LogFormat::Pretty => Box::new(base.pretty()),
    }
}

/// Adds request ids and per-request spans to an axum router.
pub fn with_request_ids(router: axum::Router) -> axum::Router {
    let header = HeaderName::from_static(REQUEST_ID_HEADER);
    // Layers run bottom-up on the request: set the id, then open the span that logs it,
    // then copy it onto the response.
    router
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
}

fn request_span<B>(request: &Request<B>) -> Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", request_id, method = %request.method(), path = request.uri().path())
}

/// Installs the process-wide Prometheus recorder and starts its upkeep (histogram compaction).
/// Must be called once per process, inside a Tokio runtime.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
