//! MongoDB, the source of truth. Collections holding a user's data are sharded by hashed
//! `user_id`; every document in them carries `user_id` and every query on them filters by it, so
//! each query is routed to one shard. Idempotent records use `_id = "<user_id>:<key>"`: a hashed
//! shard key cannot back a unique secondary index, but `_id` is unique per shard and the
//! `user_id` prefix puts every copy of one key on the same shard.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use serde::Serialize;

use crate::config::MongoConfig;

/// Collection names. `USER_SCOPED` lists the ones sharded by `user_id`, whose every query must be
/// targeted (checked by the shard-targeting test).
pub mod collections {
    pub const USERS: &str = "users";
    pub const BALANCES: &str = "balances";
    pub const POSTINGS: &str = "postings";
    pub const PAYMENTS: &str = "payments";
    pub const WITHDRAWALS: &str = "withdrawals";
    pub const SUBSCRIPTIONS: &str = "subscriptions";
    /// Crypto Pay invoices we created, `_id = "<user_id>:<update id>"`.
    pub const DEPOSIT_INVOICES: &str = "deposit_invoices";

    pub const USER_SCOPED: [&str; 7] = [USERS, BALANCES, POSTINGS, PAYMENTS, WITHDRAWALS, SUBSCRIPTIONS, DEPOSIT_INVOICES];

    /// One document per incoming payment, `_id = "<provider>:<provider's id>"`: which user a
    /// payment belongs to, unique across all users. Sharded by hashed `_id` (every query on it
    /// is by `_id`).
    pub const PAYMENT_IDS: &str = "payment_ids";

    /// Platform-wide, small, not sharded.
    pub const BROADCASTS: &str = "broadcasts";
    pub const API_TOKENS: &str = "api_tokens";
    pub const ADMIN_AUDIT: &str = "admin_audit";
    /// How far reconcilers have read a provider's transaction list.
    pub const CURSORS: &str = "cursors";
    /// Admins' balance corrections waiting for a second admin, and approved ones.
    pub const ADJUSTMENTS: &str = "adjustments";
    /// The latest figures of each periodic check (`job_reports`).
    pub const JOB_REPORTS: &str = "job_reports";
    /// Support threads, one per user who asked (`support`), `_id` = the user's id.
    pub const SUPPORT_THREADS: &str = "support_threads";
    /// The runtime settings admins changed (`settings`), one document.
    pub const SETTINGS: &str = "settings";
    pub const PLATFORM: [&str; 8] = [BROADCASTS, API_TOKENS, ADMIN_AUDIT, CURSORS, ADJUSTMENTS, JOB_REPORTS, SUPPORT_THREADS, SETTINGS];
}

const DUPLICATE_KEY: i32 = 11000;
const NAMESPACE_EXISTS: i32 = 48;
const ALREADY_INITIALIZED: i32 = 23;

/// A handle on the platform's database. Cheap to clone (the driver's client is a pool).
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    db: Database,
}

impl Store {
    pub async fn connect(config: &MongoConfig) -> Result<Store, Error> {
        let mut options = ClientOptions::parse(config.uri.expose().as_str()).await?;
        options.app_name = Some(config.app_name.clone());
        options.connect_timeout = Some(Duration::from_millis(config.connect_timeout_ms));
        options.server_selection_timeout = Some(Duration::from_millis(config.server_selection_timeout_ms));
        Store::with_options(options, &config.database)
    }

    /// For callers that need to adjust the driver's options (tests install a command recorder).
    pub fn with_options(options: ClientOptions, database: &str) -> Result<Store, Error> {
        let client = Client::with_options(options)?;
        let db = client.database(database);
        Ok(Store { client, db })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn collection<T: Send + Sync>(&self, name: &str) -> Collection<T> {
        self.db.collection(name)
    }

    pub async fn ping(&self) -> Result<(), Error> {
        self.db.run_command(doc! { "ping": 1 }).await.map(drop)
    }
}

/// The server's error code, for command and write errors alike.
pub fn server_error_code(err: &Error) -> Option<i32> {
    match err.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => Some(e.code),
        ErrorKind::InsertMany(e) => e.write_errors.as_ref().and_then(|w| w.first()).map(|w| w.code),
        _ => None,
    }
}

pub fn is_duplicate_key(err: &Error) -> bool {
    server_error_code(err) == Some(DUPLICATE_KEY)
}

/// What `migrate` did; a second run reports no created collections.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct MigrationReport {
    pub created_collections: Vec<String>,
    pub indexes: Vec<String>,
    /// `Some(collections)` when connected to a `mongos` and sharding was ensured for them.
    pub sharded: Option<Vec<String>>,
}

fn index(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().name(name.to_owned()).build())
        .build()
}

/// Indexes per collection. Every user-scoped index leads with `user_id`, so it serves targeted
/// queries on one shard. The fan-out indexes serve the scheduled jobs and admin lists, which look
/// across all users: users by id and @username, postings by kind and day (stats), payments and
/// withdrawals by state (reconcilers), subscriptions by end date (reminders).
fn indexes() -> Vec<(&'static str, IndexModel)> {
    use collections::*;
    vec![
        (USERS, index(doc! { "user_id": 1 }, "users_by_id")),
        (USERS, index(doc! { "username_lc": 1 }, "users_by_username")),
        (POSTINGS, index(doc! { "user_id": 1, "created_at": -1 }, "postings_by_user_time")),
        (POSTINGS, index(doc! { "kind": 1, "created_at": 1 }, "postings_by_kind_time")),
        // The admins' platform-wide list, newest first (`Ledger::platform_postings`).
        (POSTINGS, index(doc! { "created_at": -1, "_id": -1 }, "postings_by_time")),
        (BALANCES, index(doc! { "user_id": 1 }, "balances_by_user")),
        (PAYMENTS, index(doc! { "user_id": 1, "created_at": -1 }, "payments_by_user_time")),
        (PAYMENTS, index(doc! { "status": 1, "created_at": 1 }, "payments_by_status")),
        (WITHDRAWALS, index(doc! { "user_id": 1, "created_at": -1 }, "withdrawals_by_user_time")),
        (WITHDRAWALS, index(doc! { "status": 1, "updated_at": 1 }, "withdrawals_by_status")),
        // The oldest awaiting review, read by every API replica every sample.
        (WITHDRAWALS, index(doc! { "status": 1, "created_at": 1 }, "withdrawals_by_status_age")),
        (SUBSCRIPTIONS, index(doc! { "user_id": 1, "expires_at": -1 }, "subscriptions_by_user_end")),
        (SUBSCRIPTIONS, index(doc! { "expires_at": 1 }, "subscriptions_by_end")),
        (ADMIN_AUDIT, index(doc! { "target": 1, "at": 1 }, "admin_audit_by_target")),
        (DEPOSIT_INVOICES, index(doc! { "status": 1, "created_at": 1 }, "deposit_invoices_by_status")),
        (DEPOSIT_INVOICES, index(doc! { "user_id": 1, "invoice_id": 1 }, "deposit_invoices_by_invoice")),
        (ADJUSTMENTS, index(doc! { "user_id": 1, "created_at": 1 }, "adjustments_by_user_time")),
        (SUPPORT_THREADS, index(doc! { "status": 1, "updated_at": -1, "_id": -1 }, "support_threads_by_activity")),
    ]
}

/// Creates collections and indexes and, on a sharded cluster, shards every user-scoped
/// collection on hashed `user_id`. Safe to run any number of times.
pub async fn migrate(store: &Store) -> Result<MigrationReport, Error> {
    let mut report = MigrationReport::default();
    let existing = store.db.list_collection_names().await?;
    for name in collections::USER_SCOPED.into_iter().chain([collections::PAYMENT_IDS]).chain(collections::PLATFORM) {
        if existing.iter().any(|e| e == name) {
            continue;
        }
        // Created up front: multi-document transactions must not be the first writer.
        match store.db.create_collection(name).await {
            Ok(()) => report.created_collections.push(name.to_owned()),
            Err(e) if server_error_code(&e) == Some(NAMESPACE_EXISTS) => {}
            Err(e) => return Err(e),
        }
    }
    for (collection, model) in indexes() {
        let name = model.options.as_ref().and_then(|o| o.name.clone()).unwrap_or_default();
        store.collection::<Document>(collection).create_index(model).await?;
        report.indexes.push(format!("{collection}.{name}"));
    }
    if is_mongos(store).await? {
        report.sharded = Some(shard_user_collections(store).await?);
    }
    Ok(report)
}

async fn is_mongos(store: &Store) -> Result<bool, Error> {
    let hello = store.client.database("admin").run_command(doc! { "hello": 1 }).await?;
    Ok(hello.get_str("msg") == Ok("isdbgrid"))
}

async fn shard_user_collections(store: &Store) -> Result<Vec<String>, Error> {
    let admin = store.client.database("admin");
    let db = store.db.name();
    tolerate_already_done(admin.run_command(doc! { "enableSharding": db }).await)?;
    let mut sharded = Vec::new();
    for name in collections::USER_SCOPED {
        let namespace = format!("{db}.{name}");
        let command = doc! { "shardCollection": &namespace, "key": { "user_id": "hashed" } };
        tolerate_already_done(admin.run_command(command).await)?;
        sharded.push(namespace);
    }
    let namespace = format!("{db}.{}", collections::PAYMENT_IDS);
    tolerate_already_done(admin.run_command(doc! { "shardCollection": &namespace, "key": { "_id": "hashed" } }).await)?;
    sharded.push(namespace);
    Ok(sharded)
}

/// Current servers answer `ok` when sharding is already set up as asked; older ones say
/// AlreadyInitialized. Both mean there is nothing left to do.
fn tolerate_already_done(result: Result<Document, Error>) -> Result<(), Error> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if server_error_code(&e) == Some(ALREADY_INITIALIZED) => Ok(()),
        Err(e) => Err(e),
    }
}
