//! Leases in Redis: at most one holder at a time, kept alive by renewal, with a fencing token
//! that grows with every new holder: for one consumer per partition (strict order) or one
//! leader among replicas. Keys live under the caller's hash tag, so the scripts are single-slot.

use std::time::Duration;

use redis::Script;

use crate::RedisConn;

// KEYS: lease, fence. ARGV: owner, ttl ms. Returns the new fencing token when acquired, -1 when
// the caller already held it (renewed), 0 when someone else holds it.
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return redis.call('INCR', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return -1
end
return 0
";

// KEYS: lease. ARGV: owner, ttl ms (0: release). Returns 1 if the caller held it.
const KEEP: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// Newly acquired, with its fencing token.
    New { token: u64 },
    AlreadyHeld,
    HeldByAnother,
}

#[derive(Clone)]
pub struct Lease {
    redis: RedisConn,
    key: String,
    fence: String,
    owner: String,
    ttl: Duration,
}

impl Lease {
    /// A lease named `{tag}:lease` (fencing counter `{tag}:fence`) for `owner`.
    pub fn new(redis: RedisConn, tag: &str, owner: &str, ttl: Duration) -> Lease {
        Lease { redis, key: format!("{tag}:lease"), fence: format!("{tag}:fence"), owner: owner.to_owned(), ttl }
    }

    pub async fn acquire(&self) -> redis::RedisResult<Acquired> {
        let token: i64 = Script::new(ACQUIRE)
            .key(&self.key)
            .key(&self.fence)
            .arg(&self.owner)
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(match token {
            0 => Acquired::HeldByAnother,
            -1 => Acquired::AlreadyHeld,
            token => Acquired::New { token: token as u64 },
        })
    }

    /// Extends the lease; `false` means it was lost (expired and taken, or never held).
    pub async fn renew(&self) -> redis::RedisResult<bool> {
        self.keep(self.ttl.as_millis() as u64).await
    }

    pub async fn release(&self) -> redis::RedisResult<bool> {
        self.keep(0).await
    }

    async fn keep(&self, ttl_ms: u64) -> redis::RedisResult<bool> {
        let held: i64 = Script::new(KEEP)
            .key(&self.key)
            .arg(&self.owner)
            .arg(ttl_ms)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(held == 1)
    }
}
