//! Who is calling: the bearer token in `Authorization`, and nothing else (never the body, the
//! query or a custom header). Handlers say what they need by taking `Reader`, `Writer` or
//! `Banker`. A `Writer` or `Banker` is let in only once its attempt is in the audit log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use obentchi_core::admin_audit::AuditEntry;
use obentchi_core::api_tokens::{ApiToken, ApiTokens, Scope};

use crate::error::ApiError;
use crate::AppState;

/// Verifies tokens, remembering verified ones for `ttl` so a read costs no MongoDB query.
#[derive(Clone)]
pub struct TokenVerifier {
    tokens: ApiTokens,
    ttl: Duration,
    cache: Arc<Mutex<HashMap<String, (ApiToken, Instant)>>>,
}

/// Verified tokens kept at most; past it the cache starts over (a flood of distinct valid
/// tokens is not a real workload).
const CACHE_CAP: usize = 10_000;

impl TokenVerifier {
    pub fn new(tokens: ApiTokens, ttl: Duration) -> TokenVerifier {
        TokenVerifier { tokens, ttl, cache: Arc::default() }
    }

    async fn verify(&self, presented: &str) -> Result<ApiToken, ApiError> {
        if let Some((token, at)) = self.cache.lock().expect("token cache").get(presented) {
            if at.elapsed() < self.ttl {
                return Ok(token.clone());
            }
        }
        let token = self.tokens.verify(presented).await?.ok_or(ApiError::BadToken)?;
        let mut cache = self.cache.lock().expect("token cache");
        if cache.len() >= CACHE_CAP {
            cache.clear();
        }
        cache.insert(presented.to_owned(), (token.clone(), Instant::now()));
        Ok(token)
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The verified caller, for the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub token_name: String,
}

impl Caller {
    /// An audit entry, now, for something this caller did.
    pub fn audit_entry(&self, action: &str, target: &str, outcome: &str) -> AuditEntry {
        AuditEntry {
            token_id: self.token_id.clone(),
            token_name: self.token_name.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            outcome: outcome.to_owned(),
            at: chrono::Utc::now(),
        }
    }
}

async fn authorize(parts: &Parts, state: &AppState, scope: Scope) -> Result<Caller, ApiError> {
    let presented = bearer(&parts.headers).ok_or(ApiError::Unauthenticated)?;
    let token = state.tokens.verify(presented).await?;
    // Only a verified token spends its budget (see `limits::enforce`).
    if let Some(budget) = parts.extensions.get::<crate::limits::TokenBudget>() {
        budget.spend(&token.id)?;
    }
    if !token.allows(scope) {
        return Err(ApiError::Forbidden(scope.name()));
    }
    let caller = Caller { token_id: token.id, token_name: token.name };
    if scope != Scope::Read {
        // Fails closed: a change whose attempt cannot be audited is not made.
        let route = parts.extensions.get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
        let attempt = caller.audit_entry(&format!("{} {route}", parts.method), parts.uri.path(), "attempted");
        state.audit.record_attempt(&attempt).await.map_err(|err| ApiError::Unavailable(anyhow::Error::new(err).context("audit log")))?;
    }
    Ok(caller)
}

/// A caller with the `read` scope.
pub struct Reader(pub Caller);
/// A caller with the `write` scope.
pub struct Writer(pub Caller);
/// A caller with the `money` scope (refunds, balance corrections).
pub struct Banker(pub Caller);

impl FromRequestParts<AppState> for Banker {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authorize(parts, state, Scope::Money).await.map(Banker)
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authorize(parts, state, Scope::Read).await.map(Reader)
    }
}

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authorize(parts, state, Scope::Write).await.map(Writer)
    }
}
