//! Periodic jobs under one leader. So far: the shared ops endpoints
//! (`/healthz`, `/readyz`, `/metrics`); the leader lease and jobs arrive with their issue.

use obentchi_core::service::{self, Connections};

pub use obentchi_core::service::BaseConfig as Config;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let connections = Connections::open(&config.mongodb, &config.redis).await?;
    service::serve(config.listen.addr, connections.ops_router()).await
}
