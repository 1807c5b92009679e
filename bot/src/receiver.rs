//! The webhook receiver: stateless, any number of replicas behind a load balancer.
//!
//! A request is answered 200 only after its update is on the updates queue: Telegram re-sends
//! anything not answered 2xx, so a 503 while Redis is unreachable loses nothing. The receiver
//! reads only `update_id` and the chat with a borrowing parse; the raw JSON text travels on
//! untouched, so update kinds newer than our Telegram types are kept, not rejected.
//!
//! An update that carries a payment (`successful_payment`, `refunded_payment`) is money Telegram
//! will not tell us about again once we answer 200. So it is answered 200 only once its queue
//! entry reached a replica of its partition's master (`WAIT`), not when the master alone has it:
//! a failover right after would otherwise lose it. If the replica does not confirm in time the
//! answer is 503 and Telegram re-sends. (The Stars reconciler reads Telegram's own transaction
//! list as the last line of defence.)

use apalis_redis_streams::{Enqueued, Queue};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
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
    /// Replicas that must have a payment update before it is acknowledged (0: the master alone).
    pub payment_replicas: u32,
    /// How long to wait for them.
    pub payment_replicas_timeout: Duration,
    /// Every update waits for the replicas, not only payments.
    pub replicate_all_updates: bool,
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
    /// A message with `successful_payment` or `refunded_payment`.
    pub carries_payment: bool,
}

#[derive(Deserialize)]
struct Id {
    id: i64,
}

#[derive(Deserialize)]
struct WithChat {
    chat: Id,
}

/// A message: its chat, and whether it reports a payment.
#[derive(Deserialize)]
struct Message {
    chat: Id,
    #[serde(default)]
    successful_payment: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    refunded_payment: Option<serde::de::IgnoredAny>,
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
    message: Option<Message>,
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
        let carries_payment = raw.message.as_ref().is_some_and(|m| m.successful_payment.is_some() || m.refunded_payment.is_some());
        let chat = raw
            .message
            .as_ref()
            .map(|m| m.chat.id)
            .into_iter()
            .chain([&raw.edited_message, &raw.channel_post, &raw.edited_channel_post, &raw.business_message].into_iter().flatten().map(|m| m.chat.id))
            .chain(raw.callback_query.as_ref().map(|q| q.message.as_ref().map_or(q.from.id, |m| m.chat.id)))
            .chain([&raw.my_chat_member, &raw.chat_member, &raw.chat_join_request].into_iter().flatten().map(|m| m.chat.id))
            .chain(
                [&raw.pre_checkout_query, &raw.shipping_query, &raw.inline_query, &raw.chosen_inline_result]
                    .into_iter()
                    .flatten()
                    .map(|q| q.from.id),
            )
            .next();
        Ok(UpdateHead { update_id: raw.update_id, chat, carries_payment })
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
        Ok(outcome) => {
            tracing::debug!(update_id = head.update_id, ?outcome, "update enqueued");
            if matches!(outcome, Enqueued::Duplicate { .. }) {
                metrics::counter!("webhook_duplicates_total").increment(1);
            }
            // A redelivery waits too: the first delivery may have been answered 503 because its
            // copy had not reached a replica.
            if (head.carries_payment || receiver.replicate_all_updates) && receiver.payment_replicas > 0 {
                return replicated(&receiver, &head).await;
            }
            StatusCode::OK.into_response()
        }
        Err(err) => {
            // Not stored: Telegram will send it again.
            tracing::error!(%err, update_id = head.update_id, "could not enqueue an update");
            reject("unavailable", StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

/// 200 once the payment update's partition has it on enough replicas, else 503.
async fn replicated(receiver: &Receiver, head: &UpdateHead) -> Response {
    let wanted = receiver.payment_replicas;
    match receiver.updates.wait_replicated(&head.partition_key(), wanted, receiver.payment_replicas_timeout).await {
        Ok(acked) if acked >= wanted => StatusCode::OK.into_response(),
        Ok(acked) => {
            tracing::warn!(update_id = head.update_id, acked, wanted, "payment update not on enough replicas yet; Telegram will re-send");
            reject("not_replicated", StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(err) => {
            tracing::error!(%err, update_id = head.update_id, "could not confirm replication of a payment update");
            reject("not_replicated", StatusCode::SERVICE_UNAVAILABLE)
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
    fn tells_payment_updates_apart() {
        let payment = r#"{"update_id":6,"message":{"message_id":1,"chat":{"id":42},"successful_payment":{"currency":"XTR","total_amount":5}}}"#;
        let refund = r#"{"update_id":7,"message":{"message_id":2,"chat":{"id":42},"refunded_payment":{"currency":"XTR","total_amount":5}}}"#;
        let text = r#"{"update_id":8,"message":{"message_id":3,"chat":{"id":42},"text":"successful_payment"}}"#;
        assert!(UpdateHead::parse(payment.as_bytes()).unwrap().carries_payment);
        assert!(UpdateHead::parse(refund.as_bytes()).unwrap().carries_payment);
        assert!(!UpdateHead::parse(text.as_bytes()).unwrap().carries_payment);
    }

    #[test]
    fn rejects_what_is_not_an_update() {
        for bad in [r#"{"message":{}}"#, "not json", r#"{"update_id":"7"}"#, "[]", ""] {
            assert!(UpdateHead::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
