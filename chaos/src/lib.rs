//! The chaos run: the whole platform as separate processes under a seeded schedule of faults,
//! driven only through its public edges by many simulated users, then checked against the
//! invariants money must keep. A failing seed replays: the same seed makes the same choices
//! (the interleavings, which the machine decides, differ).
//!
//! `scripts/chaos.sh` runs the full profile; the test suite runs the small one, and runs it
//! against a deliberately broken build to see the checker fail.

pub mod checker;
pub mod faults;
pub mod platform;
pub mod traffic;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mongodb::bson::doc;
use obentchi_core::api_tokens::{ApiTokens, Scope};
use obentchi_core::storage::collections;
use tokio::sync::Mutex;

use crate::checker::Check;
use crate::platform::{Kind, Platform, ServerThread};
use crate::traffic::Traffic;

/// How big a run is.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: &'static str,
    /// Simulated users (the first `referrers` of them register first, to be referred to).
    pub users: usize,
    pub referrers: usize,
    /// Money operations each user starts (plus admin decisions on top).
    pub operations_per_user: usize,
    /// Users in session at once.
    pub concurrency: usize,
    /// A fault every this often while traffic runs.
    pub fault_every: Duration,
    /// How long the platform may take to settle everything once traffic and faults stop.
    pub settle_within: Duration,
}

impl Profile {
    /// A few thousand money operations with every fault kind: the test suite's run.
    pub fn small() -> Profile {
        Profile {
            name: "small",
            users: 240,
            referrers: 10,
            operations_per_user: 10,
            concurrency: 48,
            fault_every: Duration::from_secs(3),
            settle_within: Duration::from_secs(240),
        }
    }

    /// At least 100,000 money operations.
    pub fn full() -> Profile {
        Profile {
            name: "full",
            users: 8_400,
            referrers: 40,
            operations_per_user: 12,
            concurrency: 160,
            fault_every: Duration::from_secs(10),
            settle_within: Duration::from_secs(900),
        }
    }
}

pub struct Options {
    pub profile: Profile,
    pub seed: u64,
    /// Where the service binaries are.
    pub bin_dir: PathBuf,
    /// `OBENTCHI_BREAK` for the services (a deliberately broken debug build).
    pub broken: Option<String>,
}

/// What a run did and found.
#[derive(Debug)]
pub struct Report {
    pub profile: &'static str,
    pub seed: u64,
    pub operations: BTreeMap<&'static str, u64>,
    pub faults: BTreeMap<String, u64>,
    pub checks: Vec<Check>,
    pub traffic_time: Duration,
    pub wall_time: Duration,
    pub settled: bool,
}

impl Report {
    pub fn violations(&self) -> usize {
        self.checks.iter().map(|c| c.violations.len()).sum()
    }

    pub fn money_operations(&self) -> u64 {
        self.operations.values().sum()
    }

    /// The report as Markdown (docs/RELIABILITY.md holds the full run's).
    pub fn markdown(&self, machine: &str, date: &str) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "Profile `{}`, seed {}, {} on {machine}. Wall time {:.0} s ({:.0} s of traffic under faults, then settling{}).\n\n",
            self.profile,
            self.seed,
            date,
            self.wall_time.as_secs_f64(),
            self.traffic_time.as_secs_f64(),
            if self.settled { "" } else { " — did NOT settle within the deadline" },
        ));
        out.push_str(&format!("Money operations: {}\n\n| operation | count |\n|---|---|\n", self.money_operations()));
        for (kind, n) in &self.operations {
            out.push_str(&format!("| {kind} | {n} |\n"));
        }
        out.push_str("\nFaults injected:\n\n| fault | count |\n|---|---|\n");
        for (kind, n) in &self.faults {
            out.push_str(&format!("| {kind} | {n} |\n"));
        }
        out.push_str(&format!("\nInvariants: {} violations\n\n| invariant | numbers | result |\n|---|---|---|\n", self.violations()));
        for check in &self.checks {
            let result = if check.passed() { "ok".to_owned() } else { format!("**{} violations**: {}", check.violations.len(), check.violations.iter().take(3).cloned().collect::<Vec<_>>().join("; ")) };
            out.push_str(&format!("| {} | {} | {result} |\n", check.name, check.numbers));
        }
        out
    }
}

/// Runs a profile: start everything, traffic under faults, stop the faults, let the platform
/// settle (reconcilers included), check.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("obentchi-chaos-").tempdir()?;
    let keep = dir.path().to_owned();
    let seed = options.seed;
    let profile = options.profile.clone();
    let servers = ServerThread::start();
    let platform = Platform::start(&servers, &options.bin_dir, dir.path(), faults::provider_faults(seed), options.broken.clone()).await?;
    eprintln!("chaos: platform up in {:.1} s; logs in {}", started.elapsed().as_secs_f64(), keep.display());
    let (_, admin_token) = ApiTokens::new(&platform.store).create("chaos-admin", &[Scope::Money]).await?;
    let traffic = Traffic::new(platform.ports(Kind::Receiver), platform.ports(Kind::Api)[0], admin_token, platform.bot_api.clone());
    let store = platform.store.clone();
    let (bot_api, provider) = (platform.bot_api.clone(), platform.provider.clone());
    let platform = Arc::new(Mutex::new(platform));

    let users: Vec<i64> = (0..profile.users as i64).map(|i| 5_000_000_001 + i).collect();
    let referrers = users[..profile.referrers].to_vec();
    let stop_faults = Arc::new(AtomicBool::new(false));
    let stop_admin = Arc::new(AtomicBool::new(false));
    let admin = tokio::spawn({
        let (traffic, stop) = (traffic.clone(), stop_admin.clone());
        async move { traffic.admin(seed, stop).await }
    });

    // The referrers register first, so links to them count.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    for referrer in &referrers {
        traffic.start(&mut rng, *referrer, None).await;
    }
    wait_for(Duration::from_secs(120), || async {
        let registered = store.collection::<mongodb::bson::Document>(collections::USERS).count_documents(doc! {}).await.unwrap_or(0);
        registered >= referrers.len() as u64
    })
    .await;

    let traffic_started = Instant::now();
    let every_kind_done = Arc::new(AtomicBool::new(false));
    let faults = tokio::spawn(faults::inject(
        platform.clone(),
        servers.clone(),
        seed,
        profile.fault_every,
        users.clone(),
        stop_faults.clone(),
        every_kind_done.clone(),
    ));
    // The profile's users, then more while some fault kind has not been injected yet: every
    // kind must strike while traffic runs.
    let planned = profile.users as i64;
    let sessions = futures::stream::iter(profile.referrers as i64..)
        .take_while(|i| std::future::ready(*i < planned || !every_kind_done.load(Ordering::Relaxed)))
        .map(|i| 5_000_000_001 + i)
        .map(|user| {
            let (traffic, referrers) = (traffic.clone(), referrers.clone());
            let operations = profile.operations_per_user;
            async move { traffic.session(user, &referrers, operations, seed).await }
        })
        .buffer_unordered(profile.concurrency);
    let mut done = 0usize;
    let mut sessions = std::pin::pin!(sessions);
    while sessions.next().await.is_some() {
        done += 1;
        if done % 200 == 0 {
            let operations: u64 = traffic.journal.lock().unwrap().operations.values().sum();
            eprintln!("chaos: {done} sessions done, {operations} money operations, {:.0} s", traffic_started.elapsed().as_secs_f64());
        }
    }
    let traffic_time = traffic_started.elapsed();
    stop_faults.store(true, Ordering::Relaxed);
    let injected = faults.await?;
    platform.lock().await.ensure_running()?;
    let resumed = platform.clone();
    servers.run(move || resumed.blocking_lock().mongo.resume()).await?;
    eprintln!("chaos: traffic done in {:.0} s; settling", traffic_time.as_secs_f64());

    // Settle: every withdrawal ends and every charge is credited (the reconcilers run every 5 s).
    let expected_deposits = {
        let journal = traffic.journal.lock().unwrap();
        bot_api.star_transactions().len() + journal.gateway_accepted.len()
    } as u64;
    let outbound = platform.lock().await.outbound_queue().await?;
    let settled = wait_for(profile.settle_within, || async {
        let withdrawals = store.collection::<mongodb::bson::Document>(collections::WITHDRAWALS);
        let open = withdrawals.count_documents(doc! { "status": { "$nin": ["sent", "released", "rejected"] } }).await.unwrap_or(1);
        let postings = store.collection::<mongodb::bson::Document>(collections::POSTINGS);
        let deposits = postings.count_documents(doc! { "kind": "deposit" }).await.unwrap_or(0);
        // Replies and notices delivered (or given up on) too, before they are counted.
        let replies_pending = outbound.stats().await.map_or(1, |s| s.depth + s.in_flight);
        open == 0 && deposits >= expected_deposits && replies_pending == 0
    })
    .await;
    stop_admin.store(true, Ordering::Relaxed);
    admin.await?;
    let mut operations = traffic.journal.lock().unwrap().operations.clone();
    let journal = std::mem::take(&mut *traffic.journal.lock().unwrap());
    let checks = checker::check_all(&store, &bot_api, &provider, &journal).await?;
    let mut faults = injected;
    for (kind, n) in provider.faults_injected() {
        faults.insert(format!("payout provider: {kind}"), n);
    }
    operations.retain(|_, n| *n > 0);
    if checks.iter().any(|c| !c.passed()) || !settled {
        // Keep the logs of a failing run, with every call the Bot API received.
        let calls: Vec<String> = bot_api.calls().iter().map(|c| format!("{} {} {}", c.status, c.method, c.body)).collect();
        std::fs::write(dir.path().join("bot-api-calls.txt"), calls.join("\n"))?;
        let acked: Vec<String> = journal.acked_by_user.iter().map(|(user, ids)| format!("{user} {ids:?}")).collect();
        std::fs::write(dir.path().join("acked-updates.txt"), acked.join("\n"))?;
        let dump = platform.lock().await.dump_updates_queue().await;
        std::fs::write(dir.path().join("updates-queue.txt"), dump)?;
        eprintln!("chaos: logs kept in {}", dir.keep().display());
    }
    // The servers stop on the thread that started them.
    servers.run(move || drop(platform)).await?;
    Ok(Report { profile: profile.name, seed, operations, faults, checks, traffic_time, wall_time: started.elapsed(), settled })
}

/// Polls `done` until it holds or `within` passes; returns whether it held.
async fn wait_for<F, Fut>(within: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if done().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
