//! Every error the API answers with, and the one place that maps them to status codes. The body
//! is `{"error": {"code": "...", "message": "..."}}`; codes are stable (clients branch on them),
//! messages are for people.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or malformed bearer token")]
    Unauthenticated,
    #[error("unknown or revoked token")]
    BadToken,
    #[error("the token lacks the `{0}` scope")]
    Forbidden(&'static str),
    /// The token may do this kind of thing, but not this one (approving its own correction).
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("request body larger than {} bytes", crate::layers::MAX_BODY_BYTES)]
    PayloadTooLarge,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("missing or wrong signature")]
    BadSignature,
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    #[error("a dependency is unavailable")]
    Unavailable(#[source] anyhow::Error),
}

/// The error body (also the OpenAPI schema of every error answer).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthenticated`, `forbidden`, `bad_request`,
    /// `payload_too_large`, `not_found`, `conflict`, `bad_signature`, `rate_limited`,
    /// `unavailable`.
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated | ApiError::BadToken => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) | ApiError::NotAllowed(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::BadSignature => (StatusCode::UNAUTHORIZED, "bad_signature"),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }

    pub fn bad_request(message: impl std::fmt::Display) -> ApiError {
        ApiError::BadRequest(message.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Unavailable(err) = &self {
            // Only the log gets the detail: it may name hosts.
            tracing::error!(error = format!("{err:#}"), "request failed on a dependency");
        }
        let body = ErrorBody { error: ErrorDetail { code, message: self.to_string() } };
        let mut response = (status, axum::Json(body)).into_response();
        match self {
            ApiError::Unauthenticated | ApiError::BadToken => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited(seconds) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            _ => {}
        }
        response
    }
}

/// Storage and queue failures are the dependency being down or failing: 503, detail logged.
macro_rules! unavailable_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(err: $t) -> ApiError {
                ApiError::Unavailable(err.into())
            }
        }
    )*};
}
unavailable_from!(
    mongodb::error::Error,
    redis::RedisError,
    apalis_redis_streams::QueueError,
    obentchi_core::ledger::LedgerError,
    obentchi_core::stats::StatsError,
    obentchi_core::subscriptions::SubscriptionError,
    obentchi_core::withdrawals::NoticeError
);

impl From<obentchi_core::withdrawals::WithdrawalError> for ApiError {
    fn from(err: obentchi_core::withdrawals::WithdrawalError) -> ApiError {
        use obentchi_core::withdrawals::WithdrawalError as E;
        match err {
            E::NotFound(id) => ApiError::NotFound(format!("withdrawal {id}")),
            err @ (E::InvalidState { .. } | E::Conflict(_) | E::InProgress(_) | E::Ambiguous(_) | E::ClaimLost(_)) => {
                ApiError::Conflict(err.to_string())
            }
            err @ (E::Id(_) | E::Posting(_)) => ApiError::BadRequest(err.to_string()),
            err @ (E::Ledger(_) | E::Storage(_)) => ApiError::Unavailable(err.into()),
        }
    }
}

impl From<obentchi_core::settings::SettingsError> for ApiError {
    fn from(err: obentchi_core::settings::SettingsError) -> ApiError {
        use obentchi_core::settings::SettingsError as E;
        match err {
            err @ E::VersionConflict { .. } => ApiError::Conflict(err.to_string()),
            err @ E::Storage(_) => ApiError::Unavailable(err.into()),
        }
    }
}

impl From<obentchi_core::support::SupportError> for ApiError {
    fn from(err: obentchi_core::support::SupportError) -> ApiError {
        use obentchi_core::support::SupportError as E;
        match err {
            E::NoThread(user) => ApiError::NotFound(format!("support thread of user {user}")),
            err @ (E::Storage(_) | E::Queue(_)) => ApiError::Unavailable(err.into()),
        }
    }
}

impl From<obentchi_core::broadcasts::BroadcastError> for ApiError {
    fn from(err: obentchi_core::broadcasts::BroadcastError) -> ApiError {
        use obentchi_core::broadcasts::BroadcastError as E;
        match err {
            E::NotFound(id) => ApiError::NotFound(format!("broadcast {id}")),
            err @ (E::Storage(_) | E::Queue(_)) => ApiError::Unavailable(err.into()),
        }
    }
}

impl From<obentchi_core::payments::PaymentError> for ApiError {
    fn from(err: obentchi_core::payments::PaymentError) -> ApiError {
        use obentchi_core::payments::PaymentError as E;
        match err {
            err @ (E::Id(_) | E::Posting(_)) => ApiError::BadRequest(err.to_string()),
            err @ E::Conflict(_) => ApiError::Conflict(err.to_string()),
            err @ (E::Ledger(_) | E::Storage(_)) => ApiError::Unavailable(err.into()),
        }
    }
}

/// Rejections of axum's extractors (bad JSON, bad query, bad path) as our `bad_request`.
pub struct Rejection(pub ApiError);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

macro_rules! rejection_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Rejection {
            fn from(rejection: $t) -> Rejection {
                Rejection(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest(rejection.body_text())
                })
            }
        }
    )*};
}
rejection_from!(
    axum::extract::rejection::JsonRejection,
    axum::extract::rejection::QueryRejection,
    axum::extract::rejection::PathRejection,
    axum::extract::rejection::BytesRejection
);

/// `axum::Json` whose rejection is our `bad_request`.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(Rejection))]
pub struct Json<T>(pub T);

/// `axum::extract::Query` whose rejection is our `bad_request`.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Rejection))]
pub struct Query<T>(pub T);

/// The raw body (`Bytes`) whose rejection (too large) is ours.
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawBody {
    type Rejection = Rejection;
    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Rejection> {
        Ok(RawBody(<axum::body::Bytes as axum::extract::FromRequest<S>>::from_request(request, state).await?))
    }
}

/// `axum::extract::Path` whose rejection is our `bad_request`.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Rejection))]
pub struct Path<T>(pub T);
