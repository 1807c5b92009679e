//! A fake Telegram Bot API on a free loopback port: teloxide's `Bot::set_api_url` points at it,
//! and requests arrive as `POST /bot<token>/<Method>`. It records every call, and can answer
//! 429 with `retry_after` or 403 "bot was blocked by the user", as Telegram does.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One call the bot made, and the HTTP status it was answered with.
#[derive(Debug, Clone, PartialEq)]
pub struct BotCall {
    pub method: String,
    pub body: Value,
    pub status: u16,
}

#[derive(Default)]
struct Behaviour {
    calls: Vec<BotCall>,
    blocked_chats: HashSet<i64>,
    /// The next this-many calls get 429 with `retry_after`.
    rate_limited_calls: usize,
    retry_after: u64,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Behaviour>>);

pub struct FakeBotApi {
    addr: SocketAddr,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl FakeBotApi {
    /// On a free loopback port.
    pub async fn start() -> FakeBotApi {
        FakeBotApi::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> FakeBotApi {
        let shared = Shared::default();
        let app = Router::new().route("/{bot}/{method}", post(call)).with_state(shared.clone());
        let (addr, server) = crate::serve_http(addr, app).await;
        FakeBotApi { addr, shared, server }
    }

    /// What to give `Bot::set_api_url`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn block(&self, chat_id: i64) {
        self.shared.0.lock().unwrap().blocked_chats.insert(chat_id);
    }

    pub fn rate_limit_next(&self, calls: usize, retry_after_secs: u64) {
        let mut behaviour = self.shared.0.lock().unwrap();
        behaviour.rate_limited_calls = calls;
        behaviour.retry_after = retry_after_secs;
    }

    /// Every call received, answered or not.
    pub fn calls(&self) -> Vec<BotCall> {
        self.shared.0.lock().unwrap().calls.clone()
    }

    /// Every call about `chat_id`, in order.
    pub fn calls_to(&self, chat_id: i64) -> Vec<BotCall> {
        self.calls().into_iter().filter(|c| c.body["chat_id"] == chat_id).collect()
    }

    /// Texts of the messages delivered (answered 200) to `chat_id`, in order.
    pub fn delivered_to(&self, chat_id: i64) -> Vec<String> {
        self.calls_to(chat_id)
            .into_iter()
            .filter(|c| returns_message(&c.method) && c.status == 200)
            .filter_map(|c| c.body["text"].as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for FakeBotApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn error(status: StatusCode, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({ "ok": false, "error_code": status.as_u16(), "description": description });
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    (status, Json(body)).into_response()
}

/// Methods answered with the sent Message; the others this fake serves answer `true`.
fn returns_message(method: &str) -> bool {
    ["sendmessage", "sendinvoice"].iter().any(|m| method.eq_ignore_ascii_case(m))
}

async fn call(State(shared): State<Shared>, Path((_bot, method)): Path<(String, String)>, Json(body): Json<Value>) -> Response {
    let mut behaviour = shared.0.lock().unwrap();
    let chat_id = body["chat_id"].as_i64().unwrap_or_default();
    let answer = if behaviour.rate_limited_calls > 0 {
        behaviour.rate_limited_calls -= 1;
        let retry_after = behaviour.retry_after;
        error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too Many Requests: retry after {retry_after}"),
            Some(json!({ "retry_after": retry_after })),
        )
    } else if method.eq_ignore_ascii_case("getme") {
        let me = json!({
            "id": 7_000_000_001_i64, "is_bot": true, "first_name": "Obentchi", "username": "obentchi_bot",
            "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false,
        });
        Json(json!({ "ok": true, "result": me })).into_response()
    } else if !returns_message(&method) {
        Json(json!({ "ok": true, "result": true })).into_response()
    } else if behaviour.blocked_chats.contains(&chat_id) {
        error(StatusCode::FORBIDDEN, "Forbidden: bot was blocked by the user", None)
    } else {
        let message_id = behaviour.calls.len() + 1;
        let mut result = json!({
            "message_id": message_id,
            "date": 1_700_000_000,
            "chat": { "id": chat_id, "type": "private", "first_name": "Test" },
        });
        if method.eq_ignore_ascii_case("sendinvoice") {
            let total: u64 = body["prices"].as_array().map_or(0, |p| p.iter().filter_map(|p| p["amount"].as_u64()).sum());
            result["invoice"] = json!({
                "title": body["title"], "description": body["description"], "start_parameter": "",
                "currency": body["currency"], "total_amount": total,
            });
        } else {
            result["text"] = body["text"].clone();
        }
        Json(json!({ "ok": true, "result": result })).into_response()
    };
    behaviour.calls.push(BotCall { method, body, status: answer.status().as_u16() });
    answer
}
