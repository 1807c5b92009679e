//! Settings admins change at run time: the plans on sale, the referral commission and each
//! currency's withdrawal policy (limits, fee, auto-approval threshold).
//!
//! MongoDB holds them once an admin changed them (one document, with a version that every
//! change advances by compare-and-set, so two admins cannot overwrite each other unseen);
//! until then the configuration's values apply. Every process that decides with them keeps a
//! `LiveSettings`, re-read every `REFRESH` so a change reaches every replica within seconds.
//! A decision reads one snapshot, so it never mixes two versions.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::doc;
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::storage::{collections, is_duplicate_key, Store};
use crate::subscriptions::SubscriptionsConfig;
use crate::withdrawals::WithdrawalPolicies;

/// How often a process re-reads the settings.
pub const REFRESH: Duration = Duration::from_secs(2);

const DOCUMENT_ID: &str = "runtime";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Plans on sale and the referrer's share of each purchase.
    pub subscriptions: SubscriptionsConfig,
    /// One policy per currency users may withdraw.
    pub withdrawals: WithdrawalPolicies,
}

/// The settings in force and their version (0: the configuration's, never changed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    pub version: i64,
    pub settings: RuntimeSettings,
    /// Who made the change (the API token's name), and when; absent for the configuration's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "bson::serde_helpers::chrono_datetime_as_bson_datetime_optional")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("the settings changed meanwhile (now version {current}); read them again and retry")]
    VersionConflict { current: i64 },
    #[error(transparent)]
    Storage(#[from] mongodb::error::Error),
}

/// The stored settings, with the configuration's as defaults.
#[derive(Clone)]
pub struct SettingsStore {
    settings: Collection<Versioned>,
    defaults: RuntimeSettings,
}

impl SettingsStore {
    pub fn new(store: &Store, defaults: RuntimeSettings) -> SettingsStore {
        SettingsStore { settings: store.collection(collections::SETTINGS), defaults }
    }

    /// The settings in force.
    pub async fn current(&self) -> mongodb::error::Result<Versioned> {
        let stored = self.settings.find_one(doc! { "_id": DOCUMENT_ID }).await?;
        Ok(stored.unwrap_or_else(|| Versioned { version: 0, settings: self.defaults.clone(), updated_by: None, updated_at: None }))
    }

    /// Replaces the settings if they are still at `expected_version`; returns the new version.
    pub async fn replace(&self, expected_version: i64, settings: RuntimeSettings, by: &str) -> Result<Versioned, SettingsError> {
        let next = Versioned { version: expected_version + 1, settings, updated_by: Some(by.to_owned()), updated_at: Some(Utc::now()) };
        let mut document = bson::to_document(&next).map_err(mongodb::error::Error::from)?;
        document.insert("_id", DOCUMENT_ID);
        let written = if expected_version == 0 {
            match self.settings.clone_with_type::<bson::Document>().insert_one(document).await {
                Ok(_) => true,
                Err(err) if is_duplicate_key(&err) => false,
                Err(err) => return Err(err.into()),
            }
        } else {
            let filter = doc! { "_id": DOCUMENT_ID, "version": expected_version };
            self.settings.clone_with_type::<bson::Document>().replace_one(filter, document).await?.matched_count == 1
        };
        if !written {
            return Err(SettingsError::VersionConflict { current: self.current().await?.version });
        }
        Ok(next)
    }
}

/// The settings as this process decides with them: a snapshot, replaced when a re-read finds
/// a newer version.
#[derive(Clone)]
pub struct LiveSettings {
    snapshot: Arc<RwLock<Arc<Versioned>>>,
}

impl LiveSettings {
    /// Reads the settings once (so the first decision uses the stored ones), then keeps them
    /// fresh every `every` until `stop`. A failed re-read keeps the last good snapshot.
    pub async fn start(store: SettingsStore, every: Duration, stop: CancellationToken) -> mongodb::error::Result<LiveSettings> {
        let live = LiveSettings { snapshot: Arc::new(RwLock::new(Arc::new(store.current().await?))) };
        let refreshed = live.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match store.current().await {
                    Ok(current) => refreshed.offer(current),
                    Err(err) => tracing::warn!(%err, "runtime settings not re-read; the last ones stay"),
                }
            }
        });
        Ok(live)
    }

    fn offer(&self, current: Versioned) {
        let mut snapshot = self.snapshot.write().expect("settings lock");
        if current.version != snapshot.version {
            tracing::info!(version = current.version, by = current.updated_by.as_deref().unwrap_or("configuration"), "runtime settings changed");
            *snapshot = Arc::new(current);
        }
    }

    /// The settings to decide one thing with.
    pub fn current(&self) -> Arc<Versioned> {
        self.snapshot.read().expect("settings lock").clone()
    }
}
