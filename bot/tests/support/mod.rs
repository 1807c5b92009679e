//! Running the platform's binaries as processes, as they run in production.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::path::Path;

use obentchi_bot::receiver::SECRET_HEADER;

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use obentchi_testkit::processes::{spawn, wait_healthy, workspace_binary, Process};

/// `obentchi-bot [args]`.
pub fn spawn_bot(config: &Path, args: &[&str], port: u16, log: &Path) -> Process {
    spawn(Path::new(env!("CARGO_BIN_EXE_obentchi-bot")), config, args, port, log)
}

/// POSTs an update to a receiver as Telegram does; returns the status.
pub async fn deliver(client: &reqwest::Client, port: u16, secret: &str, update: String) -> u16 {
    client
        .post(format!("http://127.0.0.1:{port}/telegram/webhook"))
        .header(SECRET_HEADER, secret)
        .header("content-type", "application/json")
        .body(update)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The settings every service of a process test shares (one file, as a ConfigMap gives them):
/// telemetry, MongoDB, Redis, the (fake) Bot API and the webhook secret. Callers append their
/// own sections.
pub fn shared_settings(mongo_uri: &str, redis_url: &str, bot_api_url: &str, secret: &str) -> String {
    format!(
        r#"
[telemetry]
log_format = "json"
[mongodb]
uri = "{mongo_uri}"
[redis]
urls = ["{redis_url}"]
[telegram]
bot_token = "7000000001:test-token"
api_url = "{bot_api_url}"
[webhook]
secret = "{secret}"
"#
    )
}

/// The ports of a platform started by `start_platform`.
pub struct Ports {
    pub receiver: u16,
    pub consumer: u16,
    pub workers: u16,
    pub api: u16,
}

/// A receiver, a consumer, the workers and the admin API on `config`, logging into `dir`;
/// returns once every one answers `/healthz`. The processes stop when the returned handles drop.
pub async fn start_platform(config: &Path, dir: &Path) -> (Vec<Process>, Ports) {
    let free = || obentchi_testkit::free_port(false);
    let ports = Ports { receiver: free(), consumer: free(), workers: free(), api: free() };
    let processes = vec![
        spawn_bot(config, &["serve"], ports.receiver, &dir.join("receiver.log")),
        spawn_bot(config, &["consume"], ports.consumer, &dir.join("consumer.log")),
        spawn(&workspace_binary("obentchi-workers"), config, &[], ports.workers, &dir.join("workers.log")),
        spawn(&workspace_binary("obentchi-http"), config, &[], ports.api, &dir.join("api.log")),
    ];
    let client = reqwest::Client::new();
    for port in [ports.receiver, ports.consumer, ports.workers, ports.api] {
        wait_healthy(&client, port).await;
    }
    (processes, ports)
}

/// Polls `check` until it gives a value, for at most `within`.
pub async fn eventually<T>(what: &str, within: std::time::Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
