//! Redis configuration for tests, from a testkit server or cluster.

use obentchi_core::config::{NonEmpty, RedisConfig, RedisMode, RedisUrl, Secret};

pub fn redis_config(mode: RedisMode, urls: Vec<String>) -> RedisConfig {
    let urls: Vec<RedisUrl> = urls.into_iter().map(|u| RedisUrl::try_from(u).unwrap()).collect();
    RedisConfig {
        mode,
        urls: Secret::new(NonEmpty::try_from(urls).unwrap()),
        response_timeout_ms: 3_000,
        connect_timeout_ms: 1_000,
    }
}
