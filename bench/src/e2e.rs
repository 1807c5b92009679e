//! The path users feel: webhook → receiver → updates queue → consumer (handler, profile read) →
//! outbound queue → worker → Bot API, every part a separate release process.
//!
//! Layout: the receiver, the update consumer and the workers pinned together to core 0; this
//! process (load generator and fake Bot API), Redis and the MongoDB-wire server on core 1. Users
//! are registered first (a `/start` each, through the webhook). Then each kind of update
//! (`/help`: no database read; `/balance`: one) is sent at fixed offered rates (open loop: the
//! latency clock starts at the scheduled send time) and at saturation (closed loop, `--connections`
//! senders). A phase ends when every reply arrived. Latency runs from the webhook request to the
//! arrival of its `sendMessage` at the fake Bot API; a chat's replies arrive in order, so the
//! k-th reply to a chat answers its k-th update.
//!
//! The peer (`--peer-dir`): grammY in `reply` mode (../shared/peers/node/bot_grammy.mjs), one
//! Node process on core 0 answering `/start` by awaiting `sendMessage` to the same fake Bot API,
//! under the same phases.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use obentchi_testkit::FakeBotApi;
use obentchi_testkit::processes::Process;
use obentchi_testkit::updates::{self, TelegramUser};
use obentchi_testkit::{free_port, MongoServer};

use crate::measure::{build_profile, peak_rss_kib, process_cpu, wait_for_port, Redis};

#[derive(clap::Args)]
pub struct Args {
    /// Where obentchi-bot and obentchi-workers are (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Registered users the load is spread over.
    #[arg(long, default_value_t = 10_000)]
    users: u32,
    /// Length of each phase's sending.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Offered rates (updates/s), each a phase.
    #[arg(long, value_delimiter = ',', default_value = "500,2000")]
    rates: Vec<u32>,
    /// Concurrent senders in the saturation phase.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// The peers' `node` directory with its `npm install` done (runs the grammY peer).
    #[arg(long)]
    peer_dir: Option<PathBuf>,
    /// Run only the peer.
    #[arg(long)]
    peer_only: bool,
    /// Redis as a 6-node cluster (3 masters, 3 replicas), as production runs it.
    #[arg(long)]
    cluster: bool,
}

const SECRET: &str = "bench-webhook-secret-of-at-least-32-bytes";
const FIRST_USER: i64 = 200_000_000;

/// Pins this process (and so the servers it starts) to `core`.
fn pin_self(core: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A part measured for CPU and peak memory: one process, or the nodes of a Redis Cluster.
struct Measured {
    name: &'static str,
    pids: Vec<u32>,
    ours: bool,
}

impl Measured {
    fn one(name: &'static str, pid: u32, ours: bool) -> Measured {
        Measured { name, pids: vec![pid], ours }
    }

    fn cpu(&self) -> Duration {
        self.pids.iter().map(|pid| process_cpu(*pid)).sum()
    }

    fn peak_rss_mb(&self) -> f64 {
        self.pids.iter().map(|pid| peak_rss_kib(*pid)).sum::<u64>() as f64 / 1024.0
    }
}

/// One phase's results.
struct Phase {
    label: String,
    sent: u64,
    accepted: u64,
    answered: u64,
    send_seconds: f64,
    answer_seconds: f64,
    latencies_us: Vec<u64>,
    cpu_us: Vec<(&'static str, bool, f64)>,
    redis_commands: Option<(u64, u64)>,
}

impl Phase {
    fn row(&self) -> String {
        let mut lat = self.latencies_us.clone();
        lat.sort_unstable();
        let pct = |p: f64| lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0) as f64 / 1000.0;
        let n = self.answered.max(1) as f64;
        let ours: f64 = self.cpu_us.iter().filter(|(_, ours, _)| *ours).map(|(_, _, us)| us).sum();
        let parts = self.cpu_us.iter().map(|(name, _, us)| format!("{name} {:.0}", us / n)).collect::<Vec<_>>().join(", ");
        let commands = self
            .redis_commands
            .map_or(String::from("–"), |(all, scripts)| format!("{:.1} / {:.1}", all as f64 / n, scripts as f64 / n));
        format!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} |",
            self.label,
            self.sent as f64 / self.send_seconds,
            self.accepted as f64 / self.send_seconds,
            self.answered as f64 / self.answer_seconds,
            pct(0.5),
            pct(0.99),
            pct(1.0),
            ours / n,
            parts,
            commands,
        )
    }
}

/// Sends updates to a webhook and matches replies to them.
struct Load {
    client: reqwest::Client,
    url: String,
    next_update: std::sync::atomic::AtomicU32,
    users: u32,
}

/// (chat, when its update was sent or due), in sending order.
type Sent = Arc<Mutex<Vec<(i64, Instant)>>>;

impl Load {
    fn update(&self, user: i64, text: &str) -> String {
        let update_id = self.next_update.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let from = TelegramUser::new(user, "Bench", Some("en"));
        updates::message(update_id, update_id, &from, updates::text(text)).to_string()
    }

    async fn post(&self, body: String) -> bool {
        let sent = self
            .client
            .post(&self.url)
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        sent.is_ok_and(|r| r.status().is_success())
    }

    fn user(&self, n: u64) -> i64 {
        // A multiplicative step spreads consecutive sends over the users.
        FIRST_USER + ((n.wrapping_mul(7_919)) % u64::from(self.users)) as i64
    }

    /// Open loop at `rate` for `seconds`: returns (sent, accepted, what was sent).
    async fn at_rate(self: &Arc<Self>, text: &'static str, rate: u32, seconds: u64) -> (u64, u64, Sent) {
        let sent: Sent = Arc::default();
        let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let total = u64::from(rate) * seconds;
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..total {
            let due = start + Duration::from_secs_f64(n as f64 / f64::from(rate));
            tokio::time::sleep_until(due.into()).await;
            let user = self.user(n);
            let body = self.update(user, text);
            sent.lock().unwrap().push((user, due));
            let (load, accepted) = (self.clone(), accepted.clone());
            tasks.spawn(async move {
                if load.post(body).await {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        tasks.join_all().await;
        (total, accepted.load(std::sync::atomic::Ordering::Relaxed), sent)
    }

    /// Closed loop: `connections` senders, each waiting for its answer, for `seconds`.
    async fn saturate(self: &Arc<Self>, text: &'static str, connections: u32, seconds: u64) -> (u64, u64, Sent) {
        let sent: Sent = Arc::default();
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..connections {
            let (load, sent, counter, accepted) = (self.clone(), sent.clone(), counter.clone(), accepted.clone());
            tasks.spawn(async move {
                while Instant::now() < end {
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let user = load.user(n);
                    let body = load.update(user, text);
                    sent.lock().unwrap().push((user, Instant::now()));
                    if load.post(body).await {
                        accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
        tasks.join_all().await;
        let total = counter.load(std::sync::atomic::Ordering::Relaxed);
        (total, accepted.load(std::sync::atomic::Ordering::Relaxed), sent)
    }
}

/// Waits until `expected` more sendMessage calls than `before` arrived (or 120 s of no
/// progress); returns each reply's latency, matched per chat in order, and when the last came.
async fn collect_replies(api: &FakeBotApi, before: usize, sent: &Sent, expected: usize) -> (Vec<u64>, Instant) {
    let mut seen = 0;
    let mut progress_at = Instant::now();
    loop {
        let count = api.count_after(before, "sendMessage");
        if count >= expected || progress_at.elapsed() > Duration::from_secs(120) {
            break;
        }
        if count > seen {
            seen = count;
            progress_at = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = api.calls_after(before);
    let mut due: HashMap<i64, VecDeque<Instant>> = HashMap::new();
    for (chat, at) in sent.lock().unwrap().iter() {
        due.entry(*chat).or_default().push_back(*at);
    }
    let mut latencies = Vec::with_capacity(calls.len());
    let mut last = Instant::now();
    for call in calls.iter().filter(|c| c.method.eq_ignore_ascii_case("sendmessage")) {
        let chat = call.body["chat_id"].as_i64().unwrap_or_default();
        if let Some(sent_at) = due.get_mut(&chat).and_then(VecDeque::pop_front) {
            latencies.push(call.at.saturating_duration_since(sent_at).as_micros() as u64);
        }
        last = call.at;
    }
    (latencies, last)
}

/// Redis's total and script command counts so far, over every node.
fn redis_commands(redis: &Redis) -> (u64, u64) {
    let stats: String = redis.nodes().iter().map(|node| node.cli(&["INFO", "commandstats"])).collect::<Vec<_>>().join("\n");
    let (mut all, mut scripts) = (0, 0);
    for line in stats.lines() {
        let Some((name, rest)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else { continue };
        let calls: u64 = rest.split(',').find_map(|f| f.strip_prefix("calls=")).and_then(|n| n.parse().ok()).unwrap_or(0);
        // The cluster's own chatter and this benchmark's reads are not the platform's.
        if ["info", "cluster", "ping", "replconf", "psync", "command"].contains(&name) || name.starts_with("cluster|") || name.starts_with("command|") {
            continue;
        }
        all += calls;
        if name.starts_with("eval") || name.starts_with("fcall") {
            scripts += calls;
        }
    }
    (all, scripts)
}

/// Runs one phase: sends, waits for every reply, measures.
async fn phase(
    label: String,
    load: &Arc<Load>,
    api: &FakeBotApi,
    processes: &[Measured],
    redis: Option<&Redis>,
    send: impl AsyncFnOnce(&Arc<Load>) -> (u64, u64, Sent),
) -> Phase {
    let cpu_before: Vec<Duration> = processes.iter().map(Measured::cpu).collect();
    let commands_before = redis.map(redis_commands);
    let calls_before = api.call_count();
    let started = Instant::now();
    let (sent, accepted, sent_log) = send(load).await;
    let send_seconds = started.elapsed().as_secs_f64();
    let (latencies_us, last) = collect_replies(api, calls_before, &sent_log, accepted as usize).await;
    let cpu_us = processes
        .iter()
        .zip(cpu_before)
        .map(|(p, before)| (p.name, p.ours, (p.cpu() - before).as_micros() as f64))
        .collect();
    let redis_commands = redis.zip(commands_before).map(|(r, (a0, s0))| {
        let (a1, s1) = redis_commands(r);
        (a1 - a0, s1 - s0)
    });
    Phase {
        label,
        sent,
        accepted,
        answered: latencies_us.len() as u64,
        send_seconds,
        answer_seconds: last.saturating_duration_since(started).as_secs_f64().max(send_seconds),
        latencies_us,
        cpu_us,
        redis_commands,
    }
}

fn spawn_pinned(binary: &Path, args: &[&str], config: &Path, port: u16, log: &Path) -> anyhow::Result<Process> {
    let log = std::fs::File::create(log)?;
    Ok(Process(
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(binary)
            .arg("--config")
            .arg(config)
            .args(args)
            .env("OBENTCHI_LISTEN__ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?,
    ))
}

async fn wait_ready(client: &reqwest::Client, port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the process on port {port} did not become ready")
}

/// The phases every stack runs: each kind at each rate, then at saturation.
async fn run_phases(
    stack: &str,
    kinds: &[(&'static str, &'static str)],
    args: &Args,
    load: &Arc<Load>,
    api: &FakeBotApi,
    processes: &[Measured],
    redis: Option<&Redis>,
) -> Vec<Phase> {
    let mut phases = Vec::new();
    for (kind, text) in kinds {
        for &rate in &args.rates {
            let label = format!("{stack} {kind} @ {rate}/s");
            let p = phase(label, load, api, processes, redis, async |l: &Arc<Load>| l.at_rate(text, rate, args.seconds).await).await;
            eprintln!("{}", p.row());
            phases.push(p);
        }
        let label = format!("{stack} {kind} saturated ({} senders)", args.connections);
        let p = phase(label, load, api, processes, redis, async |l: &Arc<Load>| l.saturate(text, args.connections, args.seconds).await).await;
        eprintln!("{}", p.row());
        phases.push(p);
    }
    phases
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?.parent().expect("a binary lives in a directory").to_owned(),
    };
    pin_self(1);
    let api = FakeBotApi::start().await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let mut phases = Vec::new();
    let mut footnotes = Vec::new();

    if !args.peer_only {
        let redis = Redis::start(args.cluster);
        let mongo = MongoServer::start();
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("platform.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[telemetry]
log_filter = "warn"
[mongodb]
uri = "{}"
{}
[telegram]
bot_token = "7000000001:bench-token"
api_url = "{}"
[webhook]
secret = "{SECRET}"
[payout]
base_url = "http://127.0.0.1:9"
api_token = "unused"
# Raised for the benchmark: Telegram's ~30 messages/s per bot would be all it measured.
[flood]
per_bot_per_second = 1000000
bot_burst = 1000000
per_chat_per_second = 1000
"#,
                mongo.uri(),
                redis.settings(),
                api.url()
            ),
        )?;
        let (receiver_port, consumer_port, workers_port) = (free_port(false), free_port(false), free_port(false));
        let bot = bin_dir.join("obentchi-bot");
        let migrate = Command::new(bin_dir.join("obentchi-http")).arg("--config").arg(&config).arg("migrate").output()?;
        anyhow::ensure!(migrate.status.success(), "migrate failed: {}", String::from_utf8_lossy(&migrate.stderr));
        let services = [
            spawn_pinned(&bot, &["serve"], &config, receiver_port, &dir.path().join("receiver.log"))?,
            spawn_pinned(&bot, &["consume"], &config, consumer_port, &dir.path().join("consumer.log"))?,
            spawn_pinned(&bin_dir.join("obentchi-workers"), &[], &config, workers_port, &dir.path().join("workers.log"))?,
        ];
        for port in [receiver_port, consumer_port, workers_port] {
            wait_ready(&client, port).await?;
        }
        let pid = |i: usize| services[i].0.id();
        let processes = [
            Measured::one("receiver", pid(0), true),
            Measured::one("consumer", pid(1), true),
            Measured::one("workers", pid(2), true),
            Measured { name: "Redis", pids: redis.nodes().iter().map(|n| n.pid().expect("redis runs")).collect(), ours: true },
            Measured::one("MongoDB", mongo.pid().expect("mongo runs"), false),
        ];
        let load = Arc::new(Load {
            client: client.clone(),
            url: format!("http://127.0.0.1:{receiver_port}/telegram/webhook"),
            next_update: 1.into(),
            users: args.users,
        });
        // Registration: a /start from every user, through the webhook.
        let registration =
            phase("registration /start".into(), &load, &api, &processes, Some(&redis), async |l: &Arc<Load>| {
                let sent: Sent = Arc::default();
                let mut tasks = tokio::task::JoinSet::new();
                let users: Vec<i64> = (0..i64::from(args.users)).map(|i| FIRST_USER + i).collect();
                for chunk in users.chunks(users.len().div_ceil(args.connections as usize).max(1)) {
                    let (l, sent, chunk) = (l.clone(), sent.clone(), chunk.to_vec());
                    tasks.spawn(async move {
                        let mut accepted = 0;
                        for user in chunk {
                            sent.lock().unwrap().push((user, Instant::now()));
                            accepted += u64::from(l.post(l.update(user, "/start")).await);
                        }
                        accepted
                    });
                }
                let accepted: u64 = tasks.join_all().await.into_iter().sum();
                (u64::from(args.users), accepted, sent)
            })
            .await;
        anyhow::ensure!(registration.answered == u64::from(args.users), "only {} of {} users were answered", registration.answered, args.users);
        let idle = idle_cost(&processes).await;
        phases.extend(run_phases("ours", &[("/help", "/help"), ("/balance", "/balance")], &args, &load, &api, &processes, Some(&redis)).await);
        footnotes.push(format!(
            "Idle, all services up, no traffic (10 s): {}",
            idle.iter().map(|(name, share)| format!("{name} {:.2} % of a core", share * 100.0)).collect::<Vec<_>>().join(", ")
        ));
        footnotes.push(format!(
            "Peak RSS: {}",
            processes.iter().map(|p| format!("{} {:.1} MB", p.name, p.peak_rss_mb())).collect::<Vec<_>>().join(", ")
        ));
        drop(services);
    }

    if let Some(peer_dir) = &args.peer_dir {
        let port = free_port(false);
        let api_root = api.url().trim_end_matches('/').to_owned();
        let log = std::fs::File::create(std::env::temp_dir().join("obentchi-bench-grammy.log"))?;
        let peer = Process(
            Command::new("taskset")
                .args(["-c", "0", "node", "bot_grammy.mjs", "--mode", "reply", "--port", &port.to_string()])
                .args(["--api-root", &api_root, "--secret", SECRET, "--path", "/webhook"])
                .current_dir(peer_dir)
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()?,
        );
        wait_for_port(port).await;
        let processes = [Measured::one("grammY", peer.0.id(), true)];
        let load = Arc::new(Load { client: client.clone(), url: format!("http://127.0.0.1:{port}/webhook"), next_update: 1.into(), users: args.users });
        // grammY's peer answers /start only: its reply is a fixed text, as our /help is.
        phases.extend(run_phases("grammY reply", &[("/start", "/start")], &args, &load, &api, &processes, None).await);
        footnotes.push(format!("Peak RSS: grammY {:.1} MB", processes[0].peak_rss_mb()));
    }

    println!("| phase | offered/s | accepted/s | answered/s | p50 ms | p99 ms | max ms | our CPU µs/answer | CPU µs/answer per process | Redis commands / scripts per answer |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for phase in &phases {
        println!("{}", phase.row());
    }
    println!();
    for note in footnotes {
        println!("{note}");
    }
    println!(
        "\nFlood limits raised for the benchmark (1,000,000 messages/s per bot, 1,000 per chat). {}. {} users; {} s per phase; \
         services pinned to core 0; generator, fake Bot API, Redis and MongoDB on core 1; {}.",
        if args.cluster { "A 6-node Redis Cluster (3 masters, 3 replicas; CPU of all nodes counted)" } else { "One Redis server" },
        args.users,
        args.seconds,
        build_profile()
    );
    Ok(())
}

/// Each process's share of a core over 10 s without traffic.
async fn idle_cost(processes: &[Measured]) -> Vec<(&'static str, f64)> {
    // Let the last phase's work settle first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before: Vec<Duration> = processes.iter().map(Measured::cpu).collect();
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    processes
        .iter()
        .zip(before)
        .map(|(p, before)| (p.name, (p.cpu() - before).as_secs_f64() / window.as_secs_f64()))
        .collect()
}
