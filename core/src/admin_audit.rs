//! The admin audit log: every change made through the admin API, who made it (the token's id
//! and name), what it targeted and how it ended. It fails closed: before a change, its attempt
//! is written (`record_attempt`), and a change whose attempt cannot be written does not happen.
//! How it ended is written after the change (`record`); if that write fails, the attempt entry
//! still says who tried what.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::doc;
use mongodb::bson::oid::ObjectId;
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

/// An entry as stored, with its id (time-ordered: the list's cursor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAuditEntry {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// Which entries an admin lists: each set field must match exactly.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub target: Option<String>,
    pub token_id: Option<String>,
}

#[derive(Clone)]
pub struct AdminAudit {
    entries: Collection<AuditEntry>,
}

impl AdminAudit {
    pub fn new(store: &Store) -> AdminAudit {
        AdminAudit { entries: store.collection(collections::ADMIN_AUDIT) }
    }

    /// Entries matching `filter`, newest first, `limit` (at most 200) from before `before` (an
    /// entry's id, the cursor of the previous page).
    pub async fn list(&self, filter: &AuditFilter, before: Option<ObjectId>, limit: u32) -> mongodb::error::Result<Vec<StoredAuditEntry>> {
        let mut query = doc! {};
        if let Some(action) = &filter.action {
            query.insert("action", action);
        }
        if let Some(target) = &filter.target {
            query.insert("target", target);
        }
        if let Some(token_id) = &filter.token_id {
            query.insert("token_id", token_id);
        }
        if let Some(before) = before {
            query.insert("_id", doc! { "$lt": before });
        }
        self.entries
            .clone_with_type::<StoredAuditEntry>()
            .find(query)
            .sort(doc! { "_id": -1 })
            .limit(i64::from(limit.clamp(1, 200)))
            .await?
            .try_collect()
            .await
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
