//! The handler tree on real Update JSON, with real MongoDB and Redis.

use mongodb::options::ClientOptions;
use obentchi_bot::handlers::{handle, Deps};
use obentchi_bot::i18n::{tr, Lang, Text};
use obentchi_core::config::{RedisConfig, RedisMode};
use obentchi_core::ids::{IdempotencyKey, ProviderId, UserId};
use obentchi_core::ledger::{Ledger, Posting};
use obentchi_core::money::{Currency, Money};
use obentchi_core::outbound::{OutboundMessage, OUTBOUND_QUEUE};
use obentchi_core::payments::{PaymentJob, PaymentStatus, Payments, PAYMENTS_QUEUE};
use obentchi_core::queue::{Queue, QueueConfig};
use obentchi_core::redis_conn::RedisConn;
use obentchi_core::storage::{migrate, Store};
use obentchi_core::users::Users;
use obentchi_testkit::{FakeBotApi, MongoServer, RedisServer};
use teloxide::types::Me;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn me() -> Me {
    serde_json::from_value(serde_json::json!({
        "id": 7_000_000_001_i64, "is_bot": true, "first_name": "Obentchi", "username": "obentchi_bot",
        "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
        "has_main_web_app": false,
    }))
    .unwrap()
}

/// Jobs enqueued since the last call.
async fn new_jobs<T: serde::de::DeserializeOwned>(queue: &Queue) -> Vec<T> {
    queue.ensure_groups().await.unwrap();
    let mut jobs = Vec::new();
    for partition in queue.partitions() {
        for delivery in queue.fetch(partition, "test", 100).await.unwrap() {
            jobs.push(delivery.envelope.decode_payload().unwrap());
        }
    }
    jobs
}

async fn replies(queue: &Queue) -> Vec<OutboundMessage> {
    new_jobs(queue).await
}

struct World {
    _servers: (RedisServer, MongoServer),
    bot_api: FakeBotApi,
    deps: Deps,
}

async fn world() -> World {
    let (redis, mongo) = (RedisServer::start(), MongoServer::start());
    let bot_api = FakeBotApi::start().await;
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
    migrate(&store).await.unwrap();
    let redis_config = RedisConfig::from_urls(RedisMode::Single, [redis.url()]).expect("a redis URL");
    let redis_conn = RedisConn::connect(&redis_config).await.unwrap();
    let ledger = Ledger::new(store.clone());
    let deps = Deps {
        users: Users::new(&store),
        payments: Payments::new(&store, ledger.clone()),
        payment_jobs: Queue::new(PAYMENTS_QUEUE, QueueConfig::default(), redis_conn.clone()),
        ledger,
        outbound: Queue::new(OUTBOUND_QUEUE, QueueConfig::default(), redis_conn),
        bot: teloxide::Bot::new("7000000001:test").set_api_url(bot_api.url().parse().unwrap()),
        bot_id: "7000000001".into(),
    };
    World { _servers: (redis, mongo), bot_api, deps }
}

const AMINA: i64 = 581_234_567;
const REFERRER: i64 = 402_118_833;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_registers_with_a_valid_referrer_and_answers_once_per_update() {
    let w = world().await;
    let (deps, amina) = (&w.deps, UserId::new(AMINA).unwrap());
    deps.users.register(UserId::new(REFERRER).unwrap(), None).await.unwrap();

    // /start ref_402118833, handled twice (a redelivery): registered with the referrer, one reply.
    let start = fixture("message");
    handle(&start, &me(), deps).await.unwrap();
    handle(&start, &me(), deps).await.unwrap();
    let sent = replies(&deps.outbound).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].chat_id, AMINA);
    assert_eq!(sent[0].text, tr(Lang::Ar, Text::Welcome, &[]), "Arabic, from her Telegram client");
    assert_eq!(deps.users.referrer(amina).await.unwrap(), Some(UserId::new(REFERRER).unwrap()));

    // Referring oneself, or someone unknown, records nobody.
    for (id, link) in [(1001, "ref_1001"), (1002, "ref_999999")] {
        let other = start
            .replace("581234567", &id.to_string())
            .replace("ref_402118833", link)
            .replace("815203001", &(815_300_000 + id).to_string());
        handle(&other, &me(), deps).await.unwrap();
        assert_eq!(deps.users.referrer(UserId::new(id).unwrap()).await.unwrap(), None, "{link}");
    }
    replies(&deps.outbound).await;

    // /balance reads the ledger.
    let deposit = Posting::deposit(
        amina,
        IdempotencyKey::new("stars:x").unwrap(),
        ProviderId::new("telegram_stars").unwrap(),
        Money::from_minor(Currency::Xtr, 250),
        "deposit",
    )
    .unwrap();
    deps.ledger.post(&deposit).await.unwrap();
    let balance = start.replace("815203001", "815203010").replace("/start ref_402118833", "/balance").replace("\"length\":6", "\"length\":8");
    handle(&balance, &me(), deps).await.unwrap();
    let sent = replies(&deps.outbound).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].text.contains("250 XTR"), "{}", sent[0].text);

    // /language offers every language; pressing one switches the answers to it.
    let language = start.replace("815203001", "815203011").replace("/start ref_402118833", "/language").replace("\"length\":6", "\"length\":9");
    handle(&language, &me(), deps).await.unwrap();
    let keyboard = replies(&deps.outbound).await.remove(0).reply_markup.expect("a keyboard");
    assert_eq!(keyboard["inline_keyboard"][0].as_array().unwrap().len(), 3);
    let press = fixture("callback_query").replace("history:2", "lang:ru");
    handle(&press, &me(), deps).await.unwrap();
    assert_eq!(replies(&deps.outbound).await[0].text, tr(Lang::Ru, Text::LanguageChosen, &[]));
    assert!(w.bot_api.calls().iter().any(|c| c.method.eq_ignore_ascii_case("answercallbackquery")));
    let help = start.replace("815203001", "815203012").replace("/start ref_402118833", "/help").replace("\"length\":6", "\"length\":5");
    handle(&help, &me(), deps).await.unwrap();
    assert_eq!(replies(&deps.outbound).await[0].text, tr(Lang::Ru, Text::Help, &[]));

    // Kinds the tree does not handle, including newer ones, are left alone.
    for name in ["newer_kind", "my_chat_member"] {
        handle(&fixture(name), &me(), deps).await.unwrap();
    }
    assert!(replies(&deps.outbound).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stars_deposit_goes_from_invoice_to_a_credited_balance_once() {
    let w = world().await;
    let (deps, amina) = (&w.deps, UserId::new(AMINA).unwrap());
    let deposit = fixture("message").replace("/start ref_402118833", "/deposit 250").replace("\"length\":6", "\"length\":8");
    handle(&deposit, &me(), deps).await.unwrap();
    let sent = replies(&deps.outbound).await;
    let invoice = sent[0].invoice.as_ref().expect("an invoice");
    assert_eq!((invoice.stars, invoice.payload.as_str()), (250, "deposit:581234567:815203001"));

    let refused = fixture("message").replace("/start ref_402118833", "/deposit 0.5").replace("\"length\":6", "\"length\":8");
    handle(&refused.replace("815203001", "815203020"), &me(), deps).await.unwrap();
    assert!(replies(&deps.outbound).await[0].invoice.is_none(), "no invoice for half a star");

    // pre_checkout_query: ours is approved; one for somebody else's invoice is refused.
    handle(&fixture("pre_checkout_query"), &me(), deps).await.unwrap();
    let foreign = fixture("pre_checkout_query").replace("deposit:581234567", "deposit:402118833");
    handle(&foreign, &me(), deps).await.unwrap();
    let answers: Vec<_> = w.bot_api.calls().into_iter().filter(|c| c.method.eq_ignore_ascii_case("answerprecheckoutquery")).collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].body["ok"], true);
    assert_eq!(answers[1].body["ok"], false);
    // In the payer's language (Arabic here, from the Telegram client).
    assert_eq!(answers[1].body["error_message"], tr(Lang::Ar, Text::InvoiceNotYours, &[]));

    // successful_payment, delivered twice: recorded, one payment job, credited once.
    handle(&fixture("successful_payment"), &me(), deps).await.unwrap();
    handle(&fixture("successful_payment"), &me(), deps).await.unwrap();
    let jobs: Vec<PaymentJob> = new_jobs(&deps.payment_jobs).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(deps.payments.status(&jobs[0]).await.unwrap(), Some(PaymentStatus::Received));
    deps.payments.credit(&jobs[0]).await.unwrap();
    deps.payments.credit(&jobs[0]).await.unwrap();
    let stars = deps.ledger.balance(amina, obentchi_core::ledger::UserAccount::Available, Currency::Xtr).await.unwrap();
    assert_eq!(stars.minor(), 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_through_the_ledger_with_buttons() {
    let w = world().await;
    let (deps, amina) = (&w.deps, UserId::new(AMINA).unwrap());
    for n in 1..=7 {
        let deposit = Posting::deposit(
            amina,
            IdempotencyKey::new(format!("stars:{n}")).unwrap(),
            ProviderId::new("telegram_stars").unwrap(),
            Money::from_minor(Currency::Xtr, n * 10),
            "deposit",
        )
        .unwrap();
        deps.ledger.post(&deposit).await.unwrap();
    }
    let history = fixture("message").replace("/start ref_402118833", "/history").replace("\"length\":6", "\"length\":8");
    handle(&history, &me(), deps).await.unwrap();
    let page_one = replies(&deps.outbound).await.remove(0);
    assert_eq!(page_one.text.lines().count(), 1 + 5, "{}", page_one.text);
    assert!(page_one.text.contains("70 XTR"), "newest first: {}", page_one.text);
    let buttons = &page_one.reply_markup.as_ref().expect("buttons")["inline_keyboard"][0];
    assert_eq!(buttons.as_array().unwrap().len(), 1);
    assert_eq!(buttons[0]["callback_data"], "history:2");

    let next = fixture("callback_query");
    handle(&next, &me(), deps).await.unwrap();
    let page_two = replies(&deps.outbound).await.remove(0);
    assert_eq!(page_two.text.lines().count(), 1 + 2, "{}", page_two.text);
    assert!(page_two.text.contains("10 XTR"));
    assert_eq!(page_two.reply_markup.unwrap()["inline_keyboard"][0][0]["callback_data"], "history:1");
}
