//! The admin audit log: every change made through the admin API, who made it (the token's id
//! and name), what it targeted and how it ended. It fails closed: before a change, its attempt
//! is written (`record_attempt`), and a change whose attempt cannot be written does not happen.
//! How it ended is written after the change (`record`); if that write fails, the attempt entry
//! still says who tried what.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::doc;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::storage::{collections, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub token_id: String,
    pub token_name: String,
    /// `withdrawal.approve`, `user.ban`, `dead_letter.retry` …
    pub action: String,
    pub target: String,
    /// What the change ended as (`approved`, `unchanged`, an error code).
    pub outcome: String,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct AdminAudit {
    entries: Collection<AuditEntry>,
}

impl AdminAudit {
    pub fn new(store: &Store) -> AdminAudit {
        AdminAudit { entries: store.collection(collections::ADMIN_AUDIT) }
    }

    /// Writes an entry; the caller decides what a failure means.
    pub async fn record_attempt(&self, entry: &AuditEntry) -> mongodb::error::Result<()> {
        self.entries.insert_one(entry).await.map(drop)
    }

    /// Writes how a change ended; a failure is logged loudly (the attempt entry stands).
    pub async fn record(&self, entry: &AuditEntry) {
        if let Err(err) = self.record_attempt(entry).await {
            tracing::error!(%err, ?entry, "admin audit entry not written");
        }
    }

    /// Entries about `target`, oldest first.
    pub async fn for_target(&self, target: &str) -> mongodb::error::Result<Vec<AuditEntry>> {
        self.entries.find(doc! { "target": target }).sort(doc! { "at": 1 }).await?.try_collect().await
    }
}
