//! `/help`, `/paysupport`, `/terms`, and the answer to text the bot did not understand.

use obentchi_core::i18n::{tr, Text};
use obentchi_core::outbound::OutboundMessage;
use teloxide::types::Message;

use super::{Caller, Deps, HandlerResult, UpdateId};

pub(super) async fn help(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
    deps.reply(update, chat, tr(caller.lang, Text::Help, &[])).await
}

pub(super) fn not_understood(caller: &Caller, chat: i64) -> OutboundMessage {
    OutboundMessage::text(chat, tr(caller.lang, Text::NotUnderstood, &[]))
}

/// `/paysupport`: where to write, and the admin chats are told who asked (keyed by the update:
/// told once).
pub(super) async fn pay_support(deps: &Deps, caller: &Caller, message: &Message, update: UpdateId) -> HandlerResult {
    let chat = message.chat.id.0;
    let user_id = caller.id.to_string();
    let username = caller.profile.username.as_deref().map_or_else(String::new, |u| format!(" @{u}"));
    for admin_chat in &deps.support.admin_chat_ids {
        let note = OutboundMessage::text(*admin_chat, format!("Payment support asked by user {user_id}{username}"));
        let key = format!("paysupport:{}:{}:{admin_chat}", deps.bot_id, update.0);
        deps.outbound.enqueue(&note, Some(&key)).await?;
    }
    let text = tr(caller.lang, Text::PaySupport, &[("contact", &deps.support.contact), ("user_id", &user_id)]);
    deps.reply(update, chat, text).await
}

pub(super) async fn terms(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
    deps.reply(update, chat, tr(caller.lang, Text::Terms, &[("url", &deps.support.terms_url)])).await
}
