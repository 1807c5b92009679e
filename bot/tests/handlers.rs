//! The handler tree on real Update JSON, with real MongoDB and Redis.

use mongodb::options::ClientOptions;
use obentchi_bot::handlers::{handle, Deps};
use apalis_redis_streams::Queue;
use obentchi_core::i18n::{tr, Lang, Text};
use obentchi_bot::Config;
use obentchi_core::config;
use obentchi_core::ids::{IdempotencyKey, ProviderId, UserId};
use obentchi_core::ledger::{Posting, UserAccount};
use obentchi_core::money::{Currency, Money};
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::payments::{PaymentJob, PaymentStatus};
use obentchi_core::settings::{LiveSettings, SettingsStore};
use obentchi_core::storage::{migrate, Store};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use obentchi_core::withdrawals::{WithdrawalJob, WithdrawalStatus};
use obentchi_testkit::updates::{self, TelegramUser};
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
        for delivery in queue.fetch(partition, "test", 100).await.unwrap().deliveries {
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
    /// Where admins change plans, commission and policies (the handlers re-read it every 50 ms).
    settings: SettingsStore,
}

/// Withdrawal limits small enough to reach in a test.
const TEST_SETTINGS: &str = r#"
[subscriptions]
referral_commission_bps = 1000
plans = [{ id = "month", price = "100 XTR", days = 30 }, { id = "year", price = "1000 XTR", days = 365 }]
[withdrawals]
min = "100 XTR"
max = "500 XTR"
daily_limit = "600 XTR"
fee = "5 XTR"
auto_approve_up_to = "300 XTR"
address_format = "ton"
[support]
admin_chat_ids = [777]
"#;

/// The admin chat of `TEST_SETTINGS`.
const ADMIN_CHAT: i64 = 777;

async fn world() -> World {
    world_with(TEST_SETTINGS).await
}

/// A world with these plans and withdrawal policies.
async fn world_with(test_settings: &str) -> World {
    let (redis, mongo) = (RedisServer::start(), MongoServer::start());
    let bot_api = FakeBotApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bot.toml");
    let settings = format!(
        "[mongodb]\nuri = \"{}\"\n[redis]\nurls = [\"{}\"]\n[telegram]\nbot_token = \"7000000001:test\"\napi_url = \"{}\"\n[webhook]\nsecret = \"handlers-webhook-secret-of-at-least-32-bytes\"\n{test_settings}",
        mongo.uri(),
        redis.url(),
        bot_api.url()
    );
    std::fs::write(&file, settings).unwrap();
    let config: Config = config::load(&[file]).unwrap();
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
    migrate(&store).await.unwrap();
    let redis_conn = config.redis.connect().await.unwrap();
    let bot = teloxide::Bot::new("7000000001:test").set_api_url(bot_api.url().parse().unwrap());
    let settings = SettingsStore::new(&store, config.runtime_settings());
    let live = LiveSettings::start(settings.clone(), Duration::from_millis(50), CancellationToken::new()).await.unwrap();
    let deps = Deps::build(&config, &store, &redis_conn, bot, live);
    World { _servers: (redis, mongo), bot_api, deps, settings }
}

/// A private-chat message from `from` as Telegram sends it (an English-speaking client).
fn message_from(from: i64, update_id: u32, text: &str) -> String {
    updates::message(update_id, update_id % 100_000, &TelegramUser::new(from, "Amina", Some("en")), updates::text(text)).to_string()
}

/// A press on an inline button with `data`, under a message the bot sent to `from`.
fn press_from(from: i64, update_id: u32, data: &str) -> String {
    updates::callback_query(update_id, &TelegramUser::new(from, "Amina", Some("en")), 1, data).to_string()
}

/// Credits `stars` to `user` as a Stars deposit would.
async fn fund(deps: &Deps, user: i64, key: &str, stars: i64) {
    let deposit = Posting::deposit(
        UserId::new(user).unwrap(),
        IdempotencyKey::new(key).unwrap(),
        ProviderId::new("telegram_stars").unwrap(),
        Money::from_minor(Currency::Xtr, stars),
        "deposit",
    )
    .unwrap();
    deps.ledger.post(&deposit).await.unwrap();
}

async fn available(deps: &Deps, user: i64) -> i64 {
    deps.ledger.balance(UserId::new(user).unwrap(), UserAccount::Available, Currency::Xtr).await.unwrap().minor()
}

const AMINA: i64 = 581_234_567;
const REFERRER: i64 = 402_118_833;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_registers_with_a_valid_referrer_and_answers_once_per_update() {
    let w = world().await;
    let (deps, amina) = (&w.deps, UserId::new(AMINA).unwrap());
    deps.users.register(UserId::new(REFERRER).unwrap(), Default::default()).await.unwrap();

    // /start ref_402118833, handled twice (a redelivery): registered with the referrer, one reply.
    let start = fixture("message");
    handle(&start, &me(), deps).await.unwrap();
    handle(&start, &me(), deps).await.unwrap();
    let sent = replies(&deps.outbound).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].chat_id, AMINA);
    assert_eq!(sent[0].text, tr(Lang::Ar, Text::Welcome, &[]), "Arabic, from her Telegram client");
    assert_eq!(deps.users.profile(amina).await.unwrap().unwrap().referrer, Some(UserId::new(REFERRER).unwrap()));

    // Referring oneself, or someone unknown, records nobody.
    for (id, link) in [(1001, "ref_1001"), (1002, "ref_999999")] {
        let other = start
            .replace("581234567", &id.to_string())
            .replace("ref_402118833", link)
            .replace("815203001", &(815_300_000 + id).to_string());
        handle(&other, &me(), deps).await.unwrap();
        assert_eq!(deps.users.profile(UserId::new(id).unwrap()).await.unwrap().unwrap().referrer, None, "{link}");
    }
    replies(&deps.outbound).await;

    // /balance reads the ledger.
    fund(deps, AMINA, "stars:x", 250).await;
    let balance = start.replace("815203001", "815203010").replace("/start ref_402118833", "/balance").replace("\"length\":6", "\"length\":8");
    handle(&balance, &me(), deps).await.unwrap();
    let sent = replies(&deps.outbound).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].text.contains("٢٥٠ XTR"), "in Arabic digits: {}", sent[0].text);

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
    let deps = &w.deps;
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
    assert_eq!(available(deps, AMINA).await, 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_through_the_ledger_with_buttons() {
    let w = world().await;
    let deps = &w.deps;
    for n in 1..=7 {
        fund(deps, AMINA, &format!("stars:{n}"), n * 10).await;
    }
    let history = fixture("message").replace("/start ref_402118833", "/history").replace("\"length\":6", "\"length\":8");
    handle(&history, &me(), deps).await.unwrap();
    let page_one = replies(&deps.outbound).await.remove(0);
    assert_eq!(page_one.text.lines().count(), 1 + 5, "{}", page_one.text);
    assert!(page_one.text.contains("٧٠ XTR"), "newest first: {}", page_one.text);
    let buttons = &page_one.reply_markup.as_ref().expect("buttons")["inline_keyboard"][0];
    assert_eq!(buttons.as_array().unwrap().len(), 1);
    assert_eq!(buttons[0]["callback_data"], "history:2");

    let next = fixture("callback_query");
    handle(&next, &me(), deps).await.unwrap();
    let page_two = replies(&deps.outbound).await.remove(0);
    assert_eq!(page_two.text.lines().count(), 1 + 2, "{}", page_two.text);
    assert!(page_two.text.contains("١٠ XTR"));
    assert_eq!(page_two.reply_markup.unwrap()["inline_keyboard"][0][0]["callback_data"], "history:1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_is_bought_once_per_confirmation_and_pays_the_referrer() {
    let w = world().await;
    let deps = &w.deps;
    handle(&message_from(REFERRER, 100, "/start"), &me(), deps).await.unwrap();
    handle(&message_from(AMINA, 101, "/start ref_402118833"), &me(), deps).await.unwrap();
    fund(deps, AMINA, "stars:1", 250).await;
    replies(&deps.outbound).await;

    handle(&message_from(AMINA, 102, "/subscribe"), &me(), deps).await.unwrap();
    let plans = replies(&deps.outbound).await.remove(0).reply_markup.expect("plan buttons");
    assert_eq!(plans["inline_keyboard"][0][0]["callback_data"], "sub:month");
    assert_eq!(plans["inline_keyboard"][1][0]["callback_data"], "sub:year");

    handle(&press_from(AMINA, 103, "sub:month"), &me(), deps).await.unwrap();
    let confirm = replies(&deps.outbound).await.remove(0);
    assert!(confirm.text.contains("100 XTR"), "{}", confirm.text);
    let confirm_data = confirm.reply_markup.unwrap()["inline_keyboard"][0][0]["callback_data"].as_str().unwrap().to_owned();
    assert_eq!(confirm_data, "subok:month:103:100XTR:30", "the update that showed it, and the terms shown");

    // A double tap: two updates with the same button. One purchase, one commission.
    handle(&press_from(AMINA, 104, &confirm_data), &me(), deps).await.unwrap();
    handle(&press_from(AMINA, 105, &confirm_data), &me(), deps).await.unwrap();
    assert_eq!(available(deps, AMINA).await, 150);
    assert_eq!(available(deps, REFERRER).await, 10, "10 % of 100 XTR");
    let sent = replies(&deps.outbound).await;
    let to_referrer: Vec<_> = sent.iter().filter(|m| m.chat_id == REFERRER).collect();
    assert_eq!(to_referrer.len(), 1, "the referrer is told once: {sent:?}");
    assert!(sent.iter().filter(|m| m.chat_id == AMINA).all(|m| m.text.starts_with("Done: month until")), "{sent:?}");
    let until = deps.subscriptions.active_until(UserId::new(AMINA).unwrap()).await.unwrap().expect("subscribed");
    assert!(until > chrono::Utc::now() + chrono::Duration::days(29));

    // The year plan costs more than is left.
    handle(&press_from(AMINA, 106, "subok:year:106:1000XTR:365"), &me(), deps).await.unwrap();
    assert_eq!(replies(&deps.outbound).await[0].text, tr(Lang::En, Text::NotEnoughBalance, &[("amount", &"1,000 XTR")]));
    assert_eq!(available(deps, AMINA).await, 150);

    // /referral: link, one invited, 10 XTR earned.
    handle(&message_from(REFERRER, 107, "/referral"), &me(), deps).await.unwrap();
    let referral = replies(&deps.outbound).await.remove(0).text;
    assert!(referral.contains("https://t.me/obentchi_bot?start=ref_402118833"), "{referral}");
    assert!(referral.contains("Invited: 1") && referral.contains("Earned: 10 XTR") && referral.contains("10%"), "{referral}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_conversation_checks_every_step_and_requests_once() {
    let w = world().await;
    let (deps, amina) = (&w.deps, UserId::new(AMINA).unwrap());
    const TON: &str = "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG";

    // Not enough for the smallest withdrawal (100 + 5 fee).
    fund(deps, AMINA, "stars:1", 50).await;
    handle(&message_from(AMINA, 200, "/withdraw"), &me(), deps).await.unwrap();
    assert!(replies(&deps.outbound).await[0].text.starts_with("You can withdraw from 100 XTR"));

    fund(deps, AMINA, "stars:2", 950).await;
    let steps = [
        (201, "/withdraw", "How much do you want to withdraw?"),
        (202, "50", "That amount does not work: the minimum withdrawal is 100 XTR"),
        (203, "12.5", "That amount does not work: XTR allows whole amounts only"),
        (204, "200", "Send the TON address to pay 200 XTR to."),
        (205, "my wallet", "That is not a TON address."),
        (206, TON, "Withdraw 200 XTR (fee 5 XTR) to UQBv"),
    ];
    for (update, text, expected) in steps {
        handle(&message_from(AMINA, update, text), &me(), deps).await.unwrap();
        let reply = replies(&deps.outbound).await.remove(0);
        assert!(reply.text.starts_with(expected), "{text}: {}", reply.text);
    }
    // Confirmed twice (a double tap): one withdrawal, one hold, one payout job.
    handle(&press_from(AMINA, 207, "wd:ok:201"), &me(), deps).await.unwrap();
    handle(&press_from(AMINA, 208, "wd:ok:201"), &me(), deps).await.unwrap();
    let sent = replies(&deps.outbound).await;
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|m| m.text.starts_with("Withdrawal of 200 XTR approved")), "{sent:?}");
    assert_eq!(available(deps, AMINA).await, 1000 - 205);
    let jobs: Vec<WithdrawalJob> = new_jobs(&deps.withdrawal_jobs).await;
    assert_eq!(jobs, vec![WithdrawalJob { user_id: amina, request_id: "tg:201".into() }]);
    assert_eq!(deps.withdrawals.get(amina, "tg:201").await.unwrap().status, WithdrawalStatus::Approved);

    // Over the automatic approval: held, waiting for an admin, no job. Then the daily limit.
    for (update, text) in [(210, "/withdraw"), (211, "400"), (212, TON)] {
        handle(&message_from(AMINA, update, text), &me(), deps).await.unwrap();
    }
    replies(&deps.outbound).await;
    handle(&press_from(AMINA, 213, "wd:ok:210"), &me(), deps).await.unwrap();
    handle(&press_from(AMINA, 214, "wd:ok:210"), &me(), deps).await.unwrap();
    let sent = replies(&deps.outbound).await;
    assert!(sent.iter().filter(|m| m.chat_id == AMINA).all(|m| m.text.starts_with("Withdrawal of 400 XTR requested")), "{sent:?}");
    let waiting = deps.withdrawals.get(amina, "tg:210").await.unwrap();
    assert_eq!(waiting.status, WithdrawalStatus::Requested);
    // The admins are told once (the confirmation was pressed twice): who, how much, how to act.
    let told: Vec<&OutboundMessage> = sent.iter().filter(|m| m.chat_id == ADMIN_CHAT).collect();
    assert_eq!(told.len(), 1, "{sent:?}");
    assert!(told[0].text.contains(&format!("Withdrawal {} waits for review: user {AMINA}", waiting.id)), "{}", told[0].text);
    assert!(told[0].text.contains("400 XTR (fee 5 XTR)") && told[0].text.contains(&format!("POST /admin/withdrawals/{}/approve", waiting.id)), "{}", told[0].text);
    assert!(new_jobs::<WithdrawalJob>(&deps.withdrawal_jobs).await.is_empty());
    for (update, text) in [(220, "/withdraw"), (221, "100")] {
        handle(&message_from(AMINA, update, text), &me(), deps).await.unwrap();
    }
    assert_eq!(
        replies(&deps.outbound).await.last().unwrap().text,
        "That amount does not work: over the daily limit: 0 XTR left today. Send another, or /cancel."
    );

    // /cancel ends the conversation; a stale confirm button does nothing.
    handle(&message_from(AMINA, 230, "/cancel"), &me(), deps).await.unwrap();
    handle(&message_from(AMINA, 231, "150"), &me(), deps).await.unwrap();
    handle(&press_from(AMINA, 232, "wd:ok:220"), &me(), deps).await.unwrap();
    let texts: Vec<String> = replies(&deps.outbound).await.into_iter().map(|m| m.text).collect();
    assert_eq!(texts, [tr(Lang::En, Text::Cancelled, &[]), tr(Lang::En, Text::NotUnderstood, &[]), tr(Lang::En, Text::Expired, &[])]);
    assert_eq!(available(deps, AMINA).await, 1000 - 205 - 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_user_gets_a_polite_refusal_and_nothing_else_but_their_payment_is_kept() {
    let w = world().await;
    let (deps, amina) = (&w.deps, UserId::new(AMINA).unwrap());
    handle(&message_from(AMINA, 300, "/start"), &me(), deps).await.unwrap();
    fund(deps, AMINA, "stars:1", 500).await;
    deps.users.set_banned(amina, true).await.unwrap();
    replies(&deps.outbound).await;

    for (update, text) in [(301, "/balance"), (302, "/withdraw"), (303, "hello")] {
        handle(&message_from(AMINA, update, text), &me(), deps).await.unwrap();
    }
    handle(&press_from(AMINA, 304, "subok:month:304:100XTR:30"), &me(), deps).await.unwrap();
    handle(&fixture("pre_checkout_query"), &me(), deps).await.unwrap();
    let texts: Vec<String> = replies(&deps.outbound).await.into_iter().map(|m| m.text).collect();
    assert_eq!(texts, vec![tr(Lang::En, Text::Banned, &[]); 3]);
    let calls = w.bot_api.calls();
    let answer = |method: &str| calls.iter().find(|c| c.method.eq_ignore_ascii_case(method)).unwrap().body.clone();
    assert_eq!(answer("answerprecheckoutquery")["ok"], false);
    assert_eq!(answer("answercallbackquery")["text"], tr(Lang::En, Text::Banned, &[]));
    assert_eq!(available(deps, AMINA).await, 500, "nothing bought");

    // A payment Telegram already took is recorded all the same.
    handle(&fixture("successful_payment"), &me(), deps).await.unwrap();
    assert_eq!(new_jobs::<PaymentJob>(&deps.payment_jobs).await.len(), 1);
    assert!(replies(&deps.outbound).await[0].text.starts_with("تم استلام الدفع"), "in the payer's Telegram language");

    deps.users.set_banned(amina, false).await.unwrap();
    handle(&message_from(AMINA, 305, "/balance"), &me(), deps).await.unwrap();
    assert!(replies(&deps.outbound).await[0].text.contains("500 XTR"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_group_other_bots_commands_and_chatter_are_ignored_and_money_stays_private() {
    let w = world().await;
    const GROUP: i64 = -1_001_234_567_890;
    let amina = TelegramUser::new(AMINA, "Amina", Some("en"));
    let group = |update_id: u32, text: &str, replying: Option<i64>| {
        updates::group_message(update_id, &amina, GROUP, updates::text(text), replying).to_string()
    };
    fund(&w.deps, AMINA, "seed", 250).await;

    // Another bot's command, chatter, a command no bot here may have: not a word.
    for (update, text) in [(1, "/balance@some_other_bot"), (2, "hello everyone"), (3, "/roll")] {
        handle(&group(update, text, None), &me(), &w.deps).await.unwrap();
    }
    assert_eq!(replies(&w.deps.outbound).await, vec![]);

    // Our money command before Amina opened a private chat: the group learns where to ask, and
    // nothing about her money.
    handle(&group(4, "/balance@obentchi_bot", None), &me(), &w.deps).await.unwrap();
    let sent = replies(&w.deps.outbound).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].chat_id, GROUP);
    assert!(sent[0].text.contains("@obentchi_bot") && !sent[0].text.contains("250"), "{}", sent[0].text);

    // Once she has a private chat, the answer goes there; the group gets a note.
    handle(&message_from(AMINA, 5, "/start"), &me(), &w.deps).await.unwrap();
    replies(&w.deps.outbound).await;
    handle(&group(6, "/balance", None), &me(), &w.deps).await.unwrap();
    let sent = replies(&w.deps.outbound).await;
    let in_group: Vec<&OutboundMessage> = sent.iter().filter(|m| m.chat_id == GROUP).collect();
    let in_private: Vec<&OutboundMessage> = sent.iter().filter(|m| m.chat_id == AMINA).collect();
    assert_eq!((in_group.len(), in_private.len()), (1, 1), "{sent:?}");
    assert!(!in_group[0].text.contains("250"), "{}", in_group[0].text);
    assert!(in_private[0].text.contains("250"), "{}", in_private[0].text);

    // A reply to the bot in the group is for us; /help is fine in a group.
    handle(&group(7, "what can you do?", Some(42)), &me(), &w.deps).await.unwrap();
    handle(&group(8, "/help@obentchi_bot", None), &me(), &w.deps).await.unwrap();
    let sent = replies(&w.deps.outbound).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|m| m.chat_id == GROUP));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_policy_per_currency_the_user_picks_the_balance_and_its_limits_apply() {
    let w = world_with(
        r#"
[[withdrawals]]
min = "100 XTR"
max = "500 XTR"
daily_limit = "600 XTR"
fee = "5 XTR"
auto_approve_up_to = "300 XTR"
address_format = "ton"
[[withdrawals]]
min = "1 USDT"
max = "100 USDT"
daily_limit = "500 USDT"
fee = "0.5 USDT"
auto_approve_up_to = "50 USDT"
address_format = "telegram"
"#,
    )
    .await;
    let deps = &w.deps;
    let usdt = |deps: &Deps, minor| {
        let deposit = Posting::deposit(
            UserId::new(AMINA).unwrap(),
            IdempotencyKey::new(format!("usdt:{minor}")).unwrap(),
            ProviderId::new("cryptopay").unwrap(),
            Money::from_minor(Currency::Usdt, minor),
            "deposit",
        )
        .unwrap();
        let ledger = deps.ledger.clone();
        async move { ledger.post(&deposit).await.unwrap() }
    };
    // Only USDT can be withdrawn: no question asked, its limits shown.
    usdt(deps, 20_000_000).await;
    handle(&message_from(AMINA, 300, "/withdraw"), &me(), deps).await.unwrap();
    assert!(replies(&deps.outbound).await[0].text.starts_with("How much"), "USDT only");
    handle(&press_from(AMINA, 301, "cancel"), &me(), deps).await.unwrap();
    replies(&deps.outbound).await;

    // Stars too: the user picks; USDT's fee and the Telegram account (no address) follow.
    fund(deps, AMINA, "stars", 1_000).await;
    handle(&message_from(AMINA, 302, "/withdraw"), &me(), deps).await.unwrap();
    let choice = replies(&deps.outbound).await.remove(0);
    let buttons: Vec<String> = choice.reply_markup.unwrap()["inline_keyboard"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["callback_data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(buttons, ["wd:cur:XTR:302", "wd:cur:USDT:302"]);
    handle(&press_from(AMINA, 303, "wd:cur:USDT:302"), &me(), deps).await.unwrap();
    assert!(replies(&deps.outbound).await[0].text.starts_with("How much"));
    handle(&message_from(AMINA, 304, "150"), &me(), deps).await.unwrap();
    assert!(replies(&deps.outbound).await[0].text.contains("the maximum withdrawal is 100.00 USDT"), "USDT's own limit");
    handle(&message_from(AMINA, 305, "10"), &me(), deps).await.unwrap();
    let confirm = replies(&deps.outbound).await.remove(0);
    assert!(confirm.text.starts_with(&format!("Withdraw 10.00 USDT (fee 0.50 USDT) to {AMINA}")), "{}", confirm.text);
    handle(&press_from(AMINA, 306, "wd:ok:302"), &me(), deps).await.unwrap();
    assert!(replies(&deps.outbound).await[0].text.starts_with("Withdrawal of 10.00 USDT approved"));
    let withdrawal = deps.withdrawals.get(UserId::new(AMINA).unwrap(), "tg:302").await.unwrap();
    assert_eq!((withdrawal.amount, withdrawal.fee, withdrawal.address.as_str()), (Money::from_minor(Currency::Usdt, 10_000_000), Money::from_minor(Currency::Usdt, 500_000), "581234567"));
    assert_eq!(available(deps, AMINA).await, 1_000, "the Stars balance untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_messages_reach_the_admin_chats_and_an_admins_reply_reaches_the_user_once() {
    let w = world().await;
    let (deps, amina) = (&w.deps, UserId::new(AMINA).unwrap());
    const ADMIN: i64 = 900_000_001;
    let admin = TelegramUser::new(ADMIN, "Sara", Some("en"));

    handle(&message_from(AMINA, 400, "/support"), &me(), deps).await.unwrap();
    assert_eq!(replies(&deps.outbound).await[0].text, tr(Lang::En, Text::SupportStarted, &[]));
    // Two messages, the second handled twice (a redelivery): two forwards, two entries.
    handle(&message_from(AMINA, 401, "My deposit did not arrive"), &me(), deps).await.unwrap();
    handle(&message_from(AMINA, 402, "It was 250 stars"), &me(), deps).await.unwrap();
    handle(&message_from(AMINA, 402, "It was 250 stars"), &me(), deps).await.unwrap();
    let sent = replies(&deps.outbound).await;
    let forwards: Vec<&OutboundMessage> = sent.iter().filter(|m| m.chat_id == ADMIN_CHAT).collect();
    assert_eq!(forwards.len(), 2, "{sent:?}");
    assert!(forwards[0].text.contains("My deposit did not arrive") && forwards[0].text.contains(&format!("#support{AMINA}")), "{}", forwards[0].text);
    assert!(sent.iter().filter(|m| m.chat_id == AMINA).all(|m| m.text == tr(Lang::En, Text::SupportSent, &[])), "{sent:?}");
    let thread = deps.support_threads.get(amina).await.unwrap().unwrap();
    assert_eq!(thread.messages.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["My deposit did not arrive", "It was 250 stars"]);
    assert!(thread.waits_for_admin());

    // The admin replies to a forward in the admin chat (handled twice): the user gets it once.
    let answer = updates::reply_to_bot(403, &admin, ADMIN_CHAT, &forwards[1].text, updates::text("Found it: credited now.")).to_string();
    handle(&answer, &me(), deps).await.unwrap();
    handle(&answer, &me(), deps).await.unwrap();
    let sent = replies(&deps.outbound).await;
    let to_amina: Vec<&OutboundMessage> = sent.iter().filter(|m| m.chat_id == AMINA).collect();
    assert_eq!(to_amina.len(), 1, "{sent:?}");
    assert_eq!(to_amina[0].text, tr(Lang::En, Text::SupportAnswer, &[("text", &"Found it: credited now.")]));
    assert!(sent.iter().any(|m| m.chat_id == ADMIN_CHAT && m.text == format!("Answer sent to user {AMINA}.")), "{sent:?}");
    let thread = deps.support_threads.get(amina).await.unwrap().unwrap();
    assert_eq!(thread.messages.len(), 3);
    assert_eq!(thread.messages[2].admin.as_deref(), Some(ADMIN.to_string().as_str()));
    assert!(!thread.waits_for_admin());

    // The same reply from a chat that is not an admin chat answers nobody.
    let stranger = TelegramUser::new(555, "Eve", Some("en"));
    handle(&updates::reply_to_bot(404, &stranger, 555, &forwards[1].text, updates::text("gotcha")).to_string(), &me(), deps).await.unwrap();
    assert!(replies(&deps.outbound).await.iter().all(|m| m.chat_id != AMINA));
    assert_eq!(deps.support_threads.get(amina).await.unwrap().unwrap().messages.len(), 3);

    // /paysupport tags the thread as a payment question; /cancel stops forwarding.
    handle(&message_from(AMINA, 405, "/paysupport"), &me(), deps).await.unwrap();
    assert!(replies(&deps.outbound).await[0].text.contains(&AMINA.to_string()));
    assert_eq!(deps.support_threads.get(amina).await.unwrap().unwrap().topic, obentchi_core::support::Topic::Payment);
    handle(&message_from(AMINA, 406, "/cancel"), &me(), deps).await.unwrap();
    handle(&message_from(AMINA, 407, "hello?"), &me(), deps).await.unwrap();
    let sent = replies(&deps.outbound).await;
    assert!(sent.iter().all(|m| m.chat_id == AMINA), "nothing forwarded after /cancel: {sent:?}");
    assert!(sent.iter().any(|m| m.text == tr(Lang::En, Text::NotUnderstood, &[])), "{sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_turned_off_and_on_with_buttons() {
    let w = world().await;
    let (deps, amina) = (&w.deps, UserId::new(AMINA).unwrap());
    handle(&message_from(AMINA, 500, "/notifications"), &me(), deps).await.unwrap();
    let shown = replies(&deps.outbound).await.remove(0);
    assert!(shown.text.contains("News and offers: on") && shown.text.contains("Subscription reminders: on"), "{}", shown.text);
    let keyboard = shown.reply_markup.unwrap()["inline_keyboard"].clone();
    assert_eq!(keyboard[0][0]["callback_data"], "notif:broadcasts:off");
    assert_eq!(keyboard[1][0]["callback_data"], "notif:reminders:off");

    // A double tap turns broadcasts off once; the settings come back with the new state.
    handle(&press_from(AMINA, 501, "notif:broadcasts:off"), &me(), deps).await.unwrap();
    handle(&press_from(AMINA, 502, "notif:broadcasts:off"), &me(), deps).await.unwrap();
    let profile = deps.users.profile(amina).await.unwrap().unwrap();
    assert!(profile.mute_broadcasts && !profile.mute_reminders);
    let sent = replies(&deps.outbound).await;
    assert!(sent.iter().all(|m| m.text.contains("News and offers: off")), "{sent:?}");
    assert_eq!(sent[0].reply_markup.as_ref().unwrap()["inline_keyboard"][0][0]["callback_data"], "notif:broadcasts:on");

    handle(&press_from(AMINA, 503, "notif:broadcasts:on"), &me(), deps).await.unwrap();
    assert!(!deps.users.profile(amina).await.unwrap().unwrap().mute_broadcasts);
}

/// Handles the update `update(id)`, with ids from `first` up (a reply is keyed by its update),
/// until what it answers satisfies `done`, or fails after 10 s: the handlers see a settings
/// change at their next re-read.
async fn answer_once_settled(deps: &Deps, first: u32, update: impl Fn(u32) -> String, done: impl Fn(&OutboundMessage) -> bool) -> OutboundMessage {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for id in first.. {
        handle(&update(id), &me(), deps).await.unwrap();
        let reply = replies(&deps.outbound).await.pop().expect("a reply");
        if done(&reply) {
            return reply;
        }
        assert!(tokio::time::Instant::now() < deadline, "the change never reached the handlers: {reply:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!("update ids ran out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_changed_at_run_time_reach_the_handlers_and_nothing_is_charged_at_a_price_not_shown() {
    let w = world().await;
    let deps = &w.deps;
    const TON: &str = "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG";
    fund(deps, AMINA, "stars:1", 1_000).await;
    deps.users.register(UserId::new(REFERRER).unwrap(), Default::default()).await.unwrap();
    handle(&message_from(AMINA, 600, "/start ref_402118833"), &me(), deps).await.unwrap();
    // Shown at the configured price (100), then an admin raises it to 150, sets the commission
    // to 20 % and the withdrawal fee to 7.
    handle(&press_from(AMINA, 601, "sub:month"), &me(), deps).await.unwrap();
    replies(&deps.outbound).await;
    let mut changed = w.settings.current().await.unwrap().settings;
    changed.subscriptions = serde_json::from_value(serde_json::json!({
        "plans": [{ "id": "month", "price": "150 XTR", "days": 30 }],
        "referral_commission_bps": 2000,
    }))
    .unwrap();
    let mut policy = serde_json::to_value(&changed.withdrawals).unwrap();
    policy[0]["fee"] = "7 XTR".into();
    changed.withdrawals = serde_json::from_value(policy).unwrap();
    assert_eq!(w.settings.replace(0, changed, "test").await.unwrap().version, 1);

    let plans = answer_once_settled(deps, 700, |id| message_from(AMINA, id, "/subscribe"), |m| m.reply_markup.as_ref().is_some_and(|k| k.to_string().contains("150"))).await;
    assert_eq!(plans.reply_markup.unwrap()["inline_keyboard"].as_array().unwrap().len(), 1, "the year plan is no longer offered");
    // The old button (price 100 shown) buys nothing: the new price is asked for first.
    handle(&press_from(AMINA, 603, "subok:month:601:100XTR:30"), &me(), deps).await.unwrap();
    let again = replies(&deps.outbound).await.remove(0);
    assert!(again.text.contains("150 XTR"), "{}", again.text);
    assert_eq!(available(deps, AMINA).await, 1_000);
    let data = again.reply_markup.unwrap()["inline_keyboard"][0][0]["callback_data"].as_str().unwrap().to_owned();
    assert_eq!(data, "subok:month:603:150XTR:30");
    handle(&press_from(AMINA, 604, &data), &me(), deps).await.unwrap();
    assert_eq!(available(deps, AMINA).await, 850);
    assert_eq!(available(deps, REFERRER).await, 30, "20 % of 150 XTR, the rate in force");

    // A withdrawal shown with the new fee of 7 goes through at 7; had it changed after it was
    // shown, the new fee would be asked for first.
    for (update, text) in [(610, "/withdraw"), (611, "200"), (612, TON)] {
        handle(&message_from(AMINA, update, text), &me(), deps).await.unwrap();
    }
    let confirm = replies(&deps.outbound).await.pop().unwrap();
    assert!(confirm.text.contains("fee 7 XTR"), "{}", confirm.text);
    // The fee rises to 9 (and the plan to 160, which shows when the handlers have the change).
    let mut raised = w.settings.current().await.unwrap().settings;
    let mut policy = serde_json::to_value(&raised.withdrawals).unwrap();
    policy[0]["fee"] = "9 XTR".into();
    raised.withdrawals = serde_json::from_value(policy).unwrap();
    raised.subscriptions.plans = serde_json::from_value(serde_json::json!([{ "id": "month", "price": "160 XTR", "days": 30 }])).unwrap();
    w.settings.replace(1, raised, "test").await.unwrap();
    answer_once_settled(deps, 800, |id| message_from(AMINA, id, "/subscribe"), |m| m.reply_markup.as_ref().is_some_and(|k| k.to_string().contains("160"))).await;
    handle(&press_from(AMINA, 613, "wd:ok:610"), &me(), deps).await.unwrap();
    let asked = replies(&deps.outbound).await.pop().unwrap();
    assert!(asked.text.starts_with("The withdrawal fee is now 9 XTR."), "{}", asked.text);
    assert_eq!(available(deps, AMINA).await, 850, "nothing held at a fee not shown");
    handle(&press_from(AMINA, 614, "wd:ok:610"), &me(), deps).await.unwrap();
    assert_eq!(available(deps, AMINA).await, 850 - 209);
    // Two admins changing the same version: the second is refused, nothing overwritten.
    let stale = w.settings.current().await.unwrap().settings;
    assert!(matches!(w.settings.replace(1, stale, "late").await, Err(obentchi_core::settings::SettingsError::VersionConflict { current: 2 })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_with_a_channel_sends_one_invite_link_and_join_requests_are_approved_only_for_subscribers() {
    // The link only sends join requests: passed on to someone who did not pay, it opens nothing.
    const VIP: i64 = -1_002_000_000_001;
    let w = world_with(&TEST_SETTINGS.replace(
        r#"plans = [{ id = "month", price = "100 XTR", days = 30 }, { id = "year", price = "1000 XTR", days = 365 }]"#,
        &format!(r#"plans = [{{ id = "vip", price = "100 XTR", days = 30, channel = {VIP} }}]"#),
    ))
    .await;
    let deps = &w.deps;
    fund(deps, AMINA, "stars:1", 300).await;
    handle(&press_from(AMINA, 900, "sub:vip"), &me(), deps).await.unwrap();
    replies(&deps.outbound).await;
    // A double tap: one purchase, one link, the same text twice.
    handle(&press_from(AMINA, 901, "subok:vip:900:100XTR:30"), &me(), deps).await.unwrap();
    handle(&press_from(AMINA, 902, "subok:vip:900:100XTR:30"), &me(), deps).await.unwrap();
    let links: Vec<_> = w.bot_api.calls().into_iter().filter(|c| c.method.eq_ignore_ascii_case("createChatInviteLink")).collect();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!((links[0].body["chat_id"].as_i64(), links[0].body["creates_join_request"].as_bool()), (Some(VIP), Some(true)));
    let sent = replies(&deps.outbound).await;
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|m| m.text == sent[0].text && m.text.contains("https://t.me/+fake1")), "{sent:?}");
    assert_eq!(available(deps, AMINA).await, 200);
    assert!(!w.bot_api.join_by_link("https://t.me/+fake1", 999), "nobody joins without a request");

    // Join requests: a subscriber is approved; anyone else declined and told why.
    let stranger = TelegramUser::new(REFERRER, "Omar", Some("en"));
    handle(&updates::chat_join_request(903, &TelegramUser::new(AMINA, "Amina", Some("en")), VIP).to_string(), &me(), deps).await.unwrap();
    handle(&updates::chat_join_request(904, &stranger, VIP).to_string(), &me(), deps).await.unwrap();
    let answers: Vec<(String, i64)> = w
        .bot_api
        .calls()
        .into_iter()
        .filter(|c| c.method.to_lowercase().ends_with("chatjoinrequest"))
        .map(|c| (c.method.to_lowercase(), c.body["user_id"].as_i64().unwrap()))
        .collect();
    assert_eq!(answers, [("approvechatjoinrequest".to_owned(), AMINA), ("declinechatjoinrequest".to_owned(), REFERRER)]);
    assert_eq!(w.bot_api.members(VIP), [AMINA]);
    let told = replies(&deps.outbound).await;
    assert_eq!(told.len(), 1);
    assert_eq!((told[0].chat_id, told[0].text.as_str()), (REFERRER, tr(Lang::En, Text::AccessNeedsSubscription, &[]).as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_paid_then_interrupted_is_finished_on_the_terms_shown_after_the_plan_changed() {
    let w = world().await;
    let (deps, amina) = (&w.deps, UserId::new(AMINA).unwrap());
    fund(deps, AMINA, "stars:1", 500).await;
    // The first attempt took the money for "month, 30 days, 100 XTR" and stopped before the period.
    let paid = Posting::subscription_purchase(amina, IdempotencyKey::new("sub:tg:950").unwrap(), Money::from_minor(Currency::Xtr, 100), "plan month").unwrap();
    deps.ledger.post(&paid).await.unwrap();
    // Meanwhile the month plan went to 150 XTR and 7 days.
    let mut changed = w.settings.current().await.unwrap().settings;
    changed.subscriptions.plans = serde_json::from_value(serde_json::json!([{ "id": "month", "price": "150 XTR", "days": 7 }])).unwrap();
    w.settings.replace(0, changed, "test").await.unwrap();
    answer_once_settled(deps, 960, |id| message_from(AMINA, id, "/subscribe"), |m| m.reply_markup.as_ref().is_some_and(|k| k.to_string().contains("150"))).await;

    handle(&press_from(AMINA, 951, "subok:month:950:100XTR:30"), &me(), deps).await.unwrap();
    assert_eq!(available(deps, AMINA).await, 400, "charged once, at the price shown");
    let until = deps.subscriptions.active_until(amina).await.unwrap().expect("the period was added");
    assert!(until > chrono::Utc::now() + chrono::Duration::days(29), "for the 30 days shown");
    assert!(replies(&deps.outbound).await[0].text.starts_with("Done: month until"));
    // A new press of that old button is a new purchase: asked again on today's terms.
    handle(&press_from(AMINA, 952, "subok:month:952:100XTR:30"), &me(), deps).await.unwrap();
    let asked = replies(&deps.outbound).await.pop().unwrap();
    assert!(asked.text.contains("150 XTR") && asked.text.contains("7 days"), "{}", asked.text);
    assert_eq!(available(deps, AMINA).await, 400);
}
