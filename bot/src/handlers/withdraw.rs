//! `/withdraw`: (currency →) amount → address → confirm, the state kept in `conversation`. Each
//! currency has its own policy; the currency is asked only when the user could withdraw in more
//! than one. No address step when payouts go to the user's own Telegram account by Crypto Pay
//! transfer. Confirming
//! requests the withdrawal (key: the update that started the conversation) and holds the money.

use chrono::Utc;
use obentchi_core::i18n::{amount_error, parse_amount, policy_violation, tr, Arg, Lang, Text};
use obentchi_core::ids::{IdempotencyKey, UserId};
use obentchi_core::money::{Currency, Money};
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::withdrawals::{NewWithdrawal, PayoutAddress, Withdrawal, WithdrawalError, WithdrawalPolicy, WithdrawalStatus};

use super::{button, with_keyboard, Caller, Deps, HandlerError, HandlerResult, Refused, UpdateId};
use crate::conversation::{Conversation, WithdrawStep};

/// `/withdraw`: with money in one currency that can be withdrawn, asks the amount; in several,
/// asks which first (`currency_chosen`); in none, says what the first currency needs.
pub(super) async fn start(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
    let policies = deps.withdrawal_policies();
    let mut possible = Vec::new();
    for policy in policies.all() {
        let available = deps.available(caller.id, policy.currency()).await?;
        if available.minor() >= policy.min().checked_add(policy.fee())?.minor() {
            possible.push(policy.currency());
        }
    }
    match possible.as_slice() {
        [currency] => ask_amount(deps, caller, chat, update.0, *currency, update).await,
        [] => {
            let Some(policy) = policies.all().first() else {
                return deps.reply(update, chat, tr(caller.lang, Text::NotUnderstood, &[])).await;
            };
            let available = deps.available(caller.id, policy.currency()).await?;
            let args = limits(policy, available);
            let args: Vec<(&str, &dyn Arg)> = args.iter().map(|(k, v)| (*k, v as &dyn Arg)).collect();
            deps.reply(update, chat, tr(caller.lang, Text::WithdrawNotEnough, &args)).await
        }
        several => {
            let buttons = several.iter().map(|c| button(c.code(), format!("wd:cur:{}:{}", c.code(), update.0))).collect();
            deps.send(update, with_keyboard(chat, tr(caller.lang, Text::WithdrawChooseCurrency, &[]), vec![buttons])).await
        }
    }
}

/// A currency button of `/withdraw` (started by update `started_by`) was pressed.
pub(super) async fn currency_chosen(deps: &Deps, caller: &Caller, chat: i64, code: &str, started_by: u32, update: UpdateId) -> HandlerResult {
    match code.parse::<Currency>() {
        Ok(currency) if deps.withdrawal_policies().for_currency(currency).is_some() => {
            ask_amount(deps, caller, chat, started_by, currency, update).await
        }
        _ => deps.reply(update, chat, tr(caller.lang, Text::Expired, &[])).await,
    }
}

async fn ask_amount(deps: &Deps, caller: &Caller, chat: i64, started_by: u32, currency: Currency, update: UpdateId) -> HandlerResult {
    let policy = policy(deps, currency)?;
    let available = deps.available(caller.id, currency).await?;
    let args = limits(&policy, available);
    let args: Vec<(&str, &dyn Arg)> = args.iter().map(|(k, v)| (*k, v as &dyn Arg)).collect();
    let state = WithdrawStep::WithdrawAmount { started_by, currency: Some(currency) };
    deps.conversations.set(chat, caller.id, &state.into()).await?;
    deps.reply(update, chat, tr(caller.lang, Text::WithdrawAskAmount, &args)).await
}

fn limits(policy: &WithdrawalPolicy, available: Money) -> [(&'static str, Money); 4] {
    [("min", policy.min()), ("max", policy.max()), ("fee", policy.fee()), ("available", available)]
}

/// The policy of `currency` in force; a currency no longer offered ends the conversation.
fn policy(deps: &Deps, currency: Currency) -> Result<WithdrawalPolicy, HandlerError> {
    Ok(deps.withdrawal_policies().for_currency(currency).cloned().ok_or_else(|| Refused(format!("no withdrawals in {currency}")))?)
}

/// Text sent while a withdrawal conversation is going on: its next step.
pub(super) async fn next_step(
    deps: &Deps,
    caller: &Caller,
    chat: i64,
    state: WithdrawStep,
    text: &str,
) -> Result<OutboundMessage, HandlerError> {
    Ok(match state {
        WithdrawStep::WithdrawAmount { started_by, currency } => {
            let first = deps.withdrawal_policies().all().first().map(|p| p.currency());
            let Some(currency) = currency.or(first) else { return Ok(OutboundMessage::text(chat, tr(caller.lang, Text::Expired, &[]))) };
            withdrawal_amount(deps, caller, chat, started_by, currency, text).await?
        }
        WithdrawStep::WithdrawAddress { started_by, amount } => {
            withdrawal_address(deps, caller, chat, started_by, amount, text).await?
        }
        WithdrawStep::WithdrawConfirm { started_by, amount, address, fee } => {
            let fee = match fee {
                Some(fee) => fee,
                None => policy(deps, amount.currency())?.fee(),
            };
            withdrawal_confirm_prompt(caller.lang, chat, started_by, amount, fee, &address)
        }
    })
}

/// Checks an amount against the policy, what the user requested in the last 24 hours and their
/// balance; `Err` is the reason to show, in `lang`.
async fn check_withdrawal_amount(deps: &Deps, lang: Lang, user: UserId, amount: Money) -> Result<Result<(), String>, HandlerError> {
    let policy = policy(deps, amount.currency())?;
    let requested = deps.withdrawals.requested_since(user, policy.currency(), Utc::now() - chrono::Duration::hours(24)).await?;
    if let Err(violation) = policy.check_amount(amount, requested) {
        return Ok(Err(policy_violation(lang, &violation)));
    }
    let needed = amount.checked_add(policy.fee())?;
    let available = deps.available(user, policy.currency()).await?;
    if available.minor() < needed.minor() {
        return Ok(Err(tr(lang, Text::WithdrawShortOfFee, &[("available", &available), ("needed", &needed)])));
    }
    Ok(Ok(()))
}

async fn withdrawal_amount(
    deps: &Deps,
    caller: &Caller,
    chat: i64,
    started_by: u32,
    currency: Currency,
    text: &str,
) -> Result<OutboundMessage, HandlerError> {
    let policy = policy(deps, currency)?;
    let checked = match parse_amount(caller.lang, policy.currency(), text) {
        Ok(amount) => check_withdrawal_amount(deps, caller.lang, caller.id, amount).await?.map(|()| amount),
        Err(err) => Err(amount_error(caller.lang, &err)),
    };
    let amount = match checked {
        Ok(amount) => amount,
        Err(error) => return Ok(OutboundMessage::text(chat, tr(caller.lang, Text::WithdrawBadAmount, &[("error", &error)]))),
    };
    if !policy.address_format().asks_for_address() {
        // Paid to the user's own Telegram account: straight to the confirmation.
        return withdrawal_address(deps, caller, chat, started_by, amount, &caller.id.to_string()).await;
    }
    deps.conversations.set(chat, caller.id, &WithdrawStep::WithdrawAddress { started_by, amount }.into()).await?;
    let format = policy.address_format().to_string();
    Ok(OutboundMessage::text(chat, tr(caller.lang, Text::WithdrawAskAddress, &[("format", &format), ("amount", &amount)])))
}

async fn withdrawal_address(
    deps: &Deps,
    caller: &Caller,
    chat: i64,
    started_by: u32,
    amount: Money,
    text: &str,
) -> Result<OutboundMessage, HandlerError> {
    let policy = policy(deps, amount.currency())?;
    let format = policy.address_format();
    let Ok(address) = PayoutAddress::parse(format, text) else {
        let format = format.to_string();
        return Ok(OutboundMessage::text(chat, tr(caller.lang, Text::WithdrawBadAddress, &[("format", &format)])));
    };
    let address = address.as_str().to_owned();
    let state = WithdrawStep::WithdrawConfirm { started_by, amount, address: address.clone(), fee: Some(policy.fee()) };
    deps.conversations.set(chat, caller.id, &state.into()).await?;
    Ok(withdrawal_confirm_prompt(caller.lang, chat, started_by, amount, policy.fee(), &address))
}

/// The confirmation with the fee the user will pay: the one kept in the conversation, which
/// `confirm` charges only if it is still the fee in force.
fn withdrawal_confirm_prompt(lang: Lang, chat: i64, started_by: u32, amount: Money, fee: Money, address: &str) -> OutboundMessage {
    let text = tr(lang, Text::WithdrawConfirm, &[("amount", &amount), ("fee", &fee), ("address", &address)]);
    let buttons = vec![button(tr(lang, Text::Confirm, &[]), format!("wd:ok:{started_by}")), button(tr(lang, Text::Cancel, &[]), "cancel")];
    with_keyboard(chat, text, vec![buttons])
}

/// The confirm button: requests the withdrawal once (its request id is the update that started
/// the conversation). Pressed again, or replayed after a crash, it finds the request and only
/// makes sure an approved one is queued for payout.
pub(super) async fn confirm(deps: &Deps, caller: &Caller, chat: i64, started_by: u32, update: UpdateId) -> HandlerResult {
    let lang = caller.lang;
    let request_id = IdempotencyKey::new(format!("tg:{started_by}"))?;
    let existing = match deps.withdrawals.get(caller.id, request_id.as_str()).await {
        Ok(w) => Some(w),
        Err(WithdrawalError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let withdrawal = match existing {
        // Recorded, but the process died before approving or holding it: finish that.
        Some(w) if w.status == WithdrawalStatus::Requested => {
            let policy = policy(deps, w.amount.currency())?;
            let again = NewWithdrawal {
                user_id: w.user_id,
                request_id,
                amount: w.amount,
                fee: w.fee,
                address: PayoutAddress::parse(policy.address_format(), &w.address)?,
            };
            deps.withdrawals.request(again, policy.auto_approve_up_to()).await?
        }
        Some(w) => w,
        None => {
            // A ban set moments ago elsewhere counts: the profile the update came with may be
            // the consumer's kept copy.
            if deps.stored_profile(caller.id).await?.banned {
                return deps.reply(update, chat, tr(lang, Text::Banned, &[])).await;
            }
            let state = deps.conversations.get(chat, caller.id).await?;
            let Some(Conversation::Withdraw(WithdrawStep::WithdrawConfirm { amount, address, fee: shown_fee, .. })) =
                state.filter(|s| matches!(s, Conversation::Withdraw(step) if step.started_by() == started_by))
            else {
                return deps.reply(update, chat, tr(lang, Text::Expired, &[])).await;
            };
            let policy = policy(deps, amount.currency())?;
            // The fee changed since it was shown (an admin changed the settings): nothing is
            // charged that the user did not see; they confirm the new fee first.
            if shown_fee != Some(policy.fee()) {
                let state = WithdrawStep::WithdrawConfirm { started_by, amount, address: address.clone(), fee: Some(policy.fee()) };
                deps.conversations.set(chat, caller.id, &state.into()).await?;
                let prompt = withdrawal_confirm_prompt(lang, chat, started_by, amount, policy.fee(), &address);
                let text = format!("{}\n{}", tr(lang, Text::WithdrawFeeChanged, &[("fee", &policy.fee())]), prompt.text);
                return deps.send(update, OutboundMessage { text, ..prompt }).await;
            }
            // Checked again: time has passed since the amount step.
            if let Err(error) = check_withdrawal_amount(deps, lang, caller.id, amount).await? {
                deps.conversations.clear(chat, caller.id).await?;
                return deps.reply(update, chat, tr(lang, Text::WithdrawBadAmount, &[("error", &error)])).await;
            }
            let new = NewWithdrawal {
                user_id: caller.id,
                request_id,
                amount,
                fee: policy.fee(),
                address: PayoutAddress::parse(policy.address_format(), &address)?,
            };
            deps.withdrawals.request(new, policy.auto_approve_up_to()).await?
        }
    };
    if withdrawal.status == WithdrawalStatus::Approved {
        let job = withdrawal.job();
        deps.withdrawal_jobs.enqueue(&job, Some(&job.job_key())).await?;
    }
    if withdrawal.status == WithdrawalStatus::Requested {
        tell_admins_of_review(deps, caller, &withdrawal).await?;
    }
    deps.conversations.clear(chat, caller.id).await?;
    deps.reply(update, chat, withdrawal_text(lang, &withdrawal)).await
}

/// Tells the admin chats (`support.admin_chat_ids`) that a withdrawal waits for their review:
/// who asked, how much, where to, and how to act. Keyed by the withdrawal and chat, so a
/// replayed confirmation tells nobody twice; the daily report lists whatever still waits.
async fn tell_admins_of_review(deps: &Deps, caller: &Caller, w: &Withdrawal) -> HandlerResult {
    let username = caller.profile.username.as_deref().map_or_else(String::new, |u| format!(" @{u}"));
    let text = format!(
        "Withdrawal {id} waits for review: user {user}{username} asks for {amount} (fee {fee}) to {address}.\n\
         Approve: POST /admin/withdrawals/{id}/approve\nReject: POST /admin/withdrawals/{id}/reject",
        id = w.id,
        user = w.user_id,
        amount = w.amount,
        fee = w.fee,
        address = w.address,
    );
    for admin_chat in &deps.support.admin_chat_ids {
        let key = format!("review:{}:{admin_chat}", w.id);
        deps.outbound.enqueue(&OutboundMessage::text(*admin_chat, text.clone()), Some(&key)).await?;
    }
    Ok(())
}

fn withdrawal_text(lang: Lang, w: &Withdrawal) -> String {
    let amount = w.amount;
    match w.status {
        WithdrawalStatus::Approved | WithdrawalStatus::Processing => tr(lang, Text::WithdrawApproved, &[("amount", &amount)]),
        WithdrawalStatus::Requested => tr(lang, Text::WithdrawPendingReview, &[("amount", &amount)]),
        WithdrawalStatus::Rejected => {
            tr(lang, Text::WithdrawRefused, &[("amount", &amount), ("reason", &w.reason.as_deref().unwrap_or("-"))])
        }
        status => tr(lang, Text::WithdrawStatus, &[("amount", &amount), ("status", &status.as_str())]),
    }
}
