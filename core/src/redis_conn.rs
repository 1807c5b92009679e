//! One Redis connection type for both deployment shapes: a single server, or a Redis Cluster.
//! Both are multiplexed, cheap to clone and reconnect by themselves; the cluster connection also
//! follows MOVED/ASK redirections and survives a failover.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::config::{RedisConfig, RedisMode};

#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Connects as configured. A single server is connected lazily, so a service starts (and
    /// reports not-ready) while Redis is down; a cluster needs its seed nodes to learn the slots.
    pub async fn connect(config: &RedisConfig) -> RedisResult<RedisConn> {
        let response_timeout = Duration::from_millis(config.response_timeout_ms);
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let urls = config.urls.expose().as_slice().iter().map(|u| u.as_str());
        match config.mode {
            RedisMode::Single => {
                let url = urls.into_iter().next().expect("NonEmpty has a first element");
                let client = redis::Client::open(url)?;
                let manager_config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(response_timeout))
                    .set_connection_timeout(Some(connect_timeout));
                Ok(RedisConn::Single(client.get_connection_manager_lazy(manager_config)?))
            }
            RedisMode::Cluster => {
                let client = ClusterClientBuilder::new(urls.collect::<Vec<_>>())
                    .response_timeout(response_timeout)
                    .connection_timeout(connect_timeout)
                    .build()?;
                Ok(RedisConn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    pub async fn ping(&mut self) -> RedisResult<()> {
        redis::cmd("PING").query_async::<String>(self).await.map(drop)
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}
