//! `/support` and `/paysupport`: the user's next messages go to their support thread
//! (`obentchi_core::support`) and to the admin chats; an admin answers by replying to one of
//! those forwards in an admin chat, and the answer reaches the user.
//!
//! A forward carries `#support<user id>`; a reply to it from an admin chat is an answer to that
//! user. Every forward, answer and thread entry is keyed by the update it came from, so
//! handling an update twice adds and sends nothing more.

use chrono::Utc;
use obentchi_core::i18n::{tr, Text};
use obentchi_core::ids::UserId;
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::support::{Author, SupportMessage, Topic};
use teloxide::types::{Me, Message};

use super::{Caller, Deps, HandlerError, HandlerResult, UpdateId};
use crate::conversation::{Conversation, SupportStep};

/// In a forward to the admin chats: whose thread a reply answers.
const THREAD_TAG: &str = "#support";
/// How much of a user's message a forward shows.
const FORWARDED_CHARS: usize = 3_500;

/// `/support` or `/paysupport`: opens the user's thread and asks for their question.
pub(super) async fn start(deps: &Deps, caller: &Caller, chat: i64, topic: Topic, update: UpdateId) -> HandlerResult {
    deps.support_threads.open(caller.id, topic, Utc::now()).await?;
    deps.conversations.set(chat, caller.id, &Conversation::Support(SupportStep::Support { topic })).await?;
    let text = match topic {
        Topic::General => tr(caller.lang, Text::SupportStarted, &[]),
        Topic::Payment => {
            tr(caller.lang, Text::PaySupport, &[("contact", &deps.support.contact), ("user_id", &caller.id.to_string())])
        }
    };
    deps.reply(update, chat, text).await
}

/// Text the user wrote while their support conversation is open: added to the thread,
/// forwarded to every admin chat, acknowledged.
pub(super) async fn from_user(deps: &Deps, caller: &Caller, chat: i64, topic: Topic, text: &str, update: UpdateId) -> Result<OutboundMessage, HandlerError> {
    let message = SupportMessage { key: format!("tg:{}", update.0), from: Author::User, admin: None, text: text.to_owned(), at: Utc::now() };
    deps.support_threads.add(caller.id, &message).await?;
    let username = caller.profile.username.as_deref().map_or_else(String::new, |u| format!(" @{u}"));
    // Within Telegram's 4,096 characters with the lines around it (the thread keeps it whole).
    let shown: String = text.chars().take(FORWARDED_CHARS).collect();
    let cut = if shown.len() < text.len() { " …" } else { "" };
    let forward = format!(
        "Support ({topic}) from user {user}{username}:\n\n{shown}{cut}\n\nReply to this message to answer. {THREAD_TAG}{user}",
        topic = topic.as_str(),
        user = caller.id,
    );
    for admin_chat in &deps.support.admin_chat_ids {
        let key = format!("support:{}:{}:{admin_chat}", deps.bot_id, update.0);
        deps.outbound.enqueue(&OutboundMessage::text(*admin_chat, forward.clone()), Some(&key)).await?;
    }
    Ok(OutboundMessage::text(chat, tr(caller.lang, Text::SupportSent, &[])))
}

/// An admin's answer: a message in an admin chat replying to one of our forwards.
#[derive(Clone)]
pub(super) struct AdminAnswer {
    user: UserId,
    text: String,
}

/// The answer in `message`, if it is one: sent in an admin chat, replying to a message of ours
/// that carries a thread's tag.
pub(super) fn admin_answer(message: &Message, me: &Me, deps: &Deps) -> Option<AdminAnswer> {
    if !deps.support.admin_chat_ids.contains(&message.chat.id.0) {
        return None;
    }
    let text = message.text()?.trim();
    let original = message.reply_to_message()?;
    if original.from.as_ref().map(|from| from.id) != Some(me.id) || text.is_empty() || text.starts_with('/') {
        return None;
    }
    let tagged = original.text()?.rsplit_once(THREAD_TAG)?.1;
    let user = tagged.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok().and_then(|id| UserId::new(id).ok())?;
    Some(AdminAnswer { user, text: text.to_owned() })
}

/// Adds the admin's answer to the thread and sends it to the user; the admin chat is told.
pub(super) async fn answer_from_admin_chat(message: Message, answer: AdminAnswer, deps: Deps, update: UpdateId) -> HandlerResult {
    let admin = message.from.as_ref().map_or_else(|| message.chat.id.0.to_string(), |from| from.id.0.to_string());
    let key = format!("tg:{}", update.0);
    deps.support_threads.answer(&deps.users, &deps.outbound, answer.user, &key, &admin, &answer.text).await?;
    let note = format!("Answer sent to user {}.", answer.user);
    deps.reply(update, message.chat.id.0, note).await
}
