//! `/withdraw`: amount → address → confirm, the state kept in `conversation` (no address step
//! when payouts go to the user's own Telegram account by Crypto Pay transfer). Confirming
//! requests the withdrawal (key: the update that started the conversation) and holds the money.

use chrono::Utc;
use obentchi_core::i18n::{tr, Lang, Text};
use obentchi_core::ids::{IdempotencyKey, UserId};
use obentchi_core::money::Money;
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::withdrawals::{NewWithdrawal, PayoutAddress, Withdrawal, WithdrawalError, WithdrawalStatus};

use super::{button, with_keyboard, Caller, Deps, HandlerError, HandlerResult, UpdateId};
use crate::conversation::Conversation;

pub(super) async fn start(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
    let policy = &deps.withdrawal_policy;
    let available = deps.available(caller.id, policy.currency()).await?;
    let smallest = policy.min().checked_add(policy.fee())?;
    let args = [
        ("min", policy.min().to_string()),
        ("max", policy.max().to_string()),
        ("fee", policy.fee().to_string()),
        ("available", available.to_string()),
    ];
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if available.minor() < smallest.minor() {
        return deps.reply(update, chat, tr(caller.lang, Text::WithdrawNotEnough, &args)).await;
    }
    deps.conversations.set(chat, caller.id, &Conversation::WithdrawAmount { started_by: update.0 }).await?;
    deps.reply(update, chat, tr(caller.lang, Text::WithdrawAskAmount, &args)).await
}

/// Text sent while a withdrawal conversation is going on: its next step.
pub(super) async fn next_step(
    deps: &Deps,
    caller: &Caller,
    chat: i64,
    state: Conversation,
    text: &str,
) -> Result<OutboundMessage, HandlerError> {
    Ok(match state {
        Conversation::WithdrawAmount { started_by } => withdrawal_amount(deps, caller, chat, started_by, text).await?,
        Conversation::WithdrawAddress { started_by, amount } => {
            withdrawal_address(deps, caller, chat, started_by, amount, text).await?
        }
        Conversation::WithdrawConfirm { started_by, amount, address } => {
            withdrawal_confirm_prompt(deps, caller.lang, chat, started_by, amount, &address)
        }
    })
}

/// Checks an amount against the policy, what the user requested in the last 24 hours and their
/// balance; `Err` is the reason to show.
async fn check_withdrawal_amount(deps: &Deps, user: UserId, amount: Money) -> Result<Result<(), String>, HandlerError> {
    let policy = &deps.withdrawal_policy;
    let requested = deps.withdrawals.requested_since(user, policy.currency(), Utc::now() - chrono::Duration::hours(24)).await?;
    if let Err(violation) = policy.check_amount(amount, requested) {
        return Ok(Err(violation.to_string()));
    }
    let needed = amount.checked_add(policy.fee())?;
    let available = deps.available(user, policy.currency()).await?;
    if available.minor() < needed.minor() {
        return Ok(Err(format!("{available} available, {needed} needed with the fee")));
    }
    Ok(Ok(()))
}

async fn withdrawal_amount(deps: &Deps, caller: &Caller, chat: i64, started_by: u32, text: &str) -> Result<OutboundMessage, HandlerError> {
    let policy = &deps.withdrawal_policy;
    let checked = match Money::parse(policy.currency(), text) {
        Ok(amount) => check_withdrawal_amount(deps, caller.id, amount).await?.map(|()| amount),
        Err(err) => Err(err.to_string()),
    };
    let amount = match checked {
        Ok(amount) => amount,
        Err(error) => return Ok(OutboundMessage::text(chat, tr(caller.lang, Text::WithdrawBadAmount, &[("error", &error)]))),
    };
    if !policy.address_format().asks_for_address() {
        // Paid to the user's own Telegram account: straight to the confirmation.
        return withdrawal_address(deps, caller, chat, started_by, amount, &caller.id.to_string()).await;
    }
    deps.conversations.set(chat, caller.id, &Conversation::WithdrawAddress { started_by, amount }).await?;
    let format = policy.address_format().to_string();
    Ok(OutboundMessage::text(chat, tr(caller.lang, Text::WithdrawAskAddress, &[("format", &format), ("amount", &amount.to_string())])))
}

async fn withdrawal_address(
    deps: &Deps,
    caller: &Caller,
    chat: i64,
    started_by: u32,
    amount: Money,
    text: &str,
) -> Result<OutboundMessage, HandlerError> {
    let format = deps.withdrawal_policy.address_format();
    let Ok(address) = PayoutAddress::parse(format, text) else {
        let format = format.to_string();
        return Ok(OutboundMessage::text(chat, tr(caller.lang, Text::WithdrawBadAddress, &[("format", &format)])));
    };
    let address = address.as_str().to_owned();
    let state = Conversation::WithdrawConfirm { started_by, amount, address: address.clone() };
    deps.conversations.set(chat, caller.id, &state).await?;
    Ok(withdrawal_confirm_prompt(deps, caller.lang, chat, started_by, amount, &address))
}

fn withdrawal_confirm_prompt(deps: &Deps, lang: Lang, chat: i64, started_by: u32, amount: Money, address: &str) -> OutboundMessage {
    let fee = deps.withdrawal_policy.fee().to_string();
    let text = tr(lang, Text::WithdrawConfirm, &[("amount", &amount.to_string()), ("fee", &fee), ("address", address)]);
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
    let policy = &deps.withdrawal_policy;
    let withdrawal = match existing {
        // Recorded, but the process died before approving or holding it: finish that.
        Some(w) if w.status == WithdrawalStatus::Requested => {
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
            let state = deps.conversations.get(chat, caller.id).await?;
            let Some(Conversation::WithdrawConfirm { amount, address, .. }) = state.filter(|s| s.started_by() == started_by) else {
                return deps.reply(update, chat, tr(lang, Text::Expired, &[])).await;
            };
            // Checked again: time has passed since the amount step.
            if let Err(error) = check_withdrawal_amount(deps, caller.id, amount).await? {
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
    deps.conversations.clear(chat, caller.id).await?;
    deps.reply(update, chat, withdrawal_text(lang, &withdrawal)).await
}

fn withdrawal_text(lang: Lang, w: &Withdrawal) -> String {
    let amount = w.amount.to_string();
    match w.status {
        WithdrawalStatus::Approved | WithdrawalStatus::Processing => tr(lang, Text::WithdrawApproved, &[("amount", &amount)]),
        WithdrawalStatus::Requested => tr(lang, Text::WithdrawPendingReview, &[("amount", &amount)]),
        WithdrawalStatus::Rejected => {
            tr(lang, Text::WithdrawRefused, &[("amount", &amount), ("reason", w.reason.as_deref().unwrap_or("-"))])
        }
        status => tr(lang, Text::WithdrawStatus, &[("amount", &amount), ("status", status.as_str())]),
    }
}
