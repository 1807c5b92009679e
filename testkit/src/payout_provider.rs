//! A payout provider for tests: an HTTP server on a free loopback port speaking the wire format
//! of `obentchi_core::payout::HttpPayoutProvider`. It deliberately does not deduplicate by
//! idempotency key: every POST it accepts executes a payout, so a test sees any second send.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutMode {
    /// Executes the payout and answers `sent`.
    Succeed,
    /// Refuses the payout (nothing executed) and answers `failed`.
    Fail,
    /// Executes the payout, then answers only after this delay: longer than the client's
    /// timeout, it is the ambiguous case.
    ExecuteThenStall(Duration),
}

#[derive(Default)]
struct Ledger {
    /// Payouts executed per id (more than one would be a double payout).
    executed: HashMap<String, usize>,
    failed: HashMap<String, String>,
}

#[derive(Clone)]
struct Shared {
    mode: Arc<Mutex<PayoutMode>>,
    ledger: Arc<Mutex<Ledger>>,
}

pub struct FakePayoutProvider {
    addr: SocketAddr,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl FakePayoutProvider {
    /// On a free loopback port.
    pub async fn start(mode: PayoutMode) -> FakePayoutProvider {
        FakePayoutProvider::start_on("127.0.0.1:0", mode).await
    }

    pub async fn start_on(addr: &str, mode: PayoutMode) -> FakePayoutProvider {
        let shared = Shared { mode: Arc::new(Mutex::new(mode)), ledger: Arc::default() };
        let app = Router::new()
            .route("/payouts", post(create))
            .route("/payouts/{id}", get(lookup))
            .with_state(shared.clone());
        let (addr, server) = crate::serve_http(addr, app).await;
        FakePayoutProvider { addr, shared, server }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: PayoutMode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// How many times the payout `id` was executed.
    pub fn executions(&self, id: &str) -> usize {
        self.shared.ledger.lock().unwrap().executed.get(id).copied().unwrap_or(0)
    }

    pub fn total_executions(&self) -> usize {
        self.shared.ledger.lock().unwrap().executed.values().sum()
    }
}

impl Drop for FakePayoutProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn create(State(shared): State<Shared>, Json(body): Json<Value>) -> Response {
    let Some(id) = body.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return (StatusCode::BAD_REQUEST, "missing id").into_response();
    };
    let mode = *shared.mode.lock().unwrap();
    match mode {
        PayoutMode::Fail => {
            shared.ledger.lock().unwrap().failed.insert(id, "address blocked".into());
            Json(json!({ "status": "failed", "reason": "address blocked" })).into_response()
        }
        PayoutMode::Succeed | PayoutMode::ExecuteThenStall(_) => {
            *shared.ledger.lock().unwrap().executed.entry(id.clone()).or_default() += 1;
            if let PayoutMode::ExecuteThenStall(delay) = mode {
                tokio::time::sleep(delay).await;
            }
            Json(json!({ "status": "sent", "reference": format!("ref-{id}") })).into_response()
        }
    }
}

async fn lookup(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let ledger = shared.ledger.lock().unwrap();
    if ledger.executed.contains_key(&id) {
        return Json(json!({ "status": "sent", "reference": format!("ref-{id}") })).into_response();
    }
    if let Some(reason) = ledger.failed.get(&id) {
        return Json(json!({ "status": "failed", "reason": reason })).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}
