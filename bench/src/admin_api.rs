//! The admin API under `wrk`: the `obentchi-http` release binary pinned to core 0, `wrk` on
//! core 1 with 64 connections, against `/healthz` (no dependencies) and `GET /admin/queues`
//! (token check, then stats of the six queues from Redis: 6 queues × 8–32 partitions Lua calls,
//! plus the pool registry). Rate limits are raised out of the way: this measures the work.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use mongodb::options::ClientOptions;
use obentchi_core::api_tokens::{ApiTokens, Scope};
use obentchi_core::storage::{migrate, Store};
use obentchi_testkit::{free_port, MongoServer, RedisServer};

use crate::measure::{build_profile, peak_rss_kib, process_cpu, wait_for_port, wrk, WrkReport};
use obentchi_testkit::processes::Process;

#[derive(clap::Args)]
pub struct Args {
    /// The obentchi-http binary to measure (a release build).
    #[arg(long)]
    http: PathBuf,
    #[arg(long, default_value_t = 64)]
    connections: u32,
    #[arg(long, default_value_t = 15)]
    seconds: u32,
}

const UNLIMITED: &str = "{ per_ip = { per_minute = 100000000, burst = 1000000 }, per_token = { per_minute = 100000000, burst = 1000000 } }";

pub async fn run(args: Args) -> anyhow::Result<()> {
    let redis = RedisServer::start();
    let mongo = MongoServer::start();
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await?, "obentchi")?;
    migrate(&store).await?;
    let (_, token) = ApiTokens::new(&store).create("bench", &[Scope::Read]).await?;
    let port = free_port(false);
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("http.toml");
    std::fs::write(
        &config,
        format!(
            "listen = {{ addr = \"127.0.0.1:{port}\" }}\n[telemetry]\nlog_filter = \"warn\"\n[mongodb]\nuri = \"{}\"\n[redis]\nurls = [\"{}\"]\n\
             [rate_limits]\nread = {UNLIMITED}\nwrite = {UNLIMITED}\nmoney = {UNLIMITED}\ncallback = {UNLIMITED}\n",
            mongo.uri(),
            redis.url()
        ),
    )?;
    let http = Process(Command::new("taskset").args(["-c", "0"]).arg(&args.http).arg("--config").arg(&config).stdout(Stdio::null()).spawn()?);
    let (http_pid, redis_pid) = (http.0.id(), redis.pid().expect("redis runs"));
    wait_for_port(port).await;

    println!("| endpoint | requests | requests/s | p50 | p99 | API CPU µs/request | Redis CPU µs/request |");
    println!("|---|---|---|---|---|---|---|");
    let authorization = format!("Authorization: Bearer {token}");
    for (path, headers) in [("/healthz", vec![]), ("/admin/queues", vec!["-H", authorization.as_str()])] {
        let url = format!("http://127.0.0.1:{port}{path}");
        let (api_cpu, redis_cpu) = (process_cpu(http_pid), process_cpu(redis_pid));
        let WrkReport { requests, p50, p99 } = wrk(&url, args.connections, args.seconds, &headers, &[])?;
        let (api_cpu, redis_cpu) = (process_cpu(http_pid) - api_cpu, process_cpu(redis_pid) - redis_cpu);
        let n = requests as f64;
        println!(
            "| GET {path} | {requests} | {:.0} | {p50} | {p99} | {:.1} | {:.1} |",
            n / f64::from(args.seconds),
            api_cpu.as_micros() as f64 / n,
            redis_cpu.as_micros() as f64 / n
        );
    }
    println!(
        "\nwrk -t1 -c{} -d{}s on core 1, API pinned to core 0, {}; peak RSS {:.1} MB; {}",
        args.connections,
        args.seconds,
        build_profile(),
        peak_rss_kib(http_pid) as f64 / 1024.0,
        args.http.display()
    );
    drop(http);
    Ok(())
}
