//! The payout provider: the one external call that sends money out.
//!
//! Every request carries our withdrawal id as the provider's idempotency key. Outcomes are
//! three-valued: `Sent` and `Rejected` are definitive; `Ambiguous` means the payout may or may
//! not have happened, and is settled only by looking the payout up, never by sending again
//! blindly and never by giving the money back.
//!
//! What counts as definitive is narrow on purpose. The provider's contract documents two final
//! refusals of a send: a `200` whose status is `failed`, and `400`/`422` (the request was invalid
//! and not executed). Everything else is ambiguous: timeouts, dropped connections, unreadable
//! answers, unknown statuses, `5xx`, `408`, `425`, `429`, and `409` — which is what a provider
//! answers when the key is in flight or already used, i.e. possibly *after* it paid. Even a
//! final refusal is only final for the first send of an id: a refusal of a re-send says nothing
//! about the first (the caller, `withdrawals`, knows which send it is). A lookup is definitive
//! when it says `sent` or `failed`; `404` means "not seen (yet)", which a provider whose
//! lookups lag behind its writes also says for a while after executing.

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::config::{IssuedToken, Secret};
use crate::money::{Currency, Money};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRequest {
    /// Our withdrawal id; the provider's idempotency key.
    pub id: String,
    pub address: String,
    pub currency: Currency,
    /// Minor units.
    pub amount: i64,
}

impl PayoutRequest {
    pub fn new(id: String, address: String, amount: Money) -> PayoutRequest {
        PayoutRequest { id, address, currency: amount.currency(), amount: amount.minor() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent { reference: String },
    Rejected { reason: String },
    Ambiguous { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupOutcome {
    Sent { reference: String },
    Failed { reason: String },
    /// The provider has it but has not finished.
    Pending,
    /// The provider never received it: sending (with the same key) is safe.
    NotFound,
}

pub trait PayoutProvider: Send + Sync + 'static {
    fn send(&self, request: &PayoutRequest) -> impl Future<Output = SendOutcome> + Send;
    /// Looks up the payout `request` asked for (by its id, the idempotency key).
    fn lookup(&self, request: &PayoutRequest) -> impl Future<Output = Result<LookupOutcome, String>> + Send;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayoutProviderConfig {
    /// Base URL; requests go to `{base_url}/payouts` and `{base_url}/payouts/{id}`.
    pub base_url: String,
    pub api_token: Secret<IssuedToken>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// The provider's wire format: `POST /payouts` with `Idempotency-Key`, answering
/// `{"status": "sent"|"failed"|"pending", "reference": ..., "reason": ...}`;
/// `GET /payouts/{id}` the same, or 404 if unknown.
#[derive(Debug, Deserialize)]
struct ProviderPayout {
    status: String,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Clone)]
pub struct HttpPayoutProvider {
    client: reqwest::Client,
    base_url: String,
    api_token: Secret<IssuedToken>,
}

impl HttpPayoutProvider {
    pub fn new(config: &PayoutProviderConfig) -> Result<HttpPayoutProvider, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(Duration::from_millis(config.timeout_ms)).build()?;
        Ok(HttpPayoutProvider {
            client,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            api_token: config.api_token.clone(),
        })
    }
}

impl PayoutProvider for HttpPayoutProvider {
    async fn send(&self, request: &PayoutRequest) -> SendOutcome {
        let response = self
            .client
            .post(format!("{}/payouts", self.base_url))
            .bearer_auth(self.api_token.expose().as_str())
            .header("Idempotency-Key", &request.id)
            .json(request)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            // The request may have reached the provider before the connection failed.
            Err(err) => return SendOutcome::Ambiguous { reason: err.to_string() },
        };
        let status = response.status();
        if status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY {
            let reason = response.text().await.unwrap_or_default();
            return SendOutcome::Rejected { reason: format!("provider answered {status}: {reason}") };
        }
        if !status.is_success() {
            return SendOutcome::Ambiguous { reason: format!("provider answered {status}") };
        }
        match response.json::<ProviderPayout>().await {
            Ok(payout) => match payout.status.as_str() {
                "sent" => SendOutcome::Sent { reference: payout.reference.unwrap_or_default() },
                "failed" => SendOutcome::Rejected { reason: payout.reason.unwrap_or_default() },
                other => SendOutcome::Ambiguous { reason: format!("provider status {other:?}") },
            },
            Err(err) => SendOutcome::Ambiguous { reason: format!("unreadable provider answer: {err}") },
        }
    }

    async fn lookup(&self, request: &PayoutRequest) -> Result<LookupOutcome, String> {
        let id = &request.id;
        let response = self
            .client
            .get(format!("{}/payouts/{id}", self.base_url))
            .bearer_auth(self.api_token.expose().as_str())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(LookupOutcome::NotFound);
        }
        if !response.status().is_success() {
            return Err(format!("lookup answered {}", response.status()));
        }
        let payout: ProviderPayout = response.json().await.map_err(|e| e.to_string())?;
        Ok(match payout.status.as_str() {
            "sent" => LookupOutcome::Sent { reference: payout.reference.unwrap_or_default() },
            "failed" => LookupOutcome::Failed { reason: payout.reason.unwrap_or_default() },
            // "pending", "processing", or a status we do not know: not finished as far as we
            // can tell. A withdrawal that stays so is reported as stuck, not guessed at.
            _ => LookupOutcome::Pending,
        })
    }
}
