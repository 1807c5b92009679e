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
