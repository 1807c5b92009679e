//! The queue against a real single Redis server and a real 6-node Redis Cluster, each started
//! on free loopback ports: every test runs on both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis_core::error::BoxDynError;
use apalis_core::task::data::Data;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_core::worker::context::WorkerContext;
use apalis_redis_streams::{Acquired, ConnectOptions, Enqueued, FailOutcome, Lease, Queue, QueueBackend, QueueConfig, QueueStats, RedisConn, RedisMode};
use obentchi_testkit::{RedisCluster, RedisServer};
use serde::{Deserialize, Serialize};

/// The servers a test runs against, kept alive for the test's length.
enum Servers {
    Single(#[allow(dead_code)] RedisServer),
    Cluster(#[allow(dead_code)] RedisCluster),
}

struct Redis {
    _servers: Servers,
    options: ConnectOptions,
}

impl Redis {
    fn single() -> Redis {
        let server = RedisServer::start();
        let options = ConnectOptions::new(RedisMode::Single, [server.url()]);
        Redis { _servers: Servers::Single(server), options }
    }

    fn cluster() -> Redis {
        let cluster = RedisCluster::start();
        let options = ConnectOptions::new(RedisMode::Cluster, cluster.urls());
        Redis { _servers: Servers::Cluster(cluster), options }
    }

    async fn connect(&self) -> RedisConn {
        RedisConn::connect(&self.options).await.unwrap()
    }

    async fn queue(&self, name: &str, config: QueueConfig) -> Queue {
        let queue = Queue::new(name, config, self.connect().await);
        queue.ensure_groups().await.unwrap();
        queue
    }
}

/// Each named test, once on a single server and once on a cluster.
macro_rules! on_both_topologies {
    ($($test:ident),* $(,)?) => {
        mod single_node {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Redis::single()).await
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Redis::cluster()).await
                }
            )*
        }
    };
}

on_both_topologies!(
    queue_operations_are_cluster_safe_and_idempotent,
    a_job_held_by_a_dead_consumer_is_reclaimed_and_counted_as_a_delivery,
    failures_back_off_then_dead_letter_and_dead_letters_can_be_retried_or_discarded,
    a_20000_job_backlog_drains_through_an_apalis_worker_honouring_max_attempts,
    a_graceful_stop_finishes_running_jobs_and_gives_back_the_rest,
    a_job_running_longer_than_the_visibility_timeout_is_not_taken_from_its_own_worker,
    a_lease_has_one_holder_and_a_growing_fencing_token,
    an_idle_worker_sleeps_until_woken_by_new_work_or_a_due_retry,
);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Job {
    n: u64,
    fail: bool,
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..600 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn queue_operations_are_cluster_safe_and_idempotent(redis: Redis) {
    let queue = redis.queue("orders", QueueConfig { partitions: 6, ..QueueConfig::default() }).await;

    let first = queue.enqueue(&Job { n: 1, fail: false }, Some("order-1")).await.unwrap();
    let Enqueued::Added { job_id } = first else { panic!("{first:?}") };
    let again = queue.enqueue(&Job { n: 1, fail: false }, Some("order-1")).await.unwrap();
    assert_eq!(again, Enqueued::Duplicate { job_id: job_id.clone() });
    for n in 2..=12 {
        queue.enqueue(&Job { n, fail: false }, Some(&format!("order-{n}"))).await.unwrap();
    }
    queue.enqueue_batch(&(100..110).map(|n| Job { n, fail: false }).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().depth, 22);

    let mut seen = Vec::new();
    for partition in queue.partitions() {
        let batch = queue.fetch(partition, "c1", 100).await.unwrap().deliveries;
        assert!(batch.iter().all(|d| d.attempt() == 1));
        let ids: Vec<String> = batch.iter().map(|d| d.entry_id.clone()).collect();
        seen.extend(batch.into_iter().map(|d| d.envelope.decode_payload::<Job>().unwrap().n));
        let stats = queue.stats().await.unwrap();
        assert!(stats.in_flight >= ids.len() as u64);
        // Queue age counts waiting jobs only: once every partition is fetched, nothing waits,
        // however long the fetched jobs run.
        if queue.partitions().last() == Some(partition) {
            assert_eq!(stats.oldest_age_ms, 0, "running jobs are not waiting");
        }
        queue.ack(partition, &ids).await.unwrap();
    }
    seen.sort();
    assert_eq!(seen, (1..=12).chain(100..110).collect::<Vec<_>>());
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.dead, stats.oldest_age_ms), (0, 0, 0, 0));
}

async fn a_job_held_by_a_dead_consumer_is_reclaimed_and_counted_as_a_delivery(redis: Redis) {
    let config = QueueConfig { partitions: 1, visibility_timeout_ms: 2_000, max_attempts: 3, ..QueueConfig::default() };
    let queue = redis.queue("reclaim", config).await;
    queue.enqueue(&Job { n: 7, fail: false }, None).await.unwrap();

    let held = queue.fetch(0, "crashed-consumer", 10).await.unwrap().deliveries;
    assert_eq!(held.len(), 1);
    assert!(queue.reclaim(0, "rescuer", 10).await.unwrap().is_empty(), "not idle long enough yet");
    let mut reclaimed = Vec::new();
    wait_for("the held job to pass the visibility timeout", async || {
        reclaimed = queue.reclaim(0, "rescuer", 10).await.unwrap();
        !reclaimed.is_empty()
    })
    .await;
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].entry_id, held[0].entry_id);
    assert_eq!(reclaimed[0].attempt(), 2, "the crash counted as an attempt");

    // The original consumer can no longer settle the entry it lost.
    assert_eq!(queue.fail(&held[0], "late").await.unwrap(), FailOutcome::NotOwned);
    queue.ack(0, &[reclaimed[0].entry_id.clone()]).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().in_flight, 0);
}

async fn failures_back_off_then_dead_letter_and_dead_letters_can_be_retried_or_discarded(redis: Redis) {
    let config = QueueConfig {
        partitions: 2,
        max_attempts: 3,
        retry_backoff_base_ms: 20,
        retry_backoff_max_ms: 50,
        ..QueueConfig::default()
    };
    let queue = redis.queue("flaky", config).await;
    queue.enqueue(&Job { n: 1, fail: true }, Some("only")).await.unwrap();
    let partition = queue.partition_of("only");

    for attempt in 1..=3 {
        let mut batch = Vec::new();
        wait_for("the retry to come due", async || {
            batch = queue.fetch(partition, "c", 10).await.unwrap().deliveries;
            !batch.is_empty()
        })
        .await;
        assert_eq!(batch[0].attempt(), attempt);
        let outcome = queue.fail(&batch[0], &format!("boom {attempt}")).await.unwrap();
        if attempt < 3 {
            assert!(matches!(outcome, FailOutcome::RetryAt { .. }), "{outcome:?}");
            assert_eq!(queue.stats().await.unwrap().delayed, 1);
        } else {
            assert_eq!(outcome, FailOutcome::DeadLettered);
        }
    }
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 0, 1));
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].error, "boom 3");
    assert_eq!(dead[0].key.as_deref(), Some("only"));

    assert!(queue.retry_dead(&dead[0].id).await.unwrap());
    assert!(!queue.retry_dead(&dead[0].id).await.unwrap(), "a dead letter is retried once");
    let revived = queue.fetch(partition, "c", 10).await.unwrap().deliveries;
    assert_eq!(revived[0].attempt(), 1, "a retried dead letter starts over");
    assert_eq!(queue.bury(&revived[0], "poison").await.unwrap(), FailOutcome::DeadLettered);
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(queue.discard_dead(&dead[0].id).await.unwrap());
    assert!(queue.dead_letters(10).await.unwrap().is_empty());
    let stats = queue.stats().await.unwrap();
    assert_eq!(stats.failed_total, 4, "three failed attempts, then the revived job buried");
    assert_eq!(QueueStats { failed_total: 0, ..stats }, QueueStats::default());
}

/// How many times each job ran.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<HashMap<u64, usize>>>);

impl Runs {
    fn record(&self, n: u64) {
        *self.0.lock().unwrap().entry(n).or_default() += 1;
    }

    fn snapshot(&self) -> HashMap<u64, usize> {
        self.0.lock().unwrap().clone()
    }
}

async fn run_job(job: Job, runs: Data<Runs>) -> Result<(), BoxDynError> {
    runs.record(job.n);
    if job.fail {
        return Err(format!("job {} always fails", job.n).into());
    }
    Ok(())
}

async fn a_20000_job_backlog_drains_through_an_apalis_worker_honouring_max_attempts(redis: Redis) {
    let config = QueueConfig {
        partitions: 6,
        max_attempts: 3,
        retry_backoff_base_ms: 10,
        retry_backoff_max_ms: 20,
        ..QueueConfig::default()
    };
    let queue = redis.queue("backlog", config).await;
    let jobs: Vec<Job> = (0..20_000).map(|n| Job { n, fail: n % 1_000 == 0 }).collect();
    for chunk in jobs.chunks(2_000) {
        queue.enqueue_batch(chunk).await.unwrap();
    }
    assert_eq!(queue.stats().await.unwrap().depth, 20_000);

    let runs = Runs::default();
    let backend = QueueBackend::<Job>::start(queue.clone(), "backlog-test".into());
    let worker = WorkerBuilder::new("backlog-test").backend(backend).data(runs.clone()).build(run_job);
    let watched = queue.clone();
    let drained = worker.run_with_ctx(move |ctx: WorkerContext| {
        let queue = watched.clone();
        async move {
            loop {
                let stats = queue.stats().await.unwrap();
                if stats.depth == 0 && stats.in_flight == 0 && stats.dead == 20 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            ctx.stop()
        }
    });
    tokio::time::timeout(Duration::from_secs(240), drained).await.expect("drained in time").unwrap();

    let runs = runs.snapshot();
    assert_eq!(runs.len(), 20_000, "every job ran");
    for (n, count) in runs {
        let expected = if n % 1_000 == 0 { 3 } else { 1 };
        assert_eq!(count, expected, "job {n} ran {count} times");
    }
    let dead = queue.dead_letters(100).await.unwrap();
    assert_eq!(dead.len(), 20);
    assert!(dead.iter().all(|d| d.error.contains("always fails")));
}

async fn slow_job(job: Job, runs: Data<Runs>) -> Result<(), BoxDynError> {
    tokio::time::sleep(Duration::from_millis(30)).await;
    runs.record(job.n);
    Ok(())
}

async fn a_graceful_stop_finishes_running_jobs_and_gives_back_the_rest(redis: Redis) {
    let config = QueueConfig { partitions: 3, fetch_batch: 20, ..QueueConfig::default() };
    let queue = redis.queue("drain", config).await;
    queue.enqueue_batch(&(0..300).map(|n| Job { n, fail: false }).collect::<Vec<_>>()).await.unwrap();
    let runs = Runs::default();

    // The first worker stops after about a third of the jobs ran.
    let backend = QueueBackend::<Job>::start(queue.clone(), "drain-1".into());
    let worker = WorkerBuilder::new("drain-1").backend(backend).data(runs.clone()).build(slow_job);
    let counted = runs.clone();
    worker
        .run_with_ctx(move |ctx: WorkerContext| {
            let runs = counted.clone();
            async move {
                while runs.snapshot().len() < 100 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                ctx.stop()
            }
        })
        .await
        .unwrap();
    let ran_before_stop = runs.snapshot().len();
    let stats = queue.stats().await.unwrap();
    assert_eq!(stats.in_flight, 0, "nothing left held by the stopped worker: {stats:?}");
    assert_eq!(stats.depth as usize, 300 - ran_before_stop, "every finished job acknowledged, the rest waiting");

    let backend = QueueBackend::<Job>::start(queue.clone(), "drain-2".into());
    let worker = WorkerBuilder::new("drain-2").backend(backend).data(runs.clone()).build(slow_job);
    let watched = queue.clone();
    worker
        .run_with_ctx(move |ctx: WorkerContext| {
            let queue = watched.clone();
            async move {
                while queue.stats().await.map(|s| s.depth + s.in_flight).unwrap_or(1) > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                ctx.stop()
            }
        })
        .await
        .unwrap();
    let runs = runs.snapshot();
    assert_eq!(runs.len(), 300);
    assert!(runs.values().all(|count| *count == 1), "a graceful stop runs no job twice");
}

async fn long_job(job: Job, runs: Data<Runs>) -> Result<(), BoxDynError> {
    runs.record(job.n);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    Ok(())
}

async fn a_job_running_longer_than_the_visibility_timeout_is_not_taken_from_its_own_worker(redis: Redis) {
    let config = QueueConfig { partitions: 2, visibility_timeout_ms: 500, max_attempts: 1, ..QueueConfig::default() };
    let queue = redis.queue("long", config).await;
    queue.enqueue_batch(&(0..3).map(|n| Job { n, fail: false }).collect::<Vec<_>>()).await.unwrap();
    let runs = Runs::default();
    let backend = QueueBackend::<Job>::start(queue.clone(), "long-1".into());
    let worker = WorkerBuilder::new("long-1").backend(backend).data(runs.clone()).build(long_job);
    let watched = queue.clone();
    worker
        .run_with_ctx(move |ctx: WorkerContext| {
            let queue = watched.clone();
            async move {
                loop {
                    let stats = queue.stats().await.unwrap();
                    if stats.depth + stats.in_flight == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                ctx.stop()
            }
        })
        .await
        .unwrap();
    assert_eq!(queue.stats().await.unwrap().dead, 0, "{:?}", queue.dead_letters(10).await.unwrap());
    assert!(runs.snapshot().values().all(|count| *count == 1), "{:?}", runs.snapshot());
    assert_eq!(runs.snapshot().len(), 3);
}

async fn a_lease_has_one_holder_and_a_growing_fencing_token(redis: Redis) {
    let conn = redis.connect().await;
    let ttl = Duration::from_millis(300);
    let first = Lease::new(conn.clone(), "{leader}", "replica-a", ttl);
    let second = Lease::new(conn.clone(), "{leader}", "replica-b", ttl);

    let Acquired::New { token: first_token } = first.acquire().await.unwrap() else { panic!("a free lease is taken") };
    assert_eq!(first.acquire().await.unwrap(), Acquired::AlreadyHeld);
    assert_eq!(second.acquire().await.unwrap(), Acquired::HeldByAnother);
    assert!(first.renew().await.unwrap());
    assert!(!second.renew().await.unwrap(), "only the holder renews");

    // The holder stops renewing (a dead process): the lease lapses and the next holder's token
    // is larger, so anything the old holder still writes can be told apart.
    let mut second_token = 0;
    wait_for("the unrenewed lease to lapse", async || match second.acquire().await.unwrap() {
        Acquired::New { token } => {
            second_token = token;
            true
        }
        _ => false,
    })
    .await;
    assert!(second_token > first_token);
    assert!(!first.renew().await.unwrap(), "a lapsed holder learns it lost the lease");
    assert!(second.release().await.unwrap());
    assert!(matches!(first.acquire().await.unwrap(), Acquired::New { .. }));
}

/// Whether every partition's readers sleep, waiting for a wake.
async fn asleep(queue: Queue) -> bool {
    let mut redis = queue.redis().clone();
    let mut all = queue.redis().doorbell().is_live();
    for partition in queue.partitions() {
        let key = format!("{}:sleeping", queue.tag(partition));
        all &= redis::cmd("EXISTS").arg(&key).query_async::<u32>(&mut redis).await.unwrap() == 1;
    }
    all
}

/// Postpones job 3 once, by a second.
async fn postponing_job(job: Job, runs: Data<Runs>) -> Result<(), BoxDynError> {
    runs.record(job.n);
    if job.n == 3 && runs.snapshot()[&3] == 1 {
        return Err(Box::new(apalis_redis_streams::Postpone { wait: Duration::from_secs(1), reason: "test".into() }));
    }
    Ok(())
}

/// With an hour as the longest idle sleep, a job can only run promptly if its enqueue woke the
/// worker (or, for a postponed job, if the worker slept until the job was due).
async fn an_idle_worker_sleeps_until_woken_by_new_work_or_a_due_retry(redis: Redis) {
    let hour = 3_600_000;
    let config = QueueConfig { partitions: 4, idle_wait_max_ms: hour, visibility_timeout_ms: hour, ..QueueConfig::default() };
    let queue = redis.queue("idle", config).await;
    let runs = Runs::default();
    let backend = QueueBackend::<Job>::start(queue.clone(), "idle-1".into());
    let worker = WorkerBuilder::new("idle-1").backend(backend).data(runs.clone()).build(postponing_job);
    let done = Arc::new(tokio::sync::Notify::new());
    let finished = done.clone();
    let running = tokio::spawn(worker.run_with_ctx(move |ctx: WorkerContext| {
        let finished = finished.clone();
        async move {
            finished.notified().await;
            ctx.stop()
        }
    }));

    wait_for("the worker to fall asleep", async || asleep(queue.clone()).await).await;
    queue.enqueue(&Job { n: 1, fail: false }, Some("one")).await.unwrap();
    queue.enqueue(&Job { n: 2, fail: false }, None).await.unwrap();
    wait_for("jobs 1 and 2 to run", async || runs.snapshot().len() == 2).await;

    wait_for("the worker to fall asleep again", async || asleep(queue.clone()).await).await;
    queue.enqueue(&Job { n: 3, fail: false }, Some("three")).await.unwrap();
    wait_for("job 3 to run again once due", async || runs.snapshot().get(&3) == Some(&2)).await;

    wait_for("the worker to fall asleep once more", async || asleep(queue.clone()).await).await;
    queue.enqueue_batch(&(10..20).map(|n| Job { n, fail: false }).collect::<Vec<_>>()).await.unwrap();
    wait_for("the batch to run", async || runs.snapshot().len() == 13).await;
    done.notify_one();
    running.await.unwrap().unwrap();
    assert!(runs.snapshot().iter().all(|(n, count)| *count == if *n == 3 { 2 } else { 1 }));
}
