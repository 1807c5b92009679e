//! Schemathesis (property-based testing from the OpenAPI document) against the running API:
//! every generated request, valid or not, must get an answer that is not a server error.
//! Runs when `SCHEMATHESIS_BIN` points at it (scripts/lib.sh installs it from PyPI when it can).

mod support;

use support::{spawn_app, GENEROUS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let Some(bin) = std::env::var_os("SCHEMATHESIS_BIN") else {
        eprintln!("SCHEMATHESIS_BIN is not set: not run (scripts/test.sh sets it when schemathesis installs)");
        return;
    };
    let app = spawn_app(GENEROUS).await;
    let report = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(bin)
        .args(["run", &app.url("/openapi.json"), "--url", &app.base, "--checks", "not_a_server_error", "--max-examples", "20"])
        .args(["--header", &format!("Authorization: Bearer {}", app.write_token)])
        .args(["--report-dir", report.path().to_str().unwrap()])
        // Its cache and reports go to the temporary directory, not the clone.
        .current_dir(report.path())
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(output.status.success(), "schemathesis found failures:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
}
