//! The webhook receiver under `wrk`: the `obentchi-bot` release binary pinned to core 0, `wrk`
//! on core 1 with 64 connections, each request a new update (secret check, dedupe, durable
//! enqueue). Reports updates/s, latency percentiles from wrk, receiver and Redis CPU µs per
//! update, and the receiver's peak RSS.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use obentchi_testkit::{free_port, MongoServer, RedisServer};

use crate::measure::{build_profile, process_cpu};

#[derive(clap::Args)]
pub struct Args {
    /// The obentchi-bot binary to measure (a release build).
    #[arg(long)]
    bot: PathBuf,
    #[arg(long, default_value_t = 64)]
    connections: u32,
    #[arg(long, default_value_t = 20)]
    seconds: u32,
}

const SECRET: &str = "bench-secret";

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let redis = RedisServer::start();
    let mongo = MongoServer::start();
    let port = free_port(false);
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("bot.toml");
    std::fs::write(
        &config,
        format!(
            "listen = {{ addr = \"127.0.0.1:{port}\" }}\n[telemetry]\nlog_filter = \"warn\"\n[mongodb]\nuri = \"{}\"\n[redis]\nurls = [\"{}\"]\n[telegram]\nbot_token = \"7000000001:bench\"\n[webhook]\nsecret = \"{SECRET}\"\n",
            mongo.uri(),
            redis.url()
        ),
    )?;
    let bot = Killed(
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(&args.bot)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .spawn()?,
    );
    let bot_pid = bot.0.id();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/wrk/updates.lua");
    let url = format!("http://127.0.0.1:{port}/telegram/webhook");
    let redis_pid = redis.pid().expect("redis runs");
    let (bot_cpu, redis_cpu) = (process_cpu(bot_pid), process_cpu(redis_pid));
    let output = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1", &format!("-c{}", args.connections), &format!("-d{}s", args.seconds)])
        .args(["--latency", "-s", script, &url])
        .env("WEBHOOK_SECRET", SECRET)
        .output()?;
    let (bot_cpu, redis_cpu) = (process_cpu(bot_pid) - bot_cpu, process_cpu(redis_pid) - redis_cpu);
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    let requests: u64 = report
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no request count in wrk's report:\n{report}"))?;
    anyhow::ensure!(!report.contains("Non-2xx"), "some requests failed:\n{report}");
    let latency = |p: &str| {
        report.lines().find(|l| l.trim_start().starts_with(p)).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("?").to_owned()
    };
    let n = requests as f64;
    println!("| updates | updates/s | p50 | p99 | receiver CPU µs/update | Redis CPU µs/update | receiver peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {requests} | {:.0} | {} | {} | {:.1} | {:.1} | {:.1} MB |",
        n / f64::from(args.seconds),
        latency("50%"),
        latency("99%"),
        bot_cpu.as_micros() as f64 / n,
        redis_cpu.as_micros() as f64 / n,
        peak_rss_kib(bot_pid) as f64 / 1024.0
    );
    println!(
        "\nwrk -t1 -c{} -d{}s on core 1, receiver pinned to core 0, {}; receiver {}",
        args.connections,
        args.seconds,
        build_profile(),
        args.bot.display()
    );
    drop(bot);
    Ok(())
}
