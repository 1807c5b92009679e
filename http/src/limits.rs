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

/// A proxy address or network (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`): in Kubernetes the
/// ingress controller's pods have no fixed address, only a known range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    network: IpAddr,
    prefix: u8,
}

impl ProxyNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32u8),
            IpAddr::V6(v6) => (u128::from(v6), 128u8),
        };
        let ((network, width), (candidate, candidate_width)) = (bits(self.network), bits(ip));
        if width != candidate_width {
            return false;
        }
        let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
        network & mask == candidate & mask
    }
}

impl std::str::FromStr for ProxyNet {
    type Err = String;
    fn from_str(text: &str) -> Result<ProxyNet, String> {
        let bad = || format!("{text:?} is not an IP address or network (10.0.0.0/8)");
        let (address, prefix) = text.split_once('/').map_or((text, None), |(a, p)| (a, Some(p)));
        let network: IpAddr = address.trim().parse().map_err(|_| bad())?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= width).ok_or_else(bad)?,
        };
        Ok(ProxyNet { network, prefix })
    }
}

impl Serialize for ProxyNet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}/{}", self.network, self.prefix))
    }
}

impl<'de> Deserialize<'de> for ProxyNet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
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
    trusted_proxies: Arc<Vec<ProxyNet>>,
}

/// Every class's limiters, built once: the routes of a class share its buckets wherever they
/// are mounted (the dashboard panel spends the same read budget as the other reads).
pub struct Limiters {
    read: ClassLimiter,
    write: ClassLimiter,
    money: ClassLimiter,
    callback: ClassLimiter,
}

fn quota(limit: Limit) -> Quota {
    Quota::per_minute(limit.per_minute).allow_burst(limit.burst)
}

impl Limiters {
    pub fn new(config: &RateLimits, trusted_proxies: Vec<ProxyNet>) -> Limiters {
        let trusted_proxies = Arc::new(trusted_proxies);
        let class = |limits: ClassLimits, per_token: bool| ClassLimiter::new(limits, per_token, trusted_proxies.clone());
        Limiters {
            read: class(config.read, true),
            write: class(config.write, true),
            money: class(config.money, true),
            callback: class(config.callback, false),
        }
    }

    /// `class`'s limiters, for `enforce` on the routes of that class.
    pub fn limiter(&self, class: Class) -> ClassLimiter {
        match class {
            Class::Read => self.read.clone(),
            Class::Write => self.write.clone(),
            Class::Money => self.money.clone(),
            Class::Callback => self.callback.clone(),
        }
    }
}

impl ClassLimiter {
    fn new(limits: ClassLimits, per_token: bool, trusted_proxies: Arc<Vec<ProxyNet>>) -> ClassLimiter {
        let per_ip = Arc::new(RateLimiter::keyed(quota(limits.per_ip)));
        let per_token = per_token.then(|| Arc::new(RateLimiter::keyed(quota(limits.per_token))));
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
        ClassLimiter { per_ip, per_token, trusted_proxies }
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the last address in
/// `X-Forwarded-For` that is not one of ours.
fn client_ip(request: &Request, trusted: &[ProxyNet]) -> IpAddr {
    let is_proxy = |ip: &IpAddr| trusted.iter().any(|net| net.contains(*ip));
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
    if !is_proxy(&peer) {
        return peer;
    }
    let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or_default();
    forwarded
        .rsplit(',')
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .find(|hop| !is_proxy(hop))
        .unwrap_or(peer)
}

fn retry_after(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    ApiError::RateLimited(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
}

/// The middleware: `route_layer(from_fn_with_state(limiters.limiter(class), enforce))`. It
/// applies the per-IP limit; the per-token limit is applied by the auth extractors once the
/// token is verified (`TokenBudget`), because a token's id is not secret: it appears in
/// `token list` and in the audit log, and a limit keyed by an unverified id would let anyone
/// drain an admin's budget with forged tokens.
pub async fn enforce(State(limiter): State<ClassLimiter>, mut request: Request, next: Next) -> Response {
    let ip = client_ip(&request, &limiter.trusted_proxies);
    if let Err(not_until) = limiter.per_ip.check_key(&ip) {
        metrics::counter!("http_rate_limited_total", "by" => "ip").increment(1);
        return retry_after(not_until).into_response();
    }
    if let Some(per_token) = &limiter.per_token {
        request.extensions_mut().insert(TokenBudget(per_token.clone()));
    }
    next.run(request).await
}

/// The per-token limit of the route's class, spent by a verified token.
#[derive(Clone)]
pub struct TokenBudget(Arc<DefaultKeyedRateLimiter<String>>);

impl TokenBudget {
    pub fn spend(&self, token_id: &str) -> Result<(), ApiError> {
        self.0.check_key(&token_id.to_owned()).map_err(|not_until| {
            metrics::counter!("http_rate_limited_total", "by" => "token").increment(1);
            retry_after(not_until)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_networks_parse_and_match() {
        let net: ProxyNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.42.7.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("::ffff:10.0.0.1".parse().unwrap()), "families never mix");
        let one: ProxyNet = "172.28.0.10".parse().unwrap();
        assert!(one.contains("172.28.0.10".parse().unwrap()) && !one.contains("172.28.0.11".parse().unwrap()));
        let v6: ProxyNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!("0.0.0.0/0".parse::<ProxyNet>().unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<ProxyNet>().is_err(), "{bad}");
        }
    }
}
