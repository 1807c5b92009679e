//! A local stand-in for the Telegram app: a chat page in the browser that sends real Update
//! JSON to the bot's webhook receiver (with the secret header, as Telegram does) and shows what
//! the bot sent back through the fake Bot API. Stars payments are played the way Telegram plays
//! them: `pre_checkout_query` first, and `successful_payment` only if the bot approved it.
//!
//! Routes: `GET /` (the page), `POST /sim/message`, `POST /sim/press`, `POST /sim/pay`,
//! `GET /sim/messages?chat=<id>`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::updates::{self, TelegramUser};
use crate::FakeBotApi;

/// The header Telegram puts the webhook secret in.
const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

struct Simulator {
    bot_api: Arc<FakeBotApi>,
    webhook_url: String,
    secret: String,
    client: reqwest::Client,
    /// Update ids, starting from the clock so a restarted simulator does not reuse ids the
    /// receivers still remember (they deduplicate for 24 hours).
    next_update_id: AtomicU32,
    next_message_id: AtomicU32,
}

pub struct TelegramSimulator {
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl TelegramSimulator {
    /// Serves the page on `addr`; updates go to `webhook_url` with `secret`.
    pub async fn start_on(addr: &str, bot_api: Arc<FakeBotApi>, webhook_url: &str, secret: &str) -> TelegramSimulator {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let simulator = Arc::new(Simulator {
            bot_api,
            webhook_url: webhook_url.to_owned(),
            secret: secret.to_owned(),
            client: reqwest::Client::new(),
            next_update_id: AtomicU32::new(((now % 2_000_000) * 1_000) as u32),
            next_message_id: AtomicU32::new(1),
        });
        let app = Router::new()
            .route("/", get(|| async { Html(PAGE) }))
            .route("/sim/message", post(send_message))
            .route("/sim/press", post(press))
            .route("/sim/pay", post(pay))
            .route("/sim/messages", get(messages))
            .with_state(simulator);
        let (addr, server) = crate::serve_http(addr, app).await;
        TelegramSimulator { addr, server }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for TelegramSimulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Simulator {
    fn update_id(&self) -> u32 {
        self.next_update_id.fetch_add(1, Ordering::Relaxed)
    }

    fn message(&self, person: &TelegramUser, content: Value) -> Value {
        updates::message(self.update_id(), self.next_message_id.fetch_add(1, Ordering::Relaxed), person, content)
    }

    /// Delivers an update as Telegram does; returns the receiver's status.
    async fn deliver(&self, update: &Value) -> Result<u16, Response> {
        let sent = self.client.post(&self.webhook_url).header(SECRET_HEADER, &self.secret).json(update).send().await;
        match sent {
            Ok(response) => Ok(response.status().as_u16()),
            Err(err) => Err((StatusCode::BAD_GATEWAY, format!("the webhook receiver did not answer: {err}")).into_response()),
        }
    }

    async fn deliver_answer(&self, update: Value) -> Response {
        match self.deliver(&update).await {
            Ok(status) => Json(json!({ "update": update, "receiver_status": status })).into_response(),
            Err(response) => response,
        }
    }
}

#[derive(Deserialize)]
struct MessageRequest {
    #[serde(flatten)]
    person: TelegramUser,
    text: String,
}

async fn send_message(State(sim): State<Arc<Simulator>>, Json(request): Json<MessageRequest>) -> Response {
    let update = sim.message(&request.person, updates::text(&request.text));
    sim.deliver_answer(update).await
}

#[derive(Deserialize)]
struct PressRequest {
    #[serde(flatten)]
    person: TelegramUser,
    /// The bot's message the button is under.
    message_id: i64,
    data: String,
}

async fn press(State(sim): State<Arc<Simulator>>, Json(request): Json<PressRequest>) -> Response {
    let update = updates::callback_query(sim.update_id(), &request.person, request.message_id, &request.data);
    sim.deliver_answer(update).await
}

#[derive(Deserialize)]
struct PayRequest {
    #[serde(flatten)]
    person: TelegramUser,
    payload: String,
    stars: u32,
}

/// Pays an invoice as Telegram does: asks the bot with `pre_checkout_query`, waits up to 10 s for
/// `answerPreCheckoutQuery`, and sends `successful_payment` only if the bot said yes.
async fn pay(State(sim): State<Arc<Simulator>>, Json(request): Json<PayRequest>) -> Response {
    let person = &request.person;
    let update_id = sim.update_id();
    let query_id = format!("sim{update_id}");
    let query = updates::pre_checkout_query(update_id, &query_id, person, request.stars, &request.payload);
    if let Err(response) = sim.deliver(&query).await {
        return response;
    }
    let mut answer = None;
    for _ in 0..100 {
        answer = sim.bot_api.calls().into_iter().find(|c| {
            c.method.eq_ignore_ascii_case("answerPreCheckoutQuery") && c.body["pre_checkout_query_id"] == query_id.as_str()
        });
        if answer.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(answer) = answer else {
        return Json(json!({ "paid": false, "error": "the bot did not answer the pre-checkout query within 10 s" })).into_response();
    };
    if answer.body["ok"] != true {
        return Json(json!({ "paid": false, "error": answer.body["error_message"] })).into_response();
    }
    let payment = updates::successful_payment(request.stars, &request.payload, &format!("sim-charge-{update_id}"));
    let update = sim.message(person, payment);
    match sim.deliver(&update).await {
        Ok(status) => Json(json!({ "paid": true, "receiver_status": status })).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct Chat {
    chat: i64,
}

/// What the bot sent to the chat, oldest first: messages (with their keyboards) and invoices.
async fn messages(State(sim): State<Arc<Simulator>>, Query(chat): Query<Chat>) -> Json<Value> {
    let sent: Vec<Value> = sim
        .bot_api
        .calls_to(chat.chat)
        .into_iter()
        .enumerate()
        .filter(|(_, c)| c.status == 200)
        .filter_map(|(index, c)| {
            let body = &c.body;
            let kind = if c.method.eq_ignore_ascii_case("sendMessage") {
                "message"
            } else if c.method.eq_ignore_ascii_case("sendInvoice") {
                "invoice"
            } else {
                return None;
            };
            Some(json!({
                "id": index + 1,
                "kind": kind,
                "text": body.get("text").or(body.get("description")),
                "title": body.get("title"),
                "payload": body.get("payload"),
                "stars": body["prices"].as_array().map(|p| p.iter().filter_map(|p| p["amount"].as_u64()).sum::<u64>()),
                "reply_markup": body.get("reply_markup"),
            }))
        })
        .collect();
    Json(json!(sent))
}

const PAGE: &str = include_str!("simulator.html");
