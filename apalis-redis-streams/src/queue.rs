//! The queue itself: partitions and their keys, enqueue, fetch, reclaim, settle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use redis::{RedisError, Value};
use serde::Serialize;

use crate::connection::RedisConn;
use crate::scripts::Scripts;
use crate::wake::{self, Bell, Woken};
use crate::{now_ms, Delivery, Enqueued, Envelope, FailOutcome, Fetched, QueueConfig, QueueError};

/// The consumer group every worker of a queue joins.
pub(crate) const GROUP: &str = "workers";

#[derive(Clone)]
pub struct Queue {
    pub(crate) name: Arc<str>,
    pub(crate) config: Arc<QueueConfig>,
    pub(crate) redis: RedisConn,
    pub(crate) scripts: Arc<Scripts>,
    next_partition: Arc<AtomicUsize>,
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
    pub(crate) fn add_entry(&self, partition: u16, envelope: &Envelope) -> redis::Cmd {
        let mut add = redis::cmd("XADD");
        add.arg(self.stream_key(partition)).arg("*").arg("j").arg(envelope.encode());
        add
    }

    pub(crate) fn stream_key(&self, partition: u16) -> String {
        format!("{}:stream", self.tag(partition))
    }

    pub(crate) fn delayed_key(&self, partition: u16) -> String {
        format!("{}:delayed", self.tag(partition))
    }

    pub(crate) fn dead_key(&self, partition: u16) -> String {
        format!("{}:dead", self.tag(partition))
    }

    /// Set while readers of the partition sleep (see the `wake` module).
    pub(crate) fn sleeping_key(&self, partition: u16) -> String {
        format!("{}:sleeping", self.tag(partition))
    }

    /// The partition's running totals (a hash: `done`, `failed`), for throughput.
    pub(crate) fn counts_key(&self, partition: u16) -> String {
        format!("{}:counts", self.tag(partition))
    }

    /// Adds to `pipe` the wake of `partition`'s sleeping readers (see the `wake` module), for
    /// writes that are plain commands; scripts wake from inside.
    fn add_wake(&self, pipe: &mut redis::Pipeline, partition: u16) {
        pipe.cmd("EVAL").arg(&self.scripts.wake).arg(1).arg(self.sleeping_key(partition)).arg(wake::channel(&self.name)).arg(partition).ignore();
    }

    /// A bell for a reader of `partition` (of every partition: `None`); take it before the
    /// first fetch after which it may wait.
    pub fn bell(&self, partition: Option<u16>) -> Arc<Bell> {
        self.redis.doorbell().bell(&self.name, partition)
    }

    /// For a reader whose partitions are all asleep: waits until `bell` rings, the earliest
    /// delayed job is due (`next_due_ms`), `idle_wait_max_ms` passed or `at_most` passed,
    /// whichever comes first, and says which partitions to look at. While wakes do not arrive,
    /// waits `idle_poll_ms` instead.
    pub async fn wait_for_work(&self, bell: &Bell, next_due_ms: Option<u64>, at_most: Duration) -> Woken {
        if let Some(woken) = bell.take() {
            return woken;
        }
        let longest = if self.redis.doorbell().is_live() { self.config.idle_wait_max_ms } else { self.config.idle_poll_ms };
        let until_due = next_due_ms.map_or(u64::MAX, |due| due.saturating_sub(now_ms()));
        let wait = Duration::from_millis(longest.min(until_due)).min(at_most);
        tokio::select! {
            woken = bell.rung() => woken,
            _ = tokio::time::sleep(wait) => Woken::Everything,
        }
    }

    pub(crate) fn dedupe_key(&self, partition: u16, key: &str) -> String {
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
                let partition = self.any_partition();
                let mut pipe = redis::pipe();
                pipe.add_command(self.add_entry(partition, &envelope)).ignore();
                self.add_wake(&mut pipe, partition);
                let () = pipe.query_async(&mut self.redis.clone()).await?;
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
        let mut enqueued = self.enqueue_keyed_in(partition, vec![(Self::envelope(job, Some(key))?, key.to_owned())]).await?;
        Ok(enqueued.pop().expect("one job, one answer"))
    }

    /// `enqueue_ordered` for many jobs sharing one partition key, in order, in one script call:
    /// `(job, idempotency key)` each.
    pub async fn enqueue_ordered_batch<T: Serialize>(&self, jobs: &[(T, String)], partition_key: &str) -> Result<Vec<Enqueued>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let envelopes = jobs.iter().map(|(job, key)| Ok((Self::envelope(job, Some(key))?, key.clone()))).collect::<Result<Vec<_>, QueueError>>()?;
        self.enqueue_keyed_in(self.partition_of(partition_key), envelopes).await
    }

    /// Enqueues `jobs` (with their idempotency keys) into `partition`, in order, in one script
    /// call.
    async fn enqueue_keyed_in(&self, partition: u16, jobs: Vec<(Envelope, String)>) -> Result<Vec<Enqueued>, QueueError> {
        let mut call = self.scripts.enqueue.key(self.stream_key(partition));
        call.key(self.sleeping_key(partition)).arg(self.config.dedupe_ttl_ms).arg(wake::channel(&self.name)).arg(partition);
        for (envelope, key) in &jobs {
            call.key(self.dedupe_key(partition, key)).arg(envelope.encode()).arg(&envelope.id);
        }
        let reply: Vec<Value> = call.invoke_async(&mut self.redis.clone()).await?;
        let mut reply = reply.into_iter();
        let mut enqueued = Vec::with_capacity(jobs.len());
        let mut added_count = 0;
        while let (Some(added), Some(job_id)) = (reply.next(), reply.next()) {
            let (added, job_id): (i64, String) = (redis::from_redis_value(added)?, redis::from_redis_value(job_id)?);
            added_count += added as u64;
            enqueued.push(if added == 1 { Enqueued::Added { job_id } } else { Enqueued::Duplicate { job_id } });
        }
        metrics::counter!("queue_enqueued_total", "queue" => self.name.to_string()).increment(added_count);
        Ok(enqueued)
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
        for (partition, pipe) in pipes.iter_mut().enumerate().filter(|(_, p)| p.cmd_iter().next().is_some()) {
            self.add_wake(pipe, partition as u16);
            let () = pipe.query_async(&mut redis).await?;
        }
        metrics::counter!("queue_enqueued_total", "queue" => self.name.to_string()).increment(jobs.len() as u64);
        Ok(())
    }

    /// Reads up to `count` new jobs of one partition for `consumer` (promoting due retries).
    /// Reading fewer than `count` marks the partition's readers asleep (`Fetched::asleep`): the
    /// next write wakes them.
    pub async fn fetch(&self, partition: u16, consumer: &str, count: usize) -> Result<Fetched, QueueError> {
        let invocation = || {
            let mut call = self.scripts.fetch.key(self.stream_key(partition));
            call.key(self.delayed_key(partition)).key(self.sleeping_key(partition));
            call.arg(GROUP).arg(consumer).arg(count.max(1)).arg(now_ms()).arg(self.config.idle_wait_max_ms.saturating_mul(2));
            call
        };
        let reply: Value = match invocation().invoke_async(&mut self.redis.clone()).await {
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_group(partition).await?;
                invocation().invoke_async(&mut self.redis.clone()).await?
            }
            other => other?,
        };
        let (read, asleep, next_due): (Value, i64, i64) = redis::from_redis_value(reply)?;
        Ok(Fetched { deliveries: parse_read_reply(partition, consumer, read)?, asleep: asleep == 1, next_due_ms: u64::try_from(next_due).ok() })
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
        self.ack_marking(partition, entry_ids, &[], Duration::ZERO).await
    }

    /// `ack`, and in the same step sets `marks` (key, value), each for `mark_ttl`: keys the
    /// caller keeps in the partition's slot (under `Queue::tag`), such as the last entry handled
    /// per ordering key. Either all of it happens or none.
    pub async fn ack_marking(&self, partition: u16, entry_ids: &[String], marks: &[(String, String)], mark_ttl: Duration) -> Result<(), QueueError> {
        if entry_ids.is_empty() && marks.is_empty() {
            return Ok(());
        }
        let mut call = self.scripts.ack.key(self.stream_key(partition));
        call.key(self.counts_key(partition));
        call.arg(GROUP).arg(mark_ttl.as_millis().max(1) as u64).arg(entry_ids);
        for (key, value) in marks {
            call.key(key).arg(value);
        }
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
            .key(self.sleeping_key(delivery.partition))
            .key(self.counts_key(delivery.partition))
            .arg(GROUP)
            .arg(&delivery.entry_id)
            .arg(due_ms)
            .arg(envelope.encode())
            .arg(&*delivery.consumer)
            .arg(wake::channel(&self.name))
            .arg(delivery.partition)
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
            .key(self.counts_key(delivery.partition))
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
            .key(self.sleeping_key(delivery.partition))
            .arg(GROUP)
            .arg(&delivery.entry_id)
            .arg(delivery.envelope.encode())
            .arg(&*delivery.consumer)
            .arg(wake::channel(&self.name))
            .arg(delivery.partition)
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
