//! Rate limits (governor, GCRA) per route class, each per client IP and per token: reads are
//! generous, changes less so, money routes (withdrawal approve/reject/retry) strictest, payment
//! callbacks per IP only. Over the limit: 429 with `Retry-After`. Limits live in each process
//! (they bound one replica's load; nginx's `limit_req` bounds the whole).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Limit {
    pub per_minute: NonZeroU32,
    /// Requests allowed at once after a quiet spell.
    pub burst: NonZeroU32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ClassLimits {
    pub per_ip: Limit,
    pub per_token: Limit,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    pub read: ClassLimits,
    pub write: ClassLimits,
    pub money: ClassLimits,
    /// Payment gateway callbacks (unauthenticated: only `per_ip` applies).
    pub callback: ClassLimits,
}

fn limit(per_minute: u32, burst: u32) -> Limit {
    Limit { per_minute: NonZeroU32::new(per_minute).expect("nonzero"), burst: NonZeroU32::new(burst).expect("nonzero") }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            read: ClassLimits { per_ip: limit(600, 100), per_token: limit(1_200, 200) },
            write: ClassLimits { per_ip: limit(120, 20), per_token: limit(120, 20) },
            money: ClassLimits { per_ip: limit(30, 5), per_token: limit(30, 5) },
            callback: ClassLimits { per_ip: limit(600, 100), per_token: limit(600, 100) },
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Class {
    Read,
    Write,
    Money,
    Callback,
}

/// One class's limiters.
#[derive(Clone)]
pub struct ClassLimiter {
    per_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// `None` for callbacks.
    per_token: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    trusted_proxies: Arc<Vec<IpAddr>>,
}

pub struct Limiters {
    config: RateLimits,
    trusted_proxies: Arc<Vec<IpAddr>>,
}

fn quota(limit: Limit) -> Quota {
    Quota::per_minute(limit.per_minute).allow_burst(limit.burst)
}

impl Limiters {
    pub fn new(config: &RateLimits, trusted_proxies: Vec<IpAddr>) -> Limiters {
        Limiters { config: config.clone(), trusted_proxies: Arc::new(trusted_proxies) }
    }

    /// `class`'s limiters, for `enforce` on the routes of that class.
    pub fn limiter(&self, class: Class) -> ClassLimiter {
        let limits = match class {
            Class::Read => self.config.read,
            Class::Write => self.config.write,
            Class::Money => self.config.money,
            Class::Callback => self.config.callback,
        };
        let per_ip = Arc::new(RateLimiter::keyed(quota(limits.per_ip)));
        let per_token = (!matches!(class, Class::Callback)).then(|| Arc::new(RateLimiter::keyed(quota(limits.per_token))));
        // Forget keys that are back to a full bucket, so many distinct clients do not grow the
        // maps without bound.
        let (ips, tokens) = (Arc::downgrade(&per_ip), per_token.as_ref().map(Arc::downgrade));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(ips) = ips.upgrade() else { return };
                ips.retain_recent();
                if let Some(tokens) = tokens.as_ref().and_then(|t| t.upgrade()) {
                    tokens.retain_recent();
                }
            }
        });
        ClassLimiter { per_ip, per_token, trusted_proxies: self.trusted_proxies.clone() }
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the last address in
/// `X-Forwarded-For` that is not one of ours.
fn client_ip(request: &Request, trusted: &[IpAddr]) -> IpAddr {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or_default();
    forwarded
        .rsplit(',')
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .find(|hop| !trusted.contains(hop))
        .unwrap_or(peer)
}

fn retry_after(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    ApiError::RateLimited(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
}

/// The middleware: `route_layer(from_fn_with_state(limiters.limiter(class), enforce))`.
pub async fn enforce(State(limiter): State<ClassLimiter>, request: Request, next: Next) -> Response {
    let ip = client_ip(&request, &limiter.trusted_proxies);
    if let Err(not_until) = limiter.per_ip.check_key(&ip) {
        metrics::counter!("http_rate_limited_total", "by" => "ip").increment(1);
        return retry_after(not_until).into_response();
    }
    if let Some(per_token) = &limiter.per_token {
        // Keyed by the token's id as presented, before it is verified: a forged id only spends
        // its own bucket, and the per-IP limit above still applies to it.
        let id = crate::auth::bearer(request.headers()).and_then(obentchi_core::api_tokens::token_id);
        if let Some(id) = id {
            if let Err(not_until) = per_token.check_key(&id.to_owned()) {
                metrics::counter!("http_rate_limited_total", "by" => "token").increment(1);
                return retry_after(not_until).into_response();
            }
        }
    }
    next.run(request).await
}
