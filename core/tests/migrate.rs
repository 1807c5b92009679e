//! `migrate` against a real MongoDB-wire server.

mod support;

use futures::TryStreamExt;
use mongodb::bson::Document;
use obentchi_core::ledger::{Ledger, Posting, UserAccount};
use obentchi_core::money::Currency;
use obentchi_core::storage::{collections, migrate, Store};
use support::{key, spawn_store, stars_provider, user, usdt};

async fn index_names(store: &Store) -> Vec<String> {
    let mut names = Vec::new();
    for collection in collections::USER_SCOPED {
        let specs: Vec<_> = store.collection::<Document>(collection).list_indexes().await.unwrap().try_collect().await.unwrap();
        names.extend(specs.into_iter().map(|i| format!("{collection}.{}", i.options.and_then(|o| o.name).unwrap_or_default())));
    }
    names.sort();
    names
}

#[tokio::test]
async fn migrate_twice_is_a_no_op() {
    let t = spawn_store().await; // already migrated once
    let ledger = Ledger::new(t.store.clone());
    ledger.post(&Posting::deposit(user(9), key("d"), stars_provider(), usdt(7), "deposit").unwrap()).await.unwrap();
    let before = index_names(&t.store).await;
    assert!(before.contains(&"postings.postings_by_user_time".to_owned()), "{before:?}");

    let report = migrate(&t.store).await.unwrap();
    assert!(report.created_collections.is_empty(), "second run created {:?}", report.created_collections);
    assert_eq!(report.sharded, None, "the local server is not a mongos");
    assert_eq!(index_names(&t.store).await, before);
    assert_eq!(ledger.balance(user(9), UserAccount::Available, Currency::Usdt).await.unwrap(), usdt(7));
    t.recorder.assert_all_targeted();
}
