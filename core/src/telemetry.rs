//! Logs, request/job ids and the Prometheus recorder.
//!
//! Every HTTP request runs inside a `request` span carrying `request_id` (the caller's
//! `x-request-id` if it sent one, a fresh UUID otherwise; echoed in the response) and every job
//! inside a `job` span carrying `job_id` (`apalis_redis_streams::job_span`). The JSON format writes the current span's fields on
//! every line, so each log line a request or job causes names its id.

use std::io;
use std::time::Duration;

use axum::http::{HeaderName, Request};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
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

/// Buckets of every `*_seconds` histogram: real histograms (not per-pod quantiles), so p95 and
/// p99 aggregate across pods with `histogram_quantile`. From 1 ms (a webhook's enqueue) to
/// 10 s (a payout call's timeout).
const SECONDS_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A gauge not written for this long is dropped from `/metrics`, so a gauge whose writer stopped
/// (a sampler that fails, a task that ended) disappears instead of repeating its last value
/// forever; alerts on it use `absent()`. Every gauge's writer runs at least every 30 s.
pub const GAUGE_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Installs the process-wide Prometheus recorder and starts its upkeep (histogram compaction,
/// idle gauges, the process's resident memory). Must be called once per process, inside a
/// Tokio runtime.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE_TIMEOUT))
        .install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
            if let Some(bytes) = resident_memory_bytes() {
                metrics::gauge!("process_resident_memory_bytes").set(bytes as f64);
            }
        }
    });
    Ok(handle)
}

/// The process's resident set, from /proc (Linux only; `None` elsewhere).
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // Every platform this runs on (x86-64, arm64 Linux) has 4 KiB pages unless configured otherwise.
    Some(pages * 4096)
}

/// Which service a process is, for the metrics it registers at start (`register_counters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emitter {
    Receiver,
    Consumer,
    Workers,
    Scheduler,
    Api,
}

/// A counter the alerts or the dashboard read, with the label values it takes.
struct CounterSpec {
    name: &'static str,
    label: Option<(&'static str, &'static [&'static str])>,
    emitters: &'static [Emitter],
}

/// The counters monitoring/ reads. Each is registered at zero when its service starts, so the
/// first increment after a restart shows in `increase()` and `rate()` (a series that starts at
/// its first increment has no earlier sample to differ from).
const MONITORED_COUNTERS: &[CounterSpec] = &[
    CounterSpec { name: "payouts_total", label: Some(("outcome", &["sent", "failed", "ambiguous"])), emitters: &[Emitter::Workers] },
    CounterSpec {
        name: "ledger_postings_total",
        label: Some(("outcome", &["applied", "already_applied", "insufficient_funds", "key_reused", "guard_mismatch", "storage_error"])),
        emitters: &[Emitter::Consumer, Emitter::Workers, Emitter::Api],
    },
    CounterSpec {
        name: "webhook_rejected_total",
        label: Some(("reason", &["secret", "malformed", "unavailable", "not_replicated"])),
        emitters: &[Emitter::Receiver],
    },
    CounterSpec { name: "webhook_received_total", label: None, emitters: &[Emitter::Receiver] },
];

/// Monitored histograms without labels, by the service that records them: registered at start
/// like the counters, so their buckets exist before the first observation.
const MONITORED_HISTOGRAMS: &[(&str, Emitter)] = &[("webhook_enqueue_seconds", Emitter::Receiver)];

/// Registers at zero the monitored counters (and histograms) `emitter` records. Call once at
/// start, after `install_metrics`.
pub fn register_counters(emitter: Emitter) {
    for (name, _) in MONITORED_HISTOGRAMS.iter().filter(|(_, e)| *e == emitter) {
        // A handle registers the series; nothing is recorded.
        let _ = metrics::histogram!(*name);
    }
    for spec in MONITORED_COUNTERS.iter().filter(|s| s.emitters.contains(&emitter)) {
        match spec.label {
            Some((label, values)) => {
                for value in values {
                    metrics::counter!(spec.name, label => *value).increment(0);
                }
            }
            None => metrics::counter!(spec.name).increment(0),
        }
    }
}
