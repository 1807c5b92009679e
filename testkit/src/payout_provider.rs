//! A payout provider for tests: an HTTP server on a free loopback port speaking the wire format
//! of `obentchi_core::payout::HttpPayoutProvider`, and answering the ways real providers do, not
//! only the polite way. Its own records are the truth the tests check against: how many times
//! each payout id was executed (more than once is a double payout), and what was refused.
//!
//! The base `PayoutMode` says what a first send does. `PayoutFaults` adds the adversary, on a
//! seeded schedule: executing and then timing out, answering `409` to a re-sent key, lookups
//! that lag behind executions (`404` for a while after paying), `5xx` before or after
//! executing, and slow answers.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
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

/// The adversary. Rates are per mille of the requests they apply to, drawn from `seed`.
#[derive(Debug, Clone, Default)]
pub struct PayoutFaults {
    pub seed: u64,
    /// A re-sent key of a payout already executed is answered `409` ("already used") instead
    /// of the first result.
    pub conflict_on_resend: bool,
    /// Lookups answer `404` for an executed payout until this long after it executed.
    pub lookup_lag: Duration,
    /// First sends that execute and then answer only after `stall`.
    pub execute_then_stall_permille: u32,
    pub stall: Duration,
    /// First sends answered `503` without executing.
    pub error_before_permille: u32,
    /// First sends that execute and then answer `500`.
    pub error_after_permille: u32,
    /// First sends refused as final (`failed`; nothing executed).
    pub refuse_permille: u32,
    /// Requests (sends and lookups) answered after `slow`.
    pub slow_permille: u32,
    pub slow: Duration,
}

/// One executed payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// How many times it was executed: anything but 1 is a double payout.
    pub times: usize,
}

#[derive(Default)]
struct Records {
    executed: HashMap<String, (Executed, Instant)>,
    failed: HashMap<String, String>,
    faults: BTreeMap<&'static str, u64>,
}

struct Shared {
    mode: Mutex<PayoutMode>,
    faults: Mutex<(PayoutFaults, StdRng)>,
    records: Mutex<Records>,
}

impl Shared {
    /// Whether a fault of `rate` per mille fires now, counted under `name` when it does.
    fn roll(&self, name: &'static str, rate: impl Fn(&PayoutFaults) -> u32) -> bool {
        let fired = {
            let mut guard = self.faults.lock().unwrap();
            let (faults, rng) = &mut *guard;
            let rate = rate(faults);
            rate > 0 && rng.random_range(0..1000) < rate
        };
        if fired {
            self.count(name);
        }
        fired
    }

    fn count(&self, name: &'static str) {
        *self.records.lock().unwrap().faults.entry(name).or_default() += 1;
    }

    fn faults(&self) -> PayoutFaults {
        self.faults.lock().unwrap().0.clone()
    }
}

pub struct FakePayoutProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakePayoutProvider {
    /// On a free loopback port.
    pub async fn start(mode: PayoutMode) -> FakePayoutProvider {
        FakePayoutProvider::start_on("127.0.0.1:0", mode).await
    }

    pub async fn start_on(addr: &str, mode: PayoutMode) -> FakePayoutProvider {
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            faults: Mutex::new((PayoutFaults::default(), StdRng::seed_from_u64(0))),
            records: Mutex::default(),
        });
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

    pub fn set_faults(&self, faults: PayoutFaults) {
        let rng = StdRng::seed_from_u64(faults.seed);
        *self.shared.faults.lock().unwrap() = (faults, rng);
    }

    /// How many times the payout `id` was executed.
    pub fn executions(&self, id: &str) -> usize {
        self.shared.records.lock().unwrap().executed.get(id).map_or(0, |(e, _)| e.times)
    }

    pub fn total_executions(&self) -> usize {
        self.shared.records.lock().unwrap().executed.values().map(|(e, _)| e.times).sum()
    }

    /// Every payout executed, by id.
    pub fn executed(&self) -> Vec<Executed> {
        let mut all: Vec<Executed> = self.shared.records.lock().unwrap().executed.values().map(|(e, _)| e.clone()).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Faults injected so far, by kind.
    pub fn faults_injected(&self) -> BTreeMap<&'static str, u64> {
        self.shared.records.lock().unwrap().faults.clone()
    }
}

impl Drop for FakePayoutProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn sent(id: &str) -> Response {
    Json(json!({ "status": "sent", "reference": format!("ref-{id}") })).into_response()
}

async fn create(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let Some(id) = body.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return (StatusCode::BAD_REQUEST, "missing id").into_response();
    };
    let faults = shared.faults();
    if shared.roll("slow", |f| f.slow_permille) {
        tokio::time::sleep(faults.slow).await;
    }
    // A key seen before: the first result again, or 409 for one already paid.
    {
        let records = shared.records.lock().unwrap();
        if records.executed.contains_key(&id) {
            drop(records);
            if faults.conflict_on_resend {
                shared.count("conflict_409");
                return (StatusCode::CONFLICT, Json(json!({ "error": "idempotency key already used" }))).into_response();
            }
            return sent(&id);
        }
        if let Some(reason) = records.failed.get(&id) {
            return Json(json!({ "status": "failed", "reason": reason })).into_response();
        }
    }
    let mode = *shared.mode.lock().unwrap();
    if mode == PayoutMode::Fail || shared.roll("refused", |f| f.refuse_permille) {
        shared.records.lock().unwrap().failed.insert(id, "address blocked".into());
        return Json(json!({ "status": "failed", "reason": "address blocked" })).into_response();
    }
    if shared.roll("error_before_execute", |f| f.error_before_permille) {
        return (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response();
    }
    {
        let mut records = shared.records.lock().unwrap();
        let amount = body.get("amount").and_then(Value::as_i64).unwrap_or_default();
        let currency = body.get("currency").and_then(Value::as_str).unwrap_or_default().to_owned();
        let entry = records
            .executed
            .entry(id.clone())
            .or_insert_with(|| (Executed { id: id.clone(), amount, currency, times: 0 }, Instant::now()));
        entry.0.times += 1;
    }
    if shared.roll("error_after_execute", |f| f.error_after_permille) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    }
    if let PayoutMode::ExecuteThenStall(delay) = mode {
        tokio::time::sleep(delay).await;
    } else if shared.roll("execute_then_timeout", |f| f.execute_then_stall_permille) {
        tokio::time::sleep(faults.stall).await;
    }
    sent(&id)
}

async fn lookup(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let faults = shared.faults();
    if shared.roll("slow", |f| f.slow_permille) {
        tokio::time::sleep(faults.slow).await;
    }
    let records = shared.records.lock().unwrap();
    if let Some((_, at)) = records.executed.get(&id) {
        if at.elapsed() >= faults.lookup_lag {
            return sent(&id);
        }
        drop(records);
        shared.count("lookup_lag_404");
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(reason) = records.failed.get(&id) {
        return Json(json!({ "status": "failed", "reason": reason })).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}
