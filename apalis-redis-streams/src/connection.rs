//! One Redis connection type for both deployment shapes: a single server, or a Redis Cluster.
//! Both are multiplexed, cheap to clone and reconnect by themselves; the cluster connection also
//! follows MOVED/ASK redirections and survives a failover.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use serde::{Deserialize, Serialize};

use crate::wake::Doorbell;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One server (or a primary behind a failover proxy).
    Single,
    /// Redis Cluster; the URLs are seed nodes.
    Cluster,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub mode: RedisMode,
    /// One URL in single mode; seed nodes in cluster mode. At least one.
    pub urls: Vec<String>,
    /// Per-command response timeout. The driver's 500 ms default is short under load.
    pub response_timeout: Duration,
    pub connect_timeout: Duration,
}

impl ConnectOptions {
    /// Options with a 3 s response and a 5 s connect timeout.
    pub fn new(mode: RedisMode, urls: impl IntoIterator<Item = impl Into<String>>) -> ConnectOptions {
        ConnectOptions {
            mode,
            urls: urls.into_iter().map(Into::into).collect(),
            response_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A connection to Redis, and this process's subscription to queue wakes (see `wake`), opened
/// on first use.
#[derive(Clone)]
pub struct RedisConn {
    kind: Kind,
    urls: Arc<[String]>,
    doorbell: Arc<OnceLock<Arc<Doorbell>>>,
}

#[derive(Clone)]
enum Kind {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Connects as configured. A single server is connected lazily, so a service starts (and
    /// reports not-ready) while Redis is down; a cluster needs its seed nodes to learn the slots.
    pub async fn connect(options: &ConnectOptions) -> RedisResult<RedisConn> {
        let no_url = || redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "no Redis URL given"));
        match options.mode {
            RedisMode::Single => {
                let url = options.urls.first().ok_or_else(no_url)?;
                let client = redis::Client::open(url.as_str())?;
                let manager_config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(options.response_timeout))
                    .set_connection_timeout(Some(options.connect_timeout));
                Ok(RedisConn::new(Kind::Single(client.get_connection_manager_lazy(manager_config)?), options))
            }
            RedisMode::Cluster => {
                if options.urls.is_empty() {
                    return Err(no_url());
                }
                let client = ClusterClientBuilder::new(options.urls.clone())
                    .response_timeout(options.response_timeout)
                    .connection_timeout(options.connect_timeout)
                    .build()?;
                Ok(RedisConn::new(Kind::Cluster(client.get_async_connection().await?), options))
            }
        }
    }

    fn new(kind: Kind, options: &ConnectOptions) -> RedisConn {
        RedisConn { kind, urls: options.urls.clone().into(), doorbell: Arc::default() }
    }

    /// This process's subscription to queue wakes (started on first call; needs a Tokio runtime).
    pub fn doorbell(&self) -> Arc<Doorbell> {
        self.doorbell.get_or_init(|| Doorbell::start(self.urls.to_vec())).clone()
    }

    pub async fn ping(&mut self) -> RedisResult<()> {
        redis::cmd("PING").query_async::<String>(self).await.map(drop)
    }

    /// `WAIT replicas timeout` on the master that holds `key`: blocks until the writes made so
    /// far on our connection to that master reached `replicas` replicas, or `timeout` passed,
    /// and returns how many did. (Our connection per node is multiplexed, so this covers the
    /// write the caller just made there.)
    pub async fn wait_for_replicas(&self, key: &str, replicas: u32, timeout: Duration) -> RedisResult<u32> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout.as_millis() as u64);
        match &self.kind {
            Kind::Single(c) => wait.query_async(&mut c.clone()).await,
            Kind::Cluster(c) => {
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                let value = c.clone().route_command(wait, RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route))).await?;
                Ok(redis::from_redis_value(value)?)
            }
        }
    }

    /// The masters that have no replica attached right now (their writes live on one node), and
    /// how many masters there are.
    pub async fn masters_without_replicas(&self) -> RedisResult<(Vec<String>, usize)> {
        match &self.kind {
            Kind::Single(c) => {
                let info: String = redis::cmd("INFO").arg("replication").query_async(&mut c.clone()).await?;
                let replicas = info
                    .lines()
                    .find_map(|l| l.strip_prefix("connected_slaves:"))
                    .and_then(|n| n.trim().parse::<u32>().ok())
                    .unwrap_or(0);
                Ok((if replicas == 0 { vec!["the Redis server".to_owned()] } else { Vec::new() }, 1))
            }
            Kind::Cluster(c) => {
                let nodes: String = redis::cmd("CLUSTER").arg("NODES").query_async(&mut c.clone()).await?;
                Ok(masters_without_replicas(&nodes))
            }
        }
    }
}

/// From `CLUSTER NODES`: the addresses of the live masters holding slots that no live replica
/// follows, and how many live masters hold slots.
fn masters_without_replicas(nodes: &str) -> (Vec<String>, usize) {
    let lines: Vec<Vec<&str>> = nodes.lines().map(|l| l.split_whitespace().collect()).collect();
    let live = |fields: &[&str]| fields.len() > 2 && !fields[2].contains("fail");
    let masters: Vec<&Vec<&str>> = lines.iter().filter(|f| live(f) && f[2].contains("master") && f.len() > 8).collect();
    let alone = masters
        .iter()
        .filter(|master| !lines.iter().any(|f| live(f) && f[2].contains("slave") && f.get(3) == Some(&master[0])))
        .map(|master| master[1].split('@').next().unwrap_or(master[1]).to_owned())
        .collect();
    (alone, masters.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn masters_without_a_live_replica_are_found() {
        let nodes = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
a2 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922
a3 127.0.0.1:7003@17003 master - 0 0 3 connected 10923-16383
b1 127.0.0.1:7004@17004 slave a1 0 0 1 connected
b2 127.0.0.1:7005@17005 slave,fail a2 0 0 2 disconnected
b3 127.0.0.1:7006@17006 slave a3 0 0 3 connected
";
        assert_eq!(super::masters_without_replicas(nodes), (vec!["127.0.0.1:7002".to_owned()], 3));
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.kind {
            Kind::Single(c) => c.req_packed_command(cmd),
            Kind::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.kind {
            Kind::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Kind::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.kind {
            Kind::Single(c) => c.get_db(),
            Kind::Cluster(c) => c.get_db(),
        }
    }
}
