//! The local Telegram simulator in front of a real receiver, consumer and workers (which send
//! the replies): what a newcomer does
//! on the chat page (send a command, press a button, pay an invoice) reaches the bot as Telegram
//! updates, and the bot's answers come back to the page.

mod support;

use std::sync::Arc;
use std::time::Duration;

use obentchi_testkit::{free_port, FakeBotApi, MongoServer, RedisServer, TelegramSimulator};
use serde_json::{json, Value};
use support::{spawn, spawn_bot, wait_healthy, workspace_binary};

const SECRET: &str = "simulator-webhook-secret-of-at-least-32-bytes";
const USER: i64 = 581_234_567;

/// Waits until the page's message list has one whose text starts with `prefix`.
async fn bot_says(client: &reqwest::Client, simulator: &str, prefix: &str) -> Value {
    let mut messages = Value::Null;
    for _ in 0..150 {
        messages = client.get(format!("{simulator}sim/messages?chat={USER}")).send().await.unwrap().json().await.unwrap();
        let found = messages.as_array().unwrap().iter().find(|m| m["text"].as_str().is_some_and(|t| t.starts_with(prefix)));
        if let Some(found) = found {
            return found.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the bot never said {prefix:?}: {messages:#}");
}

/// A receiver, a consumer and workers on real Redis and MongoDB, with the simulator in front.
struct Stack {
    _servers: (RedisServer, MongoServer),
    _processes: Vec<support::Process>,
    _dir: tempfile::TempDir,
    simulator: TelegramSimulator,
}

async fn stack() -> Stack {
    let (redis, mongo) = (RedisServer::start(), MongoServer::start());
    let bot_api = Arc::new(FakeBotApi::start().await);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bot.toml");
    let settings = format!(
        "[mongodb]\nuri = \"{}\"\n[redis]\nurls = [\"{}\"]\n[telegram]\nbot_token = \"7000000001:t\"\napi_url = \"{}\"\n[webhook]\nsecret = \"{SECRET}\"\n[payout]\nbase_url = \"http://127.0.0.1:9\"\napi_token = \"unused\"\n",
        mongo.uri(),
        redis.url(),
        bot_api.url()
    );
    std::fs::write(&config, settings).unwrap();
    let ports = [free_port(false), free_port(false), free_port(false)];
    let receiver = ports[0];
    let _receiver = spawn_bot(&config, &["serve"], receiver, &dir.path().join("receiver.log"));
    let _consumer = spawn_bot(&config, &["consume"], ports[1], &dir.path().join("consumer.log"));
    let _workers = spawn(&workspace_binary("obentchi-workers"), &config, &[], ports[2], &dir.path().join("workers.log"));
    let client = reqwest::Client::new();
    for port in ports {
        wait_healthy(&client, port).await;
    }
    let webhook = format!("http://127.0.0.1:{receiver}/telegram/webhook");
    let simulator = TelegramSimulator::start_on("127.0.0.1:0", bot_api.clone(), &webhook, SECRET).await;
    Stack { _servers: (redis, mongo), _processes: vec![_receiver, _consumer, _workers], _dir: dir, simulator }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_chats_pays_and_presses_buttons_through_the_simulator() {
    let stack = stack().await;
    let client = reqwest::Client::new();
    let page = stack.simulator.url();

    let html = client.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Telegram simulator") && html.contains("/sim/message"), "the chat page");

    let me = json!({ "user_id": USER, "first_name": "Amina", "language_code": "en" });
    let post = |path: &str, body: Value| {
        let mut body = body;
        body.as_object_mut().unwrap().extend(me.as_object().unwrap().clone());
        let request = client.post(format!("{page}{path}")).json(&body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    let sent = post("sim/message", json!({ "text": "/start" })).await;
    assert_eq!(sent["receiver_status"], 200);
    assert_eq!(sent["update"]["message"]["entities"][0]["type"], "bot_command");
    bot_says(&client, &page, "Welcome!").await;

    // A button press becomes a callback_query.
    post("sim/message", json!({ "text": "/language" })).await;
    let prompt = bot_says(&client, &page, "Choose your language").await;
    let buttons = prompt["reply_markup"]["inline_keyboard"].as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap());
    let russian = buttons.clone().find(|b| b["text"] == "Русский").unwrap()["callback_data"].as_str().unwrap().to_owned();
    assert_eq!(buttons.count(), 7, "one button per language");
    post("sim/press", json!({ "message_id": prompt["id"], "data": russian })).await;
    bot_says(&client, &page, "Язык: русский").await;

    // An invoice is paid the Telegram way: pre-checkout approved by the bot, then the payment.
    post("sim/message", json!({ "text": "/deposit 5" })).await;
    let invoice = bot_says(&client, &page, "Добавит 5\u{A0}XTR").await;
    assert_eq!((invoice["kind"].as_str(), invoice["stars"].as_u64()), (Some("invoice"), Some(5)));
    let paid = post("sim/pay", json!({ "payload": invoice["payload"], "stars": 5 })).await;
    assert_eq!(paid["paid"], true, "{paid}");
    bot_says(&client, &page, "Платёж получен: 5\u{A0}XTR").await;

    // Somebody else's invoice is refused at pre-checkout, and no payment is sent.
    let refused = post("sim/pay", json!({ "payload": "deposit:402118833:1", "stars": 5 })).await;
    assert_eq!(refused["paid"], false);
    assert_eq!(refused["error"], "Этот счёт выставлен не вам.");
}

/// The chat page in headless Chromium, as a person uses it: pick a language, type commands,
/// press a button. Screenshots in Arabic and English (in the test's temporary directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_chat_in_a_browser_in_arabic_and_english() {
    use obentchi_core::i18n::{tr, Lang, Text};
    use obentchi_testkit::browser::{Chromium, Page};
    let stack = stack().await;
    let chromium = Chromium::start();
    let mut page = Page::open(&chromium).await;
    for (user, lang) in [(700_000_001_i64, Lang::Ar), (700_000_002, Lang::En)] {
        page.navigate(&stack.simulator.url()).await;
        // The page's script has run (a submit before it would reload the page instead).
        page.wait_for("document.readyState === 'complete' && typeof post === 'function'").await;
        page.eval(&format!(
            "document.getElementById('user').value = '{user}'; document.getElementById('user').dispatchEvent(new Event('change')); \
             document.getElementById('lang').value = '{}';",
            lang.code()
        ))
        .await;
        for (command, bubbles) in [("/start", 1), ("/help", 2), ("/subscribe", 3)] {
            page.eval(&format!("document.getElementById('text').value = '{command}'; document.getElementById('send').requestSubmit()")).await;
            page.wait_for(&format!("document.querySelectorAll('.bubble.bot').length >= {bubbles}")).await;
        }
        // A plan button pressed: the purchase is offered (no balance yet: asked to confirm).
        page.eval("document.querySelector('.bubble.bot .keyboard button').click()").await;
        page.wait_for("document.querySelectorAll('.bubble.bot').length >= 4").await;
        let texts = page.eval("[...document.querySelectorAll('.bubble.bot')].map(b => b.firstChild.textContent)").await;
        let texts: Vec<String> = serde_json::from_value(texts).unwrap();
        assert_eq!(texts[0], tr(lang, Text::Welcome, &[]), "{texts:?}");
        assert_eq!(texts[1], tr(lang, Text::Help, &[]), "{texts:?}");
        // A command inside Arabic text still reads left to right: its slash is left of its name.
        let slash_left_of_name = page
            .eval(
                "(() => { const node = document.querySelector('.bubble.bot').firstChild; const at = node.textContent.indexOf('/balance'); \
                 const x = i => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1); return r.getBoundingClientRect().left; }; \
                 return x(at) < x(at + 1); })()",
            )
            .await;
        assert_eq!(slash_left_of_name, serde_json::json!(true), "{}", lang.code());
        page.screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("simulator-{}.png", lang.code()))).await;
    }
}
