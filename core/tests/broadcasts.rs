//! Broadcast audiences against real MongoDB and Redis: who gets one, in which language, and who
//! turned them off.

mod support;

use std::collections::BTreeMap;

use apalis_redis_streams::Queue;
use chrono::{Duration, Utc};
use mongodb::bson::doc;
use obentchi_core::broadcasts::{Audience, BroadcastJob, BroadcastMessage, Broadcasts, Step};
use obentchi_core::config::{RedisConfig, RedisMode};
use obentchi_core::i18n::Lang;
use obentchi_core::ledger::{Ledger, Posting};
use obentchi_core::money::{Currency, Money};
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::queues::QueuesConfig;
use obentchi_core::storage::collections;
use obentchi_core::subscriptions::{Plan, Subscriptions};
use obentchi_core::users::{Notification, Registration, Sender, Users};
use obentchi_testkit::RedisServer;
use support::{key, spawn_store, stars_provider, user};

/// Every message the broadcasts enqueued, by chat.
async fn sent(outbound: &Queue) -> BTreeMap<i64, String> {
    outbound.ensure_groups().await.unwrap();
    let mut sent = BTreeMap::new();
    for partition in outbound.partitions() {
        for delivery in outbound.fetch(partition, "test", 1_000).await.unwrap().deliveries {
            let message: OutboundMessage = delivery.envelope.decode_payload().unwrap();
            assert!(sent.insert(message.chat_id, message.text).is_none(), "one message per user");
        }
    }
    sent
}

async fn run_to_the_end(broadcasts: &Broadcasts, id: &str) {
    let job = BroadcastJob { broadcast_id: id.to_owned() };
    while let Step::Continued { .. } = broadcasts.step(&job).await.unwrap() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_its_audience_in_their_language_and_skips_who_turned_broadcasts_off() {
    let t = spawn_store().await;
    let redis_server = RedisServer::start();
    let redis = RedisConfig::from_urls(RedisMode::Single, [redis_server.url()]).unwrap().connect().await.unwrap();
    let queues = QueuesConfig::default();
    let (outbound, steps) = (queues.open("outbound", &redis).unwrap(), queues.open("broadcasts", &redis).unwrap());
    let broadcasts = Broadcasts::new(&t.store, outbound.clone(), steps, 2);
    let users = Users::new(&t.store);
    // 1: Arabic by default; 2: a French client; 3: chose English; 4: French, broadcasts off;
    // 5: French and subscribed; 6: French, last seen long ago.
    for (id, client) in [(1, None), (2, Some("fr-FR")), (3, Some("de")), (4, Some("fr")), (5, Some("fr")), (6, Some("fr"))] {
        let sender = Sender { telegram_language: client, in_private: true, ..Sender::default() };
        users.register(user(id), Registration { referrer: None, sender }).await.unwrap();
    }
    users.set_language(user(3), Lang::En.code()).await.unwrap();
    users.set_notification(user(4), Notification::Broadcasts, false).await.unwrap();
    let ledger = Ledger::new(t.store.clone());
    let stars = Money::from_minor(Currency::Xtr, 100);
    ledger.post(&Posting::deposit(user(5), key("seed:5"), stars_provider(), stars, "seed").unwrap()).await.unwrap();
    let plan = Plan::new("month", stars, 30).unwrap();
    Subscriptions::new(&t.store, ledger).purchase(user(5), None, &plan, &key("buy:5"), 0).await.unwrap();
    let long_ago = Utc::now() - Duration::days(90);
    let users_collection = t.store.collection::<mongodb::bson::Document>(collections::USERS);
    users_collection.update_one(doc! { "_id": 6_i64, "user_id": 6_i64 }, doc! { "$set": { "last_seen_at": long_ago } }).await.unwrap();

    // To everyone who takes broadcasts, with a French text: batches of two, in order.
    let texts = BTreeMap::from([("fr".to_owned(), "Bonjour".to_owned())]);
    let to_all = BroadcastMessage { text: "مرحبا".into(), texts: texts.clone(), audience: Audience::default() };
    broadcasts.start("all", &to_all).await.unwrap();
    run_to_the_end(&broadcasts, "all").await;
    let expected = BTreeMap::from([(1, "مرحبا"), (2, "Bonjour"), (3, "مرحبا"), (5, "Bonjour"), (6, "Bonjour")].map(|(id, t)| (id, t.to_owned())));
    assert_eq!(sent(&outbound).await, expected, "user 4 turned broadcasts off");
    assert_eq!(broadcasts.get("all").await.unwrap().enqueued, 5);

    // French readers seen in the last month.
    let recent_french = Audience { languages: vec![Lang::Fr], seen_since: Some(Utc::now() - Duration::days(30)), ..Audience::default() };
    broadcasts.start("fr", &BroadcastMessage { text: "-".into(), texts: texts.clone(), audience: recent_french }).await.unwrap();
    run_to_the_end(&broadcasts, "fr").await;
    assert_eq!(sent(&outbound).await.into_keys().collect::<Vec<_>>(), [2, 5]);

    // Subscribers only.
    let subscribers = Audience { subscribers_only: true, ..Audience::default() };
    broadcasts.start("subs", &BroadcastMessage { text: "-".into(), texts, audience: subscribers }).await.unwrap();
    run_to_the_end(&broadcasts, "subs").await;
    assert_eq!(sent(&outbound).await, BTreeMap::from([(5, "Bonjour".to_owned())]));
    assert!(t.recorder.violations().is_empty(), "{:?}", t.recorder.violations());
}
