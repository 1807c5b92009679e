//! Job queues on Redis Streams, safe on a Redis Cluster.
//!
//! A queue is `partitions` streams; partition `p` keeps all its keys under the hash tag
//! `{q:<name>:<p>}` (stream, delayed set, dead letters, dedupe keys), so every script is
//! single-slot and partitions spread over the cluster's masters.
//!
//! Delivery is at-least-once. A fetched entry stays pending in the consumer group until it is
//! acknowledged; one held longer than the visibility timeout (a dead or stuck consumer) is
//! reclaimed by another consumer and counts as a delivery, so `max_attempts` also bounds crash
//! loops. Failures go to a delayed set with exponential backoff and jitter and come back when
//! due; exhausted jobs go to the dead-letter stream with their last error.
//!
//! Redis may lose acknowledged writes on failover. Jobs that move money are therefore recorded
//! in MongoDB first and re-enqueued by the reconciler if their job vanished; the jobs themselves
//! are idempotent, so the extra deliveries this design allows change nothing.

mod backend;
mod scripts;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use redis::{RedisError, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use backend::{AckLayer, QueueBackend};

use crate::redis_conn::RedisConn;
use scripts::Scripts;

/// The consumer group every worker of a queue joins.
const GROUP: &str = "workers";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueConfig {
    /// Streams the queue is split into. More than the number of masters spreads load.
    pub partitions: u16,
    /// Runs a job gets, counting crash re-deliveries, before it is dead-lettered.
    pub max_attempts: u32,
    /// How long a consumer may hold a job before another consumer takes it over.
    pub visibility_timeout_ms: u64,
    pub retry_backoff_base_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// Most entries one fetch reads from one partition.
    pub fetch_batch: usize,
    /// How long an idempotency key of an enqueued job is remembered.
    pub dedupe_ttl_ms: u64,
    /// Dead letters kept per partition (approximate cap; older ones are trimmed).
    pub dead_letter_cap: u32,
    /// Pause between fetch rounds that found nothing.
    pub idle_poll_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            partitions: 8,
            max_attempts: 5,
            visibility_timeout_ms: 60_000,
            retry_backoff_base_ms: 1_000,
            retry_backoff_max_ms: 300_000,
            fetch_batch: 100,
            dedupe_ttl_ms: 24 * 3_600_000,
            dead_letter_cap: 100_000,
            idle_poll_ms: 50,
        }
    }
}

/// The Telegram updates queue (receivers enqueue, the bot's consumers drain it).
pub const UPDATES_QUEUE: &str = "updates";

/// Every queue of the platform, one section per queue (`queues.<name>`). Every service reads the
/// same section, so one ConfigMap keeps producers and consumers agreeing on partitions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuesConfig {
    #[serde(default = "updates_queue")]
    pub updates: QueueConfig,
    #[serde(default)]
    pub payments: QueueConfig,
    #[serde(default = "withdrawals_queue")]
    pub withdrawals: QueueConfig,
    #[serde(default)]
    pub outbound: QueueConfig,
    #[serde(default)]
    pub broadcasts: QueueConfig,
    #[serde(default)]
    pub scheduled: QueueConfig,
}

/// Many partitions: a chat's updates are consumed in order within its partition, so more
/// partitions means more chats in parallel.
fn updates_queue() -> QueueConfig {
    QueueConfig { partitions: 32, ..QueueConfig::default() }
}

/// Withdrawals are slow (an external call each): fetch few at a time so none waits fetched but
/// unstarted, and give each run longer before it is presumed dead.
fn withdrawals_queue() -> QueueConfig {
    QueueConfig { fetch_batch: 10, visibility_timeout_ms: 120_000, ..QueueConfig::default() }
}

impl Default for QueuesConfig {
    fn default() -> Self {
        QueuesConfig {
            updates: updates_queue(),
            payments: QueueConfig::default(),
            withdrawals: withdrawals_queue(),
            outbound: QueueConfig::default(),
            broadcasts: QueueConfig::default(),
            scheduled: QueueConfig::default(),
        }
    }
}

impl QueuesConfig {
    /// Every queue by name.
    pub fn all(&self) -> [(&'static str, &QueueConfig); 6] {
        [
            (UPDATES_QUEUE, &self.updates),
            (crate::payments::PAYMENTS_QUEUE, &self.payments),
            (crate::withdrawals::WITHDRAWALS_QUEUE, &self.withdrawals),
            (crate::outbound::OUTBOUND_QUEUE, &self.outbound),
            (crate::broadcasts::BROADCASTS_QUEUE, &self.broadcasts),
            (crate::scheduled::SCHEDULED_QUEUE, &self.scheduled),
        ]
    }

    /// The queue called `name`, on `redis`; `None` for a name that is not ours.
    pub fn open(&self, name: &str, redis: &RedisConn) -> Option<Queue> {
        let (name, config) = self.all().into_iter().find(|(n, _)| *n == name)?;
        Some(Queue::new(name, config.clone(), redis.clone()))
    }

    /// Every queue, opened on `redis`.
    pub fn open_all(&self, redis: &RedisConn) -> Vec<Queue> {
        self.all().into_iter().map(|(name, config)| Queue::new(name, config.clone(), redis.clone())).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("job payload: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("unexpected reply from redis: {0}")]
    Reply(String),
    #[error("unexpected reply from redis: {0}")]
    Parse(#[from] redis::ParsingError),
}

/// What travels through the queue: our job id, its idempotency key, the attempts already used
/// by earlier stream entries of this job (retries), and the payload as raw JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(rename = "a")]
    pub attempts: u32,
    #[serde(rename = "t")]
    pub enqueued_at_ms: u64,
    #[serde(rename = "p")]
    pub payload: Box<RawValue>,
}

impl Envelope {
    fn encode(&self) -> String {
        serde_json::to_string(self).expect("an envelope serializes")
    }

    pub fn decode_payload<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.payload.get())
    }
}

/// One entry handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub partition: u16,
    pub entry_id: String,
    /// The consumer the entry was delivered to; only it may settle a failure.
    pub consumer: Arc<str>,
    pub envelope: Envelope,
    /// Times this stream entry was delivered (1 on first fetch; more after reclaims).
    pub deliveries: u32,
}

impl Delivery {
    /// The run this delivery is, counting earlier retries and crash re-deliveries: 1, 2, ...
    pub fn attempt(&self) -> u32 {
        self.envelope.attempts + self.deliveries
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    Added { job_id: String },
    /// The idempotency key was enqueued before; this is the first job's id.
    Duplicate { job_id: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueStats {
    /// Jobs waiting to run: ready in the streams plus delayed retries.
    pub depth: u64,
    pub ready: u64,
    pub delayed: u64,
    pub in_flight: u64,
    pub dead: u64,
    /// Age of the oldest job not yet finished, in milliseconds (0 when empty).
    pub oldest_age_ms: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// `<partition>-<stream entry id>`: what retry and discard take.
    pub id: String,
    pub job_id: String,
    pub key: Option<String>,
    pub error: String,
    pub died_at_ms: u64,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
}

/// A handler's answer meaning "not now": the job runs again after `wait` without using up an
/// attempt (flood control, a rate limit's `retry_after`).
#[derive(Debug, thiserror::Error)]
#[error("postponed for {} ms: {reason}", wait.as_millis())]
pub struct Postpone {
    pub wait: Duration,
    pub reason: String,
}

/// What happened to a job that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    RetryAt { due_ms: u64 },
    DeadLettered,
    /// The entry was no longer ours (reclaimed by another consumer meanwhile).
    NotOwned,
}

#[derive(Clone)]
pub struct Queue {
    name: Arc<str>,
    config: Arc<QueueConfig>,
    redis: RedisConn,
    scripts: Arc<Scripts>,
    next_partition: Arc<AtomicUsize>,
}

/// A consumer name unique to this process start: `<role>-<host>-<pid>-<random>`. A restarted
/// process must not reuse its predecessor's name, or it would inherit that one's pending
/// entries as if it had fetched them itself.
pub fn consumer_name(role: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{role}-{host}-{}-{}", std::process::id(), &random[..8])
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// FNV-1a: stable across processes and releases, so one key always maps to one partition.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

impl Queue {
    pub fn new(name: &str, config: QueueConfig, redis: RedisConn) -> Queue {
        assert!(config.partitions > 0, "a queue has at least one partition");
        Queue {
            name: name.into(),
            config: Arc::new(config),
            redis,
            scripts: Arc::new(Scripts::new()),
            next_partition: Arc::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn redis(&self) -> &RedisConn {
        &self.redis
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The hash tag every key of `partition` carries (other per-partition keys, such as the
    /// update consumers' leases, use it too, so they share the partition's slot).
    pub fn tag(&self, partition: u16) -> String {
        format!("{{q:{}:{partition}}}", self.name)
    }

    /// The command that appends `envelope` to a partition's stream.
    fn add_entry(&self, partition: u16, envelope: &Envelope) -> redis::Cmd {
        let mut add = redis::cmd("XADD");
        add.arg(self.stream_key(partition)).arg("*").arg("j").arg(envelope.encode());
        add
    }

    fn stream_key(&self, partition: u16) -> String {
        format!("{}:stream", self.tag(partition))
    }

    fn delayed_key(&self, partition: u16) -> String {
        format!("{}:delayed", self.tag(partition))
    }

    fn dead_key(&self, partition: u16) -> String {
        format!("{}:dead", self.tag(partition))
    }

    fn dedupe_key(&self, partition: u16, key: &str) -> String {
        format!("{}:dedupe:{key}", self.tag(partition))
    }

    pub fn partitions(&self) -> impl Iterator<Item = u16> {
        0..self.config.partitions
    }

    /// The partition a key belongs to (all jobs of one key, e.g. one chat, land together).
    pub fn partition_of(&self, key: &str) -> u16 {
        (stable_hash(key) % u64::from(self.config.partitions)) as u16
    }

    fn any_partition(&self) -> u16 {
        (self.next_partition.fetch_add(1, Ordering::Relaxed) % usize::from(self.config.partitions)) as u16
    }

    /// Creates the consumer group of every partition. Safe to repeat; consumers also call it
    /// when Redis answers NOGROUP (a failover lost the group).
    pub async fn ensure_groups(&self) -> Result<(), QueueError> {
        for partition in self.partitions() {
            self.ensure_group(partition).await?;
        }
        Ok(())
    }

    async fn ensure_group(&self, partition: u16) -> Result<(), QueueError> {
        // From id 0: acknowledged entries are deleted, so whatever is in the stream is unfinished.
        let created: Result<(), RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.stream_key(partition))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.redis.clone())
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    fn envelope<T: Serialize + ?Sized>(job: &T, key: Option<&str>) -> Result<Envelope, QueueError> {
        Ok(Envelope {
            id: uuid::Uuid::now_v7().to_string(),
            key: key.map(str::to_owned),
            attempts: 0,
            enqueued_at_ms: now_ms(),
            payload: serde_json::value::to_raw_value(job)?,
        })
    }

    /// Enqueues a job. With a key, the job goes to the key's partition and a key enqueued again
    /// within the dedupe TTL is not added twice.
    pub async fn enqueue<T: Serialize + ?Sized>(&self, job: &T, key: Option<&str>) -> Result<Enqueued, QueueError> {
        match key {
            Some(key) => self.enqueue_in(self.partition_of(key), job, key).await,
            None => {
                let envelope = Self::envelope(job, None)?;
                let _: Value = self.add_entry(self.any_partition(), &envelope).query_async(&mut self.redis.clone()).await?;
                metrics::counter!("queue_enqueued_total", "queue" => self.name.to_string()).increment(1);
                Ok(Enqueued::Added { job_id: envelope.id })
            }
        }
    }

    /// Enqueues a job with idempotency key `key` into the partition of `partition_key`: jobs
    /// that must stay in order (one chat's updates) share a partition key, while each keeps its
    /// own idempotency key. The same key must always come with the same partition key.
    pub async fn enqueue_ordered<T: Serialize + ?Sized>(
        &self,
        job: &T,
        key: &str,
        partition_key: &str,
    ) -> Result<Enqueued, QueueError> {
        self.enqueue_in(self.partition_of(partition_key), job, key).await
    }

    async fn enqueue_in<T: Serialize + ?Sized>(&self, partition: u16, job: &T, key: &str) -> Result<Enqueued, QueueError> {
        let envelope = Self::envelope(job, Some(key))?;
        let (added, job_id): (i64, String) = self
            .scripts
            .enqueue
            .key(self.stream_key(partition))
            .key(self.dedupe_key(partition, key))
            .arg(envelope.encode())
            .arg(&envelope.id)
            .arg(self.config.dedupe_ttl_ms)
            .invoke_async(&mut self.redis.clone())
            .await?;
        metrics::counter!("queue_enqueued_total", "queue" => self.name.to_string()).increment(added as u64);
        Ok(if added == 1 { Enqueued::Added { job_id } } else { Enqueued::Duplicate { job_id } })
    }

    /// Waits until what was written to the partition of `partition_key` reached `replicas`
    /// replicas of its master, or `timeout` passed; returns how many replicas have it. A job
    /// that must survive the master's failover is acknowledged to its sender only after this.
    pub async fn wait_replicated(&self, partition_key: &str, replicas: u32, timeout: Duration) -> Result<u32, QueueError> {
        let stream = self.stream_key(self.partition_of(partition_key));
        Ok(self.redis.wait_for_replicas(&stream, replicas, timeout).await?)
    }

    /// Enqueues many jobs without idempotency keys: one pipelined round trip per partition.
    pub async fn enqueue_batch<T: Serialize>(&self, jobs: &[T]) -> Result<(), QueueError> {
        let partitions = usize::from(self.config.partitions);
        let mut pipes: Vec<redis::Pipeline> = (0..partitions).map(|_| redis::pipe()).collect();
        let start = self.next_partition.fetch_add(jobs.len(), Ordering::Relaxed);
        for (i, job) in jobs.iter().enumerate() {
            let partition = ((start + i) % partitions) as u16;
            let envelope = Self::envelope(job, None)?;
            pipes[usize::from(partition)].add_command(self.add_entry(partition, &envelope)).ignore();
        }
        let mut redis = self.redis.clone();
        for pipe in pipes.iter().filter(|p| p.cmd_iter().next().is_some()) {
            let () = pipe.query_async(&mut redis).await?;
        }
        metrics::counter!("queue_enqueued_total", "queue" => self.name.to_string()).increment(jobs.len() as u64);
        Ok(())
    }

    /// Reads up to `count` new jobs of one partition for `consumer` (promoting due retries).
    pub async fn fetch(&self, partition: u16, consumer: &str, count: usize) -> Result<Vec<Delivery>, QueueError> {
        let invocation = || {
            let mut call = self.scripts.fetch.key(self.stream_key(partition));
            call.key(self.delayed_key(partition)).arg(GROUP).arg(consumer).arg(count).arg(now_ms());
            call
        };
        let reply: Value = match invocation().invoke_async(&mut self.redis.clone()).await {
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_group(partition).await?;
                invocation().invoke_async(&mut self.redis.clone()).await?
            }
            other => other?,
        };
        parse_read_reply(partition, consumer, reply)
    }

    /// Takes over jobs of one partition that another consumer held past the visibility timeout.
    pub async fn reclaim(&self, partition: u16, consumer: &str, count: usize) -> Result<Vec<Delivery>, QueueError> {
        self.reclaim_idle(partition, consumer, count, self.config.visibility_timeout_ms).await
    }

    /// Takes over up to `count` of a partition's pending jobs idle at least `min_idle_ms`, oldest
    /// first. A consumer that just won a partition's lease takes all of them (`min_idle_ms` 0):
    /// the lease says nobody else may run them.
    pub async fn reclaim_idle(
        &self,
        partition: u16,
        consumer: &str,
        count: usize,
        min_idle_ms: u64,
    ) -> Result<Vec<Delivery>, QueueError> {
        let reply: Vec<(String, String, u32)> = match self
            .scripts
            .reclaim
            .key(self.stream_key(partition))
            .arg(GROUP)
            .arg(consumer)
            .arg(min_idle_ms)
            .arg(count)
            .invoke_async(&mut self.redis.clone())
            .await
        {
            Err(e) if e.code() == Some("NOGROUP") => return self.ensure_group(partition).await.map(|()| vec![]),
            other => other?,
        };
        let mut deliveries = Vec::with_capacity(reply.len());
        let consumer: Arc<str> = consumer.into();
        for (entry_id, envelope, deliveries_so_far) in reply {
            let envelope = serde_json::from_str(&envelope)?;
            deliveries.push(Delivery { partition, entry_id, consumer: consumer.clone(), envelope, deliveries: deliveries_so_far });
        }
        if !deliveries.is_empty() {
            metrics::counter!("queue_reclaimed_total", "queue" => self.name.to_string()).increment(deliveries.len() as u64);
        }
        Ok(deliveries)
    }

    /// Keeps entries this consumer is still running from looking abandoned (see the `touch`
    /// script). Returns how many were still ours.
    pub async fn touch(&self, partition: u16, consumer: &str, entry_ids: &[String]) -> Result<u64, QueueError> {
        if entry_ids.is_empty() {
            return Ok(0);
        }
        let mut call = self.scripts.touch.key(self.stream_key(partition));
        call.arg(GROUP).arg(consumer).arg(entry_ids);
        Ok(call.invoke_async(&mut self.redis.clone()).await?)
    }

    /// Acknowledges finished entries of one partition and deletes them.
    pub async fn ack(&self, partition: u16, entry_ids: &[String]) -> Result<(), QueueError> {
        if entry_ids.is_empty() {
            return Ok(());
        }
        let mut call = self.scripts.ack.key(self.stream_key(partition));
        call.arg(GROUP).arg(entry_ids);
        let _: i64 = call.invoke_async(&mut self.redis.clone()).await?;
        Ok(())
    }

    /// Records a failed run: retried later with backoff, or dead-lettered once attempts are used up.
    pub async fn fail(&self, delivery: &Delivery, error: &str) -> Result<FailOutcome, QueueError> {
        let attempt = delivery.attempt();
        if attempt >= self.config.max_attempts {
            return self.bury(delivery, error).await;
        }
        let due_ms = now_ms() + self.backoff(attempt).as_millis() as u64;
        self.reschedule(delivery, due_ms, attempt).await
    }

    /// Runs the job again after `wait`; this run does not count as an attempt.
    pub async fn postpone(&self, delivery: &Delivery, wait: Duration) -> Result<FailOutcome, QueueError> {
        let due_ms = now_ms() + wait.as_millis() as u64;
        self.reschedule(delivery, due_ms, delivery.attempt() - 1).await
    }

    /// Moves an entry to the delayed set, due at `due_ms`, with `attempts` used so far.
    async fn reschedule(&self, delivery: &Delivery, due_ms: u64, attempts: u32) -> Result<FailOutcome, QueueError> {
        let envelope = Envelope { attempts, ..delivery.envelope.clone() };
        let moved: i64 = self
            .scripts
            .retry
            .key(self.stream_key(delivery.partition))
            .key(self.delayed_key(delivery.partition))
            .arg(GROUP)
            .arg(&delivery.entry_id)
            .arg(due_ms)
            .arg(envelope.encode())
            .arg(&*delivery.consumer)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(if moved == 1 { FailOutcome::RetryAt { due_ms } } else { FailOutcome::NotOwned })
    }

    /// Moves a job to the dead letters with `error`.
    pub async fn bury(&self, delivery: &Delivery, error: &str) -> Result<FailOutcome, QueueError> {
        let envelope = Envelope { attempts: delivery.attempt(), ..delivery.envelope.clone() };
        let moved: i64 = self
            .scripts
            .bury
            .key(self.stream_key(delivery.partition))
            .key(self.dead_key(delivery.partition))
            .arg(GROUP)
            .arg(&delivery.entry_id)
            .arg(envelope.encode())
            .arg(error)
            .arg(now_ms())
            .arg(self.config.dead_letter_cap)
            .arg(&*delivery.consumer)
            .invoke_async(&mut self.redis.clone())
            .await?;
        if moved == 1 {
            metrics::counter!("queue_dead_lettered_total", "queue" => self.name.to_string()).increment(1);
            tracing::warn!(queue = %self.name, job_id = %delivery.envelope.id, error, "job dead-lettered");
        }
        Ok(if moved == 1 { FailOutcome::DeadLettered } else { FailOutcome::NotOwned })
    }

    /// Gives back a fetched job that was never started (shutdown), without counting a delivery.
    pub async fn release(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let _: i64 = self
            .scripts
            .release
            .key(self.stream_key(delivery.partition))
            .arg(GROUP)
            .arg(&delivery.entry_id)
            .arg(delivery.envelope.encode())
            .arg(&*delivery.consumer)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Exponential backoff with full jitter: base × 2^(attempt-1), capped, times a random
    /// factor in [0.5, 1].
    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self.config.retry_backoff_base_ms.saturating_mul(1 << attempt.saturating_sub(1).min(30));
        let capped = exponential.min(self.config.retry_backoff_max_ms);
        Duration::from_millis(rand::rng().random_range(capped / 2..=capped))
    }

    /// Depth, age, in-flight and dead-letter counts, summed over partitions.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut stats = QueueStats::default();
        let mut oldest_ms = u64::MAX;
        for partition in self.partitions() {
            let (length, in_flight, delayed, dead, oldest): (u64, u64, u64, u64, String) = self
                .scripts
                .stats
                .key(self.stream_key(partition))
                .key(self.delayed_key(partition))
                .key(self.dead_key(partition))
                .arg(GROUP)
                .invoke_async(&mut self.redis.clone())
                .await?;
            stats.ready += length.saturating_sub(in_flight);
            stats.in_flight += in_flight;
            stats.delayed += delayed;
            stats.dead += dead;
            if let Some(ms) = oldest.split('-').next().and_then(|ms| ms.parse::<u64>().ok()) {
                oldest_ms = oldest_ms.min(ms);
            }
        }
        stats.depth = stats.ready + stats.delayed;
        stats.oldest_age_ms = if oldest_ms == u64::MAX { 0 } else { now_ms().saturating_sub(oldest_ms) };
        Ok(stats)
    }

    /// Publishes `stats` as gauges labelled with the queue's name (what KEDA scales on).
    pub fn export_stats(&self, stats: &QueueStats) {
        let name = self.name.to_string();
        metrics::gauge!("queue_depth", "queue" => name.clone()).set(stats.depth as f64);
        metrics::gauge!("queue_in_flight", "queue" => name.clone()).set(stats.in_flight as f64);
        metrics::gauge!("queue_dead_letters", "queue" => name.clone()).set(stats.dead as f64);
        metrics::gauge!("queue_oldest_age_seconds", "queue" => name).set(stats.oldest_age_ms as f64 / 1000.0);
    }

    /// The oldest dead letters, up to `limit` per partition.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let mut letters = Vec::new();
        for partition in self.partitions() {
            let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                .arg(self.dead_key(partition))
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(limit)
                .query_async(&mut self.redis.clone())
                .await?;
            for (entry_id, fields) in entries {
                letters.push(dead_letter(partition, entry_id, fields)?);
            }
        }
        Ok(letters)
    }

    fn parse_dead_id(&self, id: &str) -> Option<(u16, String)> {
        let (partition, entry) = id.split_once('-')?;
        let partition: u16 = partition.parse().ok()?;
        (partition < self.config.partitions).then(|| (partition, entry.to_owned()))
    }

    /// Puts a dead letter back on the queue with fresh attempts. `false` if it no longer exists.
    pub async fn retry_dead(&self, id: &str) -> Result<bool, QueueError> {
        let Some((partition, entry_id)) = self.parse_dead_id(id) else { return Ok(false) };
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(self.dead_key(partition))
            .arg(&entry_id)
            .arg(&entry_id)
            .query_async(&mut self.redis.clone())
            .await?;
        let Some((_, fields)) = entries.into_iter().next() else { return Ok(false) };
        let letter = dead_letter(partition, entry_id.clone(), fields)?;
        let envelope = Envelope {
            id: letter.job_id,
            key: letter.key,
            attempts: 0,
            enqueued_at_ms: now_ms(),
            payload: letter.payload,
        };
        self.revive(partition, &entry_id, &envelope.encode()).await
    }

    /// Deletes a dead letter for good. `false` if it no longer exists.
    pub async fn discard_dead(&self, id: &str) -> Result<bool, QueueError> {
        let Some((partition, entry_id)) = self.parse_dead_id(id) else { return Ok(false) };
        self.revive(partition, &entry_id, "").await
    }

    /// Deletes dead letters older than `age` (they were reported by the dead-letter alert and
    /// left alone); returns how many went.
    pub async fn trim_dead_letters(&self, age: Duration) -> Result<u64, QueueError> {
        let min_id = now_ms().saturating_sub(age.as_millis() as u64);
        let mut trimmed = 0;
        for partition in self.partitions() {
            let n: u64 = redis::cmd("XTRIM")
                .arg(self.dead_key(partition))
                .arg("MINID")
                .arg(min_id)
                .query_async(&mut self.redis.clone())
                .await?;
            trimmed += n;
        }
        Ok(trimmed)
    }

    /// Removes consumers (from processes that exited) that hold no jobs and were idle longer
    /// than `idle`, so the group's consumer list stays short. One holding jobs is left: the
    /// jobs are reclaimed through it by the visibility timeout. Returns how many went.
    pub async fn prune_consumers(&self, idle: Duration) -> Result<u64, QueueError> {
        let mut pruned = 0;
        for partition in self.partitions() {
            let key = self.stream_key(partition);
            let consumers: Vec<std::collections::HashMap<String, Value>> = match redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(&key)
                .arg(GROUP)
                .query_async(&mut self.redis.clone())
                .await
            {
                Ok(consumers) => consumers,
                // No stream or group yet: nothing to prune.
                Err(err) if err.code() == Some("ERR") => continue,
                Err(err) => return Err(err.into()),
            };
            for consumer in consumers {
                let int = |field: &str| consumer.get(field).and_then(|v| redis::from_redis_value::<u64>(v.clone()).ok());
                let name = consumer.get("name").and_then(|v| redis::from_redis_value::<String>(v.clone()).ok());
                let (Some(name), Some(0), Some(idle_ms)) = (name, int("pending"), int("idle")) else { continue };
                if idle_ms > idle.as_millis() as u64 {
                    let _: u64 = redis::cmd("XGROUP")
                        .arg("DELCONSUMER")
                        .arg(&key)
                        .arg(GROUP)
                        .arg(&name)
                        .query_async(&mut self.redis.clone())
                        .await?;
                    pruned += 1;
                }
            }
        }
        Ok(pruned)
    }

    async fn revive(&self, partition: u16, entry_id: &str, envelope: &str) -> Result<bool, QueueError> {
        let revived: i64 = self
            .scripts
            .revive
            .key(self.dead_key(partition))
            .key(self.stream_key(partition))
            .arg(entry_id)
            .arg(envelope)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(revived == 1)
    }
}

fn dead_letter(partition: u16, entry_id: String, fields: Vec<(String, String)>) -> Result<DeadLetter, QueueError> {
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let envelope: Envelope = serde_json::from_str(field("j").ok_or_else(|| QueueError::Reply("dead letter without job".into()))?)?;
    Ok(DeadLetter {
        id: format!("{partition}-{entry_id}"),
        job_id: envelope.id,
        key: envelope.key,
        error: field("e").unwrap_or_default().to_owned(),
        died_at_ms: field("t").and_then(|t| t.parse().ok()).unwrap_or_default(),
        payload: envelope.payload,
    })
}

/// Parses an XREADGROUP reply: `[[stream, [[id, [field, value, ...]], ...]]]` or nil.
fn parse_read_reply(partition: u16, consumer: &str, reply: Value) -> Result<Vec<Delivery>, QueueError> {
    let consumer: Arc<str> = consumer.into();
    let bad = |what: &str| QueueError::Reply(format!("XREADGROUP: {what}"));
    let streams = match reply {
        Value::Nil => return Ok(vec![]),
        Value::Array(streams) => streams,
        Value::Map(map) => map.into_iter().map(|(k, v)| Value::Array(vec![k, v])).collect(),
        other => return Err(bad(&format!("{other:?}"))),
    };
    let mut deliveries = Vec::new();
    for stream in streams {
        let Value::Array(mut pair) = stream else { return Err(bad("stream")) };
        let Some(Value::Array(entries)) = pair.pop() else { return Err(bad("entries")) };
        for entry in entries {
            let (entry_id, fields): (String, Vec<(String, String)>) = redis::from_redis_value(entry)?;
            let envelope = fields
                .iter()
                .find(|(k, _)| k == "j")
                .map(|(_, v)| serde_json::from_str(v))
                .ok_or_else(|| bad("entry without job"))??;
            deliveries.push(Delivery { partition, entry_id, consumer: consumer.clone(), envelope, deliveries: 1 });
        }
    }
    Ok(deliveries)
}
