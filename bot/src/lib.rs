//! The Telegram side: stateless webhook receivers (`receiver`), update consumers that keep
//! each chat in order (`consumer`) and what the bot does with updates (`handlers`). `webhook`
//! manages Telegram's webhook registration.

pub mod consumer;
pub mod conversation;
pub mod handlers;
pub mod receiver;
pub mod webhook;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apalis_redis_streams::{Queue, RedisConn, consumer_name};
use obentchi_core::queues::{OUTBOUND_QUEUE, PAYMENTS_QUEUE, QueuesConfig, WITHDRAWALS_QUEUE};
pub use obentchi_core::queues::UPDATES_QUEUE;
use obentchi_core::config::{is_placeholder, ListenConfig, MongoConfig, RedisConfig, Secret, TelegramConfig, TelemetryConfig, MIN_SECRET_BYTES};
use obentchi_core::cryptopay::{CryptoPay, CryptoPayConfig, DepositInvoices};
use obentchi_core::ledger::Ledger;
use obentchi_core::outbound::ReplyOrder;
use obentchi_core::payments::Payments;
use obentchi_core::storage::Store;
use obentchi_core::subscriptions::{SubscriptionsConfig, Subscriptions};
use obentchi_core::settings::{self, LiveSettings, RuntimeSettings, SettingsStore};
use obentchi_core::support::SupportThreads;
use obentchi_core::users::Users;
use obentchi_core::withdrawals::{WithdrawalPolicies, Withdrawals};
use teloxide::prelude::Requester;
use tokio_util::sync::CancellationToken;
use obentchi_core::service::{self, Connections, Listeners, RedisOnly, ServiceConfig};
use obentchi_core::telemetry::Emitter;
use serde::{Deserialize, Deserializer, Serialize};


/// The secret Telegram sends in `X-Telegram-Bot-Api-Secret-Token`: 1–256 of `A-Za-z0-9_-`.
/// Shared by all replicas (each having its own would make them reject each other's traffic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for WebhookSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let secret = String::deserialize(deserializer)?;
        // Telegram's rule is 1 to 256 of these characters; ours adds a floor against guessing.
        let valid = (MIN_SECRET_BYTES..=256).contains(&secret.len())
            && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if is_placeholder(&secret) {
            Err(serde::de::Error::custom("a template's placeholder, not a secret: generate one (openssl rand -hex 32)"))
        } else if valid {
            Ok(WebhookSecret(secret))
        } else {
            Err(serde::de::Error::custom(format!(
                "expected {MIN_SECRET_BYTES} to 256 characters of A-Z, a-z, 0-9, _ and - (openssl rand -hex 32); got {} characters",
                secret.chars().count()
            )))
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookConfig {
    pub secret: Secret<WebhookSecret>,
    /// The path the receivers serve and nginx routes (`/telegram/webhook` by default).
    #[serde(default = "default_path")]
    pub path: String,
    /// The public URL registered with Telegram by `webhook set` (path included).
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Update kinds Telegram should send (`webhook set`).
    #[serde(default = "default_allowed_updates")]
    pub allowed_updates: Vec<String>,
    /// Concurrent connections Telegram may open (1–100, `webhook set`).
    #[serde(default = "default_max_connections")]
    pub max_connections: u8,
    /// Replicas that must hold a payment update (`successful_payment`, `refunded_payment`)
    /// before the receiver answers 200 (see `receiver`). Where Redis has no replica the
    /// receiver says so at startup and acknowledges on the master alone.
    #[serde(default = "default_payment_replicas")]
    pub payment_replicas: u32,
    /// How long a receiver waits for them before answering 503 (below Redis' response timeout).
    #[serde(default = "default_payment_replicas_timeout_ms")]
    pub payment_replicas_timeout_ms: u64,
    /// Wait for `payment_replicas` on every update, not only payments: no acknowledged update
    /// is lost to a failover, for a replica round trip per update (off by default; see
    /// docs/DECISIONS.md).
    #[serde(default)]
    pub replicate_all_updates: bool,
}

fn default_payment_replicas() -> u32 {
    1
}
fn default_payment_replicas_timeout_ms() -> u64 {
    300
}

fn default_path() -> String {
    "/telegram/webhook".into()
}
fn default_max_body_bytes() -> usize {
    1024 * 1024
}
fn default_allowed_updates() -> Vec<String> {
    ["message", "edited_message", "callback_query", "pre_checkout_query", "my_chat_member", "chat_join_request"]
        .map(String::from)
        .to_vec()
}
fn default_max_connections() -> u8 {
    100
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub listen: ListenConfig,
    pub mongodb: MongoConfig,
    pub redis: RedisConfig,
    pub telegram: TelegramConfig,
    /// Only `webhook set` reads it here (the receivers have `ReceiverConfig`): consumers never
    /// need the webhook's secret.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    #[serde(default)]
    pub queues: QueuesConfig,
    #[serde(default)]
    pub subscriptions: SubscriptionsConfig,
    /// One policy per currency users may withdraw (`[withdrawals]`, or `[[withdrawals]]` for
    /// several).
    #[serde(default)]
    pub withdrawals: WithdrawalPolicies,
    /// Crypto Pay: what `/deposit` offers besides Stars, and its invoices.
    #[serde(default)]
    pub cryptopay: Option<CryptoPayConfig>,
    #[serde(default)]
    pub support: SupportConfig,
    /// How long an unfinished conversation (e.g. /withdraw) is remembered.
    #[serde(default = "default_conversation_ttl_ms")]
    pub conversation_ttl_ms: u64,
    /// How long a consumer's claim on a partition lasts without renewal.
    #[serde(default = "default_lease_ttl_ms")]
    pub partition_lease_ms: u64,
    /// How long a consumer trusts a profile it read (a ban or language set elsewhere reaches it
    /// within this time); 0 reads the profile for every update.
    #[serde(default = "default_profile_cache_ms")]
    pub profile_cache_ms: u64,
}

impl Config {
    /// The configuration's plans, commission and withdrawal policies: in force until an admin
    /// changes them (`obentchi_core::settings`).
    pub fn runtime_settings(&self) -> RuntimeSettings {
        RuntimeSettings { subscriptions: self.subscriptions.clone(), withdrawals: self.withdrawals.clone() }
    }
}

/// Who answers `/support` and `/paysupport`, and where `/terms` sends people.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SupportConfig {
    /// Who answers payment questions (an @username or a link).
    pub contact: String,
    /// The full terms of service.
    pub terms_url: String,
    /// Admin chats: users' support messages are forwarded there and answered from there
    /// (a reply to a forward), and withdrawals waiting for review are announced there.
    pub admin_chat_ids: Vec<i64>,
}

impl Default for SupportConfig {
    fn default() -> Self {
        SupportConfig { contact: "@obentchi_support".into(), terms_url: "https://obentchi.example/terms".into(), admin_chat_ids: Vec::new() }
    }
}

fn default_lease_ttl_ms() -> u64 {
    10_000
}
fn default_profile_cache_ms() -> u64 {
    15_000
}
fn default_conversation_ttl_ms() -> u64 {
    15 * 60 * 1000
}

impl ServiceConfig for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn listen(&self) -> &ListenConfig {
        &self.listen
    }
}

/// What a webhook receiver reads: the webhook's settings and Redis. No MongoDB and no bot token
/// reach it (a receiver never uses them; kubernetes/ gives it neither).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiverConfig {
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub listen: ListenConfig,
    pub redis: RedisConfig,
    pub telegram: ReceiverTelegram,
    pub webhook: WebhookConfig,
    #[serde(default)]
    pub queues: QueuesConfig,
}

impl ServiceConfig for ReceiverConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn listen(&self) -> &ListenConfig {
        &self.listen
    }
}

/// The bot's numeric id, which keys the receivers' dedupe of update ids (`update:<bot id>:…`):
/// `telegram.bot_id`, or the part of `telegram.bot_token` before the colon. Both, if given,
/// must agree; the receiver needs only the id, so it can run without the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "ReceiverTelegramSettings", into = "ReceiverTelegramSettings")]
pub struct ReceiverTelegram {
    pub bot_id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiverTelegramSettings {
    #[serde(default)]
    bot_id: Option<BotId>,
    #[serde(default, skip_serializing)]
    bot_token: Option<Secret<obentchi_core::config::BotToken>>,
}

impl TryFrom<ReceiverTelegramSettings> for ReceiverTelegram {
    type Error = String;
    fn try_from(settings: ReceiverTelegramSettings) -> Result<Self, String> {
        let from_token = settings.bot_token.map(|t| t.expose().bot_id().parse::<u64>().expect("a parsed bot token's id is digits"));
        match (settings.bot_id.map(|id| id.0), from_token) {
            (Some(id), Some(token_id)) if id != token_id => Err(format!("bot_id {id} is not the bot token's id")),
            (Some(id), _) | (None, Some(id)) => Ok(ReceiverTelegram { bot_id: id }),
            (None, None) => Err("set bot_id (the bot token's part before the colon; the receiver needs no token)".into()),
        }
    }
}

impl From<ReceiverTelegram> for ReceiverTelegramSettings {
    fn from(telegram: ReceiverTelegram) -> Self {
        ReceiverTelegramSettings { bot_id: Some(BotId(telegram.bot_id)), bot_token: None }
    }
}

/// `telegram.bot_id` as configured: digits (a string, as the environment gives it, or a
/// number); a template's placeholder is refused, since a wrong id would re-key the dedupe.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(try_from = "BotIdSetting", into = "u64")]
pub struct BotId(u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum BotIdSetting {
    Number(u64),
    Text(String),
}

impl TryFrom<BotIdSetting> for BotId {
    type Error = &'static str;
    fn try_from(setting: BotIdSetting) -> Result<Self, Self::Error> {
        match setting {
            BotIdSetting::Number(id) => Ok(BotId(id)),
            BotIdSetting::Text(text) if is_placeholder(&text) => Err("a template's placeholder: the bot token's part before the colon"),
            BotIdSetting::Text(text) => text.parse().map(BotId).map_err(|_| "expected the bot token's part before the colon (digits)"),
        }
    }
}

impl From<BotId> for u64 {
    fn from(id: BotId) -> u64 {
        id.0
    }
}

/// The receiver service, bound and ready to serve.
pub struct Application {
    listeners: Listeners,
}

impl Application {
    pub async fn build(config: ReceiverConfig) -> anyhow::Result<Application> {
        let connections = RedisOnly::open(&config.redis, Emitter::Receiver).await?;
        let updates = Queue::new(UPDATES_QUEUE, config.queues.updates.clone(), connections.redis.clone());
        let receiver = receiver::Receiver {
            secret: config.webhook.secret.expose().as_str().to_owned(),
            bot_id: config.telegram.bot_id.to_string(),
            updates,
            payment_replicas: payment_replicas(&config.webhook, &connections.redis).await,
            payment_replicas_timeout: Duration::from_millis(config.webhook.payment_replicas_timeout_ms),
            replicate_all_updates: config.webhook.replicate_all_updates,
        };
        let router = receiver::router(&config.webhook.path, config.webhook.max_body_bytes, receiver);
        let listeners = Listeners::bind(&config.listen, Some(router), connections.ops_router()).await?;
        Ok(Application { listeners })
    }

    pub fn port(&self) -> u16 {
        self.listeners.port()
    }

    pub fn ops_port(&self) -> u16 {
        self.listeners.ops_port()
    }

    /// Serves until SIGTERM.
    pub async fn run(self) -> anyhow::Result<()> {
        self.listeners.run().await
    }
}

/// The replicas a payment update must reach: as configured, unless Redis has no replication at
/// all (a development server), which the receiver then reports. A master that is only briefly
/// without its replica (a failover in progress) is reported too, and its payment updates are
/// answered 503 until a replica has synced.
async fn payment_replicas(webhook: &WebhookConfig, redis: &RedisConn) -> u32 {
    if webhook.payment_replicas == 0 {
        tracing::warn!("webhook.payment_replicas = 0: payment updates are acknowledged once the Redis master has them");
        return 0;
    }
    match redis.masters_without_replicas().await {
        Ok((alone, _)) if alone.is_empty() => webhook.payment_replicas,
        Ok((alone, masters)) if alone.len() >= masters => {
            tracing::warn!(
                masters = ?alone,
                "Redis has no replica: payment updates are acknowledged on one node only and a failover can lose them \
                 before they are handled; the Stars reconciler (getStarTransactions) is then the only backstop"
            );
            0
        }
        Ok((alone, _)) => {
            tracing::warn!(masters = ?alone, "these Redis masters have no replica right now: their payment updates are answered 503 until one syncs");
            webhook.payment_replicas
        }
        Err(err) => {
            tracing::warn!(%err, "could not read the Redis topology; payment updates wait for {} replica(s)", webhook.payment_replicas);
            webhook.payment_replicas
        }
    }
}

/// Serves the webhook receiver and the ops endpoints.
pub async fn run(config: ReceiverConfig) -> anyhow::Result<()> {
    Application::build(config).await?.run().await
}

impl handlers::Deps {
    /// Everything the handlers use, from the bot's configuration.
    pub fn build(config: &Config, store: &Store, redis: &RedisConn, bot: teloxide::Bot, settings: LiveSettings) -> handlers::Deps {
        let ledger = Ledger::new(store.clone());
        let bot_id = config.telegram.bot_token.expose().bot_id().to_owned();
        let queue = |name| config.queues.open(name, redis).expect("a queue of ours");
        handlers::Deps {
            users: Users::new(store),
            payments: Payments::new(store, ledger.clone()),
            payment_jobs: queue(PAYMENTS_QUEUE),
            subscriptions: Subscriptions::new(store, ledger.clone()),
            withdrawals: Withdrawals::new(store, ledger.clone()),
            withdrawal_jobs: queue(WITHDRAWALS_QUEUE),
            settings,
            conversations: conversation::Conversations::new(
                redis.clone(),
                bot_id.clone(),
                Duration::from_millis(config.conversation_ttl_ms),
            ),
            outbound: queue(OUTBOUND_QUEUE),
            reply_order: ReplyOrder::new(redis.clone(), &bot_id),
            replies: None,
            crypto_pay: config.cryptopay.as_ref().map(CryptoPay::new).transpose().expect("an HTTP client for Crypto Pay"),
            deposit_invoices: DepositInvoices::new(store),
            support: Arc::new(config.support.clone()),
            support_threads: SupportThreads::new(store),
            ledger,
            bot,
            bot_id,
        }
    }
}

/// Runs update consumers (and the ops endpoints) until SIGTERM, then finishes the update in
/// hand on every partition and releases them. Consuming starts once the Bot API has answered
/// `getMe`; until then the updates wait in their queue and `/readyz` says not ready.
pub async fn consume(config: Config) -> anyhow::Result<()> {
    let connections = Connections::open(&config.mongodb, &config.redis, Emitter::Consumer).await?;
    let bot = webhook::bot(&config)?;
    let bot_api_answered = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let mut consuming = tokio::spawn(consume_once_bot_api_answers(
        config.clone(),
        connections.store.clone(),
        connections.redis.clone(),
        bot,
        bot_api_answered.clone(),
        stop.clone(),
    ));
    let serving = service::serve_ops(&config.listen, connections.ops_router_waiting_for_bot_api(bot_api_answered));
    tokio::select! {
        served = serving => {
            stop.cancel();
            consuming.await??;
            served
        }
        // Consuming stopped by itself: only an error does that; the process exits with it.
        consumed = &mut consuming => consumed?,
    }
}

/// Longest wait between two `getMe` attempts while the Bot API does not answer.
const GET_ME_BACKOFF_MAX: Duration = Duration::from_secs(30);

async fn consume_once_bot_api_answers(
    config: Config,
    store: Store,
    redis: RedisConn,
    bot: teloxide::Bot,
    bot_api_answered: Arc<AtomicBool>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // Commands addressed as /cmd@botname need the bot's username: nothing is handled before.
    let mut backoff = Duration::from_millis(500);
    let me = loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            answer = bot.get_me() => match answer {
                Ok(me) => break me,
                Err(err) => tracing::warn!(%err, retry_in_ms = backoff.as_millis() as u64, "getMe failed; not consuming yet"),
            },
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(GET_ME_BACKOFF_MAX);
    };
    bot_api_answered.store(true, Ordering::Relaxed);
    let settings = SettingsStore::new(&store, config.runtime_settings());
    let settings = LiveSettings::start(settings, settings::REFRESH, stop.clone()).await?;
    let mut deps = handlers::Deps::build(&config, &store, &redis, bot, settings);
    if config.profile_cache_ms > 0 {
        deps.users = deps.users.with_profile_cache(Duration::from_millis(config.profile_cache_ms));
    }
    let updates = Queue::new(UPDATES_QUEUE, config.queues.updates.clone(), redis.clone());
    updates.ensure_groups().await?;
    let consumer = consumer::Consumer {
        queue: updates,
        redis,
        name: consumer_name("updates"),
        deps,
        me,
        lease_ttl: Duration::from_millis(config.partition_lease_ms),
    };
    consumer.run(stop).await;
    Ok(())
}
