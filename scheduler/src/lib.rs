//! Periodic jobs under one leader; the workers' `scheduled` pool executes the runs it fires.
//! Any number of replicas run; one holds the leader lease
//! (`core::lease`, renewed every third of its TTL, with a fencing token) and fires the jobs.
//!
//! Firing a job enqueues a `ScheduledRun` on the `scheduled` queue keyed by its run id
//! `<job>:<fire time>`. The last fire time per job is kept in Redis, so a new leader carries on
//! where the old one stopped: runs it fires again (the old leader died between enqueueing and
//! recording) are the same run ids and are enqueued once. A leader that was down longer than
//! `max_catch_up` fire times skips ahead instead of flooding the queue (counted in
//! `scheduler_runs_skipped_total`).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use apalis_redis_streams::{Acquired, Lease, Queue, RedisConn, consumer_name};
use obentchi_core::queues::{QueuesConfig, SCHEDULED_QUEUE};
use obentchi_core::config::{ListenConfig, MongoConfig, RedisConfig, TelemetryConfig};
use obentchi_core::scheduled::{ScheduledJob, ScheduledRun};
use obentchi_core::service::{self, Connections, ServiceConfig};
use redis::AsyncCommands;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio_util::sync::CancellationToken;

/// A cron expression with seconds: `sec min hour day-of-month month day-of-week [year]`, UTC.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    text: String,
    schedule: cron::Schedule,
}

impl FromStr for CronSchedule {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let schedule = cron::Schedule::from_str(text).map_err(|e| format!("{text:?} is not a cron expression with seconds: {e}"))?;
        Ok(CronSchedule { text: text.to_owned(), schedule })
    }
}

impl Serialize for CronSchedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    // The same four sections as every service's config, written out: `#[serde(flatten)]` of
    // `BaseConfig` would lose the key paths in configuration errors ("listen.addr: …").
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub listen: ListenConfig,
    pub mongodb: MongoConfig,
    pub redis: RedisConfig,
    #[serde(default)]
    pub queues: QueuesConfig,
    /// How long leadership lasts without renewal: the longest a dead leader's jobs wait.
    #[serde(default = "default_leader_lease_ms")]
    pub leader_lease_ms: u64,
    /// The most overdue fire times of one job fired at once after a pause.
    #[serde(default = "default_max_catch_up")]
    pub max_catch_up: usize,
    /// Job → cron schedule (UTC). Files and the environment override single jobs
    /// (`OBENTCHI_SCHEDULES__LEDGER_AUDIT="0 0 * * * *"`); see `default_schedules`.
    #[serde(default = "default_schedules")]
    pub schedules: BTreeMap<ScheduledJob, CronSchedule>,
}

/// Money reconcilers every minute (a stuck withdrawal waits at most `stuck_after` + 1 min; the
/// Crypto Pay invoices too), the Stars reconciler every 5 minutes,
/// subscription notices every 10 minutes, queue upkeep every 5, the audit nightly at 03:17 (off
/// the hour, when traffic is lowest), the report at 08:00.
fn default_schedules() -> BTreeMap<ScheduledJob, CronSchedule> {
    let schedule = |job: ScheduledJob| match job {
        ScheduledJob::LedgerAudit => "0 17 3 * * *",
        ScheduledJob::ReconcileWithdrawals => "0 * * * * *",
        ScheduledJob::ReconcilePayments => "30 * * * * *",
        ScheduledJob::ReconcileStars => "15 */5 * * * *",
        ScheduledJob::ReconcileCryptoPay => "45 * * * * *",
        ScheduledJob::SubscriptionNotices => "0 */10 * * * *",
        ScheduledJob::QueueMaintenance => "0 */5 * * * *",
        ScheduledJob::DailyReport => "0 0 8 * * *",
    };
    ScheduledJob::ALL.into_iter().map(|job| (job, schedule(job).parse().expect("default schedules parse"))).collect()
}

fn default_leader_lease_ms() -> u64 {
    10_000
}
fn default_max_catch_up() -> usize {
    10
}
impl ServiceConfig for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn listen(&self) -> &ListenConfig {
        &self.listen
    }
}

/// Leads (when it wins the lease) until SIGTERM, serving the ops endpoints meanwhile.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let connections = Connections::open(&config.mongodb, &config.redis, obentchi_core::telemetry::Emitter::Scheduler).await?;
    let scheduled = Queue::new(SCHEDULED_QUEUE, config.queues.scheduled.clone(), connections.redis.clone());
    let leader = Leader::new(&config, connections.redis.clone(), scheduled);
    let stop = CancellationToken::new();
    let leading = tokio::spawn(leader.run(stop.clone()));
    service::serve_ops(&config.listen, connections.ops_router()).await?;
    stop.cancel();
    leading.await?;
    Ok(())
}

/// All scheduler keys share one hash tag: one slot in a Redis Cluster.
const TAG: &str = "{scheduler}";

pub struct Leader {
    redis: RedisConn,
    lease: Lease,
    queue: Queue,
    schedules: BTreeMap<ScheduledJob, CronSchedule>,
    lease_ttl: Duration,
    max_catch_up: usize,
}

impl Leader {
    pub fn new(config: &Config, redis: RedisConn, queue: Queue) -> Leader {
        let lease_ttl = Duration::from_millis(config.leader_lease_ms);
        Leader {
            lease: Lease::new(redis.clone(), TAG, &consumer_name("scheduler"), lease_ttl),
            redis,
            queue,
            schedules: config.schedules.clone(),
            lease_ttl,
            max_catch_up: config.max_catch_up,
        }
    }

    /// Tries for the lease and, while holding it, fires due runs; gives it back on `stop`.
    pub async fn run(self, stop: CancellationToken) {
        // Often enough to renew well before expiry and to fire within a second of schedule.
        let mut tick = tokio::time::interval((self.lease_ttl / 3).min(Duration::from_secs(1)));
        let mut leading = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now_leading = match self.lease.acquire().await {
                Ok(Acquired::New { token }) => {
                    tracing::info!(token, "became the scheduler leader");
                    true
                }
                Ok(Acquired::AlreadyHeld) => true,
                Ok(Acquired::HeldByAnother) => false,
                Err(err) => {
                    tracing::warn!(%err, "leader lease check failed");
                    false
                }
            };
            if leading && !now_leading {
                tracing::warn!("lost the scheduler leadership");
            }
            leading = now_leading;
            metrics::gauge!("scheduler_leader").set(if leading { 1.0 } else { 0.0 });
            if !leading {
                continue;
            }
            for (job, schedule) in &self.schedules {
                if let Err(err) = self.fire_due(*job, schedule, Utc::now()).await {
                    tracing::warn!(%err, %job, "firing failed; retried on the next tick");
                }
            }
        }
        if leading {
            if let Err(err) = self.lease.release().await {
                tracing::warn!(%err, "could not give back the leadership; it expires by itself");
            }
        }
        metrics::gauge!("scheduler_leader").set(0.0);
    }

    /// Enqueues the job's runs due since its last recorded fire time, oldest first, recording
    /// each after it is enqueued.
    async fn fire_due(&self, job: ScheduledJob, schedule: &CronSchedule, now: DateTime<Utc>) -> anyhow::Result<()> {
        let last_key = format!("{TAG}:last:{job}");
        let mut redis = self.redis.clone();
        let last: Option<i64> = redis.get(&last_key).await?;
        let Some(last) = last.and_then(DateTime::from_timestamp_millis) else {
            // First leader ever: start from now rather than from the beginning of time.
            let () = redis.set(&last_key, now.timestamp_millis()).await?;
            return Ok(());
        };
        let due: Vec<DateTime<Utc>> = schedule.schedule.after(&last).take_while(|t| *t <= now).take(self.max_catch_up + 1).collect();
        if due.len() > self.max_catch_up {
            tracing::warn!(%job, %last, "too many overdue runs; skipping ahead to now");
            metrics::counter!("scheduler_runs_skipped_total", "job" => job.name()).increment(1);
            let () = redis.set(&last_key, now.timestamp_millis()).await?;
            return Ok(());
        }
        for at in due {
            let run = ScheduledRun { job, scheduled_at_ms: at.timestamp_millis() };
            self.queue.enqueue(&run, Some(&format!("run:{}", run.run_id()))).await?;
            let () = redis.set(&last_key, run.scheduled_at_ms).await?;
            metrics::counter!("scheduler_runs_fired_total", "job" => job.name()).increment(1);
            tracing::info!(run_id = %run.run_id(), "fired");
        }
        Ok(())
    }
}
