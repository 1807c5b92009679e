//! Payment jobs end to end: recorded payments on the queue, drained by the real payment pool
//! (apalis worker + ack layer + ledger transaction + record update) on one local Redis and the
//! local MongoDB-wire server.

use std::time::{Duration, Instant};

use mongodb::options::ClientOptions;
use apalis_redis_streams::{Queue, QueueConfig};
use obentchi_core::queues::PAYMENTS_QUEUE;
use obentchi_core::config::{RedisConfig, RedisMode};
use obentchi_core::ids::{ProviderId, UserId};
use obentchi_core::ledger::Ledger;
use obentchi_core::money::{Currency, Money};
use obentchi_core::payments::{PaymentJob, Payments, TELEGRAM_STARS};
use obentchi_core::storage::{migrate, Store};
use obentchi_testkit::{MongoServer, RedisServer};
use obentchi_workers::pool::{self, PoolConfig};
use obentchi_workers::payment_handler;
use tokio_util::sync::CancellationToken;

use crate::measure::{build_profile, own_cpu, process_cpu};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 20_000)]
    jobs: u32,
    #[arg(long, default_value_t = 5_000)]
    users: u32,
    /// Fixed pool concurrency (min = max) for the run.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mongo = MongoServer::start();
    let redis_server = RedisServer::start();
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await?, "obentchi_bench")?;
    migrate(&store).await?;
    let payments = Payments::new(&store, Ledger::new(store.clone()));
    let redis_config = RedisConfig::from_urls(RedisMode::Single, [redis_server.url()]).expect("a redis URL");
    let queue = Queue::new(PAYMENTS_QUEUE, QueueConfig::default(), redis_config.connect().await?);
    queue.ensure_groups().await?;
    for n in 0..args.jobs {
        let job = PaymentJob {
            user_id: UserId::new(i64::from(n % args.users) + 1)?,
            provider: ProviderId::new(TELEGRAM_STARS)?,
            external_id: format!("charge-{n}"),
            amount: Money::from_minor(Currency::Xtr, 1),
        };
        payments.record(&job).await?;
        queue.enqueue(&job, Some(&job.job_key())).await?;
    }

    let (mongo_pid, redis_pid) = (mongo.pid().expect("mongo runs"), redis_server.pid().expect("redis runs"));
    let (cpu, mongo_cpu, redis_cpu, start) = (own_cpu(), process_cpu(mongo_pid), process_cpu(redis_pid), Instant::now());
    let stop = CancellationToken::new();
    let config = PoolConfig { min: args.concurrency, max: args.concurrency, evaluate_every_ms: 60_000, scale_down_after: 3 };
    let pool = tokio::spawn(pool::run("payments", queue.clone(), config, payment_handler(payments), stop.clone(), |_| {}));
    loop {
        let stats = queue.stats().await?;
        if stats.depth == 0 && stats.in_flight == 0 {
            break;
        }
        // Coarse on purpose: each poll is a script per partition, and polling every few
        // milliseconds would cost Redis more than the jobs do.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = start.elapsed();
    let (cpu, mongo_cpu, redis_cpu) = (own_cpu() - cpu, process_cpu(mongo_pid) - mongo_cpu, process_cpu(redis_pid) - redis_cpu);
    stop.cancel();
    pool.await??;

    let n = f64::from(args.jobs);
    let per_job = |d: Duration| d.as_micros() as f64 / n;
    println!("| jobs | jobs/s | worker CPU µs/job | MongoDB CPU µs/job | Redis CPU µs/job |");
    println!("|---|---|---|---|---|");
    println!("| {} | {:.0} | {:.0} | {:.0} | {:.1} |", args.jobs, n / wall.as_secs_f64(), per_job(cpu), per_job(mongo_cpu), per_job(redis_cpu));
    println!("\n{} users, pool concurrency {}, {}", args.users, args.concurrency, build_profile());
    Ok(())
}
