//! Paid access: a plan can grant a private channel or group (`Plan::channel`). On purchase the
//! buyer gets an invite link, created once per period and kept with it. The link only lets
//! people ask to join: a request is approved while a period granting that chat runs for the
//! person asking, declined for anyone else, so a link passed on opens nothing. Removal when the
//! last such period ends is the scheduled jobs' (`obentchi_workers::scheduled`).

use chrono::Utc;
use obentchi_core::i18n::{tr, Lang, Text};
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::subscriptions::Period;
use teloxide::payloads::CreateChatInviteLinkSetters;
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, ChatJoinRequest, UserId as TelegramUserId};
use teloxide::RequestError;

use super::{Caller, Deps, HandlerError, HandlerResult, UpdateId};

/// What to tell the buyer of `period` about its channel, if it grants one: its invite link (the
/// same one on every replay), or, if Telegram refuses to make one (the bot is not an admin
/// there), to ask to join some other way; either way their request is approved while the period
/// runs.
pub(super) async fn on_purchase(deps: &Deps, lang: Lang, period: &Period) -> Result<Option<String>, HandlerError> {
    let Some(chat) = period.channel else { return Ok(None) };
    if let Some(link) = &period.invite_link {
        return Ok(Some(tr(lang, Text::AccessGranted, &[("link", link)])));
    }
    let created = deps
        .bot
        .create_chat_invite_link(ChatId(chat))
        .creates_join_request(true)
        .expire_date(period.expires_at)
        .name(format!("subscription {}", period.user_id))
        .await;
    match created {
        Ok(created) => {
            let link = deps.subscriptions.keep_invite_link(period, &created.invite_link).await?;
            Ok(Some(tr(lang, Text::AccessGranted, &[("link", &link)])))
        }
        Err(RequestError::Api(err)) => {
            tracing::error!(%err, chat, "no invite link: is the bot an admin of the plan's channel, allowed to invite?");
            Ok(Some(tr(lang, Text::AccessByRequest, &[])))
        }
        // Passing (network, 429): the update is handled again; the purchase is idempotent.
        Err(other) => Err(other.into()),
    }
}

/// A request to join a chat: approved for a user whose period grants it now, declined for
/// anyone else (told why in private, which Telegram allows while the request is pending).
pub(super) async fn on_join_request(request: ChatJoinRequest, caller: Caller, deps: Deps, update: UpdateId) -> HandlerResult {
    let (chat, user) = (request.chat.id, TelegramUserId(caller.id.get() as u64));
    let granted = !caller.profile.banned && deps.subscriptions.grants_access(caller.id, chat.0, Utc::now()).await?;
    let answered = if granted {
        deps.bot.approve_chat_join_request(chat, user).await.map(drop)
    } else {
        deps.bot.decline_chat_join_request(chat, user).await.map(drop)
    };
    match answered {
        Ok(()) => {}
        // Answered already (a redelivered update), or by another admin.
        Err(RequestError::Api(err)) => tracing::info!(%err, chat = chat.0, "join request not answered"),
        Err(other) => return Err(other.into()),
    }
    if !granted && !caller.profile.banned {
        let note = OutboundMessage::text(request.user_chat_id.0, tr(caller.lang, Text::AccessNeedsSubscription, &[]));
        deps.outbound.enqueue(&note, Some(&format!("join-declined:{}:{}", deps.bot_id, update.0))).await?;
    }
    Ok(())
}
