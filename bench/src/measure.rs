//! Measuring a phase (from the testkit, shared with the queue crate's benchmark), plus what the
//! HTTP benchmarks need: waiting for a port and driving wrk.

use std::time::Duration;

pub use obentchi_testkit::measure::{build_profile, measure, own_cpu, peak_rss_kib, process_cpu, Measured};
use obentchi_testkit::{RedisCluster, RedisServer};

/// Redis as a benchmark runs it: one server, or a 6-node cluster (3 masters, 3 replicas).
pub enum Redis {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl Redis {
    pub fn nodes(&self) -> Vec<&RedisServer> {
        match self {
            Redis::Single(server) => vec![server],
            Redis::Cluster(cluster) => cluster.nodes().iter().collect(),
        }
    }

    /// The `[redis]` section of the services' configuration.
    pub fn settings(&self) -> String {
        match self {
            Redis::Single(server) => format!("[redis]\nurls = [\"{}\"]\n", server.url()),
            Redis::Cluster(cluster) => {
                let urls = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", ");
                format!("[redis]\nmode = \"cluster\"\nurls = [{urls}]\n")
            }
        }
    }
}

impl Redis {
    pub fn start(cluster: bool) -> Redis {
        if cluster { Redis::Cluster(RedisCluster::start()) } else { Redis::Single(RedisServer::start()) }
    }

    /// CPU used so far by every node.
    pub fn cpu(&self) -> std::time::Duration {
        self.nodes().iter().map(|node| process_cpu(node.pid().expect("redis runs"))).sum()
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Redis::Single(_) => "one Redis server",
            Redis::Cluster(_) => "a 6-node Redis Cluster (3 masters, 3 replicas)",
        }
    }
}

/// Waits until something listens on `port` of loopback.
pub async fn wait_for_port(port: u16) {
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What wrk reported.
pub struct WrkReport {
    pub requests: u64,
    pub p50: String,
    pub p99: String,
}

/// Runs `wrk -t1 -c<connections> -d<seconds>s --latency <args> <url>` pinned to core 1; every
/// answer must be 2xx.
pub fn wrk(url: &str, connections: u32, seconds: u32, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<WrkReport> {
    let output = std::process::Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency"])
        .args(args)
        .arg(url)
        .envs(envs.iter().copied())
        .output()?;
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
    Ok(WrkReport { requests, p50: latency("50%"), p99: latency("99%") })
}

