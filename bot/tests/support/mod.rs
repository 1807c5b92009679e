//! Running the platform's binaries as processes, as they run in production.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use obentchi_bot::receiver::SECRET_HEADER;

/// A child process, SIGKILLed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Another binary of this workspace, next to `obentchi-bot` in the target directory. Cargo builds
/// every workspace binary for `cargo nextest run --workspace` (the README's test command); with
/// `-p obentchi-bot` alone, build it first.
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_obentchi-bot")).with_file_name(name);
    assert!(path.exists(), "{} is not built: run the tests with --workspace", path.display());
    path
}

/// Starts `binary --config <config> [args]` listening on `port`, logging to `log`.
pub fn spawn(binary: &Path, config: &Path, args: &[&str], port: u16, log: &Path) -> Process {
    let log = std::fs::File::create(log).unwrap();
    Process(
        Command::new(binary)
            .arg("--config")
            .arg(config)
            .args(args)
            .env("OBENTCHI_LISTEN__ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    )
}

/// `obentchi-bot [args]`.
pub fn spawn_bot(config: &Path, args: &[&str], port: u16, log: &Path) -> Process {
    spawn(Path::new(env!("CARGO_BIN_EXE_obentchi-bot")), config, args, port, log)
}

pub async fn wait_healthy(client: &reqwest::Client, port: u16) {
    for _ in 0..200 {
        if client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process on port {port} never became healthy");
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
