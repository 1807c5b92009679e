//! Payment and withdrawal worker pools. So far: the shared ops endpoints
//! (`/healthz`, `/readyz`, `/metrics`); the pools arrive with the queue issue.

use obentchi_core::service::{self, Connections};

pub use obentchi_core::service::BaseConfig as Config;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let connections = Connections::open(&config.mongodb, &config.redis).await?;
    service::serve(config.listen.addr, connections.ops_router()).await
}
