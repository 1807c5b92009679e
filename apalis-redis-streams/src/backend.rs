//! The queue as an apalis backend: `QueueBackend` feeds an apalis `Worker` with decoded tasks,
//! and its middleware, `AckLayer`, sees every task's result: success acknowledges the entry
//! (batched), failure schedules a retry or dead-letters it.
//!
//! A fetcher task reads every partition into a bounded channel (so at most `fetch_batch` jobs
//! wait fetched but unstarted) and sweeps for entries whose consumer died. On shutdown apalis
//! stops pulling, lets running jobs finish, then calls `poll_close`: the fetcher stops, fetched
//! but unstarted jobs are given back, and pending acknowledgements are flushed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::TaskId;
use apalis_core::task::Task;
use apalis_core::worker::context::WorkerContext;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::{Delivery, FailOutcome, Postpone, Queue, QueueConfig, QueueError, Woken};

/// The span a job runs in (`job` with `queue` and `job_id`): every log line inside names the job.
pub fn job_span(queue: &str, job_id: &str) -> tracing::Span {
    tracing::info_span!("job", queue, job_id)
}

type Closing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Entries this process is running, per partition: the sweep keeps them alive, so a job that
/// runs longer than the visibility timeout is not taken over by its own process.
#[derive(Clone, Default)]
struct Running(Arc<Mutex<BTreeMap<u16, BTreeSet<String>>>>);

impl Running {
    fn start(&self, delivery: &Delivery) {
        self.0.lock().expect("running lock").entry(delivery.partition).or_default().insert(delivery.entry_id.clone());
    }

    fn finish(&self, delivery: &Delivery) {
        if let Some(entries) = self.0.lock().expect("running lock").get_mut(&delivery.partition) {
            entries.remove(&delivery.entry_id);
        }
    }

    fn snapshot(&self) -> Vec<(u16, Vec<String>)> {
        let running = self.0.lock().expect("running lock");
        running.iter().filter(|(_, e)| !e.is_empty()).map(|(p, e)| (*p, e.iter().cloned().collect())).collect()
    }
}

/// Acks wait at most this long to be sent together with others.
const ACK_LINGER: Duration = Duration::from_millis(5);
const ACK_BATCH: usize = 256;

pub struct QueueBackend<Args> {
    queue: Queue,
    tasks: mpsc::Receiver<Task<Args>>,
    stop: CancellationToken,
    fetcher: Option<JoinHandle<()>>,
    ack_layer: AckLayer,
    acker: Option<JoinHandle<()>>,
    closing: Option<Closing>,
}

impl<Args: DeserializeOwned + Send + Sync + 'static> QueueBackend<Args> {
    /// Starts fetching from every partition of `queue` as `consumer`, a name unique to this
    /// process start (reusing a dead process's name would inherit its pending entries early).
    pub fn start(queue: Queue, consumer: String) -> QueueBackend<Args> {
        let (task_tx, tasks) = mpsc::channel(queue.config.fetch_batch.max(1));
        let (ack_tx, ack_rx) = mpsc::channel(16_384);
        let stop = CancellationToken::new();
        let running = Running::default();
        let fetcher = tokio::spawn(fetch_loop(queue.clone(), consumer, task_tx, running.clone(), stop.clone()));
        let acker = tokio::spawn(ack_loop(queue.clone(), ack_rx, stop.child_token()));
        QueueBackend {
            ack_layer: AckLayer { queue: queue.clone(), acks: ack_tx, running },
            queue,
            tasks,
            stop,
            fetcher: Some(fetcher),
            acker: Some(acker),
            closing: None,
        }
    }
}

async fn fetch_loop<Args: DeserializeOwned + Send + Sync + 'static>(
    queue: Queue,
    consumer: String,
    tasks: mpsc::Sender<Task<Args>>,
    running: Running,
    stop: CancellationToken,
) {
    let config = queue.config.clone();
    let sweep_every = Duration::from_millis((config.visibility_timeout_ms / 2).max(100));
    let mut next_sweep = Instant::now();
    let mut failures = 0u32;
    // Taken before the first fetch: a wake that comes while a round runs is kept for the wait.
    let bell = queue.bell(None);
    // The partitions that may have work: all at first, then those rung awake. A fetch that
    // reads less than it asked for leaves its partition asleep (marked in Redis, so the next
    // write to it rings here).
    let mut awake: BTreeSet<u16> = queue.partitions().collect();
    // Asleep partitions with a delayed job: when the earliest is due.
    let mut due: BTreeMap<u16, u64> = BTreeMap::new();
    // Every partition is fetched at least this often whatever wakes come, so a partition whose
    // sleeping mark expired (it lives twice this long) or whose wake was lost is not left behind.
    let refresh_every = Duration::from_millis((config.idle_wait_max_ms / 2).max(1));
    let mut next_refresh = Instant::now() + refresh_every;
    while !stop.is_cancelled() {
        // Partitions rung or come due meanwhile join the busy ones: a long backlog in one
        // partition must not keep the others unread.
        if let Some(woken) = bell.take() {
            wake_up(&mut awake, woken, &queue);
        }
        let now_ms = crate::now_ms();
        let come_due: Vec<u16> = due.iter().filter(|(_, at)| **at <= now_ms).map(|(partition, _)| *partition).collect();
        for partition in come_due {
            due.remove(&partition);
            awake.insert(partition);
        }
        if Instant::now() >= next_refresh {
            next_refresh = Instant::now() + refresh_every;
            awake.extend(queue.partitions());
        }
        let round = async {
            if Instant::now() >= next_sweep {
                next_sweep = Instant::now() + sweep_every;
                // Ours first: a job still running here must not look abandoned to the sweep.
                for (partition, entries) in running.snapshot() {
                    queue.touch(partition, &consumer, &entries).await?;
                }
                for partition in queue.partitions() {
                    let reclaimed = queue.reclaim(partition, &consumer, config.fetch_batch).await?;
                    deliver_all(&queue, reclaimed, &tasks, &running).await?;
                }
            }
            for partition in awake.clone() {
                // Fetch only what the channel can take now, so nothing waits fetched for long,
                // and only once a quarter of it is free: a fetch per freed slot would cost a
                // round trip per job when jobs are slow.
                let quarter = (tasks.max_capacity() / 4).max(1);
                let permits = tasks.reserve_many(quarter).await.map_err(|_| QueueError::Reply("worker gone".into()))?;
                drop(permits);
                let room = tasks.capacity();
                let batch = queue.fetch(partition, &consumer, room.min(config.fetch_batch)).await?;
                if batch.asleep {
                    awake.remove(&partition);
                    match batch.next_due_ms {
                        Some(at) => due.insert(partition, at),
                        None => due.remove(&partition),
                    };
                }
                deliver_all(&queue, batch.deliveries, &tasks, &running).await?;
            }
            Ok::<(), QueueError>(())
        };
        let pause = tokio::select! {
            _ = stop.cancelled() => break,
            result = round => match result {
                Ok(()) if awake.is_empty() => {
                    let until_sweep = next_sweep.min(next_refresh).saturating_duration_since(Instant::now());
                    let earliest_due = due.values().min().copied();
                    let woken = tokio::select! {
                        _ = stop.cancelled() => break,
                        woken = queue.wait_for_work(&bell, earliest_due, until_sweep) => woken,
                    };
                    wake_up(&mut awake, woken, &queue);
                    failures = 0;
                    Duration::ZERO
                }
                Ok(()) => { failures = 0; Duration::ZERO }
                Err(err) => {
                    failures += 1;
                    metrics::counter!("queue_fetch_errors_total", "queue" => queue.name.to_string()).increment(1);
                    tracing::warn!(queue = %queue.name, %err, failures, "fetch failed; backing off");
                    // After an error, anything may have changed.
                    awake = queue.partitions().collect();
                    Duration::from_millis(100 * u64::from(failures.min(20)))
                }
            },
        };
        if !pause.is_zero() {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// Adds the partitions `woken` names (all for `Everything`) to those to fetch.
fn wake_up(awake: &mut BTreeSet<u16>, woken: Woken, queue: &Queue) {
    match woken {
        Woken::Partitions(rung) => awake.extend(rung),
        Woken::Everything => awake.extend(queue.partitions()),
    }
}

/// Hands deliveries to the worker; jobs that exhausted their attempts through crashes, or
/// whose payload does not decode, go straight to the dead letters.
async fn deliver_all<Args: DeserializeOwned + Send + Sync + 'static>(
    queue: &Queue,
    deliveries: Vec<Delivery>,
    tasks: &mpsc::Sender<Task<Args>>,
    running: &Running,
) -> Result<(), QueueError> {
    for delivery in deliveries {
        if delivery.attempt() > queue.config.max_attempts {
            let error = format!("gave up after {} deliveries (worker crashes or timeouts)", delivery.attempt() - 1);
            queue.bury(&delivery, &error).await?;
            continue;
        }
        let args: Args = match delivery.envelope.decode_payload() {
            Ok(args) => args,
            Err(err) => {
                queue.bury(&delivery, &format!("undecodable payload: {err}")).await?;
                continue;
            }
        };
        // From here until it is settled, the sweep keeps the entry alive (a fetched entry
        // waiting in the channel counts: it is ours and will run).
        running.start(&delivery);
        let task = TaskBuilder::new(args)
            .task_id(TaskId::from_string(delivery.envelope.id.clone()))
            .attempt(delivery.attempt() as usize)
            .max_attempts(queue.config.max_attempts as usize)
            .data(delivery)
            .build();
        if tasks.send(task).await.is_err() {
            return Err(QueueError::Reply("worker gone".into()));
        }
    }
    Ok(())
}

/// Acknowledges finished entries in batches, one script call per partition per batch. On
/// `stop` it takes what is left in the channel, flushes it and ends.
async fn ack_loop(queue: Queue, mut acks: mpsc::Receiver<(u16, String)>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(1024);
    loop {
        let stopping = tokio::select! {
            received = acks.recv_many(&mut batch, 1024) => {
                // Let a few more finish first: one script call for many acks.
                if received > 0 && received < ACK_BATCH {
                    let linger = tokio::time::sleep(ACK_LINGER);
                    tokio::pin!(linger);
                    while batch.len() < ACK_BATCH {
                        let wanted = ACK_BATCH - batch.len();
                        tokio::select! {
                            more = acks.recv_many(&mut batch, wanted) => if more == 0 { break },
                            _ = &mut linger => break,
                        }
                    }
                }
                received == 0
            }
            _ = stop.cancelled() => {
                while let Ok(ack) = acks.try_recv() {
                    batch.push(ack);
                }
                true
            }
        };
        flush_acks(&queue, &mut batch).await;
        if stopping {
            return;
        }
    }
}

async fn flush_acks(queue: &Queue, batch: &mut Vec<(u16, String)>) {
    let mut by_partition: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for (partition, entry_id) in batch.drain(..) {
        by_partition.entry(partition).or_default().push(entry_id);
    }
    for (partition, entry_ids) in by_partition {
        for attempt in 1..=5u64 {
            match queue.ack(partition, &entry_ids).await {
                Ok(()) => break,
                Err(err) => {
                    // Unacknowledged entries come back after the visibility timeout; the jobs
                    // are idempotent, so that costs time, not correctness.
                    tracing::warn!(queue = %queue.name, %err, attempt, "ack failed");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
            }
        }
    }
}

impl<Args: Send + 'static> Backend for QueueBackend<Args> {
    type Task = Task<Args>;
    type Error = QueueError;

    fn poll_ready(&mut self, _cx: &mut Context<'_>, _worker: &WorkerContext) -> Poll<Result<(), QueueError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_next(&mut self, cx: &mut Context<'_>, _worker: &WorkerContext) -> Poll<Option<Result<Task<Args>, QueueError>>> {
        self.tasks.poll_recv(cx).map(|task| task.map(Ok))
    }

    fn poll_close(&mut self, cx: &mut Context<'_>, _worker: &WorkerContext) -> Poll<Result<(), QueueError>> {
        if self.closing.is_none() {
            self.stop.cancel();
            self.tasks.close();
            let fetcher = self.fetcher.take();
            let acker = self.acker.take();
            let queue = self.queue.clone();
            // Every fetched-but-unstarted task, taken now: the fetcher can add no more.
            let mut unstarted = Vec::new();
            while let Ok(task) = self.tasks.try_recv() {
                unstarted.extend(task.ctx().data().get::<Delivery>().cloned());
            }
            self.closing = Some(Box::pin(async move {
                if let Some(fetcher) = fetcher {
                    let _ = fetcher.await;
                }
                for delivery in unstarted {
                    if let Err(err) = queue.release(&delivery).await {
                        tracing::warn!(queue = %queue.name, %err, "could not release a job; it returns after the visibility timeout");
                    }
                }
                // The acker was told to stop with the fetcher; apalis finished the running jobs
                // before closing, so their acknowledgements are in its channel and get flushed.
                if let Some(acker) = acker {
                    let _ = acker.await;
                }
            }));
        }
        self.closing.as_mut().expect("set above").as_mut().poll(cx).map(Ok)
    }
}

impl<Args> BackendConfig for QueueBackend<Args> {
    type Args = Args;
    type Id = String;
    type Kind = Ephemeral;
    type Config = QueueConfig;
    type Layer = AckLayer;

    fn config(&self) -> &QueueConfig {
        &self.queue.config
    }

    fn middleware(&mut self, _worker: &mut WorkerContext) -> AckLayer {
        self.ack_layer.clone()
    }
}

/// Settles each task with the queue once its handler returns.
#[derive(Clone)]
pub struct AckLayer {
    queue: Queue,
    acks: mpsc::Sender<(u16, String)>,
    running: Running,
}

impl<S> Layer<S> for AckLayer {
    type Service = AckService<S>;
    fn layer(&self, inner: S) -> AckService<S> {
        AckService { inner, layer: self.clone() }
    }
}

pub struct AckService<S> {
    inner: S,
    layer: AckLayer,
}

impl<S, Args> Service<Task<Args>> for AckService<S>
where
    S: Service<Task<Args>>,
    S::Error: AsRef<dyn std::error::Error + Send + Sync> + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let delivery = task.ctx().data().get::<Delivery>().cloned();
        let job = self.inner.call(task);
        let AckLayer { queue, acks, running } = self.layer.clone();
        let span = delivery
            .as_ref()
            .map_or_else(tracing::Span::none, |d| job_span(&queue.name, &d.envelope.id));
        Box::pin(
            async move {
                let started = Instant::now();
                let result = job.await;
                let Some(delivery) = delivery else { return result };
                running.finish(&delivery);
                let queue_name = queue.name.to_string();
                metrics::histogram!("queue_job_duration_seconds", "queue" => queue_name.clone())
                    .record(started.elapsed().as_secs_f64());
                let outcome = match &result {
                    Ok(_) => {
                        // Fails only once the acker is gone, i.e. the process is going down; the
                        // job then returns after the visibility timeout.
                        let _ = acks.send((delivery.partition, delivery.entry_id.clone())).await;
                        "succeeded"
                    }
                    Err(err) => {
                        let err = err.as_ref();
                        let error = err.to_string();
                        let settled = match err.downcast_ref::<Postpone>() {
                            Some(postpone) => queue.postpone(&delivery, postpone.wait).await,
                            None => queue.fail(&delivery, &error).await,
                        };
                        match settled {
                            Ok(FailOutcome::RetryAt { .. }) if err.is::<Postpone>() => "postponed",
                            Ok(FailOutcome::RetryAt { .. }) => {
                                tracing::info!(attempt = delivery.attempt(), %error, "job failed; retrying later");
                                "retried"
                            }
                            Ok(FailOutcome::DeadLettered) => "dead",
                            Ok(FailOutcome::NotOwned) => "lost_ownership",
                            Err(queue_err) => {
                                tracing::warn!(%queue_err, "could not record a failure; the job returns after the visibility timeout");
                                "unsettled"
                            }
                        }
                    }
                };
                metrics::counter!("queue_jobs_total", "queue" => queue_name, "outcome" => outcome).increment(1);
                result
            }
            .instrument(span),
        )
    }
}
