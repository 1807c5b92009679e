//! `/help`, `/terms`, and the answer to text the bot did not understand.

use obentchi_core::i18n::{tr, Text};
use obentchi_core::outbound::OutboundMessage;

use super::{Caller, Deps, HandlerResult, UpdateId};

pub(super) async fn help(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
    deps.reply(update, chat, tr(caller.lang, Text::Help, &[])).await
}

pub(super) fn not_understood(caller: &Caller, chat: i64) -> OutboundMessage {
    OutboundMessage::text(chat, tr(caller.lang, Text::NotUnderstood, &[]))
}

pub(super) async fn terms(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
    deps.reply(update, chat, tr(caller.lang, Text::Terms, &[("url", &deps.support.terms_url)])).await
}
