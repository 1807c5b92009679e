//! Layered, typed configuration: built-in defaults, then TOML files in the order given, then
//! environment variables `OBENTCHI_<SECTION>__<KEY>` (the last layer wins). Each service owns a
//! `Config` struct built from the sections here; values parse into types that cannot hold an
//! invalid value, so a bad value fails at start with the key named.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Part of `RedisConfig`; defined with the connection it configures.
pub use apalis_redis_streams::RedisMode;
use apalis_redis_streams::{ConnectOptions, RedisConn};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const ENV_PREFIX: &str = "OBENTCHI_";
const ENV_SEPARATOR: &str = "__";

/// A value that never shows in logs, `Debug` output or `--print-config`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

/// A `mongodb://` or `mongodb+srv://` connection string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MongoUri(String);

impl MongoUri {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MongoUri {
    type Error = String;
    fn try_from(uri: String) -> Result<Self, Self::Error> {
        if is_placeholder(&uri) {
            Err("a template's placeholder is left in it (the password?)".into())
        } else if uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://") {
            Ok(MongoUri(uri))
        } else {
            Err("expected a MongoDB connection string starting with mongodb:// or mongodb+srv://".into())
        }
    }
}

/// A `redis://` or `rediss://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RedisUrl {
    type Error = String;
    fn try_from(url: String) -> Result<Self, Self::Error> {
        if is_placeholder(&url) {
            Err("a template's placeholder is left in it (the password?)".into())
        } else if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(RedisUrl(url))
        } else {
            Err("expected a Redis URL starting with redis:// or rediss://".into())
        }
    }
}

/// The fewest bytes a secret we choose may have (`SharedSecret`, the webhook's secret token):
/// 256 bits when random, beyond guessing at any rate an edge lets through.
pub const MIN_SECRET_BYTES: usize = 32;

/// Whether `value` is a template's placeholder left unfilled (`CHANGE_ME`, `replace-me`,
/// `123456789:CHANGE_ME`, …): deploying one would publish a secret everybody knows.
pub fn is_placeholder(value: &str) -> bool {
    let folded: String = value.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    ["changeme", "replaceme"].iter().any(|p| folded.contains(p))
}

/// A secret we choose and share with a counterpart (a payment gateway's signing key): at least
/// `MIN_SECRET_BYTES`, and not a placeholder. Errors never show the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SharedSecret(String);

impl SharedSecret {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SharedSecret {
    type Error = String;
    fn try_from(secret: String) -> Result<Self, String> {
        if is_placeholder(&secret) {
            return Err("a template's placeholder, not a secret: generate one (openssl rand -hex 32)".into());
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!("{} bytes; a secret needs at least {MIN_SECRET_BYTES} (openssl rand -hex 32)", secret.len()));
        }
        Ok(SharedSecret(secret))
    }
}

/// A token a provider issued (the payout provider's, Crypto Pay's): its length is theirs to
/// choose, but it must be there and not a placeholder. Errors never show the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IssuedToken(String);

impl IssuedToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IssuedToken {
    type Error = &'static str;
    fn try_from(token: String) -> Result<Self, Self::Error> {
        if token.is_empty() {
            Err("empty; set the token the provider issued")
        } else if is_placeholder(&token) {
            Err("a template's placeholder, not the token the provider issued")
        } else {
            Ok(IssuedToken(token))
        }
    }
}

/// A Telegram bot token, `<bot id>:<secret>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct BotToken(String);

impl BotToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bot's numeric id: the part before the colon, not secret.
    pub fn bot_id(&self) -> &str {
        self.0.split(':').next().unwrap_or_default()
    }
}

impl TryFrom<String> for BotToken {
    type Error = &'static str;
    fn try_from(token: String) -> Result<Self, Self::Error> {
        match token.split_once(':') {
            Some((_, secret)) if is_placeholder(secret) => Err("a template's placeholder, not @BotFather's token"),
            Some((id, secret)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !secret.is_empty() => {
                Ok(BotToken(token))
            }
            _ => Err("expected a bot token of the form <digits>:<secret>, as @BotFather gives it"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelegramConfig {
    pub bot_token: Secret<BotToken>,
    /// The Bot API's base URL; tests and the local simulator point it elsewhere.
    #[serde(default = "default_bot_api_url")]
    pub api_url: String,
}

fn default_bot_api_url() -> String {
    "https://api.telegram.org/".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MongoConfig {
    /// Connection string; may carry credentials, so it is secret.
    pub uri: Secret<MongoUri>,
    #[serde(default = "default_database")]
    pub database: String,
    #[serde(default = "default_app_name")]
    pub app_name: String,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_connect_timeout_ms")]
    pub server_selection_timeout_ms: u64,
}

fn default_database() -> String {
    "obentchi".into()
}
fn default_app_name() -> String {
    "obentchi".into()
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisConfig {
    #[serde(default = "default_redis_mode")]
    pub mode: RedisMode,
    /// One URL in single mode; seed nodes in cluster mode. May carry a password.
    pub urls: Secret<NonEmpty<RedisUrl>>,
    /// Per-command response timeout. The driver's 500 ms default is short under load.
    #[serde(default = "default_redis_response_timeout_ms")]
    pub response_timeout_ms: u64,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

impl RedisConfig {
    /// A configuration with default timeouts, for tools and tests that know the URLs.
    pub fn from_urls(mode: RedisMode, urls: impl IntoIterator<Item = String>) -> Result<RedisConfig, String> {
        let urls: Vec<RedisUrl> = urls.into_iter().map(RedisUrl::try_from).collect::<Result<_, _>>()?;
        Ok(RedisConfig {
            mode,
            urls: Secret::new(NonEmpty::try_from(urls).map_err(str::to_owned)?),
            response_timeout_ms: default_redis_response_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
        })
    }

    /// Connects as configured (see `RedisConn::connect`).
    pub async fn connect(&self) -> redis::RedisResult<RedisConn> {
        let urls = self.urls.expose().as_slice().iter().map(|u| u.as_str());
        RedisConn::connect(&ConnectOptions {
            mode: self.mode,
            urls: urls.map(str::to_owned).collect(),
            response_timeout: Duration::from_millis(self.response_timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
        })
        .await
    }
}

fn default_redis_mode() -> RedisMode {
    RedisMode::Single
}
fn default_redis_response_timeout_ms() -> u64 {
    3_000
}

/// A list with at least one element.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<T>")]
pub struct NonEmpty<T>(Vec<T>);

impl<T> NonEmpty<T> {
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
}

impl<T> TryFrom<Vec<T>> for NonEmpty<T> {
    type Error = &'static str;
    fn try_from(items: Vec<T>) -> Result<Self, Self::Error> {
        if items.is_empty() {
            Err("expected at least one element")
        } else {
            Ok(NonEmpty(items))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for production log pipelines.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelemetryConfig {
    #[serde(default = "default_log_format")]
    pub log_format: LogFormat,
    /// A `tracing` filter directive, e.g. `info,obentchi_core=debug`.
    #[serde(default = "default_log_filter")]
    pub log_filter: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { log_format: default_log_format(), log_filter: default_log_filter() }
    }
}

fn default_log_format() -> LogFormat {
    LogFormat::Json
}
fn default_log_filter() -> String {
    "info".into()
}

/// Where a service listens for HTTP: its own routes (the webhook, the API) on `addr`, and the
/// ops routes (`/healthz`, `/readyz`, `/metrics`) on `ops_addr` if set, else beside them.
/// Deployments set `ops_addr` to a port no Ingress or edge routes to, so the metrics are never
/// public whatever the edge's configuration says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListenConfig {
    #[serde(default = "default_listen")]
    pub addr: SocketAddr,
    #[serde(default)]
    pub ops_addr: Option<SocketAddr>,
}

impl ListenConfig {
    /// Where the ops routes answer.
    pub fn ops(&self) -> SocketAddr {
        self.ops_addr.unwrap_or(self.addr)
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig { addr: default_listen(), ops_addr: None }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}

/// Configuration that could not be loaded. The message names every offending key, where its
/// value came from and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    pub fn single(problem: String) -> Self {
        ConfigError { problems: vec![problem] }
    }
}

/// Loads a service's configuration from its layers.
pub fn load<C: DeserializeOwned>(files: &[PathBuf]) -> Result<C, ConfigError> {
    let mut figment = Figment::new();
    for file in files {
        if !file.is_file() {
            return Err(ConfigError::single(format!("config file {}: not found", file.display())));
        }
        figment = figment.merge(Toml::file_exact(file));
    }
    figment
        .merge(Env::prefixed(ENV_PREFIX).split(ENV_SEPARATOR))
        .extract()
        .map_err(|err| ConfigError { problems: err.into_iter().map(describe).collect() })
}

/// The environment variable that sets a key, e.g. `mongodb.uri` → `OBENTCHI_MONGODB__URI`.
pub fn env_var_for(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_uppercase().replace('.', ENV_SEPARATOR))
}

fn describe(err: figment::Error) -> String {
    use figment::error::Kind;
    let mut path = err.path.clone();
    if let Kind::MissingField(field) = &err.kind {
        path.push(field.to_string());
        let key = path.join(".");
        let env = env_var_for(&key);
        return format!("{key}: missing; set it in a config file or the environment variable {env} (for a section, {env}__<KEY> per key)");
    }
    let key = if path.is_empty() { "(top level)".to_owned() } else { path.join(".") };
    // What was found is named by its type only: the value may be a secret (an all-digit token
    // read from the environment parses as a number and fails as one).
    let problem = match &err.kind {
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("expected {expected}, found {}", kind_of(actual))
        }
        // A TOML syntax error quotes the offending line, which may hold a secret: keep where it
        // is and what is wrong, not the excerpt (the lines drawn with `|`).
        other => other.to_string().lines().filter(|l| !l.trim_start().trim_start_matches(|c: char| c.is_ascii_digit()).trim_start().starts_with('|')).collect::<Vec<_>>().join(" "),
    };
    let source = err
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(figment::Source::File(file)) => format!(" (from {})", file.display()),
            _ => format!(" (from {})", env_var_for(&key)),
        })
        .unwrap_or_default();
    format!("{key}: {problem}{source}")
}

/// A value's kind without the value.
fn kind_of(actual: &figment::error::Actual) -> &'static str {
    use figment::error::Actual;
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a number",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        _ => "another kind of value",
    }
}

/// Renders the effective configuration for `--print-config`; secrets show as `[redacted]`.
pub fn render<C: Serialize>(config: &C) -> String {
    serde_json::to_string_pretty(config).expect("configuration serializes to JSON")
}
