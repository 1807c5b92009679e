//! Update consumers: any number of replicas, and one chat's updates handled in the order
//! Telegram sent them.
//!
//! Receivers put all updates of a chat on one partition of the updates queue, in order
//! (Telegram sends a chat's next update only after the previous request ended). Each partition
//! is read by at most one consumer at a time, under a lease, one update after another; consumers
//! share the partitions fairly (`ceil(partitions / live consumers)` each, from a heartbeat set)
//! and a consumer that wins a partition first takes over what its previous holder left pending,
//! oldest first. The last update id handled per chat is recorded: a redelivered update is
//! skipped, and one older than the last is counted as out of order (the metric should stay 0).
//!
//! An update that fails for good (unreadable, refused by the Bot API, a payment that conflicts
//! with a recorded one) is tried a few times and then dead-lettered, so one bad update cannot
//! stop its chat. A passing failure (MongoDB or Redis unreachable, a restart) is retried with
//! backoff, holding the chat's later updates back: for up to `TRANSIENT_WINDOW`, and for an
//! update that carries a payment for as long as it takes — Telegram will not send it again.

use apalis_redis_streams::{Acquired, Delivery, Fetched, Lease, Queue, RedisConn, now_ms};
use std::collections::HashMap;
use std::time::Duration;

use teloxide::types::Me;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::handlers::{self, Deps, ReplyBuffer};
use crate::receiver::UpdateHead;

/// Handling attempts before an update that fails for good is dead-lettered (it cannot be put
/// back without reordering the chat).
const HANDLE_ATTEMPTS: u32 = 3;
/// How long an update that fails for a passing reason is retried before it is dead-lettered
/// (payment updates: without limit).
const TRANSIENT_WINDOW: Duration = Duration::from_secs(120);
/// The longest pause between two attempts at a payment update.
const MAX_PAYMENT_BACKOFF: Duration = Duration::from_secs(30);
/// How long the last handled id of a chat is remembered.
const LAST_ID_TTL_MS: u64 = 7 * 24 * 3_600_000;

#[derive(Clone)]
pub struct Consumer {
    pub queue: Queue,
    pub redis: RedisConn,
    /// Unique per process start.
    pub name: String,
    pub deps: Deps,
    pub me: Me,
    pub lease_ttl: Duration,
}

/// How handling one update ended, for the partition's loop.
#[derive(Debug, PartialEq, Eq)]
enum Handled {
    /// Handled, skipped as a duplicate, or dead-lettered: next update.
    Done,
    /// Stopping: the update stays pending for the partition's next holder.
    Stopped,
    /// The partition's lease went to another consumer: stop reading it.
    LeaseLost,
}

/// A partition's lease as its reader keeps it: renewed whenever a third of its time has passed,
/// between batches, between the updates of a batch and between retries (a slow batch must not
/// let the lease lapse while it still reads, or two consumers would handle one chat at once).
struct Holding {
    lease: Lease,
    every: Duration,
    renewed_at: tokio::time::Instant,
}

impl Holding {
    /// Renews the lease if it is due; `false` once it belongs to another consumer.
    async fn keep(&mut self) -> bool {
        if self.renewed_at.elapsed() < self.every {
            return true;
        }
        match self.lease.renew().await {
            Ok(true) => {
                self.renewed_at = tokio::time::Instant::now();
                true
            }
            Ok(false) => false,
            Err(err) => {
                // Redis is unreachable: keep reading until the lease is known to be lost.
                tracing::warn!(%err, "lease renewal failed");
                true
            }
        }
    }
}

struct Held {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Consumer {
    fn lease(&self, partition: u16) -> Lease {
        Lease::new(self.redis.clone(), &self.queue.tag(partition), &self.name, self.lease_ttl)
    }

    /// Live consumers, from a heartbeat set (one key; any slot).
    async fn live_consumers(&self) -> redis::RedisResult<u64> {
        let key = format!("{}:consumers", self.queue.name());
        let now = now_ms();
        let expired = now.saturating_sub(3 * self.lease_ttl.as_millis() as u64);
        let (_, _, live): ((), (), u64) = redis::pipe()
            .cmd("ZADD").arg(&key).arg(now).arg(&self.name)
            .cmd("ZREMRANGEBYSCORE").arg(&key).arg("-inf").arg(expired)
            .cmd("ZCARD").arg(&key)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(live.max(1))
    }

    /// Balances partitions until `stop`, then finishes the update in hand on each and releases.
    pub async fn run(self, stop: CancellationToken) {
        let partitions = self.queue.config().partitions;
        let mut held: HashMap<u16, Held> = HashMap::new();
        let mut tick = tokio::time::interval(self.lease_ttl / 4);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            held.retain(|_, h| !h.task.is_finished());
            let live = match self.live_consumers().await {
                Ok(live) => live,
                Err(err) => {
                    tracing::warn!(%err, "heartbeat failed");
                    continue;
                }
            };
            let share = usize::from(partitions).div_ceil(live as usize);
            // Give back the surplus first, so a newcomer can take it.
            while held.len() > share {
                let surplus = *held.keys().next().expect("non-empty");
                if let Some(h) = held.remove(&surplus) {
                    h.stop.cancel();
                }
            }
            let start = (now_ms() % u64::from(partitions)) as u16;
            for offset in 0..partitions {
                if held.len() >= share {
                    break;
                }
                let partition = (start + offset) % partitions;
                if held.contains_key(&partition) {
                    continue;
                }
                match self.lease(partition).acquire().await {
                    Ok(Acquired::New { token }) => {
                        tracing::info!(partition, token, "partition acquired");
                        let partition_stop = stop.child_token();
                        let task = tokio::spawn(self.clone().consume(partition, partition_stop.clone()));
                        held.insert(partition, Held { stop: partition_stop, task });
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(%err, partition, "lease acquisition failed"),
                }
            }
            metrics::gauge!("update_partitions_held").set(held.len() as f64);
        }
        for (_, h) in held.drain() {
            h.stop.cancel();
            let _ = h.task.await;
        }
    }

    /// Reads one partition in order while holding its lease.
    async fn consume(mut self, partition: u16, stop: CancellationToken) {
        // Replies wait here while a batch is handled, and are queued before it is acknowledged.
        self.deps = Deps { replies: Some(ReplyBuffer::default()), ..self.deps };
        let mut holding = Holding { lease: self.lease(partition), every: self.lease_ttl / 3, renewed_at: tokio::time::Instant::now() };
        let mut unsettled = Unsettled::default();
        let mut taking_over = true;
        // Taken before the first fetch: a wake that comes meanwhile is kept for the wait.
        let bell = self.queue.bell(Some(partition));
        // Set when the last fetch left the partition asleep: wait for a wake before the next.
        let mut asleep: Option<Option<u64>> = None;
        while !stop.is_cancelled() {
            if !holding.keep().await {
                tracing::warn!(partition, "partition lease lost");
                self.settle(partition, &mut unsettled).await;
                return;
            }
            // What an earlier settle could not finish comes first: reading on before it would
            // handle updates again whose marks are not written.
            if unsettled.pending(&self.deps) && !self.settle(partition, &mut unsettled).await {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                continue;
            }
            if let Some(next_due_ms) = asleep.take() {
                // Until an update arrives, or the lease is due for renewal.
                let renewal_due = holding.every.saturating_sub(holding.renewed_at.elapsed());
                tokio::select! {
                    _ = stop.cancelled() => continue,
                    _ = self.queue.wait_for_work(&bell, next_due_ms, renewal_due) => {}
                }
            }
            let batch = if taking_over {
                self.queue.reclaim_idle(partition, &self.name, 100, 0).await.map(|deliveries| Fetched { deliveries, ..Fetched::default() })
            } else {
                self.queue.fetch(partition, &self.name, 10).await
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(%err, partition, "fetch failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if batch.asleep {
                asleep = Some(batch.next_due_ms);
            }
            let batch = batch.deliveries;
            if batch.is_empty() {
                taking_over = false;
                continue;
            }
            tracing::debug!(partition, taking_over, entries = ?batch.iter().map(|d| d.entry_id.as_str()).collect::<Vec<_>>(), "batch");
            // Each update's head, read once: its chat places it in order and keys its last id.
            let heads: Vec<Option<UpdateHead>> = batch.iter().map(|d| UpdateHead::parse(d.envelope.payload.get().as_bytes()).ok()).collect();
            let mut last_handled = self.last_handled(partition, &heads).await;
            for (delivery, head) in batch.into_iter().zip(heads) {
                // The rest of the batch stays pending; the partition's next holder takes it over.
                if stop.is_cancelled() {
                    break;
                }
                let handled = if holding.keep().await {
                    let span = apalis_redis_streams::job_span(self.queue.name(), &delivery.envelope.id);
                    self.handle_in_order(&delivery, head, &mut last_handled, &mut unsettled, &mut holding, &stop).instrument(span).await
                } else {
                    Handled::LeaseLost
                };
                if handled == Handled::LeaseLost {
                    tracing::warn!(partition, "partition lease lost mid-batch; the rest stays for its next holder");
                    self.settle(partition, &mut unsettled).await;
                    return;
                }
            }
            self.settle(partition, &mut unsettled).await;
        }
        self.settle(partition, &mut unsettled).await;
        if let Err(err) = holding.lease.release().await {
            tracing::warn!(%err, partition, "lease release failed; it expires by itself");
        }
    }

    /// The key of the last update id handled in `chat` (in the partition's slot).
    fn last_key(&self, partition: u16, chat: i64) -> String {
        format!("{}:last:{chat}", self.queue.tag(partition))
    }

    /// The last handled update id of each chat of a batch (its updates' `heads`), in one read.
    /// Unknown (or Redis unreachable): absent, and the update is handled.
    async fn last_handled(&self, partition: u16, heads: &[Option<UpdateHead>]) -> HashMap<String, i64> {
        let mut keys: Vec<String> = heads.iter().flatten().filter_map(|head| head.chat).map(|chat| self.last_key(partition, chat)).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return HashMap::new();
        }
        let read: redis::RedisResult<Vec<Option<i64>>> = redis::cmd("MGET").arg(&keys).query_async(&mut self.redis.clone()).await;
        match read {
            Ok(ids) => keys.into_iter().zip(ids).filter_map(|(key, id)| Some((key, id?))).collect(),
            Err(err) => {
                tracing::warn!(%err, "could not read the last handled updates");
                HashMap::new()
            }
        }
    }

    /// Settles what the partition handled: its replies are queued first, then each chat's last
    /// handled update is recorded and the entries acknowledged, in one step. Returns whether
    /// everything was settled; what was not stays for the next call (the reader calls again
    /// before it reads anything new, so nothing is handled twice meanwhile).
    async fn settle(&self, partition: u16, unsettled: &mut Unsettled) -> bool {
        let partition_key = format!("{}:{partition}", self.queue.name());
        if let Err(err) = self.deps.flush_replies(&partition_key).await {
            tracing::warn!(%err, partition, "could not queue replies; the batch stays unacknowledged");
            return false;
        }
        if unsettled.acks.is_empty() && unsettled.last_handled.is_empty() {
            return true;
        }
        let marks: Vec<(String, String)> = unsettled.last_handled.iter().map(|(key, id)| (key.clone(), id.to_string())).collect();
        match self.queue.ack_marking(partition, &unsettled.acks, &marks, Duration::from_millis(LAST_ID_TTL_MS)).await {
            Ok(()) => {
                unsettled.acks.clear();
                unsettled.last_handled.clear();
                true
            }
            Err(err) => {
                tracing::warn!(%err, partition, "could not acknowledge the batch; trying again before reading on");
                false
            }
        }
    }

    async fn handle_in_order(
        &self,
        delivery: &Delivery,
        head: Option<UpdateHead>,
        last_handled: &mut HashMap<String, i64>,
        unsettled: &mut Unsettled,
        holding: &mut Holding,
        stop: &CancellationToken,
    ) -> Handled {
        let raw = delivery.envelope.payload.get();
        let last_key = head.as_ref().and_then(|h| h.chat.map(|chat| self.last_key(delivery.partition, chat)));
        if let (Some(head), Some(key)) = (&head, &last_key) {
            match last_handled.get(key) {
                Some(&last) if last == head.update_id => {
                    tracing::info!(update_id = head.update_id, "update already handled; skipped");
                    metrics::counter!("updates_total", "outcome" => "duplicate").increment(1);
                    unsettled.acks.push(delivery.entry_id.clone());
                    return Handled::Done;
                }
                Some(&last) if last > head.update_id => {
                    metrics::counter!("updates_out_of_order_total").increment(1);
                    tracing::error!(update_id = head.update_id, "update handled out of order");
                }
                _ => {}
            }
        }
        let carries_payment = head.as_ref().is_some_and(|h| h.carries_payment);
        let mut outcome = Err("not attempted".into());
        let give_up_at = tokio::time::Instant::now() + TRANSIENT_WINDOW;
        for attempt in 1.. {
            outcome = handlers::handle(raw, &self.me, &self.deps).await;
            let Err(err) = &outcome else { break };
            let permanent = handlers::is_permanent(err.as_ref());
            tracing::warn!(%err, attempt, carries_payment, permanent, "update handling failed");
            let gave_up = if permanent { attempt >= HANDLE_ATTEMPTS } else { !carries_payment && tokio::time::Instant::now() >= give_up_at };
            if gave_up {
                break;
            }
            if carries_payment && !permanent {
                metrics::counter!("payment_update_retries_total").increment(1);
            }
            if attempt == 1 {
                // The earlier updates' replies need not wait for this one's retries.
                self.settle(delivery.partition, unsettled).await;
            }
            let pause = Duration::from_millis(100u64 << attempt.min(9)).min(MAX_PAYMENT_BACKOFF);
            tokio::select! {
                _ = stop.cancelled() => return Handled::Stopped,
                _ = tokio::time::sleep(pause) => {}
            }
            // A long run of retries must keep the partition, or another consumer would take
            // the chat over meanwhile.
            if !holding.keep().await {
                return Handled::LeaseLost;
            }
        }
        tracing::debug!(update_id = head.as_ref().map(|h| h.update_id), entry = delivery.entry_id, ok = outcome.is_ok(), "update handled");
        match outcome {
            Ok(()) => {
                if let (Some(head), Some(key)) = (&head, last_key) {
                    last_handled.insert(key.clone(), head.update_id);
                    unsettled.last_handled.insert(key, head.update_id);
                }
                metrics::counter!("updates_total", "outcome" => "handled").increment(1);
                unsettled.acks.push(delivery.entry_id.clone());
            }
            Err(err) => {
                metrics::counter!("updates_total", "outcome" => "dead").increment(1);
                if let Err(queue_err) = self.queue.bury(delivery, &err.to_string()).await {
                    tracing::error!(%queue_err, "could not dead-letter an update");
                }
            }
        }
        Handled::Done
    }
}

/// What a partition's reader handled but has not yet settled with Redis (see `settle`); the
/// replies wait in the handlers' reply buffer.
#[derive(Default)]
struct Unsettled {
    /// Each chat's last handled update id, by key.
    last_handled: HashMap<String, i64>,
    /// Entries to acknowledge.
    acks: Vec<String>,
}

impl Unsettled {
    fn pending(&self, deps: &Deps) -> bool {
        !self.acks.is_empty() || !self.last_handled.is_empty() || deps.has_unqueued_replies()
    }
}
