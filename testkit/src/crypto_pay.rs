//! A fake Crypto Pay API (@CryptoBot's payment API) on a free loopback port, answering the way
//! the documented API does: `POST /api/{method}` with the app token in `Crypto-Pay-API-Token`,
//! `{"ok": true, "result": …}` or `{"ok": false, "error": {"code": …, "name": …}}`.
//!
//! Invoices are created active and paid by the test (`pay`), which then delivers the signed
//! `invoice_paid` webhook as often as it likes (`deliver_paid_webhook`). Transfers are executed
//! once per `spend_id`. Faults make it answer like a stressed provider: a transfer that executes
//! and then answers too late for the client, a re-sent `spend_id` refused as already used,
//! lookups (`getTransfers`) that do not show a new transfer for a while, 429s and 5xx pages.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How the fake misbehaves, set by the test.
#[derive(Debug, Clone, Copy, Default)]
pub struct CryptoPayFaults {
    /// The next this many transfers execute, then answer only after `late_by`.
    pub execute_then_answer_late: u32,
    pub late_by: Duration,
    /// A `spend_id` sent again is refused with `SPEND_ID_ALREADY_USED` (after executing once).
    pub refuse_resent_spend_id: bool,
    /// A new transfer is missing from this many `getTransfers` answers before it shows.
    pub lookup_lag: u32,
    /// The next this many calls (any method) are refused by flood control, unexecuted: 429
    /// `TOO_MANY_REQUESTS`.
    pub rate_limited_calls: u32,
    /// The next this many calls (any method) meet a failing proxy, unexecuted: a 502 HTML page.
    pub server_error_calls: u32,
}

#[derive(Debug, Clone)]
struct FakeInvoice {
    asset: String,
    amount: String,
    payload: String,
    status: &'static str,
}

#[derive(Debug, Clone)]
struct FakeTransfer {
    transfer_id: i64,
    user_id: i64,
    asset: String,
    amount: String,
    /// `getTransfers` answers left that still leave it out.
    hidden_for: u32,
}

#[derive(Default)]
struct Ledger {
    invoices: BTreeMap<i64, FakeInvoice>,
    transfers: BTreeMap<String, FakeTransfer>,
    faults: CryptoPayFaults,
    next_id: i64,
    sends: u32,
}

#[derive(Clone)]
struct Fake {
    token: Arc<str>,
    ledger: Arc<Mutex<Ledger>>,
}

pub struct FakeCryptoPay {
    addr: SocketAddr,
    fake: Fake,
    client: reqwest::Client,
}

/// A decimal amount as Crypto Pay accepts it (digits, at most one point, at most `decimals`
/// places, more than zero).
fn valid_amount(amount: &str, decimals: usize) -> bool {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty()
        && digits(whole)
        && digits(fraction)
        && fraction.trim_end_matches('0').len() <= decimals
        && amount.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

fn decimals(asset: &str) -> Option<usize> {
    match asset {
        "USDT" | "USDC" => Some(6),
        "TON" => Some(9),
        _ => None,
    }
}

fn ok(result: Value) -> Response {
    Json(json!({ "ok": true, "result": result })).into_response()
}

fn error(code: u16, name: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(json!({ "ok": false, "error": { "code": code, "name": name } }))).into_response()
}

fn invoice_json(id: i64, invoice: &FakeInvoice) -> Value {
    json!({
        "invoice_id": id,
        "hash": format!("IV{id:08}"),
        "currency_type": "crypto",
        "asset": invoice.asset,
        "amount": invoice.amount,
        "status": invoice.status,
        "payload": invoice.payload,
        "bot_invoice_url": format!("https://t.me/CryptoBot?start=IV{id:08}"),
        "created_at": "2026-12-02T00:00:00.000Z",
    })
}

fn transfer_json(spend_id: &str, transfer: &FakeTransfer) -> Value {
    json!({
        "transfer_id": transfer.transfer_id,
        "spend_id": spend_id,
        "user_id": transfer.user_id,
        "asset": transfer.asset,
        "amount": transfer.amount,
        "status": "completed",
        "completed_at": "2026-12-02T00:00:00.000Z",
    })
}

fn text(params: &Value, name: &str) -> Option<String> {
    match &params[name] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn api(State(fake): State<Fake>, Path(method): Path<String>, headers: HeaderMap, body: String) -> Response {
    if headers.get("crypto-pay-api-token").and_then(|v| v.to_str().ok()) != Some(&*fake.token) {
        return error(401, "UNAUTHORIZED");
    }
    {
        let mut ledger = fake.ledger.lock().unwrap();
        if ledger.faults.rate_limited_calls > 0 {
            ledger.faults.rate_limited_calls -= 1;
            return error(429, "TOO_MANY_REQUESTS");
        }
        if ledger.faults.server_error_calls > 0 {
            ledger.faults.server_error_calls -= 1;
            return (StatusCode::BAD_GATEWAY, "<html><body>502 Bad Gateway</body></html>").into_response();
        }
    }
    let params: Value = if body.is_empty() { json!({}) } else { serde_json::from_str(&body).unwrap_or(json!({})) };
    match method.as_str() {
        "getMe" => ok(json!({ "app_id": 1, "name": "obentchi-test", "payment_processing_bot_username": "CryptoTestnetBot" })),
        "createInvoice" => create_invoice(&fake, &params),
        "getInvoices" => get_invoices(&fake, &params),
        "transfer" => transfer(&fake, &params).await,
        "getTransfers" => get_transfers(&fake, &params),
        _ => error(405, "METHOD_NOT_FOUND"),
    }
}

fn create_invoice(fake: &Fake, params: &Value) -> Response {
    let (Some(asset), Some(amount)) = (text(params, "asset"), text(params, "amount")) else { return error(400, "ASSET_OR_AMOUNT_MISSING") };
    let Some(places) = decimals(&asset) else { return error(400, "ASSET_INVALID") };
    if !valid_amount(&amount, places) {
        return error(400, "AMOUNT_INVALID");
    }
    let mut ledger = fake.ledger.lock().unwrap();
    ledger.next_id += 1;
    let id = ledger.next_id;
    let invoice = FakeInvoice { asset, amount, payload: text(params, "payload").unwrap_or_default(), status: "active" };
    let answer = invoice_json(id, &invoice);
    ledger.invoices.insert(id, invoice);
    ok(answer)
}

fn get_invoices(fake: &Fake, params: &Value) -> Response {
    let ledger = fake.ledger.lock().unwrap();
    let wanted: Option<Vec<i64>> = text(params, "invoice_ids").map(|ids| ids.split(',').filter_map(|i| i.trim().parse().ok()).collect());
    let status = text(params, "status");
    let items: Vec<Value> = ledger
        .invoices
        .iter()
        .filter(|(id, _)| wanted.as_ref().is_none_or(|w| w.contains(id)))
        .filter(|(_, invoice)| status.as_deref().is_none_or(|s| s == invoice.status))
        .map(|(id, invoice)| invoice_json(*id, invoice))
        .collect();
    ok(json!({ "items": items }))
}

async fn transfer(fake: &Fake, params: &Value) -> Response {
    let (Some(user_id), Some(asset), Some(amount), Some(spend_id)) =
        (params["user_id"].as_i64(), text(params, "asset"), text(params, "amount"), text(params, "spend_id"))
    else {
        return error(400, "PARAMS_MISSING");
    };
    let Some(places) = decimals(&asset) else { return error(400, "ASSET_INVALID") };
    if !valid_amount(&amount, places) {
        return error(400, "AMOUNT_INVALID");
    }
    let (answer, late) = {
        let mut ledger = fake.ledger.lock().unwrap();
        ledger.sends += 1;
        if let Some(done) = ledger.transfers.get(&spend_id) {
            if ledger.faults.refuse_resent_spend_id {
                return error(400, "SPEND_ID_ALREADY_USED");
            }
            // Idempotent: the first transfer again.
            (transfer_json(&spend_id, done), None)
        } else {
            ledger.next_id += 1;
            let made = FakeTransfer { transfer_id: ledger.next_id, user_id, asset, amount, hidden_for: ledger.faults.lookup_lag };
            let answer = transfer_json(&spend_id, &made);
            ledger.transfers.insert(spend_id, made);
            let late = (ledger.faults.execute_then_answer_late > 0).then(|| {
                ledger.faults.execute_then_answer_late -= 1;
                ledger.faults.late_by
            });
            (answer, late)
        }
    };
    if let Some(late) = late {
        tokio::time::sleep(late).await;
    }
    ok(answer)
}

fn get_transfers(fake: &Fake, params: &Value) -> Response {
    let mut ledger = fake.ledger.lock().unwrap();
    let spend_id = text(params, "spend_id");
    let mut items = Vec::new();
    for (id, transfer) in ledger.transfers.iter_mut() {
        if spend_id.as_deref().is_some_and(|s| s != id) {
            continue;
        }
        if transfer.hidden_for > 0 {
            transfer.hidden_for -= 1;
            continue;
        }
        items.push(transfer_json(id, transfer));
    }
    ok(json!({ "items": items }))
}

impl FakeCryptoPay {
    /// Serves on a free loopback port; calls must carry `token`.
    pub async fn start(token: &str) -> FakeCryptoPay {
        FakeCryptoPay::start_on("127.0.0.1:0", token).await
    }

    /// Serves on `addr` (local runs use a fixed port).
    pub async fn start_on(addr: &str, token: &str) -> FakeCryptoPay {
        let fake = Fake { token: token.into(), ledger: Arc::default() };
        let app = Router::new().route("/api/{method}", post(api)).with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the fake Crypto Pay");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("fake Crypto Pay serves") });
        FakeCryptoPay { addr, fake, client: reqwest::Client::new() }
    }

    /// The base URL to configure (`cryptopay.base_url`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faults(&self, faults: CryptoPayFaults) {
        self.fake.ledger.lock().unwrap().faults = faults;
    }

    /// The ids of the invoices created so far.
    pub fn invoice_ids(&self) -> Vec<i64> {
        self.fake.ledger.lock().unwrap().invoices.keys().copied().collect()
    }

    /// The user pays the invoice in @CryptoBot; returns the `invoice_paid` webhook body.
    pub fn pay(&self, invoice_id: i64) -> String {
        let mut ledger = self.fake.ledger.lock().unwrap();
        let invoice = ledger.invoices.get_mut(&invoice_id).expect("an invoice of the fake");
        invoice.status = "paid";
        let mut payload = invoice_json(invoice_id, invoice);
        payload["paid_at"] = json!("2026-12-02T00:00:01.000Z");
        json!({ "update_id": invoice_id, "update_type": "invoice_paid", "request_date": "2026-12-02T00:00:01.000Z", "payload": payload })
            .to_string()
    }

    /// Posts a webhook body to `url` signed as Crypto Pay signs it; returns the HTTP status.
    pub async fn deliver_webhook(&self, url: &str, body: &str) -> u16 {
        let key = Sha256::digest(self.fake.token.as_bytes());
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(body.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        let response = self
            .client
            .post(url)
            .header("crypto-pay-api-signature", signature)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("the webhook receiver answers");
        response.status().as_u16()
    }

    /// Transfers made (one per `spend_id`): `(spend_id, user_id, asset, amount)`.
    pub fn transfers(&self) -> Vec<(String, i64, String, String)> {
        let ledger = self.fake.ledger.lock().unwrap();
        ledger.transfers.iter().map(|(s, t)| (s.clone(), t.user_id, t.asset.clone(), t.amount.clone())).collect()
    }

    /// How many `transfer` calls arrived, re-sends included.
    pub fn transfer_calls(&self) -> u32 {
        self.fake.ledger.lock().unwrap().sends
    }
}
