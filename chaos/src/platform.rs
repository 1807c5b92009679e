//! The platform under test, as it runs in production: every service a separate process of its
//! release (or test) binary, a 6-node Redis Cluster, the MongoDB-wire server, and the fakes of
//! what we cannot reach (the Bot API, the payout provider). Each service can be killed with
//! SIGKILL and started again on its port.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::options::ClientOptions;
use obentchi_core::storage::{migrate, Store};
use obentchi_testkit::{free_port, FakeBotApi, FakePayoutProvider, MongoServer, PayoutFaults, PayoutMode, RedisCluster};

pub const WEBHOOK_SECRET: &str = "chaos-webhook-secret-of-at-least-32-bytes";
pub const GATEWAY: &str = "chaosgw";
pub const GATEWAY_SECRET: &str = "chaos-gateway-secret-of-at-least-32-bytes";
pub const BOT_TOKEN: &str = "7000000001:chaos-token";
/// Withdrawal policy (XTR): what the traffic and the checker both assume.
pub const WITHDRAWAL_FEE: i64 = 1;
pub const AUTO_APPROVE_UP_TO: i64 = 100;
pub const PLAN_PRICE: i64 = 100;
pub const PLAN_DAYS: i64 = 30;
pub const COMMISSION_BPS: i64 = 1_000;

/// The kinds of service process, as deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Receiver,
    Consumer,
    Workers,
    Scheduler,
    Api,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Receiver, Kind::Consumer, Kind::Workers, Kind::Scheduler, Kind::Api];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Receiver => "receiver",
            Kind::Consumer => "consumer",
            Kind::Workers => "workers",
            Kind::Scheduler => "scheduler",
            Kind::Api => "api",
        }
    }

    fn command(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Kind::Receiver => ("obentchi-bot", &["serve"]),
            Kind::Consumer => ("obentchi-bot", &["consume"]),
            Kind::Workers => ("obentchi-workers", &[]),
            Kind::Scheduler => ("obentchi-scheduler", &[]),
            Kind::Api => ("obentchi-http", &[]),
        }
    }
}

pub struct Service {
    pub kind: Kind,
    pub index: usize,
    pub port: u16,
    child: Option<Child>,
    starts: u32,
}

pub struct Platform {
    pub cluster: RedisCluster,
    pub mongo: MongoServer,
    pub bot_api: Arc<FakeBotApi>,
    pub provider: Arc<FakePayoutProvider>,
    pub store: Store,
    pub services: Vec<Service>,
    bin_dir: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    /// `OBENTCHI_BREAK` for the deliberately broken build (the checker's own test).
    broken: Option<String>,
}

/// The replicas of each kind: two of everything, one API.
fn replicas(kind: Kind) -> usize {
    if kind == Kind::Api {
        1
    } else {
        2
    }
}

impl Platform {
    /// Starts everything, waits until every service answers `/healthz`.
    pub async fn start(servers: &ServerThread, bin_dir: &Path, dir: &Path, faults: PayoutFaults, broken: Option<String>) -> anyhow::Result<Platform> {
        let (cluster, mongo) = servers.run(|| (RedisCluster::start(), MongoServer::start())).await?;
        let bot_api = Arc::new(FakeBotApi::start().await);
        let provider = Arc::new(FakePayoutProvider::start(PayoutMode::Succeed).await);
        provider.set_faults(faults);
        let store = Store::with_options(ClientOptions::parse(mongo.uri()).await?, "obentchi")?;
        migrate(&store).await?;
        let config = dir.join("platform.toml");
        let mut platform = Platform {
            cluster,
            mongo,
            bot_api,
            provider,
            store,
            services: Vec::new(),
            bin_dir: bin_dir.to_owned(),
            config,
            dir: dir.to_owned(),
            broken,
        };
        platform.write_config()?;
        for kind in Kind::ALL {
            for index in 0..replicas(kind) {
                platform.services.push(Service { kind, index, port: free_port(false), child: None, starts: 0 });
            }
        }
        for i in 0..platform.services.len() {
            platform.launch(i)?;
        }
        let client = reqwest::Client::new();
        for i in 0..platform.services.len() {
            platform.wait_healthy(&client, i).await?;
        }
        Ok(platform)
    }

    /// One configuration for every service, as a Kubernetes ConfigMap would give them. Short
    /// timeouts and frequent reconcilers, so a run converges in minutes.
    fn write_config(&self) -> anyhow::Result<()> {
        let urls: Vec<String> = self.cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
        let every_5s = "\"*/5 * * * * *\"";
        let settings = format!(
            r#"
partition_lease_ms = 3000
withdrawal_lease_ms = 2500
[telemetry]
log_format = "json"
log_filter = "info"
[mongodb]
uri = "{mongo}"
server_selection_timeout_ms = 2000
[redis]
mode = "cluster"
urls = [{urls}]
response_timeout_ms = 2000
[telegram]
bot_token = "{BOT_TOKEN}"
api_url = "{bot_api}"
[webhook]
secret = "{WEBHOOK_SECRET}"
replicate_all_updates = true
payment_replicas_timeout_ms = 500
[payout]
base_url = "{provider}"
api_token = "chaos"
timeout_ms = 800
[payment_gateways.{GATEWAY}]
secret = "{GATEWAY_SECRET}"
[subscriptions]
referral_commission_bps = {COMMISSION_BPS}
plans = [{{ id = "month", price = "{PLAN_PRICE} XTR", days = {PLAN_DAYS} }}]
[withdrawals]
min = "5 XTR"
max = "1000 XTR"
daily_limit = "1000000 XTR"
fee = "{WITHDRAWAL_FEE} XTR"
auto_approve_up_to = "{AUTO_APPROVE_UP_TO} XTR"
address_format = "ton"
[scheduled_jobs]
stuck_after_ms = 2000
stars_grace_ms = 10000
# The fake Bot API has no rate limit of its own (its 429s are a fault we inject), and a run
# sends hundreds of replies a second.
[flood]
per_bot_per_second = 100000
per_chat_per_second = 1000
bot_burst = 100000
[schedules]
reconcile_withdrawals = {every_5s}
reconcile_payments = {every_5s}
reconcile_stars = {every_5s}
[rate_limits]
read = {{ per_ip = {{ per_minute = 600000, burst = 100000 }}, per_token = {{ per_minute = 600000, burst = 100000 }} }}
write = {{ per_ip = {{ per_minute = 600000, burst = 100000 }}, per_token = {{ per_minute = 600000, burst = 100000 }} }}
money = {{ per_ip = {{ per_minute = 600000, burst = 100000 }}, per_token = {{ per_minute = 600000, burst = 100000 }} }}
callback = {{ per_ip = {{ per_minute = 600000, burst = 100000 }}, per_token = {{ per_minute = 600000, burst = 100000 }} }}
"#,
            mongo = self.mongo.uri(),
            urls = urls.join(", "),
            bot_api = self.bot_api.url(),
            provider = self.provider.base_url(),
        );
        fs::write(&self.config, settings)?;
        Ok(())
    }

    fn launch(&mut self, i: usize) -> anyhow::Result<()> {
        let service = &mut self.services[i];
        let (binary, args) = service.kind.command();
        service.starts += 1;
        let log = self.dir.join(format!("{}-{}.{}.log", service.kind.name(), service.index, service.starts));
        let out = fs::File::create(&log)?;
        let mut command = Command::new(self.bin_dir.join(binary));
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("OBENTCHI_LISTEN__ADDR", format!("127.0.0.1:{}", service.port))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out));
        if let Some(broken) = &self.broken {
            command.env("OBENTCHI_BREAK", broken);
        }
        // SAFETY: prctl is async-signal-safe; the services die with the harness.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        service.child = Some(command.spawn().map_err(|e| anyhow::anyhow!("cannot start {binary}: {e}"))?);
        Ok(())
    }

    async fn wait_healthy(&self, client: &reqwest::Client, i: usize) -> anyhow::Result<()> {
        let service = &self.services[i];
        let deadline = Instant::now() + Duration::from_secs(120);
        while client.get(format!("http://127.0.0.1:{}/healthz", service.port)).send().await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "{}-{} never answered /healthz", service.kind.name(), service.index);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// SIGKILL, as a crashed pod or an OOM kill.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.services[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed service again on its port.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        self.launch(i)
    }

    /// Starts whatever is not running (after the faults stop).
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        for i in 0..self.services.len() {
            let running = self.services[i].child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)));
            if !running {
                self.launch(i)?;
            }
        }
        Ok(())
    }

    pub fn ports(&self, kind: Kind) -> Vec<u16> {
        self.services.iter().filter(|s| s.kind == kind).map(|s| s.port).collect()
    }

    pub fn indices(&self, kind: Kind) -> Vec<usize> {
        self.services.iter().enumerate().filter(|(_, s)| s.kind == kind).map(|(i, _)| i).collect()
    }

    pub fn logs_dir(&self) -> &Path {
        &self.dir
    }

    /// Every partition of the updates queue as Redis holds it (for a failing run's logs).
    pub async fn dump_updates_queue(&self) -> String {
        let config = obentchi_core::config::RedisConfig::from_urls(obentchi_core::config::RedisMode::Cluster, self.cluster.urls()).expect("urls");
        let Ok(mut redis) = config.connect().await else { return "no redis".into() };
        let mut out = String::new();
        for partition in 0..32u16 {
            let stream = format!("{{q:updates:{partition}}}:stream");
            let length: redis::RedisResult<redis::Value> = redis::cmd("XLEN").arg(&stream).query_async(&mut redis).await;
            let groups: redis::RedisResult<redis::Value> = redis::cmd("XINFO").arg("GROUPS").arg(&stream).query_async(&mut redis).await;
            let pending: redis::RedisResult<redis::Value> =
                redis::cmd("XPENDING").arg(&stream).arg("workers").query_async(&mut redis).await;
            let first: redis::RedisResult<redis::Value> =
                redis::cmd("XRANGE").arg(&stream).arg("-").arg("+").arg("COUNT").arg(3).query_async(&mut redis).await;
            out.push_str(&format!("partition {partition}: len {length:?}\n  groups {groups:?}\n  pending {pending:?}\n  first {first:?}\n"));
        }
        out
    }

    /// The outbound queue (replies to users), as the services see it.
    pub async fn outbound_queue(&self) -> anyhow::Result<apalis_redis_streams::Queue> {
        let config = obentchi_core::config::RedisConfig::from_urls(obentchi_core::config::RedisMode::Cluster, self.cluster.urls())
            .map_err(anyhow::Error::msg)?;
        let redis = config.connect().await?;
        let queues = obentchi_core::queues::QueuesConfig::default();
        queues.open(obentchi_core::queues::OUTBOUND_QUEUE, &redis).ok_or_else(|| anyhow::anyhow!("no outbound queue"))
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        for i in 0..self.services.len() {
            self.kill(i);
        }
    }
}

/// One long-lived thread that starts and stops the servers. The test servers die with the
/// thread that started them (`PR_SET_PDEATHSIG` follows the thread, not the process), so they
/// must not be started from tokio's blocking pool, whose idle threads exit.
#[derive(Clone)]
pub struct ServerThread {
    jobs: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
}

impl ServerThread {
    pub fn start() -> ServerThread {
        let (jobs, receiver) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        std::thread::Builder::new()
            .name("chaos-servers".into())
            .spawn(move || {
                for job in receiver {
                    job();
                }
            })
            .expect("spawn the server thread");
        ServerThread { jobs }
    }

    /// Runs `work` on the server thread and waits for its result.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
                let _ = done.send(outcome);
            }))
            .map_err(|_| anyhow::anyhow!("the server thread is gone"))?;
        result.await?.map_err(|panic| {
            let message = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            anyhow::anyhow!("server operation panicked: {}", message.unwrap_or_default())
        })
    }
}
