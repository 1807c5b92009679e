//! What the worker pools report about themselves, kept in Redis so the admin API (another
//! process) can show it: each pool instance's current concurrency, and the scaler's recent
//! decisions. Each worker process writes its own entries; stale ones (a process that died) age
//! out of the view. Losing this to a Redis failover costs only the display until the next
//! evaluation.

use std::collections::BTreeMap;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use apalis_redis_streams::RedisConn;

/// One hash tag: a handful of small keys, one slot.
const STATUS_KEY: &str = "{pools}:status";
const DECISIONS_KEPT: isize = 50;
/// An instance not heard from for this long is left out (it exited, or it is cut off).
const STALE_AFTER_MS: u64 = 10 * 60_000;

fn decisions_key(pool: &str) -> String {
    format!("{{pools}}:decisions:{pool}")
}

/// One scaling decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScaleDecision {
    pub at_ms: u64,
    /// The worker process that decided.
    #[serde(default)]
    pub worker: String,
    pub from: usize,
    pub to: usize,
    pub ready: u64,
    pub in_flight: u64,
    pub reason: String,
}

/// One pool instance (a pool in one worker process) as last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PoolInstance {
    pub pool: String,
    pub worker: String,
    pub concurrency: usize,
    pub min: usize,
    pub max: usize,
    pub at_ms: u64,
}

/// A pool across all worker processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PoolView {
    pub pool: String,
    /// Sum of the live instances' concurrency.
    pub concurrency: usize,
    pub instances: Vec<PoolInstance>,
    /// Newest first.
    pub recent_decisions: Vec<ScaleDecision>,
}

#[derive(Clone)]
pub struct PoolRegistry {
    redis: RedisConn,
}

impl PoolRegistry {
    pub fn new(redis: RedisConn) -> PoolRegistry {
        PoolRegistry { redis }
    }

    pub async fn report(&self, instance: &PoolInstance) -> redis::RedisResult<()> {
        let field = format!("{}|{}", instance.pool, instance.worker);
        let value = serde_json::to_string(instance).expect("an instance serializes");
        self.redis.clone().hset(STATUS_KEY, field, value).await
    }

    pub async fn record_decision(&self, pool: &str, decision: &ScaleDecision) -> redis::RedisResult<()> {
        let key = decisions_key(pool);
        let value = serde_json::to_string(decision).expect("a decision serializes");
        let mut redis = self.redis.clone();
        redis::pipe().lpush(&key, value).ltrim(&key, 0, DECISIONS_KEPT - 1).query_async::<()>(&mut redis).await
    }

    /// Every pool with live instances, by name; drops instances that went stale.
    pub async fn view(&self, now_ms: u64) -> redis::RedisResult<Vec<PoolView>> {
        let mut redis = self.redis.clone();
        let entries: BTreeMap<String, String> = redis.hgetall(STATUS_KEY).await?;
        let mut pools: BTreeMap<String, Vec<PoolInstance>> = BTreeMap::new();
        for (field, value) in entries {
            match serde_json::from_str::<PoolInstance>(&value) {
                Ok(instance) if now_ms.saturating_sub(instance.at_ms) < STALE_AFTER_MS => {
                    pools.entry(instance.pool.clone()).or_default().push(instance)
                }
                _ => redis.hdel::<_, _, ()>(STATUS_KEY, field).await?,
            }
        }
        let mut views = Vec::new();
        for (pool, instances) in pools {
            let raw: Vec<String> = redis.lrange(decisions_key(&pool), 0, DECISIONS_KEPT - 1).await?;
            views.push(PoolView {
                concurrency: instances.iter().map(|i| i.concurrency).sum(),
                recent_decisions: raw.iter().filter_map(|d| serde_json::from_str(d).ok()).collect(),
                pool,
                instances,
            });
        }
        Ok(views)
    }
}
