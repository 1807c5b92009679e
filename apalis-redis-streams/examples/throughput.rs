//! What the queue costs: enqueue and drain of no-op jobs on one local `redis-server` (started
//! here on a free loopback port) through the full backend (apalis worker, fetch script with
//! delayed-set promotion, batched acks). Prints jobs/s, client CPU µs/job and Redis CPU µs/job
//! as a Markdown table.
//!
//!     cargo run --release -p apalis-redis-streams --example throughput -- --help

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apalis_core::error::BoxDynError;
use apalis_core::task::data::Data;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_core::worker::context::WorkerContext;
use apalis_redis_streams::{ConnectOptions, Queue, QueueBackend, QueueConfig, RedisConn, RedisMode};
use clap::Parser;
use obentchi_testkit::measure::{build_profile, measure};
use obentchi_testkit::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(about = "Queue throughput and CPU per job on one local Redis")]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    jobs: u64,
    #[arg(long, default_value_t = 8)]
    partitions: u16,
    /// Also enqueue this many jobs one by one with idempotency keys (the Lua path).
    #[arg(long, default_value_t = 20_000)]
    keyed: u64,
}

#[derive(Serialize, Deserialize)]
struct Noop {
    n: u64,
}

async fn noop(_job: Noop, done: Data<Arc<AtomicU64>>) -> Result<(), BoxDynError> {
    done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let server = RedisServer::start();
    let pid = server.pid().expect("redis runs");
    let redis = RedisConn::connect(&ConnectOptions::new(RedisMode::Single, [server.url()])).await?;
    let queue = Queue::new("bench", QueueConfig { partitions: args.partitions, ..QueueConfig::default() }, redis);
    queue.ensure_groups().await?;

    let jobs: Vec<Noop> = (0..args.jobs).map(|n| Noop { n }).collect();
    let enqueue = measure("enqueue (batched, pipelined)", args.jobs, pid, async {
        for chunk in jobs.chunks(1_000) {
            queue.enqueue_batch(chunk).await.expect("enqueue");
        }
    })
    .await;

    let done = Arc::new(AtomicU64::new(0));
    let drain = measure("drain (fetch + run + ack)", args.jobs, pid, async {
        let backend = QueueBackend::<Noop>::start(queue.clone(), format!("bench-{}", std::process::id()));
        let worker = WorkerBuilder::new("bench").backend(backend).data(done.clone()).build(noop);
        let watched = queue.clone();
        let target = args.jobs;
        let counter = done.clone();
        worker
            .run_with_ctx(move |ctx: WorkerContext| {
                let queue = watched.clone();
                let counter = counter.clone();
                async move {
                    while counter.load(Ordering::Relaxed) < target {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    // Wait for the batched acks to land before stopping the clock.
                    while queue.stats().await.map(|s| s.in_flight + s.depth).unwrap_or(1) > 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    ctx.stop()
                }
            })
            .await
            .expect("worker runs");
    })
    .await;

    let keyed = measure("enqueue (one by one, idempotency key)", args.keyed, pid, async {
        for n in 0..args.keyed {
            queue.enqueue(&Noop { n }, Some(&format!("key-{n}"))).await.expect("enqueue");
        }
    })
    .await;

    println!("| phase | jobs | jobs/s | client CPU µs/job | Redis CPU µs/job |");
    println!("|---|---|---|---|---|");
    for phase in [&enqueue, &drain, &keyed] {
        println!("{}", phase.row(2));
    }
    let lifecycle = (enqueue.server + drain.server).as_micros() as f64 / args.jobs as f64;
    println!("\nRedis CPU per job lifecycle (batched enqueue + fetch + ack): {lifecycle:.2} µs");
    println!(
        "{} partitions, fetch batch {}, one redis-server 7 on loopback, {}",
        args.partitions,
        queue.config().fetch_batch,
        build_profile()
    );
    Ok(())
}
