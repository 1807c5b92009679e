//! The outbound sender: delivers `OutboundMessage` jobs through teloxide's `Bot`, within the
//! flood control that every replica shares, and each chat's replies in the order they were
//! produced (`obentchi_core::outbound::ReplyOrder`).

use std::time::Duration;

use apalis_core::error::BoxDynError;
use futures::future::BoxFuture;
use apalis_redis_streams::{Postpone, now_ms};
use obentchi_core::broadcasts::Broadcasts;
use obentchi_core::ids::UserId;
use obentchi_core::outbound::{FloodControl, OutboundMessage, Permit};
use obentchi_core::users::Users;
use teloxide::prelude::Requester;
use teloxide::payloads::SendMessageSetters;
use teloxide::types::{ChatId, LabeledPrice, ReplyMarkup};
use teloxide::{ApiError, Bot, RequestError};

/// Waits up to this long for flood control inside the job; longer waits go back to the queue
/// so the slot serves other chats meanwhile.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Sender {
    pub broadcasts: Broadcasts,
    pub bot: Bot,
    pub flood: FloodControl,
    pub users: Users,
}

/// The outbound job handler.
pub fn outbound_handler(sender: Sender) -> impl Fn(OutboundMessage) -> BoxFuture<'static, Result<(), BoxDynError>> + Clone {
    move |message: OutboundMessage| {
        let sender = sender.clone();
        Box::pin(async move { sender.send(message).await })
    }
}

fn postpone(wait: Duration, reason: &str) -> BoxDynError {
    Box::new(Postpone { wait, reason: reason.to_owned() })
}

impl Sender {
    async fn send(&self, message: OutboundMessage) -> Result<(), BoxDynError> {
        loop {
            match self.flood.acquire_in_order(message.chat_id, message.order.as_deref(), now_ms()).await? {
                Permit::Granted => break,
                Permit::RetryIn(ms) if Duration::from_millis(ms) <= MAX_INLINE_WAIT => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Permit::RetryIn(ms) => return Err(postpone(Duration::from_millis(ms), "flood control")),
                // It cannot go before the earlier reply anyway, which itself waits a chat interval.
                Permit::Behind => {
                    let wait = Duration::from_millis(self.flood.chat_interval_ms().max(100));
                    return Err(postpone(wait, "an earlier reply to this chat goes first"));
                }
            }
        }
        let sent = match &message.invoice {
            Some(invoice) => {
                let price = LabeledPrice::new(invoice.title.clone(), invoice.stars);
                // Stars invoices carry no provider token and one price in XTR.
                self.bot
                    .send_invoice(ChatId(message.chat_id), &invoice.title, &message.text, &invoice.payload, "XTR", [price])
                    .await
                    .map(drop)
            }
            None => {
                let mut request = self.bot.send_message(ChatId(message.chat_id), &message.text);
                if let Some(markup) = &message.reply_markup {
                    request = request.reply_markup(serde_json::from_value::<ReplyMarkup>(markup.clone())?);
                }
                request.await.map(drop)
            }
        };
        let sent_or_never = matches!(sent, Ok(_) | Err(RequestError::Api(ApiError::BotBlocked | ApiError::UserDeactivated)));
        if let (true, Some(place)) = (sent_or_never, &message.order) {
            self.flood.order().done(message.chat_id, place).await?;
        }
        match sent {
            Ok(_) => {
                metrics::counter!("outbound_messages_total", "outcome" => "sent").increment(1);
                if let Some(broadcast) = &message.broadcast {
                    self.broadcasts.record_sent(broadcast).await?;
                }
                Ok(())
            }
            Err(RequestError::RetryAfter(after)) => {
                let now = now_ms();
                self.flood.pause(message.chat_id, now + after.duration().as_millis() as u64, now).await?;
                metrics::counter!("outbound_messages_total", "outcome" => "rate_limited").increment(1);
                Err(postpone(after.duration(), "Telegram asked to retry later"))
            }
            Err(RequestError::Api(ApiError::BotBlocked | ApiError::UserDeactivated)) => {
                // Nothing to retry: remember it so nothing else is sent to them.
                if let Ok(user) = UserId::new(message.chat_id) {
                    self.users.mark_blocked(user).await?;
                }
                metrics::counter!("outbound_messages_total", "outcome" => "blocked").increment(1);
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }
}
