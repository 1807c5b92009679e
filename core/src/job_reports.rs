//! The latest figures of each periodic check (the ledger audit, stuck withdrawals), kept in
//! MongoDB. Whichever worker replica runs a check records them here; every API replica exports
//! them as gauges on every sample (`http::history::Sampler`). So all exporters report the same
//! figure, a replica that once saw a mismatch does not repeat it after the next clean run, and
//! a figure nobody exports any more disappears (the gauge idle timeout) instead of freezing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::doc;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::storage::{collections, Store};

/// The ledger audit: `ledger_audit_mismatches`, `ledger_audit_users`,
/// `ledger_audit_last_run_timestamp_seconds`.
pub const LEDGER_AUDIT: &str = "ledger_audit";
/// Withdrawals in processing past the alert cutoff: `withdrawals_stuck`.
pub const WITHDRAWALS_STUCK: &str = "withdrawals_stuck";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The check (`LEDGER_AUDIT`, …).
    #[serde(rename = "_id")]
    pub check: String,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub finished_at: DateTime<Utc>,
    /// Gauge name → value.
    pub figures: BTreeMap<String, i64>,
}

#[derive(Clone)]
pub struct JobReports {
    reports: Collection<JobReport>,
}

impl JobReports {
    pub fn new(store: &Store) -> JobReports {
        JobReports { reports: store.collection(collections::JOB_REPORTS) }
    }

    /// Replaces `check`'s figures with these, finished now.
    pub async fn record(&self, check: &str, figures: &[(&str, i64)]) -> mongodb::error::Result<()> {
        let report = JobReport {
            check: check.to_owned(),
            finished_at: Utc::now(),
            figures: figures.iter().map(|(name, value)| ((*name).to_owned(), *value)).collect(),
        };
        self.reports.replace_one(doc! { "_id": check }, &report).upsert(true).await.map(drop)
    }

    /// Every check's latest report.
    pub async fn all(&self) -> mongodb::error::Result<Vec<JobReport>> {
        self.reports.find(doc! {}).await?.try_collect().await
    }
}
