//! The admin and ops HTTP API: `/admin/*` for admins (bearer tokens with scopes, rate limits,
//! an audit log of every change), `POST /payments/callback/{provider}` for payment gateways
//! (HMAC-signed), the queue dashboard, the OpenAPI document with Swagger UI, and the ops
//! endpoints. Also the `migrate` and `token` commands.

pub mod admin;
pub mod auth;
pub mod callbacks;
pub mod dashboard;
pub mod error;
pub mod history;
pub mod layers;
pub mod limits;
pub mod openapi;
pub mod platform_gauges;

use obentchi_core::job_reports::JobReports;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use apalis_redis_streams::Queue;
use obentchi_core::queues::{BROADCASTS_QUEUE, OUTBOUND_QUEUE, PAYMENTS_QUEUE, QueuesConfig, WITHDRAWALS_QUEUE};
use obentchi_core::admin_audit::AdminAudit;
use obentchi_core::api_tokens::ApiTokens;
use obentchi_core::broadcasts::Broadcasts;
use obentchi_core::cryptopay::{CryptoPayConfig, DepositInvoices};
use obentchi_core::adjustments::{AdjustmentPolicy, Adjustments};
use obentchi_core::config::{ConfigError, IssuedToken, ListenConfig, MongoConfig, RedisConfig, Secret, SharedSecret, TelegramConfig, TelemetryConfig};
use obentchi_core::ledger::Ledger;
use obentchi_core::payments::Payments;
use obentchi_core::pools::PoolRegistry;
use obentchi_core::service::{Connections, Listeners, ServiceConfig};
use obentchi_core::storage::{self, MigrationReport, Store};
use obentchi_core::subscriptions::{Subscriptions, SubscriptionsConfig};
use obentchi_core::support::SupportThreads;
use obentchi_core::users::Users;
use obentchi_core::settings::{RuntimeSettings, SettingsStore};
use obentchi_core::withdrawals::{WithdrawalPolicies, Withdrawals};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub listen: ListenConfig,
    pub mongodb: MongoConfig,
    pub redis: RedisConfig,
    #[serde(default)]
    pub queues: QueuesConfig,
    #[serde(default)]
    pub rate_limits: limits::RateLimits,
    /// Proxies (nginx, the ingress controller) whose `X-Forwarded-For` is believed, as
    /// addresses or networks (`10.0.0.0/8`); the client is the last address before them.
    /// Empty: the peer address is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<limits::ProxyNet>,
    /// Origins a browser may call the API from. Empty (the default): no cross-origin access.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// Payment gateways by provider name (the `{provider}` of the callback path); each with a
    /// secret of its own.
    #[serde(default)]
    pub payment_gateways: PaymentGateways,
    /// Crypto Pay; the API checks its webhook's signature with the app token.
    #[serde(default)]
    pub cryptopay: Option<CryptoPayConfig>,
    /// The bot, for Stars refunds (`refundStarPayment`); without it the refund endpoint answers
    /// 503.
    #[serde(default)]
    pub telegram: Option<TelegramConfig>,
    /// Balance corrections: limits and second-approval thresholds per currency.
    #[serde(default)]
    pub adjustments: AdjustmentPolicy,
    /// The plans and referral rate of the configuration (as the bot's): the runtime settings'
    /// defaults until an admin changes them (`/admin/settings`).
    #[serde(default)]
    pub subscriptions: SubscriptionsConfig,
    /// The withdrawal policies of the configuration (as the bot's), likewise.
    #[serde(default)]
    pub withdrawals: WithdrawalPolicies,
    /// Recipients per broadcast step (as the workers'); used when a broadcast starts.
    #[serde(default = "default_broadcast_batch")]
    pub broadcast_batch: usize,
    /// How often queue depth and age are sampled for the dashboard's charts.
    #[serde(default = "default_history_sample_ms")]
    pub history_sample_ms: u64,
    /// How old the queue stats that `/admin/queues` and the dashboard show may be.
    #[serde(default = "default_queue_stats_cache_ms")]
    pub queue_stats_cache_ms: u64,
    /// How long a verified token is trusted without asking MongoDB again (so a revocation takes
    /// up to this long to apply everywhere).
    #[serde(default = "default_token_cache_ms")]
    pub token_cache_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayConfig {
    /// The HMAC-SHA256 key the gateway signs callbacks with.
    pub secret: Secret<SharedSecret>,
}

/// The configured gateways. The provider name comes from the callback's path, which the
/// signature does not cover: two gateways sharing a secret would let a callback signed for one
/// be credited as the other's. So every gateway must have a secret of its own (and a non-empty
/// one); a configuration that breaks this does not load.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, GatewayConfig>", into = "BTreeMap<String, GatewayConfig>")]
pub struct PaymentGateways(BTreeMap<String, GatewayConfig>);

impl TryFrom<BTreeMap<String, GatewayConfig>> for PaymentGateways {
    type Error = String;
    fn try_from(gateways: BTreeMap<String, GatewayConfig>) -> Result<Self, String> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, gateway) in &gateways {
            let secret = gateway.secret.expose().as_str();
            if let Some(other) = seen.insert(secret, name) {
                return Err(format!("payment gateways {other} and {name} share a secret; give each its own"));
            }
        }
        Ok(PaymentGateways(gateways))
    }
}

impl From<PaymentGateways> for BTreeMap<String, GatewayConfig> {
    fn from(gateways: PaymentGateways) -> Self {
        gateways.0
    }
}

impl PaymentGateways {
    pub fn get(&self, provider: &str) -> Option<&GatewayConfig> {
        self.0.get(provider)
    }
}

fn default_broadcast_batch() -> usize {
    500
}
fn default_history_sample_ms() -> u64 {
    15_000
}
fn default_queue_stats_cache_ms() -> u64 {
    1_000
}
fn default_token_cache_ms() -> u64 {
    30_000
}

impl ServiceConfig for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn listen(&self) -> &ListenConfig {
        &self.listen
    }
    /// The sampler writes the queue and platform gauges; sampling less often than half the
    /// gauges' idle timeout would make them flap, and KEDA would see no queue depth.
    fn validate(&self) -> Result<(), ConfigError> {
        let most = obentchi_core::telemetry::GAUGE_IDLE_TIMEOUT.as_millis() as u64 / 2;
        if self.history_sample_ms == 0 || self.history_sample_ms > most {
            return Err(ConfigError::single(format!("history_sample_ms: {} is not within 1..={most}", self.history_sample_ms)));
        }
        Ok(())
    }
}

/// What handlers share. Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct AppState {
    pub users: Users,
    pub ledger: Ledger,
    pub payments: Payments,
    pub payment_jobs: Queue,
    pub withdrawals: Withdrawals,
    pub withdrawal_jobs: Queue,
    /// Messages to users (a rejected withdrawal's notice).
    pub outbound: Queue,
    pub subscriptions: Subscriptions,
    pub broadcasts: Broadcasts,
    pub support: SupportThreads,
    /// Plans, commission and withdrawal policies (`/admin/settings`).
    pub settings: SettingsStore,
    /// Every queue of the platform, by name.
    pub queues: Arc<BTreeMap<String, Queue>>,
    pub pools: PoolRegistry,
    /// The last reading of every queue's stats and when it was taken (`admin::queues`).
    pub queue_stats: admin::queues::StatsCache,
    pub queue_stats_ttl: Duration,
    pub history: history::QueueHistory,
    pub tokens: auth::TokenVerifier,
    pub audit: AdminAudit,
    pub gateways: Arc<PaymentGateways>,
    /// The Crypto Pay app token (webhook signatures), when Crypto Pay is configured.
    pub crypto_pay_token: Option<Secret<IssuedToken>>,
    pub deposit_invoices: DepositInvoices,
    pub adjustments: Adjustments,
    pub adjustment_policy: Arc<AdjustmentPolicy>,
    /// The Bot API, when the bot token is configured here.
    pub bot: Option<teloxide::Bot>,
}

impl AppState {
    pub fn new(config: &Config, connections: &Connections) -> AppState {
        let (store, redis) = (&connections.store, &connections.redis);
        let queue = |name| config.queues.open(name, redis).expect("a queue of ours");
        let ledger = Ledger::new(store.clone());
        AppState {
            users: Users::new(store),
            payments: Payments::new(store, ledger.clone()),
            payment_jobs: queue(PAYMENTS_QUEUE),
            withdrawals: Withdrawals::new(store, ledger.clone()),
            withdrawal_jobs: queue(WITHDRAWALS_QUEUE),
            outbound: queue(OUTBOUND_QUEUE),
            subscriptions: Subscriptions::new(store, ledger.clone()),
            broadcasts: Broadcasts::new(store, queue(OUTBOUND_QUEUE), queue(BROADCASTS_QUEUE), config.broadcast_batch),
            support: SupportThreads::new(store),
            settings: SettingsStore::new(
                store,
                RuntimeSettings { subscriptions: config.subscriptions.clone(), withdrawals: config.withdrawals.clone() },
            ),
            adjustments: Adjustments::new(store, ledger.clone()),
            ledger,
            queues: Arc::new(config.queues.open_all(redis).into_iter().map(|q| (q.name().to_owned(), q)).collect()),
            pools: PoolRegistry::new(redis.clone()),
            queue_stats: Arc::default(),
            queue_stats_ttl: Duration::from_millis(config.queue_stats_cache_ms),
            history: history::QueueHistory::new(redis.clone()),
            tokens: auth::TokenVerifier::new(ApiTokens::new(store), Duration::from_millis(config.token_cache_ms)),
            audit: AdminAudit::new(store),
            gateways: Arc::new(config.payment_gateways.clone()),
            crypto_pay_token: config.cryptopay.as_ref().map(|c| c.api_token.clone()),
            deposit_invoices: DepositInvoices::new(store),
            adjustment_policy: Arc::new(config.adjustments.clone()),
            bot: config.telegram.as_ref().map(|t| {
                teloxide::Bot::new(t.bot_token.expose().as_str()).set_api_url(t.api_url.parse().expect("telegram.api_url is a URL"))
            }),
        }
    }
}

/// The whole API: admin routes (each class behind its rate limits), callbacks, dashboard,
/// OpenAPI, and the layers every response passes through (the ops routes are served beside it,
/// see `Listeners`).
pub fn router(config: &Config, state: AppState) -> Router {
    let limits = limits::Limiters::new(&config.rate_limits, config.trusted_proxies.clone());
    let app = Router::new()
        .merge(admin::router(&limits).with_state(state.clone()))
        .merge(callbacks::router(&limits).with_state(state.clone()))
        .merge(dashboard::router(&limits).with_state(state))
        .merge(openapi::router());
    layers::apply(app, &config.cors_allowed_origins)
}

/// The API service, bound and ready to serve.
pub struct Application {
    listeners: Listeners,
    sampler: history::Sampler,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let connections = Connections::open(&config.mongodb, &config.redis, obentchi_core::telemetry::Emitter::Api).await?;
        let state = AppState::new(&config, &connections);
        let platform = platform_gauges::PlatformGauges {
            store: connections.store.clone(),
            redis: connections.redis.clone(),
            job_reports: JobReports::new(&connections.store),
            withdrawals: state.withdrawals.clone(),
            bot: state.bot.clone(),
        };
        let sampler = history::Sampler::new(state.history.clone(), state.queues.clone(), platform, Duration::from_millis(config.history_sample_ms));
        let router = router(&config, state);
        let listeners = Listeners::bind(&config.listen, Some(router), connections.ops_router()).await?;
        Ok(Application { listeners, sampler })
    }

    pub fn port(&self) -> u16 {
        self.listeners.port()
    }

    pub fn ops_port(&self) -> u16 {
        self.listeners.ops_port()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let sampler = tokio::spawn(self.sampler.run());
        let served = self.listeners.run().await;
        sampler.abort();
        served
    }
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    Application::build(config).await?.run_until_stopped().await
}

/// Creates collections and indexes (and shards them on a `mongos`); idempotent.
pub async fn migrate(mongodb: &MongoConfig) -> anyhow::Result<MigrationReport> {
    let store = Store::connect(mongodb).await?;
    Ok(storage::migrate(&store).await?)
}
