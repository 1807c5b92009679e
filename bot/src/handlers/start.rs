//! `/start` registers the user (referral deep link `ref_<user id>`); `/referral` shows the link,
//! who was invited and what they earned.

use obentchi_core::i18n::{format_integer, format_money, percent_of_bps, tr, Text};
use obentchi_core::ids::UserId;
use obentchi_core::ledger::PostingKind;
use teloxide::types::{Me, Message};

use super::{Caller, Deps, HandlerError, HandlerResult, UpdateId};

/// Everyone is registered at their first update (`Users::observe`); `/start ref_<id>` adds the
/// referrer of a user who has none yet.
pub(super) async fn start(deps: &Deps, caller: &Caller, message: &Message, payload: &str, update: UpdateId) -> HandlerResult {
    let user = caller.id;
    let referrer = payload.strip_prefix("ref_").and_then(|id| id.parse::<i64>().ok()).and_then(|id| UserId::new(id).ok());
    // A referrer counts only for a user who has bought nothing yet: commissions are fixed
    // at purchase time, and a purchase whose period is still being written (a crash
    // between its steps) must not find a referrer that was not there when it was paid.
    if let Some(referrer) = referrer.filter(|_| caller.profile.referrer.is_none()) {
        if !deps.ledger.has_posting_of_kind(user, PostingKind::SubscriptionPurchase).await? {
            deps.users.set_referrer(user, referrer).await?;
        }
    }
    deps.reply(update, message.chat.id.0, tr(caller.lang, Text::Welcome, &[])).await
}

pub(super) async fn referral(deps: &Deps, caller: &Caller, me: &Me, chat: i64, update: UpdateId) -> HandlerResult {
    let text = referral_text(deps, caller, me).await?;
    deps.reply(update, chat, text).await
}

async fn referral_text(deps: &Deps, caller: &Caller, me: &Me) -> Result<String, HandlerError> {
    let earned = deps.ledger.total_of_kind(caller.id, PostingKind::ReferralCommission).await?;
    let earned = if earned.is_empty() { format_integer(caller.lang, 0) } else { earned.iter().map(|m| format_money(caller.lang, *m)).collect::<Vec<_>>().join(", ") };
    let bps = deps.settings.current().settings.subscriptions.referral_commission_bps;
    let percent = percent_of_bps(caller.lang, bps);
    let link = format!("https://t.me/{}?start=ref_{}", me.username(), caller.id);
    Ok(tr(
        caller.lang,
        Text::ReferralInfo,
        &[("link", &link), ("count", &caller.profile.referrals), ("earned", &earned), ("percent", &percent)],
    ))
}
