//! What every service binary shares: the common command-line flags, loading its configuration,
//! starting telemetry, opening its connections and serving HTTP until SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::{self, ListenConfig, MongoConfig, RedisConfig, TelemetryConfig};
use crate::ops::{self, OpsState};
use apalis_redis_streams::RedisConn;
use crate::storage::Store;
use crate::telemetry;

/// Flags every service binary takes.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    /// TOML configuration file; repeat (or separate with commas) to layer several, later files
    /// win. Environment variables `OBENTCHI_<SECTION>__<KEY>` override files.
    #[arg(long = "config", short = 'c', value_name = "FILE", env = "OBENTCHI_CONFIG_FILES", value_delimiter = ',')]
    pub files: Vec<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Ask the service running with this configuration on this machine for `/healthz` and exit
    /// 0 if it answers 200 (the container image's HEALTHCHECK; no curl needed in the image).
    #[arg(long)]
    pub healthcheck: bool,
}

/// A service's configuration type.
pub trait ServiceConfig: DeserializeOwned + Serialize {
    fn telemetry(&self) -> &TelemetryConfig;
    fn listen(&self) -> &ListenConfig;
    /// Rules across sections that one section's parsing cannot see (e.g. a setting required
    /// only when some feature is on). Checked with the parsing: a failure exits 2.
    fn validate(&self) -> Result<(), config::ConfigError> {
        Ok(())
    }
}

/// The sections every service has. A service with settings of its own wraps these in its own
/// `Config`; until then it uses this one as is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaseConfig {
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub listen: crate::config::ListenConfig,
    pub mongodb: MongoConfig,
    pub redis: RedisConfig,
}

impl ServiceConfig for BaseConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn listen(&self) -> &ListenConfig {
        &self.listen
    }
}

/// Exit code for configuration errors, distinct from run-time failures (1).
pub const EXIT_CONFIG: u8 = 2;

/// Loads the configuration (exiting 2 with every problem named if it is invalid), answers
/// `--print-config`, installs logging, then runs `body` on a Tokio runtime.
pub fn main<C, F, Fut>(args: &ConfigArgs, body: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let config: C = match config::load(&args.files).and_then(|config: C| config.validate().map(|()| config)) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.print_config {
        println!("{}", config::render(&config));
        return ExitCode::SUCCESS;
    }
    if args.healthcheck {
        return match healthcheck(config.listen().ops().port()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("unhealthy: {err}");
                ExitCode::FAILURE
            }
        };
    }
    if let Err(err) = telemetry::init(config.telemetry()) {
        eprintln!("{err:#}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("Tokio runtime starts");
    match runtime.block_on(body(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "service stopped with an error");
            ExitCode::FAILURE
        }
    }
}

/// `GET /healthz` on loopback `port` with a plain HTTP/1.0 request; Ok if the answer is 200.
fn healthcheck(port: u16) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(2);
    let mut stream = std::net::TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    if head.starts_with(b"HTTP/1.") && &head[8..12] == b" 200" {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("answered {:?}", String::from_utf8_lossy(&head))))
    }
}

/// The connections a service holds for its whole life.
#[derive(Clone)]
pub struct Connections {
    pub store: Store,
    pub redis: RedisConn,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl Connections {
    /// Opens MongoDB and Redis and installs the metrics recorder. The MongoDB driver and a
    /// single-node Redis connect lazily, so a service starts while they are down and reports
    /// not-ready until they answer.
    /// `emitter`: which service this is, for the counters it registers at zero.
    pub async fn open(mongodb: &MongoConfig, redis: &RedisConfig, emitter: telemetry::Emitter) -> anyhow::Result<Connections> {
        let store = Store::connect(mongodb).await.context("mongodb")?;
        let redis = redis.connect().await.context("redis")?;
        let metrics = telemetry::install_metrics()?;
        telemetry::register_counters(emitter);
        Ok(Connections { store, redis, metrics })
    }

    /// `/healthz`, `/readyz`, `/metrics`, with request ids.
    pub fn ops_router(&self) -> axum::Router {
        self.ops_router_with(None)
    }

    /// `ops_router` for a service that is ready only once the Bot API answered
    /// (`bot_api_answered` set).
    pub fn ops_router_waiting_for_bot_api(&self, bot_api_answered: Arc<AtomicBool>) -> axum::Router {
        self.ops_router_with(Some(bot_api_answered))
    }

    fn ops_router_with(&self, bot_api_answered: Option<Arc<AtomicBool>>) -> axum::Router {
        let state = OpsState {
            store: Some(self.store.clone()),
            redis: self.redis.clone(),
            metrics: self.metrics.clone(),
            bot_api_answered,
        };
        telemetry::with_request_ids(ops::router(state))
    }
}

/// What a service that never uses MongoDB holds for its whole life (the webhook receiver): it
/// needs no MongoDB settings, and its readiness follows Redis only, so a slow mongos or an
/// election does not take it out of service.
#[derive(Clone)]
pub struct RedisOnly {
    pub redis: RedisConn,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl RedisOnly {
    /// Opens Redis and installs the metrics recorder (see `Connections::open`).
    pub async fn open(redis: &RedisConfig, emitter: telemetry::Emitter) -> anyhow::Result<RedisOnly> {
        let redis = redis.connect().await.context("redis")?;
        let metrics = telemetry::install_metrics()?;
        telemetry::register_counters(emitter);
        Ok(RedisOnly { redis, metrics })
    }

    /// `/healthz`, `/readyz` (Redis only), `/metrics`, with request ids.
    pub fn ops_router(&self) -> axum::Router {
        let state = OpsState { store: None, redis: self.redis.clone(), metrics: self.metrics.clone(), bot_api_answered: None };
        telemetry::with_request_ids(ops::router(state))
    }
}

/// A service's bound HTTP listeners (see `ListenConfig`): its own routes on `listen.addr`, the
/// ops routes on `listen.ops_addr` when set, or both on `listen.addr` when not. A service with
/// no routes of its own serves the ops routes on `ops_addr`, else on `addr`.
pub struct Listeners {
    app: Option<(tokio::net::TcpListener, axum::Router)>,
    ops: Option<(tokio::net::TcpListener, axum::Router)>,
}

impl Listeners {
    pub async fn bind(listen: &ListenConfig, app: Option<axum::Router>, ops: axum::Router) -> anyhow::Result<Listeners> {
        Ok(match (app, listen.ops_addr) {
            (Some(app), Some(ops_addr)) => {
                Listeners { app: Some((bind(listen.addr).await?, app)), ops: Some((bind(ops_addr).await?, ops)) }
            }
            (Some(app), None) => Listeners { app: Some((bind(listen.addr).await?, app.merge(ops))), ops: None },
            (None, _) => Listeners { app: None, ops: Some((bind(listen.ops()).await?, ops)) },
        })
    }

    /// The port of the service's own routes (of the ops routes for a service without any).
    pub fn port(&self) -> u16 {
        let (listener, _) = self.app.as_ref().or(self.ops.as_ref()).expect("a service listens somewhere");
        listener.local_addr().map_or(0, |a| a.port())
    }

    /// The port `/metrics`, `/healthz` and `/readyz` answer on.
    pub fn ops_port(&self) -> u16 {
        let (listener, _) = self.ops.as_ref().or(self.app.as_ref()).expect("a service listens somewhere");
        listener.local_addr().map_or(0, |a| a.port())
    }

    /// Serves every listener until SIGTERM or Ctrl-C (see `serve_on`).
    pub async fn run(self) -> anyhow::Result<()> {
        let serve = |listener: Option<(tokio::net::TcpListener, axum::Router)>| async move {
            match listener {
                Some((listener, router)) => serve_on(listener, router).await,
                None => Ok(()),
            }
        };
        tokio::try_join!(serve(self.app), serve(self.ops))?;
        Ok(())
    }
}

/// Serves the ops routes of a service without routes of its own until SIGTERM or Ctrl-C.
pub async fn serve_ops(listen: &ListenConfig, ops: axum::Router) -> anyhow::Result<()> {
    Listeners::bind(listen, None, ops).await?.run().await
}

pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))
}

/// Serves `router` on a bound listener until SIGTERM or Ctrl-C, then lets in-flight requests
/// finish. Routers add request ids themselves (`telemetry::with_request_ids`): the webhook
/// route does not, its update id is the correlation id and a per-request span costs ~10 % of
/// its CPU.
pub async fn serve_on(listener: tokio::net::TcpListener, router: axum::Router) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "listening");
    // Peer addresses reach handlers as `ConnectInfo` (the admin API's per-IP rate limits).
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutdown signal received");
}
