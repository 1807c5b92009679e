//! The webhook receiver: stateless, any number of replicas behind a load balancer.
//!
//! A request is answered 200 only after its update is on the updates queue: Telegram re-sends
//! anything not answered 2xx, so a 503 while Redis is unreachable loses nothing. The receiver
//! reads only `update_id` and the chat with a borrowing parse; the raw JSON text travels on
//! untouched, so update kinds newer than our Telegram types are kept, not rejected.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use obentchi_core::queue::{Enqueued, Queue};
use serde::Deserialize;
use serde_json::value::RawValue;
use subtle::ConstantTimeEq;

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

#[derive(Clone)]
pub struct Receiver {
    pub secret: String,
    /// The bot's id, scoping update ids (each bot numbers its own).
    pub bot_id: String,
    pub updates: Queue,
}

pub fn router(path: &str, max_body_bytes: usize, receiver: Receiver) -> Router {
    Router::new()
        .route(path, post(receive))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(receiver)
}

/// Where one update belongs: the chat (or, for kinds without a chat, the user) whose updates
/// must stay in order.
#[derive(Debug, PartialEq, Eq)]
pub struct UpdateHead {
    pub update_id: i64,
    pub chat: Option<i64>,
}

#[derive(Deserialize)]
struct Id {
    id: i64,
}

#[derive(Deserialize)]
struct WithChat {
    chat: Id,
}

#[derive(Deserialize)]
struct WithFrom {
    from: Id,
}

#[derive(Deserialize)]
struct CallbackQuery {
    from: Id,
    #[serde(default)]
    message: Option<WithChat>,
}

/// The fields the receiver reads; serde skips every other field without building it.
#[derive(Deserialize)]
struct RawHead {
    update_id: i64,
    #[serde(default)]
    message: Option<WithChat>,
    #[serde(default)]
    edited_message: Option<WithChat>,
    #[serde(default)]
    channel_post: Option<WithChat>,
    #[serde(default)]
    edited_channel_post: Option<WithChat>,
    #[serde(default)]
    business_message: Option<WithChat>,
    #[serde(default)]
    callback_query: Option<CallbackQuery>,
    #[serde(default)]
    my_chat_member: Option<WithChat>,
    #[serde(default)]
    chat_member: Option<WithChat>,
    #[serde(default)]
    chat_join_request: Option<WithChat>,
    #[serde(default)]
    pre_checkout_query: Option<WithFrom>,
    #[serde(default)]
    shipping_query: Option<WithFrom>,
    #[serde(default)]
    inline_query: Option<WithFrom>,
    #[serde(default)]
    chosen_inline_result: Option<WithFrom>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadError {
    #[error("not a JSON object with an integer update_id: {0}")]
    Malformed(String),
}

impl UpdateHead {
    pub fn parse(body: &[u8]) -> Result<UpdateHead, HeadError> {
        let raw: RawHead = serde_json::from_slice(body).map_err(|e| HeadError::Malformed(e.to_string()))?;
        let chat = [&raw.message, &raw.edited_message, &raw.channel_post, &raw.edited_channel_post, &raw.business_message]
            .into_iter()
            .flatten()
            .map(|m| m.chat.id)
            .chain(raw.callback_query.as_ref().map(|q| q.message.as_ref().map_or(q.from.id, |m| m.chat.id)))
            .chain([&raw.my_chat_member, &raw.chat_member, &raw.chat_join_request].into_iter().flatten().map(|m| m.chat.id))
            .chain(
                [&raw.pre_checkout_query, &raw.shipping_query, &raw.inline_query, &raw.chosen_inline_result]
                    .into_iter()
                    .flatten()
                    .map(|q| q.from.id),
            )
            .next();
        Ok(UpdateHead { update_id: raw.update_id, chat })
    }

    /// Updates of one chat share a partition, so they are consumed in order.
    pub fn partition_key(&self) -> String {
        match self.chat {
            Some(chat) => format!("chat:{chat}"),
            // A kind we cannot place (a newer one, a poll): ordered with nothing else.
            None => format!("update:{}", self.update_id),
        }
    }
}

fn reject(reason: &'static str, status: StatusCode) -> Response {
    metrics::counter!("webhook_rejected_total", "reason" => reason).increment(1);
    status.into_response()
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let secret_ok = headers
        .get(SECRET_HEADER)
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(receiver.secret.as_bytes())));
    if !secret_ok {
        return reject("secret", StatusCode::UNAUTHORIZED);
    }
    let head = match UpdateHead::parse(&body) {
        Ok(head) => head,
        Err(err) => {
            tracing::warn!(%err, bytes = body.len(), "malformed update");
            return reject("malformed", StatusCode::BAD_REQUEST);
        }
    };
    // Valid JSON (the parse above proved it), carried on as the exact text Telegram sent.
    let Ok(raw) = std::str::from_utf8(&body).map_err(drop).and_then(|text| RawValue::from_string(text.to_owned()).map_err(drop))
    else {
        return reject("malformed", StatusCode::BAD_REQUEST);
    };
    metrics::counter!("webhook_received_total").increment(1);
    let key = format!("update:{}:{}", receiver.bot_id, head.update_id);
    let started = Instant::now();
    let enqueued = receiver.updates.enqueue_ordered(&*raw, &key, &head.partition_key()).await;
    metrics::histogram!("webhook_enqueue_seconds").record(started.elapsed().as_secs_f64());
    match enqueued {
        Ok(Enqueued::Added { .. }) => StatusCode::OK.into_response(),
        Ok(Enqueued::Duplicate { .. }) => {
            metrics::counter!("webhook_duplicates_total").increment(1);
            StatusCode::OK.into_response()
        }
        Err(err) => {
            // Not stored: Telegram will send it again.
            tracing::error!(%err, update_id = head.update_id, "could not enqueue an update");
            reject("unavailable", StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_chat_of_every_kind_it_knows() {
        let cases = [
            (r#"{"update_id":1,"message":{"message_id":5,"chat":{"id":42,"type":"private"},"text":"hi"}}"#, Some(42)),
            (r#"{"update_id":2,"callback_query":{"id":"x","from":{"id":7},"message":{"chat":{"id":-100}}}}"#, Some(-100)),
            (r#"{"update_id":3,"callback_query":{"id":"x","from":{"id":7},"inline_message_id":"m"}}"#, Some(7)),
            (r#"{"update_id":4,"pre_checkout_query":{"id":"q","from":{"id":9},"currency":"XTR"}}"#, Some(9)),
            (r#"{"update_id":5,"brand_new_kind":{"anything":[1,2,3]}}"#, None),
        ];
        for (json, chat) in cases {
            assert_eq!(UpdateHead::parse(json.as_bytes()).unwrap().chat, chat, "{json}");
        }
    }

    #[test]
    fn rejects_what_is_not_an_update() {
        for bad in [r#"{"message":{}}"#, "not json", r#"{"update_id":"7"}"#, "[]", ""] {
            assert!(UpdateHead::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
