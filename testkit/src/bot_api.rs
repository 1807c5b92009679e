//! A fake Telegram Bot API on a free loopback port: teloxide's `Bot::set_api_url` points at it,
//! and requests arrive as `POST /bot<token>/<Method>`. It records every call, and can answer
//! 429 with `retry_after` or 403 "bot was blocked by the user", as Telegram does. It also keeps
//! the bot's Star transactions (what Telegram's `getStarTransactions` reports): a test that
//! plays a Stars payment records it here first, as Telegram's books are the truth. And it keeps
//! the members of groups and channels: invite links (`createChatInviteLink`; `join_by_link` joins
//! at most `member_limit` times, and never through a link that `creates_join_request`: that
//! one only sends a request, which the test then delivers as an update), approved join requests
//! join, `banChatMember` removes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
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
    /// When the call arrived (the end-to-end benchmark's reply latency ends here).
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Behaviour {
    calls: Vec<BotCall>,
    blocked_chats: HashSet<i64>,
    /// The next this-many calls get 429 with `retry_after`, `getWebhookInfo` aside: the API's
    /// sampler polls it in the background, and must not take a fault meant for the call a test
    /// watches.
    rate_limited_calls: usize,
    retry_after: u64,
    /// `StarTransaction` objects, oldest first.
    star_transactions: Vec<Value>,
    /// What `getWebhookInfo` says is waiting for delivery.
    pending_update_count: u64,
    /// Invite links created: link → (chat, member limit, times used); no limit and `None`
    /// uses for a link that only sends join requests.
    invite_links: BTreeMap<String, (i64, Option<u64>, Option<u64>)>,
    /// Each group's or channel's members.
    members: BTreeMap<i64, BTreeSet<i64>>,
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

    /// Updates Telegram holds for the webhook, as `getWebhookInfo` reports them.
    pub fn set_pending_updates(&self, count: u64) {
        self.shared.0.lock().unwrap().pending_update_count = count;
    }

    pub fn rate_limit_next(&self, calls: usize, retry_after_secs: u64) {
        let mut behaviour = self.shared.0.lock().unwrap();
        behaviour.rate_limited_calls = calls;
        behaviour.retry_after = retry_after_secs;
    }

    /// Telegram took `stars` from `user_id` for the invoice with `payload`; `charge_id` is the
    /// `telegram_payment_charge_id` of the `successful_payment` that reports it.
    pub fn record_star_payment(&self, charge_id: &str, user_id: i64, stars: u32, payload: &str) {
        let partner = json!({
            "type": "user", "transaction_type": "invoice_payment", "invoice_payload": payload,
            "user": { "id": user_id, "is_bot": false, "first_name": "User" },
        });
        let transaction = json!({ "id": charge_id, "amount": stars, "date": unix_now(), "source": partner });
        self.shared.0.lock().unwrap().star_transactions.push(transaction);
    }

    /// Telegram gave the payment `charge_id` back to `user_id` (`refundStarPayment`, or its own
    /// decision): an outgoing transaction with the original's id.
    pub fn record_star_refund(&self, charge_id: &str, user_id: i64, stars: u32) {
        self.shared.0.lock().unwrap().star_transactions.push(refund_transaction(charge_id, user_id, u64::from(stars)));
    }

    /// The bot's Star transactions, oldest first (as `getStarTransactions` returns them).
    pub fn star_transactions(&self) -> Vec<Value> {
        self.shared.0.lock().unwrap().star_transactions.clone()
    }

    /// `user` opens the invite `link`: joins its chat if the link exists and has uses left.
    pub fn join_by_link(&self, link: &str, user: i64) -> bool {
        let mut behaviour = self.shared.0.lock().unwrap();
        let Some((chat, limit, Some(uses))) = behaviour.invite_links.get_mut(link) else { return false };
        if limit.is_some_and(|limit| *uses >= limit) {
            return false;
        }
        *uses += 1;
        let chat = *chat;
        behaviour.members.entry(chat).or_default().insert(user)
    }

    /// Who is in the group or channel `chat` now.
    pub fn members(&self, chat: i64) -> Vec<i64> {
        self.shared.0.lock().unwrap().members.get(&chat).map(|m| m.iter().copied().collect()).unwrap_or_default()
    }

    /// Whether `chat_id` blocked the bot.
    pub fn is_blocked(&self, chat_id: i64) -> bool {
        self.shared.0.lock().unwrap().blocked_chats.contains(&chat_id)
    }

    /// Every call received, answered or not.
    pub fn calls(&self) -> Vec<BotCall> {
        self.shared.0.lock().unwrap().calls.clone()
    }

    /// How many calls arrived so far.
    pub fn call_count(&self) -> usize {
        self.shared.0.lock().unwrap().calls.len()
    }

    /// How many calls to `method` arrived after the first `skip` calls.
    pub fn count_after(&self, skip: usize, method: &str) -> usize {
        let behaviour = self.shared.0.lock().unwrap();
        behaviour.calls.get(skip..).unwrap_or_default().iter().filter(|c| c.method.eq_ignore_ascii_case(method)).count()
    }

    /// The calls that arrived after the first `skip`, in order.
    pub fn calls_after(&self, skip: usize) -> Vec<BotCall> {
        self.shared.0.lock().unwrap().calls.get(skip..).unwrap_or_default().to_vec()
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

fn refund_transaction(charge_id: &str, user_id: i64, stars: u64) -> Value {
    let partner = json!({
        "type": "user", "transaction_type": "invoice_payment",
        "user": { "id": user_id, "is_bot": false, "first_name": "User" },
    });
    json!({ "id": charge_id, "amount": stars, "date": unix_now(), "receiver": partner })
}

/// `refundStarPayment` as Telegram answers it: the charge must be a payment by that user, and
/// refunded once.
fn refund_star_payment(transactions: &mut Vec<Value>, body: &Value) -> Response {
    let (user_id, charge_id) = (body["user_id"].as_i64().unwrap_or_default(), body["telegram_payment_charge_id"].as_str().unwrap_or_default());
    let paid = transactions.iter().find(|t| t["id"] == charge_id && t["source"]["user"]["id"] == user_id).map(|t| t["amount"].as_u64().unwrap_or(0));
    let Some(stars) = paid else { return error(StatusCode::BAD_REQUEST, "Bad Request: CHARGE_NOT_FOUND", None) };
    if transactions.iter().any(|t| t["id"] == charge_id && !t["receiver"].is_null()) {
        return error(StatusCode::BAD_REQUEST, "Bad Request: CHARGE_ALREADY_REFUNDED", None);
    }
    transactions.push(refund_transaction(charge_id, user_id, stars));
    Json(json!({ "ok": true, "result": true })).into_response()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()
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

/// The request's parameters as JSON, whether sent as JSON or as multipart/form-data (teloxide
/// uses multipart for methods that may carry files, such as setWebhook). Form values that parse
/// as JSON (numbers, arrays) are kept as such, others as strings.
async fn parameters(request: Request) -> Result<Value, Response> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let Json(body) = Json::<Value>::from_request(request, &()).await.map_err(IntoResponse::into_response)?;
        return Ok(body);
    }
    let mut form = Multipart::from_request(request, &()).await.map_err(IntoResponse::into_response)?;
    let mut body = serde_json::Map::new();
    while let Some(field) = form.next_field().await.map_err(IntoResponse::into_response)? {
        let name = field.name().unwrap_or_default().to_owned();
        let text = field.text().await.map_err(IntoResponse::into_response)?;
        body.insert(name, serde_json::from_str(&text).unwrap_or(Value::String(text)));
    }
    Ok(Value::Object(body))
}

async fn call(State(shared): State<Shared>, Path((_bot, method)): Path<(String, String)>, request: Request) -> Response {
    let body = match parameters(request).await {
        Ok(body) => body,
        Err(rejection) => return rejection,
    };
    let mut behaviour = shared.0.lock().unwrap();
    let chat_id = body["chat_id"].as_i64().unwrap_or_default();
    let answer = if behaviour.rate_limited_calls > 0 && !method.eq_ignore_ascii_case("getwebhookinfo") {
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
    } else if method.eq_ignore_ascii_case("getstartransactions") {
        let offset = body["offset"].as_u64().unwrap_or(0) as usize;
        let limit = body["limit"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
        let page: Vec<Value> = behaviour.star_transactions.iter().skip(offset).take(limit).cloned().collect();
        Json(json!({ "ok": true, "result": { "transactions": page } })).into_response()
    } else if method.eq_ignore_ascii_case("refundstarpayment") {
        refund_star_payment(&mut behaviour.star_transactions, &body)
    } else if method.eq_ignore_ascii_case("createchatinvitelink") {
        let link = format!("https://t.me/+fake{}", behaviour.invite_links.len() + 1);
        let limit = body["member_limit"].as_u64();
        let joins_directly = body["creates_join_request"].as_bool() != Some(true);
        behaviour.invite_links.insert(link.clone(), (chat_id, limit, joins_directly.then_some(0)));
        let creator = json!({ "id": 7_000_000_001_i64, "is_bot": true, "first_name": "Obentchi", "username": "obentchi_bot" });
        let result = json!({
            "invite_link": link, "creator": creator, "creates_join_request": !joins_directly, "is_primary": false, "is_revoked": false,
            "name": body["name"], "expire_date": body["expire_date"], "member_limit": body["member_limit"],
        });
        Json(json!({ "ok": true, "result": result })).into_response()
    } else if method.eq_ignore_ascii_case("approvechatjoinrequest") {
        let user = body["user_id"].as_i64().unwrap_or_default();
        behaviour.members.entry(chat_id).or_default().insert(user);
        Json(json!({ "ok": true, "result": true })).into_response()
    } else if method.eq_ignore_ascii_case("banchatmember") {
        let user = body["user_id"].as_i64().unwrap_or_default();
        behaviour.members.entry(chat_id).or_default().remove(&user);
        Json(json!({ "ok": true, "result": true })).into_response()
    } else if method.eq_ignore_ascii_case("getwebhookinfo") {
        let url = behaviour.calls.iter().rev().find(|c| c.method.eq_ignore_ascii_case("setwebhook")).map(|c| c.body["url"].clone());
        let info = json!({ "url": url.unwrap_or(json!("")), "has_custom_certificate": false, "pending_update_count": behaviour.pending_update_count });
        Json(json!({ "ok": true, "result": info })).into_response()
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
    behaviour.calls.push(BotCall { method, body, status: answer.status().as_u16(), at: std::time::Instant::now() });
    answer
}
