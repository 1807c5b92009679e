//! `obentchi-bot webhook set | info | delete` against the fake Bot API.

use std::process::Command;

use obentchi_testkit::FakeBotApi;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_management_sends_the_configured_settings() {
    let bot_api = FakeBotApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bot.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[mongodb]
uri = "mongodb://127.0.0.1:1/"
[redis]
urls = ["redis://127.0.0.1:1"]
[telegram]
bot_token = "7000000001:test-token"
api_url = "{}"
[webhook]
secret = "webhook-secret_1"
public_url = "https://bot.example.org/telegram/webhook"
allowed_updates = ["message", "callback_query", "pre_checkout_query"]
max_connections = 80
"#,
            bot_api.url()
        ),
    )
    .unwrap();
    let run = |action: &str| {
        let config = config.clone();
        let action = action.to_owned();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_obentchi-bot")).arg("--config").arg(&config).args(["webhook", &action]).output().unwrap()
        })
    };
    let set = run("set").await.unwrap();
    assert!(set.status.success(), "{}{}", String::from_utf8_lossy(&set.stdout), String::from_utf8_lossy(&set.stderr));
    let info = run("info").await.unwrap();
    assert!(String::from_utf8_lossy(&info.stdout).contains("https://bot.example.org/telegram/webhook"));
    assert!(run("delete").await.unwrap().status.success());

    let calls = bot_api.calls();
    let set_call = calls.iter().find(|c| c.method.eq_ignore_ascii_case("setwebhook")).expect("setWebhook sent");
    assert_eq!(set_call.body["url"], "https://bot.example.org/telegram/webhook");
    assert_eq!(set_call.body["secret_token"], "webhook-secret_1");
    assert_eq!(set_call.body["max_connections"], 80);
    assert_eq!(set_call.body["allowed_updates"], serde_json::json!(["message", "callback_query", "pre_checkout_query"]));
    assert!(calls.iter().any(|c| c.method.eq_ignore_ascii_case("deletewebhook")));
}
