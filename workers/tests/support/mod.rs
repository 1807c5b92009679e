//! A whole worker environment for tests: a 6-node Redis Cluster, a MongoDB-wire server, the
//! payout provider, and `obentchi-workers` processes started and killed by PID.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mongodb::options::ClientOptions;
use apalis_redis_streams::{Queue, QueueConfig};
use obentchi_core::queues::{BROADCASTS_QUEUE, OUTBOUND_QUEUE, PAYMENTS_QUEUE, WITHDRAWALS_QUEUE};
use obentchi_core::config::{RedisConfig, RedisMode};
use obentchi_core::ids::{IdempotencyKey, ProviderId, UserId};
use obentchi_core::ledger::{Ledger, Posting, UserAccount};
use obentchi_core::money::{Currency, Money};
use obentchi_core::payments::{PaymentJob, Payments, TELEGRAM_STARS};
use obentchi_core::storage::{migrate, Store};
use obentchi_core::withdrawals::{AddressFormat, NewWithdrawal, PayoutAddress, WithdrawalJob, WithdrawalStatus, Withdrawals};
use obentchi_core::broadcasts::Broadcasts;
use obentchi_core::users::Users;
use obentchi_testkit::{FakeBotApi, FakePayoutProvider, MongoServer, PayoutMode, RedisCluster};

pub const USERS: i64 = 20;
/// Short so that jobs held by a killed worker come back quickly.
const VISIBILITY_MS: u64 = 2_000;

pub fn redis_config(cluster: &RedisCluster) -> RedisConfig {
    RedisConfig::from_urls(RedisMode::Cluster, cluster.urls()).unwrap()
}

pub fn queue_config() -> QueueConfig {
    QueueConfig {
        partitions: 6,
        visibility_timeout_ms: VISIBILITY_MS,
        retry_backoff_base_ms: 100,
        retry_backoff_max_ms: 1_000,
        max_attempts: 20,
        ..QueueConfig::default()
    }
}

pub struct Platform {
    pub cluster: RedisCluster,
    pub mongo: MongoServer,
    pub provider: FakePayoutProvider,
    pub bot_api: FakeBotApi,
    pub ledger: Ledger,
    pub users: Users,
    pub payments: Payments,
    pub withdrawals: Withdrawals,
    pub payments_queue: Queue,
    pub withdrawals_queue: Queue,
    pub outbound_queue: Queue,
    pub broadcasts: Broadcasts,
    config_path: PathBuf,
    dir: tempfile::TempDir,
    workers: Vec<Child>,
}

impl Platform {
    pub async fn start() -> Platform {
        let cluster = RedisCluster::start();
        let mongo = MongoServer::start();
        let provider = FakePayoutProvider::start(PayoutMode::Succeed).await;
        let bot_api = FakeBotApi::start().await;
        let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
        migrate(&store).await.unwrap();
        // A killed worker's open transactions keep their write locks until the server aborts
        // them (60 s by default); our transactions last milliseconds, so 5 s is plenty.
        let limit = mongodb::bson::doc! { "setParameter": 1, "transactionLifetimeLimitSeconds": 5 };
        store.client().database("admin").run_command(limit).await.unwrap();
        let ledger = Ledger::new(store.clone());
        let payments = Payments::new(&store, ledger.clone());
        let withdrawals = Withdrawals::new(&store, ledger.clone()).with_lease(Duration::from_millis(3_000));
        let redis = redis_config(&cluster).connect().await.unwrap();
        let payments_queue = Queue::new(PAYMENTS_QUEUE, queue_config(), redis.clone());
        let withdrawals_queue = Queue::new(WITHDRAWALS_QUEUE, queue_config(), redis.clone());
        let outbound_queue = Queue::new(OUTBOUND_QUEUE, QueueConfig { max_attempts: 1, ..queue_config() }, redis.clone());
        let broadcasts_queue = Queue::new(BROADCASTS_QUEUE, queue_config(), redis);
        let broadcasts = Broadcasts::new(&store, outbound_queue.clone(), broadcasts_queue, 10);

        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("workers.toml");
        let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
        let queue = format!(
            "partitions = 6\nvisibility_timeout_ms = {VISIBILITY_MS}\nretry_backoff_base_ms = 100\nretry_backoff_max_ms = 1000\n"
        );
        let config = format!(
            r#"
listen = {{ addr = "127.0.0.1:0" }}
withdrawal_lease_ms = 3000
broadcast_batch = 10
shutdown_grace_ms = 5000
[telemetry]
log_format = "json"
[mongodb]
uri = "{mongo_uri}"
database = "obentchi"
[redis]
mode = "cluster"
urls = [{urls}]
[payout]
base_url = "{provider_url}"
api_token = "test-token"
timeout_ms = 1000
[telegram]
bot_token = "123456:test-token"
api_url = "{bot_api_url}"
[queues.payments]
{queue}max_attempts = 20
[queues.withdrawals]
{queue}max_attempts = 20
[queues.broadcasts]
{queue}
[queues.outbound]
{queue}
# One attempt: a postponed send (429, flood control) must not use it up.
max_attempts = 1
[pools.payments]
min = 3
max = 20
evaluate_every_ms = 500
[pools.withdrawals]
min = 3
max = 10
evaluate_every_ms = 500
"#,
            mongo_uri = mongo.uri(),
            urls = urls.join(", "),
            provider_url = provider.base_url(),
            bot_api_url = bot_api.url(),
        );
        std::fs::write(&config_path, config).unwrap();
        Platform {
            cluster,
            mongo,
            provider,
            bot_api,
            users: Users::new(&store),
            ledger,
            payments,
            withdrawals,
            payments_queue,
            withdrawals_queue,
            outbound_queue,
            broadcasts,
            config_path,
            dir,
            workers: Vec::new(),
        }
    }

    /// Starts an `obentchi-workers` process; returns its index for `kill_worker`.
    pub fn spawn_worker(&mut self) -> usize {
        let index = self.workers.len();
        let log = std::fs::File::create(self.dir.path().join(format!("worker-{index}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_obentchi-workers"))
            .arg("--config")
            .arg(&self.config_path)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start obentchi-workers");
        self.workers.push(child);
        index
    }

    /// SIGKILL by PID: no shutdown, no flush, as a crashed or evicted pod.
    pub fn kill_worker(&mut self, index: usize) {
        let child = &mut self.workers[index];
        // SAFETY: kill(2) on our own child's PID.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
    }

    /// SIGTERM, as Kubernetes stops a pod; returns whether the process exited cleanly.
    pub fn terminate_worker(&mut self, index: usize) -> bool {
        let child = &mut self.workers[index];
        // SAFETY: kill(2) on our own child's PID.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap().success()
    }

    pub fn worker_log(&self, index: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("worker-{index}.log"))).unwrap_or_default()
    }

    /// The queue's stats once nothing waits or runs (acks are batched, so they land shortly
    /// after the last effect), or as they are after 5 s.
    pub async fn settled(queue: &Queue) -> apalis_redis_streams::QueueStats {
        let mut stats = queue.stats().await.unwrap();
        for _ in 0..50 {
            if stats.depth == 0 && stats.in_flight == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            stats = queue.stats().await.unwrap();
        }
        stats
    }

    pub fn user(i: i64) -> UserId {
        UserId::new(i).unwrap()
    }

    /// `per_user` Stars payments of 1 XTR for each user: recorded first, then enqueued.
    pub async fn seed_payments(&self, per_user: u64) {
        for n in 0..per_user * USERS as u64 {
            let job = PaymentJob {
                user_id: Self::user(n as i64 % USERS + 1),
                provider: ProviderId::new(TELEGRAM_STARS).unwrap(),
                external_id: format!("charge-{n}"),
                amount: Money::from_minor(Currency::Xtr, 1),
            };
            self.payments.record(&job).await.unwrap();
            self.payments_queue.enqueue(&job, Some(&job.job_key())).await.unwrap();
        }
    }

    /// Gives each user 10 USDT and requests one auto-approved withdrawal of 1 USDT + 0.1 fee.
    pub async fn seed_withdrawals(&self) {
        for i in 1..=USERS {
            let user = Self::user(i);
            let funds = Posting::deposit(
                user,
                IdempotencyKey::new("seed").unwrap(),
                ProviderId::new("gateway-x").unwrap(),
                Money::from_minor(Currency::Usdt, 10_000_000),
                "seed",
            )
            .unwrap();
            self.ledger.post(&funds).await.unwrap();
            let new = NewWithdrawal {
                user_id: user,
                request_id: IdempotencyKey::new(format!("wd-{i}")).unwrap(),
                amount: Money::from_minor(Currency::Usdt, 1_000_000),
                fee: Money::from_minor(Currency::Usdt, 100_000),
                address: PayoutAddress::parse(AddressFormat::Evm, &format!("0x{i:040x}")).unwrap(),
            };
            let w = self.withdrawals.request(new, Money::from_minor(Currency::Usdt, 5_000_000)).await.unwrap();
            assert_eq!(w.status, WithdrawalStatus::Approved);
            let job = WithdrawalJob { user_id: user, request_id: w.request_id };
            self.withdrawals_queue.enqueue(&job, Some(&job.job_key())).await.unwrap();
        }
    }

    /// Waits until a worker has visibly started crediting: at least `credits` XTR in.
    pub async fn wait_for_credits(&self, credits: i64, worker: usize) {
        for _ in 0..600 {
            if self.credited_xtr().await >= credits {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("worker {worker} never got going:\n{}", self.worker_log(worker));
    }

    pub async fn credited_xtr(&self) -> i64 {
        let mut total = 0;
        for i in 1..=USERS {
            total += self.ledger.balance(Self::user(i), UserAccount::Available, Currency::Xtr).await.unwrap().minor();
        }
        total
    }

    pub async fn withdrawals_sent(&self) -> usize {
        let mut sent = 0;
        for i in 1..=USERS {
            let w = self.withdrawals.get(Self::user(i), &format!("wd-{i}")).await.unwrap();
            sent += usize::from(w.status == WithdrawalStatus::Sent);
        }
        sent
    }

    /// Waits until every seeded job took effect, then checks that each took effect once.
    pub async fn assert_everything_done_exactly_once(&self, per_user_payments: i64) {
        let expected = per_user_payments * USERS;
        let mut done = false;
        for round in 0..900 {
            if round % 25 == 0 {
                println!("t+{}s: {} XTR credited, {} withdrawals sent", round / 5, self.credited_xtr().await, self.withdrawals_sent().await);
            }
            if self.credited_xtr().await == expected && self.withdrawals_sent().await == USERS as usize {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(done, "not all jobs took effect: {} XTR credited, {} withdrawals sent", self.credited_xtr().await, self.withdrawals_sent().await);
        for i in 1..=USERS {
            let user = Self::user(i);
            let xtr = self.ledger.balance(user, UserAccount::Available, Currency::Xtr).await.unwrap();
            assert_eq!(xtr.minor(), per_user_payments, "user {i} credited {xtr}");
            let usdt = self.ledger.balance(user, UserAccount::Available, Currency::Usdt).await.unwrap();
            assert_eq!(usdt.minor(), 8_900_000, "user {i}: 10 USDT - 1 - 0.1 fee");
            assert_eq!(self.ledger.balance(user, UserAccount::WithdrawalHold, Currency::Usdt).await.unwrap().minor(), 0);
            assert!(self.ledger.audit_user(user).await.unwrap().is_empty(), "user {i} ledger mismatch");
            assert_eq!(self.provider.executions(&format!("{i}:wd-{i}")), 1, "withdrawal of user {i} paid once");
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        for child in &mut self.workers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
