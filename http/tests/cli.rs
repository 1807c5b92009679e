//! The `obentchi-http` binary as an operator runs it.

use std::path::Path;
use std::process::{Command, Output};

use obentchi_testkit::MongoServer;

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_obentchi-http"))
        .env_clear()
        .envs(envs.iter().copied())
        .args(args)
        .output()
        .expect("run obentchi-http")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_the_commands() {
    let out = run(&["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("migrate") && help.contains("--print-config") && help.contains("--config"), "{help}");
}

#[test]
fn missing_configuration_exits_2_naming_the_key() {
    let out = run(&["--print-config"], &[("OBENTCHI_REDIS__URLS", "[redis://127.0.0.1:1]")]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("mongodb") && err.contains("missing"), "{err}");

    let out = run(
        &["--print-config"],
        &[("OBENTCHI_MONGODB__URI", "mongodb://h"), ("OBENTCHI_REDIS__URLS", "[redis://h]"), ("OBENTCHI_LISTEN__ADDR", "nope")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("listen.addr"), "{}", text(&out.stderr));
}

#[test]
fn print_config_shows_the_effective_values_without_secrets() {
    let out = run(
        &["--print-config"],
        &[("OBENTCHI_MONGODB__URI", "mongodb://admin:topsecret@h/"), ("OBENTCHI_REDIS__URLS", "[redis://h]")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("\"addr\": \"0.0.0.0:8080\"") && !printed.contains("topsecret"), "{printed}");
}

#[test]
fn migrate_twice_succeeds_and_the_second_run_creates_nothing() {
    let mongo = MongoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("[mongodb]\nuri = \"{}\"\n[redis]\nurls = [\"redis://127.0.0.1:1\"]\n", mongo.uri())).unwrap();
    let migrate = |config: &Path| run(&["--config", config.to_str().unwrap(), "migrate"], &[]);

    let first = migrate(&config);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("\"postings\""));
    let second = migrate(&config);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(text(&second.stdout).contains("\"created_collections\": []"), "{}", text(&second.stdout));
}
