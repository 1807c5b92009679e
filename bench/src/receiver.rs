//! The webhook receiver under `wrk`: the `obentchi-bot` release binary pinned to core 0, `wrk`
//! on core 1 with 64 connections, each request a new update (secret check, dedupe, durable
//! enqueue). Reports updates/s, latency percentiles from wrk, receiver and Redis CPU µs per
//! update, and the receiver's peak RSS.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use obentchi_testkit::{free_port, MongoServer};

use crate::measure::{build_profile, peak_rss_kib, process_cpu, wait_for_port, wrk, Redis, WrkReport};
use obentchi_testkit::processes::Process;

#[derive(clap::Args)]
pub struct Args {
    /// The obentchi-bot binary to measure (a release build).
    #[arg(long)]
    bot: PathBuf,
    #[arg(long, default_value_t = 64)]
    connections: u32,
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    /// Redis as a 6-node cluster (3 masters, 3 replicas), as production runs it.
    #[arg(long)]
    cluster: bool,
}

const SECRET: &str = "bench-webhook-secret-of-at-least-32-bytes";

pub async fn run(args: Args) -> anyhow::Result<()> {
    let redis = Redis::start(args.cluster);
    let mongo = MongoServer::start();
    let port = free_port(false);
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("bot.toml");
    std::fs::write(
        &config,
        format!(
            "listen = {{ addr = \"127.0.0.1:{port}\" }}\n[telemetry]\nlog_filter = \"warn\"\n[mongodb]\nuri = \"{}\"\n{}[telegram]\nbot_token = \"7000000001:bench\"\n[webhook]\nsecret = \"{SECRET}\"\n",
            mongo.uri(),
            redis.settings()
        ),
    )?;
    let bot = Process(
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(&args.bot)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .spawn()?,
    );
    let bot_pid = bot.0.id();
    wait_for_port(port).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/wrk/updates.lua");
    let url = format!("http://127.0.0.1:{port}/telegram/webhook");
    let (bot_cpu, redis_cpu) = (process_cpu(bot_pid), redis.cpu());
    let WrkReport { requests, p50, p99 } = wrk(&url, args.connections, args.seconds, &["-s", script], &[("WEBHOOK_SECRET", SECRET)])?;
    let (bot_cpu, redis_cpu) = (process_cpu(bot_pid) - bot_cpu, redis.cpu() - redis_cpu);
    let n = requests as f64;
    println!("| updates | updates/s | p50 | p99 | receiver CPU µs/update | Redis CPU µs/update | receiver peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {requests} | {:.0} | {} | {} | {:.1} | {:.1} | {:.1} MB |",
        n / f64::from(args.seconds),
        p50,
        p99,
        bot_cpu.as_micros() as f64 / n,
        redis_cpu.as_micros() as f64 / n,
        peak_rss_kib(bot_pid) as f64 / 1024.0
    );
    println!(
        "\nwrk -t1 -c{} -d{}s on core 1, receiver pinned to core 0, {} (all nodes counted), {}; receiver {}",
        args.connections,
        args.seconds,
        redis.describe(),
        build_profile(),
        args.bot.display()
    );
    drop(bot);
    Ok(())
}
