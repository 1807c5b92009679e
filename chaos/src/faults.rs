//! Faults on a seeded schedule: every kind once in a shuffled order, then at random. The payout
//! provider's faults run all along (`provider_faults`); they are counted by the fake itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use obentchi_testkit::PayoutFaults;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;

use crate::platform::{Kind, Platform, ServerThread};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Kill(Kind),
    /// SIGKILL a Redis master: its replica is promoted; the old master rejoins as a replica.
    RedisFailover,
    /// SIGSTOP a Redis node for 1–3 s (shorter than the failover timeout).
    RedisUnreachable,
    /// Stop and start the MongoDB-wire server.
    MongoRestart,
    /// The Bot API answers the next calls 429 with `retry_after`.
    BotApiRateLimit,
    /// A user blocks the bot: every send to them answers 403.
    BotApiBlocked,
}

impl Fault {
    pub fn all() -> Vec<Fault> {
        let mut all: Vec<Fault> = Kind::ALL.into_iter().map(Fault::Kill).collect();
        all.extend([Fault::RedisFailover, Fault::RedisUnreachable, Fault::MongoRestart, Fault::BotApiRateLimit, Fault::BotApiBlocked]);
        all
    }

    pub fn name(self) -> String {
        match self {
            Fault::Kill(kind) => format!("kill -9 {}", kind.name()),
            Fault::RedisFailover => "redis master killed (failover)".into(),
            Fault::RedisUnreachable => "redis node unreachable".into(),
            Fault::MongoRestart => "mongodb restarted".into(),
            Fault::BotApiRateLimit => "bot api 429 retry_after".into(),
            Fault::BotApiBlocked => "bot api 403 blocked".into(),
        }
    }
}

/// The adversarial payout provider of a run.
pub fn provider_faults(seed: u64) -> PayoutFaults {
    PayoutFaults {
        seed,
        conflict_on_resend: true,
        lookup_lag: Duration::from_secs(5),
        execute_then_stall_permille: 40,
        stall: Duration::from_millis(1_500),
        error_before_permille: 30,
        error_after_permille: 20,
        refuse_permille: 30,
        slow_permille: 50,
        slow: Duration::from_millis(300),
    }
}

/// Injects faults every `every` until `stop`; returns how many of each it injected. Sets
/// `every_kind_done` once each kind was injected at least once.
pub async fn inject(
    platform: Arc<Mutex<Platform>>,
    servers: ServerThread,
    seed: u64,
    every: Duration,
    users: Vec<i64>,
    stop: Arc<AtomicBool>,
    every_kind_done: Arc<AtomicBool>,
) -> BTreeMap<String, u64> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xFA17);
    let mut plan = Fault::all();
    plan.shuffle(&mut rng);
    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(every).await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let all = Fault::all();
        let fault = if next < plan.len() { plan[next] } else { all[rng.random_range(0..all.len())] };
        next += 1;
        match inject_one(&platform, &servers, fault, &mut rng, &users).await {
            Ok(()) => *injected.entry(fault.name()).or_default() += 1,
            Err(err) => eprintln!("chaos: fault {} failed: {err:#}", fault.name()),
        }
        if all.iter().all(|f| injected.contains_key(&f.name())) {
            every_kind_done.store(true, Ordering::Relaxed);
        }
    }
    injected
}

async fn inject_one(platform: &Arc<Mutex<Platform>>, servers: &ServerThread, fault: Fault, rng: &mut StdRng, users: &[i64]) -> anyhow::Result<()> {
    eprintln!("chaos: {}", fault.name());
    match fault {
        Fault::Kill(kind) => {
            let down = Duration::from_millis(rng.random_range(200..2_000));
            let i = {
                let mut platform = platform.lock().await;
                let candidates = platform.indices(kind);
                let i = candidates[rng.random_range(0..candidates.len())];
                platform.kill(i);
                i
            };
            tokio::time::sleep(down).await;
            platform.lock().await.restart(i)?;
        }
        Fault::RedisFailover => {
            let slot: u16 = rng.random_range(0..16_384);
            let platform = platform.clone();
            servers
                .run(move || {
                    let mut platform = platform.blocking_lock();
                    let master = platform.cluster.master_of_slot(slot);
                    platform.cluster.kill_node_and_wait_for_failover(master);
                    platform.cluster.restart_node(master);
                })
                .await?;
        }
        Fault::RedisUnreachable => {
            let node = rng.random_range(0..6);
            let pause = Duration::from_millis(rng.random_range(1_000..3_000));
            let platform = platform.clone();
            servers.run(move || platform.blocking_lock().cluster.freeze_node(node, pause)).await?;
        }
        Fault::MongoRestart => {
            let platform = platform.clone();
            servers.run(move || platform.blocking_lock().mongo.restart()).await?;
        }
        Fault::BotApiRateLimit => {
            platform.lock().await.bot_api.rate_limit_next(rng.random_range(5..40), 1);
        }
        Fault::BotApiBlocked => {
            let user = users[rng.random_range(0..users.len())];
            platform.lock().await.bot_api.block(user);
        }
    }
    Ok(())
}
