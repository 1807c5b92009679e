//! Layered configuration: files, then environment; errors name the key.

use figment::Jail;
use obentchi_core::config::{self, LogFormat, RedisMode};
use obentchi_core::service::BaseConfig;

const VALID: &str = r#"
[mongodb]
uri = "mongodb://user:hunter2@127.0.0.1:27017/"
[redis]
urls = ["redis://:s3cret@127.0.0.1:6379"]
"#;

fn load(files: &[&str]) -> Result<BaseConfig, config::ConfigError> {
    let files: Vec<_> = files.iter().map(std::path::PathBuf::from).collect();
    config::load(&files)
}

#[test]
fn a_missing_key_is_named_with_its_environment_variable() {
    Jail::expect_with(|jail| {
        jail.create_file("only-redis.toml", "[redis]\nurls = [\"redis://127.0.0.1\"]\n")?;
        let err = load(&["only-redis.toml"]).unwrap_err().to_string();
        assert!(err.contains("mongodb: missing") || err.contains("mongodb.uri"), "{err}");
        jail.create_file("no-uri.toml", "[mongodb]\ndatabase = \"x\"\n[redis]\nurls = [\"redis://127.0.0.1\"]\n")?;
        let err = load(&["no-uri.toml"]).unwrap_err().to_string();
        assert!(err.contains("mongodb.uri: missing"), "{err}");
        assert!(err.contains("OBENTCHI_MONGODB__URI"), "{err}");
        Ok(())
    });
}

#[test]
fn an_invalid_value_is_named_with_what_was_expected() {
    Jail::expect_with(|jail| {
        jail.create_file("base.toml", VALID)?;
        jail.set_env("OBENTCHI_LISTEN__ADDR", "not-an-address");
        let err = load(&["base.toml"]).unwrap_err().to_string();
        assert!(err.contains("listen.addr"), "{err}");
        assert!(err.contains("OBENTCHI_LISTEN__ADDR"), "{err}");

        jail.clear_env();
        jail.create_file("bad-uri.toml", &VALID.replace("mongodb://", "postgres://"))?;
        let err = load(&["bad-uri.toml"]).unwrap_err().to_string();
        assert!(err.contains("mongodb.uri") && err.contains("mongodb://"), "{err}");
        assert!(err.contains("bad-uri.toml"), "names the file the value came from: {err}");

        jail.create_file("empty-urls.toml", "[mongodb]\nuri = \"mongodb://h\"\n[redis]\nurls = []\n")?;
        let err = load(&["empty-urls.toml"]).unwrap_err().to_string();
        assert!(err.contains("redis.urls") && err.contains("at least one"), "{err}");

        jail.create_file("bad-mode.toml", &format!("{VALID}\n[telemetry]\nlog_format = \"xml\"\n"))?;
        let err = load(&["bad-mode.toml"]).unwrap_err().to_string();
        assert!(err.contains("telemetry.log_format"), "{err}");
        Ok(())
    });
}

#[test]
fn a_missing_file_is_an_error_not_an_empty_layer() {
    Jail::expect_with(|_| {
        let err = load(&["nowhere.toml"]).unwrap_err().to_string();
        assert!(err.contains("nowhere.toml: not found"), "{err}");
        Ok(())
    });
}

#[test]
fn later_layers_win_and_defaults_fill_the_rest() {
    Jail::expect_with(|jail| {
        jail.create_file("base.toml", VALID)?;
        jail.create_file("override.toml", "[mongodb]\ndatabase = \"from_file\"\n")?;
        jail.set_env("OBENTCHI_TELEMETRY__LOG_FORMAT", "pretty");
        jail.set_env("OBENTCHI_REDIS__MODE", "cluster");
        let config = load(&["base.toml", "override.toml"]).unwrap();
        assert_eq!(config.mongodb.database, "from_file");
        assert_eq!(config.telemetry.log_format, LogFormat::Pretty);
        assert_eq!(config.redis.mode, RedisMode::Cluster);
        assert_eq!(config.redis.response_timeout_ms, 3_000);
        assert_eq!(config.listen.addr.port(), 8080);
        Ok(())
    });
}

#[test]
fn printed_config_redacts_secrets() {
    Jail::expect_with(|jail| {
        jail.create_file("base.toml", VALID)?;
        let printed = config::render(&load(&["base.toml"]).unwrap());
        assert!(!printed.contains("hunter2") && !printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("[redacted]"));
        assert!(printed.contains("\"database\": \"obentchi\""), "{printed}");
        Ok(())
    });
}
