//! What every response of the API passes through: request metrics by route and status,
//! security headers, a body size cap (enforced by the body extractors, answered as
//! `payload_too_large`), and CORS (closed unless origins are configured).

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// Admin requests and gateway callbacks are small JSON documents.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The API answers JSON and never wants to be framed or to run scripts; the dashboard and the
/// Swagger UI set their own, looser policy (`if_not_present`).
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

pub fn apply(router: Router, cors_allowed_origins: &[String]) -> Router {
    let static_header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    let router = router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(static_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(static_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(static_header(header::REFERRER_POLICY, "no-referrer"))
        .layer(static_header(header::CONTENT_SECURITY_POLICY, API_CSP))
        .layer(static_header(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains"))
        .layer(static_header(header::CACHE_CONTROL, "no-store"));
    let router = if cors_allowed_origins.is_empty() {
        router
    } else {
        let origins: Vec<HeaderValue> = cors_allowed_origins.iter().filter_map(|o| o.parse().ok()).collect();
        router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
        )
    };
    router.layer(middleware::from_fn(record_metrics))
}

/// `http_requests_total{method, route, status}` and `http_request_duration_seconds{route}`;
/// the route is the matched pattern (`/admin/users/{id}`), never the raw path, and the method
/// one of a fixed set, so label values stay few whatever an anonymous caller sends (each new
/// label value is a series the exporter keeps forever).
async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// The standard methods by name; anything else (HTTP allows any token) is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
