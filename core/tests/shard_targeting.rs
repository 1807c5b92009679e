//! The command recorder that the storage tests rely on really sees the driver's commands and
//! flags an untargeted one; otherwise "all targeted" would prove nothing.

mod support;

use mongodb::bson::{doc, Bson, Document};
use obentchi_core::broadcasts::FAN_OUT_COMMENT;
use obentchi_core::storage::collections;
use support::spawn_store;

#[tokio::test]
async fn the_recorder_flags_a_query_without_the_shard_key() {
    let t = spawn_store().await;
    let postings = t.store.collection::<Document>(collections::POSTINGS);
    postings.insert_one(doc! { "_id": "1:k", "user_id": 1_i64 }).await.unwrap();
    postings.find_one(doc! { "_id": "1:k", "user_id": 1_i64 }).await.unwrap();
    assert!(t.recorder.violations().is_empty());

    postings.find_one(doc! { "_id": "1:k" }).await.unwrap();
    postings.insert_one(doc! { "_id": "2:k" }).await.unwrap();
    let flagged: Vec<_> = t.recorder.violations().into_iter().map(|v| v.command).collect();
    assert_eq!(flagged, ["find", "insert"]);

    // A deliberate fan-out says so in its comment, and only then passes.
    let users = t.store.collection::<Document>(collections::USERS);
    users.find_one(doc! {}).comment(Bson::String(FAN_OUT_COMMENT.into())).await.unwrap();
    assert_eq!(t.recorder.violations().len(), 2);
    users.find_one(doc! {}).await.unwrap();
    assert_eq!(t.recorder.violations().len(), 3);
}
