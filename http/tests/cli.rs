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
fn two_gateways_sharing_a_secret_are_refused() {
    // The provider name is in the path, not under the signature: with one secret for two
    // gateways, a callback signed for one could be credited as the other's.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let gateways = "[payment_gateways.alpha]\nsecret = \"the-same-secret-for-both-of-at-least-32-bytes\"\n[payment_gateways.beta]\nsecret = \"the-same-secret-for-both-of-at-least-32-bytes\"\n";
    std::fs::write(&config, format!("[mongodb]\nuri = \"mongodb://h\"\n[redis]\nurls = [\"redis://h\"]\n{gateways}")).unwrap();
    let out = run(&["--config", config.to_str().unwrap(), "--print-config"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("payment_gateways") && err.contains("share a secret"), "{err}");
}

#[test]
fn weak_placeholder_or_mistyped_secrets_are_refused_at_start_without_echoing_them() {
    let base = [("OBENTCHI_MONGODB__URI", "mongodb://h/"), ("OBENTCHI_REDIS__URLS", "[redis://h]")];
    let refused = |setting: (&str, &str), because: &str| {
        let out = run(&["--print-config"], &[base[0], base[1], setting]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{setting:?} was accepted: {}", text(&out.stdout));
        assert!(err.contains(because), "{setting:?}: {err}");
        assert!(!err.contains(setting.1), "the error echoes the value: {err}");
    };
    refused(("OBENTCHI_PAYMENT_GATEWAYS__ALPHA__SECRET", "short-gateway-secret"), "at least 32");
    refused(("OBENTCHI_PAYMENT_GATEWAYS__ALPHA__SECRET", "CHANGE_ME_CHANGE_ME_CHANGE_ME_CHANGE_ME"), "placeholder");
    refused(("OBENTCHI_CRYPTOPAY__API_TOKEN", "replace-me"), "placeholder");
    // The environment layer reads an all-digit value as a number; the type error must not
    // quote it.
    refused(("OBENTCHI_PAYMENT_GATEWAYS__ALPHA__SECRET", "918273645546372819"), "found an integer");
    // Nor may a TOML syntax error quote the line (here a secret without its quotes).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[mongodb]\nuri = \"mongodb://h/\"\n[redis]\nurls = [\"redis://h\"]\n[payment_gateways.alpha]\nsecret = unquoted-gateway-secret-of-at-least-32-bytes\n").unwrap();
    let out = run(&["--config", config.to_str().unwrap(), "--print-config"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("line 6") && !err.contains("unquoted-gateway-secret"), "{err}");
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

#[test]
fn migrate_run_by_several_pods_at_once_succeeds_in_each() {
    // Every pod runs `migrate` as its init container (kubernetes/), so a rollout or a scale-up
    // starts many at once on a fresh or an older database.
    let mongo = MongoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("[mongodb]\nuri = \"{}\"\n[redis]\nurls = [\"redis://127.0.0.1:1\"]\n", mongo.uri())).unwrap();
    let pods: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_obentchi-http"))
                .env_clear()
                .args(["--config", config.to_str().unwrap(), "migrate"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for pod in pods {
        let out = pod.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

#[test]
fn tokens_are_created_listed_and_revoked_from_the_command_line() {
    let mongo = MongoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("[mongodb]\nuri = \"{}\"\n[redis]\nurls = [\"redis://127.0.0.1:1\"]\n", mongo.uri())).unwrap();
    let config = config.to_str().unwrap();

    let out = run(&["--config", config, "token", "create", "--name", "ops-bot", "--scope", "read"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let id = obentchi_core::api_tokens::token_id(&token).expect("the printed token has our shape").to_owned();

    let listed = text(&run(&["--config", config, "token", "list"], &[]).stdout);
    assert!(listed.contains(&id) && listed.contains("ops-bot") && listed.contains("active"), "{listed}");
    assert!(!listed.contains(&token), "the secret is never listed");

    assert!(run(&["--config", config, "token", "revoke", &id], &[]).status.success());
    assert!(text(&run(&["--config", config, "token", "list"], &[]).stdout).contains("revoked"));
    assert!(!run(&["--config", config, "token", "revoke", "0000000000000000"], &[]).status.success(), "unknown ids are an error");
    let no_scope = run(&["--config", config, "token", "create", "--name", "x"], &[]);
    assert!(!no_scope.status.success());
}
