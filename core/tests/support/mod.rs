//! Test helpers shared by the core integration tests.
#![allow(dead_code)] // each test binary uses a different part of this module


use mongodb::options::ClientOptions;
use obentchi_core::ids::{IdempotencyKey, ProviderId, UserId};
use obentchi_core::money::{Currency, Money};
use obentchi_core::storage::{collections, migrate, Store};
use obentchi_testkit::{CommandRecorder, MongoServer};

/// A migrated database on a fresh MongoDB-wire server, with every driver command recorded so
/// the test can assert that all user-scoped queries were shard-targeted.
pub struct TestStore {
    pub store: Store,
    pub recorder: CommandRecorder,
    pub server: MongoServer,
}

pub async fn spawn_store() -> TestStore {
    let server = MongoServer::start();
    let mut options = ClientOptions::parse(server.uri()).await.expect("parse test uri");
    let recorder = CommandRecorder::new(&collections::USER_SCOPED);
    recorder.install(&mut options);
    let store = Store::with_options(options, "obentchi_test").expect("client");
    migrate(&store).await.expect("migrate");
    TestStore { store, recorder, server }
}

pub fn user(id: i64) -> UserId {
    UserId::new(id).unwrap()
}

pub fn key(k: impl Into<String>) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

pub fn usdt(minor: i64) -> Money {
    Money::from_minor(Currency::Usdt, minor)
}

pub fn stars_provider() -> ProviderId {
    ProviderId::new("telegram_stars").unwrap()
}
