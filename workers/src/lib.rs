//! Worker pools: payments, withdrawals, outbound messages, broadcasts and scheduled runs. Each pool drains its own queue with a concurrency that
//! follows the queue's depth (see `pool`), exports the depth for Kubernetes, and shuts down
//! gracefully on SIGTERM within `shutdown_grace_ms`.

pub mod outbound;
pub mod payouts;
pub mod pool;
pub mod scheduled;

use obentchi_core::job_reports::JobReports;
use std::collections::BTreeSet;
use std::time::Duration;

use apalis_redis_streams::Queue;
use obentchi_core::queues::{BROADCASTS_QUEUE, OUTBOUND_QUEUE, PAYMENTS_QUEUE, QueuesConfig, SCHEDULED_QUEUE, WITHDRAWALS_QUEUE};
use obentchi_core::broadcasts::{BroadcastJob, Broadcasts, Step};
use obentchi_core::config::{env_var_for, ConfigError, ListenConfig, MongoConfig, RedisConfig, TelegramConfig, TelemetryConfig};
use obentchi_core::outbound::{FloodConfig, FloodControl};
use obentchi_core::users::Users;
use obentchi_core::scheduled::ScheduledRun;
use obentchi_core::subscriptions::{Subscriptions, SubscriptionsConfig};
use scheduled::ScheduledJobs;
use obentchi_core::ledger::Ledger;
use obentchi_core::payments::{PaymentJob, Payments};
use apalis_core::error::BoxDynError;
use futures::future::BoxFuture;
use obentchi_core::cryptopay::{CryptoPay, CryptoPayConfig, DepositInvoices};
use obentchi_core::payout::{HttpPayoutProvider, PayoutProvider, PayoutProviderConfig};
use obentchi_core::service::{self, Connections, ServiceConfig};
use obentchi_core::withdrawals::{WithdrawalError, WithdrawalJob, Withdrawals, notify_outcome};
use pool::PoolConfig;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub listen: ListenConfig,
    pub mongodb: MongoConfig,
    pub redis: RedisConfig,
    /// The HTTP payout adapter (on-chain addresses). Required with the withdrawals pool, and
    /// given to nothing else (kubernetes/: only the withdrawal workers get the payout token).
    #[serde(default)]
    pub payout: Option<PayoutProviderConfig>,
    /// Crypto Pay: payouts by transfer for its assets, and the deposit invoice reconciler.
    #[serde(default)]
    pub cryptopay: Option<CryptoPayConfig>,
    pub telegram: TelegramConfig,
    #[serde(default)]
    pub flood: FloodConfig,
    #[serde(default)]
    pub queues: QueuesConfig,
    #[serde(default)]
    pub pools: Pools,
    /// The pools this process runs (default: all). Kubernetes runs payment, withdrawal and
    /// messaging workers as separate Deployments, each scaled on its own queues.
    #[serde(default = "all_pools")]
    pub enabled_pools: BTreeSet<PoolName>,
    /// How long a claim on a withdrawal in `processing` lasts; must exceed `payout.timeout_ms`.
    #[serde(default = "default_withdrawal_lease_ms")]
    pub withdrawal_lease_ms: u64,
    /// Recipients per broadcast step.
    #[serde(default = "default_broadcast_batch")]
    pub broadcast_batch: usize,
    #[serde(default)]
    pub scheduled_jobs: scheduled::ScheduledJobsConfig,
    /// Referral commission rate; only the subscription notices use the subscriptions here.
    #[serde(default)]
    pub subscriptions: SubscriptionsConfig,
    /// After SIGTERM, how long running jobs may take before the process exits anyway.
    #[serde(default = "default_grace_ms")]
    pub shutdown_grace_ms: u64,
}

fn default_withdrawal_lease_ms() -> u64 {
    obentchi_core::withdrawals::DEFAULT_LEASE.as_millis() as u64
}
fn default_broadcast_batch() -> usize {
    500
}
fn default_grace_ms() -> u64 {
    25_000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolName {
    Payments,
    Withdrawals,
    Outbound,
    Broadcasts,
    Scheduled,
}

fn all_pools() -> BTreeSet<PoolName> {
    [PoolName::Payments, PoolName::Withdrawals, PoolName::Outbound, PoolName::Broadcasts, PoolName::Scheduled].into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pools {
    #[serde(default = "payments_pool")]
    pub payments: PoolConfig,
    #[serde(default = "withdrawals_pool")]
    pub withdrawals: PoolConfig,
    #[serde(default = "outbound_pool")]
    pub outbound: PoolConfig,
    #[serde(default = "broadcasts_pool")]
    pub broadcasts: PoolConfig,
    #[serde(default = "scheduled_pool")]
    pub scheduled: PoolConfig,
}

fn payments_pool() -> PoolConfig {
    PoolConfig::new(3, 50)
}
fn withdrawals_pool() -> PoolConfig {
    PoolConfig::new(5, 100)
}
/// Sends are short HTTP calls; flood control, not the pool, bounds the rate.
fn outbound_pool() -> PoolConfig {
    PoolConfig::new(4, 64)
}
/// A broadcast step only enqueues; a couple at a time keeps the outbound queue fed.
fn broadcasts_pool() -> PoolConfig {
    PoolConfig::new(1, 2)
}

/// Scheduled runs are few and long (an audit walks every balance); two at a time is plenty.
fn scheduled_pool() -> PoolConfig {
    PoolConfig::new(1, 2)
}

impl Default for Pools {
    fn default() -> Self {
        Pools {
            payments: payments_pool(),
            withdrawals: withdrawals_pool(),
            outbound: outbound_pool(),
            broadcasts: broadcasts_pool(),
            scheduled: scheduled_pool(),
        }
    }
}

impl ServiceConfig for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn listen(&self) -> &ListenConfig {
        &self.listen
    }
    fn validate(&self) -> Result<(), ConfigError> {
        if self.enabled_pools.contains(&PoolName::Withdrawals) && self.payout.is_none() {
            return Err(ConfigError::single(format!(
                "payout: missing; the withdrawals pool needs it (payout.base_url and payout.api_token, or {}__BASE_URL and {}__API_TOKEN)",
                env_var_for("payout"),
                env_var_for("payout")
            )));
        }
        Ok(())
    }
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let slowest_payout = config.cryptopay.as_ref().map_or(0, |c| c.timeout_ms).max(config.payout.as_ref().map_or(0, |p| p.timeout_ms));
    anyhow::ensure!(
        config.withdrawal_lease_ms > slowest_payout,
        "withdrawal_lease_ms must exceed payout.timeout_ms and cryptopay.timeout_ms, or a slow payout could be looked up while in flight"
    );
    let connections = Connections::open(&config.mongodb, &config.redis, obentchi_core::telemetry::Emitter::Workers).await?;
    let ledger = Ledger::new(connections.store.clone());
    let payments = Payments::new(&connections.store, ledger.clone());
    let withdrawals =
        Withdrawals::new(&connections.store, ledger.clone()).with_lease(Duration::from_millis(config.withdrawal_lease_ms));
    let crypto_pay = config.cryptopay.as_ref().map(CryptoPay::new).transpose()?;
    let queue = |name| config.queues.open(name, &connections.redis).expect("a queue of ours");
    let payments_queue = queue(PAYMENTS_QUEUE);
    let withdrawals_queue = queue(WITHDRAWALS_QUEUE);
    let outbound_queue = queue(OUTBOUND_QUEUE);
    let broadcasts_queue = queue(BROADCASTS_QUEUE);
    let scheduled_queue = queue(SCHEDULED_QUEUE);
    let token = config.telegram.bot_token.expose();
    let bot = teloxide::Bot::new(token.as_str()).set_api_url(config.telegram.api_url.parse()?);
    let scheduled_jobs = ScheduledJobs {
        config: config.scheduled_jobs.clone(),
        users: Users::new(&connections.store),
        payments: payments.clone(),
        withdrawals: withdrawals.clone(),
        subscriptions: Subscriptions::new(&connections.store, ledger.clone()),
        ledger,
        payment_jobs: payments_queue.clone(),
        withdrawal_jobs: withdrawals_queue.clone(),
        outbound: outbound_queue.clone(),
        all_queues: config.queues.open_all(&connections.redis),
        bot: bot.clone(),
        crypto_pay: crypto_pay.clone().map(|api| (api, DepositInvoices::new(&connections.store))),
        job_reports: JobReports::new(&connections.store),
    };
    let broadcasts = Broadcasts::new(&connections.store, outbound_queue.clone(), broadcasts_queue.clone(), config.broadcast_batch);
    let sender = outbound::Sender {
        broadcasts: broadcasts.clone(),
        bot,
        flood: FloodControl::new(connections.redis.clone(), token.bot_id(), &config.flood),
        users: Users::new(&connections.store),
    };

    let stop = CancellationToken::new();
    let enabled = |pool: PoolName| config.enabled_pools.contains(&pool);
    let mut pools = Vec::new();
    if enabled(PoolName::Payments) {
        pools.push(pool::spawn("payments", payments_queue, config.pools.payments.clone(), payment_handler(payments), &stop));
    }
    if let (true, Some(payout)) = (enabled(PoolName::Withdrawals), &config.payout) {
        let provider = payouts::Payouts { http: HttpPayoutProvider::new(payout)?, crypto_pay: crypto_pay.clone() };
        let handler = withdrawal_handler(withdrawals, provider, Users::new(&connections.store), outbound_queue.clone());
        pools.push(pool::spawn("withdrawals", withdrawals_queue, config.pools.withdrawals.clone(), handler, &stop));
    }
    if enabled(PoolName::Outbound) {
        let handler = outbound::outbound_handler(sender);
        pools.push(pool::spawn("outbound", outbound_queue, config.pools.outbound.clone(), handler, &stop));
    }
    if enabled(PoolName::Broadcasts) {
        let handler = broadcast_handler(broadcasts);
        pools.push(pool::spawn("broadcasts", broadcasts_queue, config.pools.broadcasts.clone(), handler, &stop));
    }
    if enabled(PoolName::Scheduled) {
        let handler = scheduled_handler(scheduled_jobs);
        pools.push(pool::spawn("scheduled", scheduled_queue, config.pools.scheduled.clone(), handler, &stop));
    }
    tracing::info!(pools = ?config.enabled_pools, "worker pools started");

    service::serve_ops(&config.listen, connections.ops_router()).await?;
    stop.cancel();
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let drained = tokio::time::timeout(grace, async {
        for pool in pools {
            match pool.await {
                Ok(Err(err)) => tracing::error!(%err, "pool stopped with an error"),
                Err(err) => tracing::error!(%err, "pool task failed"),
                Ok(Ok(())) => {}
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(?grace, "grace period over; unfinished jobs return to the queue after their visibility timeout");
    }
    Ok(())
}

/// The payment job: credit the payment (idempotent on the provider's id).
pub fn payment_handler(payments: Payments) -> impl Fn(PaymentJob) -> BoxFuture<'static, Result<(), BoxDynError>> + Clone {
    move |job: PaymentJob| {
        let payments = payments.clone();
        Box::pin(async move { payments.credit(&job).await.map(drop).map_err(Into::into) })
    }
}

/// The withdrawal job: drive the withdrawal to `sent` or `released`, then tell the user. An unsettled outcome
/// (ambiguous payout, another run's lease) is an error, so the job is retried with backoff and
/// the next run reconciles.
pub fn withdrawal_handler<P: PayoutProvider + Clone>(
    withdrawals: Withdrawals,
    provider: P,
    users: Users,
    outbound: Queue,
) -> impl Fn(WithdrawalJob) -> BoxFuture<'static, Result<(), BoxDynError>> + Clone {
    move |job: WithdrawalJob| {
        let (withdrawals, provider, users, outbound) = (withdrawals.clone(), provider.clone(), users.clone(), outbound.clone());
        Box::pin(async move {
            match withdrawals.process(&job, &provider).await {
                Ok(w) => Ok(notify_outcome(&users, &outbound, &w).await?),
                Err(err @ (WithdrawalError::Ambiguous(_) | WithdrawalError::InProgress(_))) => {
                    tracing::info!(%err, "withdrawal not settled yet");
                    Err(err.into())
                }
                Err(err) => Err(err.into()),
            }
        })
    }
}

/// The broadcast job: one batch of recipients, then the next step.
pub fn broadcast_handler(broadcasts: Broadcasts) -> impl Fn(BroadcastJob) -> BoxFuture<'static, Result<(), BoxDynError>> + Clone {
    move |job: BroadcastJob| {
        let broadcasts = broadcasts.clone();
        Box::pin(async move {
            match broadcasts.step(&job).await? {
                Step::Continued { cursor } => tracing::debug!(broadcast = job.broadcast_id, cursor, "broadcast continues"),
                Step::Finished => tracing::info!(broadcast = job.broadcast_id, "broadcast finished"),
            }
            Ok(())
        })
    }
}

/// A scheduled run: one periodic job (see `scheduled`).
pub fn scheduled_handler(jobs: ScheduledJobs) -> impl Fn(ScheduledRun) -> BoxFuture<'static, Result<(), BoxDynError>> + Clone {
    move |run: ScheduledRun| {
        let jobs = jobs.clone();
        Box::pin(async move { jobs.run(&run).await.map_err(|e| format!("{e:#}").into()) })
    }
}
