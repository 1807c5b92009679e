//! `/subscribe`: plan buttons → confirm → paid from the balance. The confirm button is keyed by
//! the update that showed it, so double taps buy once; the referrer is paid and told. Plans,
//! prices and the commission are the runtime settings in force; the button carries the terms it
//! showed (price, currency, days), and a purchase on any other terms is confirmed again first.

use chrono::Utc;
use obentchi_core::i18n::{tr, Lang, Text};
use obentchi_core::ids::IdempotencyKey;
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::money::Money;
use obentchi_core::subscriptions::{Plan, SubscriptionError};

use super::{access, button, with_keyboard, Caller, Deps, HandlerError, HandlerResult, Refused, UpdateId};

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
    let data = format!("subok:{}:{}:{}", plan.id(), update.0, Shown::of(plan));
    let buttons = vec![button(tr(lang, Text::Confirm, &[]), data), button(tr(lang, Text::Cancel, &[]), "cancel")];
    with_keyboard(chat, text, vec![buttons])
}

/// The terms a confirm button showed: price and days (`<minor units><currency>:<days>`, with
/// the plan id and the update well within Telegram's 64 bytes of button data).
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    price: Money,
    days: u32,
}

impl Shown {
    fn of(plan: &Plan) -> Shown {
        Shown { price: plan.price(), days: plan.days() }
    }

    fn parse(text: &str) -> Option<Shown> {
        let (price, days) = text.split_once(':')?;
        let digits = price.find(|c: char| !c.is_ascii_digit())?;
        let (minor, currency) = price.split_at(digits);
        Some(Shown { price: Money::from_minor(currency.parse().ok()?, minor.parse().ok()?), days: days.parse().ok()? })
    }
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}:{}", self.price.minor(), self.price.currency(), self.days)
    }
}

/// The confirm button (`<update that showed it>:<terms shown>`): buys once per button, on the
/// terms it showed. A purchase already begun under this button (paid, then interrupted) is
/// finished on those terms whatever the plans say now; a new one whose plan changed since is
/// asked for again.
pub(super) async fn buy(deps: &Deps, caller: &Caller, chat: i64, plan_id: &str, shown: &str, update: UpdateId) -> HandlerResult {
    let lang = caller.lang;
    let settings = deps.settings.current();
    let (shown_by, terms) = shown.split_once(':').map_or((shown, None), |(by, terms)| (by, Shown::parse(terms)));
    let Ok(shown_by) = shown_by.parse::<u32>() else { return deps.reply(update, chat, tr(lang, Text::UnknownPlan, &[])).await };
    let key = IdempotencyKey::new(format!("tg:{shown_by}"))?;
    let current = settings.settings.subscriptions.plan(plan_id);
    let started = deps.subscriptions.purchase_started(caller.id, &key).await?;
    let plan = if started {
        // Paid already: finished on the terms shown (a ban since changes nothing: it is paid).
        let Some(terms) = terms.or_else(|| current.map(Shown::of)) else {
            return deps.reply(update, chat, tr(lang, Text::UnknownPlan, &[])).await;
        };
        let plan = Plan::new(plan_id, terms.price, terms.days).map_err(Refused)?;
        match current.and_then(Plan::channel) {
            Some(channel) => plan.granting(channel),
            None => plan,
        }
    } else {
        match (current, terms) {
            (Some(plan), Some(terms)) if Shown::of(plan) == terms => plan.clone(),
            (Some(_), _) => return deps.send(update, confirm_purchase_message(deps, lang, chat, plan_id, update)).await,
            (None, _) => return deps.reply(update, chat, tr(lang, Text::UnknownPlan, &[])).await,
        }
    };
    let plan = &plan;
    // As stored now, not as the consumer keeps it: a referrer set by a /start moments ago, or a
    // ban, counts for a purchase not begun (one begun keeps the referrer it fixed).
    let profile = deps.stored_profile(caller.id).await?;
    if profile.banned && !started {
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
