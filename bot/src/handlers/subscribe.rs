//! `/subscribe`: plan buttons → confirm → paid from the balance. The confirm button is keyed by
//! the update that showed it, so double taps buy once; the referrer is paid and told. Plans,
//! prices and the commission are the runtime settings in force; the button carries the price it
//! showed, and a purchase at any other price is confirmed again first.

use chrono::Utc;
use obentchi_core::i18n::{tr, Lang, Text};
use obentchi_core::ids::IdempotencyKey;
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::subscriptions::SubscriptionError;

use super::{access, button, with_keyboard, Caller, Deps, HandlerError, HandlerResult, UpdateId};

pub(super) async fn plans(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
    deps.send(update, plans_message(deps, caller, chat).await?).await
}

/// The plans as buttons (one per row), after the current subscription's end if it runs.
async fn plans_message(deps: &Deps, caller: &Caller, chat: i64) -> Result<OutboundMessage, HandlerError> {
    let lang = caller.lang;
    let mut text = String::new();
    if let Some(until) = deps.subscriptions.active_until(caller.id).await?.filter(|until| *until > Utc::now()) {
        text = format!("{}\n", tr(lang, Text::SubscribedUntil, &[("until", &until)]));
    }
    text.push_str(&tr(lang, Text::Plans, &[]));
    let settings = deps.settings.current();
    let rows = settings
        .settings
        .subscriptions
        .plans
        .iter()
        .map(|p| {
            let label = tr(lang, Text::PlanButton, &[("plan", &p.id()), ("days", &p.days()), ("price", &p.price())]);
            vec![button(label, format!("sub:{}", p.id()))]
        })
        .collect();
    Ok(with_keyboard(chat, text, rows))
}

/// A plan's button was pressed: ask to confirm.
pub(super) async fn confirm(deps: &Deps, lang: Lang, chat: i64, plan_id: &str, update: UpdateId) -> HandlerResult {
    deps.send(update, confirm_purchase_message(deps, lang, chat, plan_id, update)).await
}

/// "Buy this plan?" with a confirm button keyed by this update: pressing it twice buys once.
fn confirm_purchase_message(deps: &Deps, lang: Lang, chat: i64, plan_id: &str, update: UpdateId) -> OutboundMessage {
    let settings = deps.settings.current();
    let Some(plan) = settings.settings.subscriptions.plan(plan_id) else {
        return OutboundMessage::text(chat, tr(lang, Text::UnknownPlan, &[]));
    };
    let text = tr(lang, Text::ConfirmPurchase, &[("plan", &plan.id()), ("days", &plan.days()), ("price", &plan.price())]);
    // Within Telegram's 64 bytes: a plan id has at most 16.
    let data = format!("subok:{}:{}:{}", plan.id(), update.0, plan.price().minor());
    let buttons = vec![button(tr(lang, Text::Confirm, &[]), data), button(tr(lang, Text::Cancel, &[]), "cancel")];
    with_keyboard(chat, text, vec![buttons])
}

/// The confirm button (`<update that showed it>:<price shown, minor units>`): buys once per
/// button shown, at the price shown; at a price changed since, asks again.
pub(super) async fn buy(deps: &Deps, caller: &Caller, chat: i64, plan_id: &str, shown: &str, update: UpdateId) -> HandlerResult {
    let lang = caller.lang;
    let settings = deps.settings.current();
    let (shown_by, shown_price) = shown.split_once(':').map_or((shown, None), |(by, price)| (by, price.parse::<i64>().ok()));
    let (Some(plan), Ok(shown_by)) = (settings.settings.subscriptions.plan(plan_id), shown_by.parse::<u32>()) else {
        return deps.reply(update, chat, tr(lang, Text::UnknownPlan, &[])).await;
    };
    if shown_price != Some(plan.price().minor()) {
        return deps.send(update, confirm_purchase_message(deps, lang, chat, plan_id, update)).await;
    }
    let key = IdempotencyKey::new(format!("tg:{shown_by}"))?;
    // As stored now, not as the consumer keeps it: a referrer set by a /start moments ago, or a
    // ban, counts.
    let profile = deps.stored_profile(caller.id).await?;
    if profile.banned {
        return deps.reply(update, chat, tr(lang, Text::Banned, &[])).await;
    }
    let commission_bps = settings.settings.subscriptions.referral_commission_bps;
    let text = match deps.subscriptions.purchase(caller.id, profile.referrer, plan, &key, commission_bps).await {
        Ok(purchase) => {
            if let Some((referrer, commission)) = purchase.commission {
                // No update of theirs at hand: the language they chose, or registered with.
                let referrer_lang = deps.users.language(referrer).await?;
                let note = tr(referrer_lang, Text::ReferralEarned, &[("amount", &commission)]);
                // Keyed by the purchase: a replay tells the referrer once.
                let key = format!("refpaid:{}:{}:{key}", deps.bot_id, caller.id);
                deps.outbound.enqueue(&OutboundMessage::text(referrer.get(), note), Some(&key)).await?;
            }
            let done = tr(lang, Text::Subscribed, &[("plan", &plan.id()), ("until", &purchase.period.expires_at)]);
            match access::on_purchase(deps, lang, &purchase.period).await? {
                Some(access) => format!("{done}\n{access}"),
                None => done,
            }
        }
        Err(SubscriptionError::InsufficientFunds(needed)) => tr(lang, Text::NotEnoughBalance, &[("amount", &needed)]),
        Err(other) => return Err(other.into()),
    };
    deps.reply(update, chat, text).await
}
