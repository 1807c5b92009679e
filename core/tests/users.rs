//! Users against a real MongoDB-wire server: registered at first contact, kept current without a
//! write per update, @usernames held by one user at a time, referrers set once. Every command
//! on the users collection is shard-targeted or declared a fan-out.

mod support;

use mongodb::bson::{doc, Document};
use obentchi_core::storage::collections;
use obentchi_core::users::{Registration, Sender, UserFilter, Users};
use support::{spawn_store, user};

fn sender<'a>(username: Option<&'a str>, first_name: &'a str) -> Sender<'a> {
    Sender { username, first_name: Some(first_name), last_name: None, telegram_language: Some("en"), in_private: true }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_contact_registers_once_and_later_updates_write_only_what_changed() {
    let t = spawn_store().await;
    let users = Users::new(&t.store);
    let raw = t.store.collection::<Document>(collections::USERS);
    let amina = user(501);

    let profile = users.observe(amina, &sender(Some("amina"), "Amina")).await.unwrap();
    assert_eq!((profile.username.as_deref(), profile.first_name.as_deref()), (Some("amina"), Some("Amina")));
    assert_eq!(profile.telegram_language.as_deref(), Some("en"));
    let stamp = |doc: Document| doc.get_datetime("updated_at").copied().unwrap();
    let first = stamp(raw.find_one(doc! { "_id": 501_i64, "user_id": 501_i64 }).await.unwrap().unwrap());

    // The same sender again, and a client that does not tell its language: nothing is written.
    users.observe(amina, &sender(Some("amina"), "Amina")).await.unwrap();
    users.observe(amina, &Sender { telegram_language: None, ..sender(Some("amina"), "Amina") }).await.unwrap();
    let unchanged = raw.find_one(doc! { "_id": 501_i64, "user_id": 501_i64 }).await.unwrap().unwrap();
    assert_eq!(stamp(unchanged.clone()), first, "no write for an update that changes nothing");
    assert_eq!(unchanged.get_str("telegram_language").unwrap(), "en");
    assert_eq!(users.count().await.unwrap(), 1);

    // A new name and language are stored.
    let renamed = users.observe(amina, &Sender { telegram_language: Some("ar"), ..sender(Some("amina"), "Amina K.") }).await.unwrap();
    assert_eq!((renamed.first_name.as_deref(), renamed.telegram_language.as_deref()), (Some("Amina K."), Some("ar")));
    t.recorder.assert_all_targeted();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_username_belongs_to_whoever_showed_it_last() {
    let t = spawn_store().await;
    let users = Users::new(&t.store);
    let (old_holder, new_holder) = (user(601), user(602));
    let found = async |prefix: &str| -> Vec<i64> {
        users.search(UserFilter::UsernamePrefix(prefix), None, 10).await.unwrap().iter().map(|u| u.user_id.get()).collect()
    };

    users.observe(old_holder, &sender(Some("Crypto_Fan"), "Old")).await.unwrap();
    assert_eq!(found("crypto_fan").await, vec![601]);
    // The old holder renames; the name is free and someone else takes it.
    users.observe(old_holder, &sender(Some("someone_else"), "Old")).await.unwrap();
    users.observe(new_holder, &sender(Some("crypto_fan"), "New")).await.unwrap();
    assert_eq!(found("crypto_fan").await, vec![602]);
    assert_eq!(found("someone").await, vec![601]);

    // Telegram can also hand a name over without the old holder ever writing again: the new
    // holder's update takes it from them.
    let silent = user(603);
    users.observe(silent, &sender(Some("ton_whale"), "Silent")).await.unwrap();
    users.observe(new_holder, &sender(Some("ton_whale"), "New")).await.unwrap();
    assert_eq!(found("ton_whale").await, vec![602]);
    assert_eq!(users.profile(silent).await.unwrap().unwrap().username, None);
    t.recorder.assert_all_targeted();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referrer_is_set_once_to_a_known_user_other_than_oneself() {
    let t = spawn_store().await;
    let users = Users::new(&t.store);
    let (referrer, other, newcomer) = (user(701), user(702), user(703));
    users.register(referrer, Registration::default()).await.unwrap();
    users.register(other, Registration::default()).await.unwrap();
    // Seen first through /balance: no referrer yet.
    users.observe(newcomer, &sender(None, "Newcomer")).await.unwrap();

    assert!(!users.set_referrer(newcomer, newcomer).await.unwrap(), "not oneself");
    assert!(!users.set_referrer(newcomer, user(799)).await.unwrap(), "not an unknown user");
    assert!(users.set_referrer(newcomer, referrer).await.unwrap());
    assert!(!users.set_referrer(newcomer, other).await.unwrap(), "only once");
    assert!(!users.set_referrer(newcomer, referrer).await.unwrap(), "a repeated /start counts once");
    assert_eq!(users.profile(newcomer).await.unwrap().unwrap().referrer, Some(referrer));
    assert_eq!(users.profile(referrer).await.unwrap().unwrap().referrals, 1);
    assert_eq!(users.profile(other).await.unwrap().unwrap().referrals, 0);
    t.recorder.assert_all_targeted();
}
