//! The admin and ops HTTP API. So far: the ops endpoints, and the `migrate` command that
//! prepares MongoDB (run once per deploy, before the services start).

use obentchi_core::config::MongoConfig;
use obentchi_core::service::{self, Connections};
use obentchi_core::storage::{self, MigrationReport, Store};

pub use obentchi_core::service::BaseConfig as Config;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let connections = Connections::open(&config.mongodb, &config.redis).await?;
    service::serve(config.listen.addr, connections.ops_router()).await
}

/// Creates collections and indexes (and shards them on a `mongos`); idempotent.
pub async fn migrate(mongodb: &MongoConfig) -> anyhow::Result<MigrationReport> {
    let store = Store::connect(mongodb).await?;
    Ok(storage::migrate(&store).await?)
}
