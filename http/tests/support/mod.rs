//! `spawn_app()`: the API on a free port against its own Redis and MongoDB, with a read, a write
//! and a money token.
#![allow(dead_code)] // each test binary uses a different part of this module

use mongodb::options::ClientOptions;
use obentchi_core::api_tokens::{ApiTokens, Scope};
use obentchi_core::storage::{migrate, Store};
use obentchi_http::{Application, Config};
use obentchi_testkit::{MongoServer, RedisServer};

pub const GATEWAY_SECRET: &str = "gateway-test-secret-of-at-least-32-bytes";

/// Rate limits no test but the rate-limit one reaches.
pub const GENEROUS: &str = "[rate_limits]\n\
    read = { per_ip = { per_minute = 60000, burst = 10000 }, per_token = { per_minute = 60000, burst = 10000 } }\n\
    write = { per_ip = { per_minute = 60000, burst = 10000 }, per_token = { per_minute = 60000, burst = 10000 } }\n\
    money = { per_ip = { per_minute = 60000, burst = 10000 }, per_token = { per_minute = 60000, burst = 10000 } }\n\
    callback = { per_ip = { per_minute = 60000, burst = 10000 }, per_token = { per_minute = 60000, burst = 10000 } }\n";

/// Limits for a test of the money class: the other classes generous, money's per-IP and
/// per-token limits as given (`{ per_minute = …, burst = … }`).
pub fn money_limits(per_ip: &str, per_token: &str) -> String {
    let roomy = "{ per_ip = { per_minute = 6000, burst = 100 }, per_token = { per_minute = 6000, burst = 100 } }";
    format!("[rate_limits]\nread = {roomy}\nwrite = {roomy}\nmoney = {{ per_ip = {per_ip}, per_token = {per_token} }}\ncallback = {roomy}\n")
}

pub struct TestApp {
    pub base: String,
    /// The ops port's base URL (`listen.ops_addr`).
    pub ops_base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub config: Config,
    pub read_token: String,
    pub write_token: String,
    pub money_token: String,
    pub redis: RedisServer,
    pub mongo: MongoServer,
    _dir: tempfile::TempDir,
}

/// Starts the API; `extra` is TOML appended to the test configuration.
pub async fn spawn_app(extra: &str) -> TestApp {
    let redis = RedisServer::start();
    let mongo = MongoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("http.toml");
    std::fs::write(
        &path,
        format!(
            "history_sample_ms = 200\n{extra}\n[listen]\naddr = \"127.0.0.1:0\"\nops_addr = \"127.0.0.1:0\"\n[mongodb]\nuri = \"{}\"\n[redis]\nurls = [\"{}\"]\n\
             [payment_gateways.cryptopay]\nsecret = \"{GATEWAY_SECRET}\"\n",
            mongo.uri(),
            redis.url()
        ),
    )
    .unwrap();
    let config: Config = obentchi_core::config::load(&[path]).unwrap();
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
    migrate(&store).await.unwrap();
    let tokens = ApiTokens::new(&store);
    let (_, read_token) = tokens.create("reader", &[Scope::Read]).await.unwrap();
    let (_, write_token) = tokens.create("writer", &[Scope::Write]).await.unwrap();
    let (_, money_token) = tokens.create("banker", &[Scope::Money]).await.unwrap();
    let app = Application::build(config.clone()).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let ops_base = format!("http://127.0.0.1:{}", app.ops_port());
    tokio::spawn(app.run_until_stopped());
    TestApp { base, ops_base, client: reqwest::Client::new(), store, config, read_token, write_token, money_token, redis, mongo, _dir: dir }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `/healthz`, `/readyz` and `/metrics`, on the ops port (as deployed).
    pub async fn ops_get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.ops_base)).send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Option<serde_json::Value>) -> reqwest::Response {
        let mut request = self.client.post(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    pub fn redis_conn_config(&self) -> obentchi_core::config::RedisConfig {
        self.config.redis.clone()
    }
}

/// The status and the error code of an answer.
pub async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["error"]["code"].as_str().unwrap_or("<no code>").to_owned())
}
