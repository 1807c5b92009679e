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
secret = "webhook-secret_1-of-at-least-32-bytes-long"
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
    assert_eq!(set_call.body["secret_token"], "webhook-secret_1-of-at-least-32-bytes-long");
    assert_eq!(set_call.body["max_connections"], 80);
    assert_eq!(set_call.body["allowed_updates"], serde_json::json!(["message", "callback_query", "pre_checkout_query"]));
    assert!(calls.iter().any(|c| c.method.eq_ignore_ascii_case("deletewebhook")));
}

#[test]
fn a_short_or_placeholder_webhook_secret_is_refused_at_start_without_echoing_it() {
    for (secret, because) in [("short-secret_1", "32 to 256"), ("CHANGE_ME_webhook_secret_CHANGE_ME", "placeholder"), ("has spaces in it and is long enough!", "32 to 256")] {
        let out = Command::new(env!("CARGO_BIN_EXE_obentchi-bot"))
            .env_clear()
            .envs([
                ("OBENTCHI_MONGODB__URI", "mongodb://h/"),
                ("OBENTCHI_REDIS__URLS", "[redis://h]"),
                ("OBENTCHI_TELEGRAM__BOT_TOKEN", "7000000001:test-token"),
                ("OBENTCHI_WEBHOOK__SECRET", secret),
            ])
            .arg("--print-config")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{secret} was accepted");
        assert!(err.contains("webhook.secret") && err.contains(because), "{err}");
        assert!(!err.contains(secret), "the error echoes the secret: {err}");
    }
}
