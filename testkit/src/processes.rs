//! Running the platform's own binaries as processes in tests, as they run in production.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process, SIGKILLed when dropped.
pub struct Process(pub Child);

impl Process {
    /// SIGKILL now (the "dies mid-request" case).
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A binary of this workspace, in the target directory the running test was built into. Cargo
/// builds every workspace binary for `cargo nextest run --workspace` (the README's test
/// command); with `-p <crate>` alone, build the binary first.
pub fn workspace_binary(name: &str) -> PathBuf {
    // A test executable lives in <target>/<profile>/deps/.
    let test = std::env::current_exe().expect("the test knows its path");
    let profile_dir = test.parent().and_then(Path::parent).expect("a test runs from <target>/<profile>/deps");
    let path = profile_dir.join(name);
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

/// Waits until the process on `port` answers `/healthz`.
pub async fn wait_healthy(client: &reqwest::Client, port: u16) {
    for _ in 0..200 {
        if client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process on port {port} never became healthy");
}
