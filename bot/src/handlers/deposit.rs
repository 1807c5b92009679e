//! Deposits. USDT (or another Crypto Pay asset): `/deposit 10 USDT` creates a Crypto Pay invoice
//! and sends its pay button; the paid invoice arrives by webhook at the admin API (see
//! `obentchi_core::cryptopay`). Telegram Stars: `/deposit <stars>` sends an invoice; the pre-checkout query is
//! checked and answered at once (Telegram allows 10 s); `successful_payment` is recorded, then
//! becomes a payment job that credits it.

use obentchi_core::cryptopay::{CallError, CryptoPay, DepositError};
use obentchi_core::i18n::{amount_error, parse_amount, tr, Text};
use obentchi_core::ids::{ProviderId, UserId};
use obentchi_core::money::{Currency, Money, ParseMoneyError};
use obentchi_core::outbound::{OutboundMessage, StarsInvoice};
use obentchi_core::payments::{PaymentJob, RefundOutcome, TELEGRAM_STARS};
use teloxide::payloads::AnswerPreCheckoutQuerySetters;
use teloxide::prelude::Requester;
use teloxide::types::{Message, PreCheckoutQuery, RefundedPayment, SuccessfulPayment};

use super::{keyboard, link_button, Caller, Deps, HandlerResult, Refused, UpdateId};

/// Stars per deposit invoice.
pub const MIN_DEPOSIT_STARS: u32 = 1;
pub const MAX_DEPOSIT_STARS: u32 = 10_000;

/// `/deposit <amount> [asset]`: Stars by default; an asset Crypto Pay is configured for (USDT)
/// gets a Crypto Pay invoice.
pub(super) async fn invoice(deps: &Deps, caller: &Caller, chat: i64, args: &str, update: UpdateId) -> HandlerResult {
    let mut words = args.split_whitespace();
    let amount = words.next().unwrap_or_default();
    let asset = words.next().map(str::to_uppercase);
    match asset.as_deref() {
        None | Some("XTR" | "STARS") => stars_invoice(deps, caller, chat, amount, update).await,
        Some(code) => match (code.parse::<Currency>(), &deps.crypto_pay) {
            (Ok(currency), Some(api)) if api.assets().contains(&currency) => {
                crypto_invoice(deps, api, caller, chat, parse_amount(caller.lang, currency, amount), update).await
            }
            _ => {
                let error = tr(caller.lang, Text::AssetNotOffered, &[("currency", &code)]);
                deps.reply(update, chat, tr(caller.lang, Text::DepositUsage, &[("error", &error)])).await
            }
        },
    }
}

/// A Crypto Pay invoice with a pay button; the same invoice again if the update is handled
/// again.
async fn crypto_invoice(
    deps: &Deps,
    api: &CryptoPay,
    caller: &Caller,
    chat: i64,
    amount: Result<Money, ParseMoneyError>,
    update: UpdateId,
) -> HandlerResult {
    let lang = caller.lang;
    let amount = match amount {
        Ok(amount) if amount.is_positive() => amount,
        Ok(_) => return deps.reply(update, chat, tr(lang, Text::DepositUsage, &[("error", &tr(lang, Text::AmountNotPositive, &[]))])).await,
        Err(err) => return deps.reply(update, chat, tr(lang, Text::DepositUsage, &[("error", &amount_error(lang, &err))])).await,
    };
    let description = tr(lang, Text::InvoiceTitle, &[("amount", &amount.to_string())]);
    let invoice = match deps.deposit_invoices.open(api, caller.id, update.0, amount, &description).await {
        Ok(invoice) => invoice,
        // Crypto Pay's own refusal of the request (an amount below its minimum, say): final, so
        // say why. Anything else (a 429, a 5xx) is passing: the update is handled again.
        Err(DepositError::Call(CallError::Api { code: 400, name })) => {
            return deps.reply(update, chat, tr(lang, Text::CryptoRefused, &[("error", &name)])).await;
        }
        Err(other) => return Err(other.into()),
    };
    let button = link_button(tr(lang, Text::PayButton, &[("amount", &invoice.amount)]), invoice.pay_url);
    let text = tr(lang, Text::CryptoInvoice, &[("amount", &invoice.amount)]);
    deps.send(update, OutboundMessage { reply_markup: Some(keyboard(vec![vec![button]])), ..OutboundMessage::text(chat, text) }).await
}

/// `/deposit <stars>`: an invoice within the limits, or why not.
async fn stars_invoice(deps: &Deps, caller: &Caller, chat: i64, amount: &str, update: UpdateId) -> HandlerResult {
    let lang = caller.lang;
    let text = match parse_amount(lang, Currency::Xtr, amount) {
        Ok(stars) if (i64::from(MIN_DEPOSIT_STARS)..=i64::from(MAX_DEPOSIT_STARS)).contains(&stars.minor()) => {
            let invoice = StarsInvoice {
                title: tr(lang, Text::InvoiceTitle, &[("amount", &stars)]),
                payload: deposit_payload(caller.id, update),
                stars: stars.minor() as u32,
            };
            let description = tr(lang, Text::InvoiceDescription, &[("amount", &stars)]);
            return deps.send(update, OutboundMessage { invoice: Some(invoice), ..OutboundMessage::text(chat, description) }).await;
        }
        Ok(_) => tr(
            lang,
            Text::DepositLimits,
            &[("min", &stars_amount(MIN_DEPOSIT_STARS)), ("max", &stars_amount(MAX_DEPOSIT_STARS))],
        ),
        Err(err) => tr(lang, Text::DepositUsage, &[("error", &amount_error(lang, &err))]),
    };
    deps.reply(update, chat, text).await
}

fn stars_amount(stars: u32) -> Money {
    Money::from_minor(Currency::Xtr, i64::from(stars))
}

/// The invoice payload of a deposit: who asked, and which update asked.
fn deposit_payload(user: UserId, update: UpdateId) -> String {
    format!("deposit:{user}:{}", update.0)
}

/// Checks a pre-checkout query against what we invoiced; `Err` says why it is refused.
pub fn validate_pre_checkout(query: &PreCheckoutQuery) -> Result<(), Text> {
    let payer = query.from.id.0.to_string();
    let invoiced_to = query.invoice_payload.strip_prefix("deposit:").and_then(|rest| rest.split(':').next());
    if invoiced_to != Some(payer.as_str()) {
        return Err(Text::InvoiceNotYours);
    }
    if query.currency != Currency::Xtr.code() {
        return Err(Text::OnlyStars);
    }
    if !(MIN_DEPOSIT_STARS..=MAX_DEPOSIT_STARS).contains(&query.total_amount) {
        return Err(Text::OutsideLimits);
    }
    Ok(())
}

/// Answered directly, not queued: Telegram cancels the payment if no answer comes in 10 s.
pub(super) async fn on_pre_checkout(query: PreCheckoutQuery, caller: Caller, deps: Deps) -> HandlerResult {
    let verdict = validate_pre_checkout(&query);
    let answer = deps.bot.answer_pre_checkout_query(query.id.clone(), verdict.is_ok());
    let answered = match verdict {
        Ok(()) => answer.await,
        Err(reason) => answer.error_message(tr(caller.lang, reason, &[])).await,
    };
    match answered {
        // A redelivered query, already answered (or expired): Telegram refuses a second answer.
        Err(teloxide::RequestError::Api(err)) => {
            tracing::info!(%err, "pre-checkout query not answered");
            Ok(())
        }
        other => Ok(other.map(drop)?),
    }
}

/// Records the payment first, then enqueues the job that credits it (idempotent on the charge).
pub(super) async fn on_successful_payment(
    message: Message,
    payment: SuccessfulPayment,
    caller: Caller,
    deps: Deps,
    update: UpdateId,
) -> HandlerResult {
    if payment.currency != Currency::Xtr.code() {
        return Err(Refused(format!("unexpected payment currency {}", payment.currency)).into());
    }
    let job = PaymentJob {
        user_id: caller.id,
        provider: ProviderId::new(TELEGRAM_STARS)?,
        external_id: payment.telegram_payment_charge_id.0.clone(),
        amount: Money::from_minor(Currency::Xtr, i64::from(payment.total_amount)),
    };
    deps.payments.record(&job).await?;
    deps.payment_jobs.enqueue(&job, Some(&job.job_key())).await?;
    let text = tr(caller.lang, Text::PaymentReceived, &[("amount", &job.amount)]);
    deps.reply(update, message.chat.id.0, text).await
}

/// Telegram gave a Stars payment back to its payer (a refund an admin started, or one Telegram
/// made): the deposit is reversed once, keyed by the charge, exactly as the Stars reconciler
/// does when it reads the refund. Telegram tells the user itself.
pub(super) async fn on_refunded_payment(refund: RefundedPayment, deps: Deps) -> HandlerResult {
    if refund.currency != Currency::Xtr.code() {
        return Err(Refused(format!("unexpected refund currency {}", refund.currency)).into());
    }
    let charge = &refund.telegram_payment_charge_id.0;
    match deps.payments.refund(&ProviderId::new(TELEGRAM_STARS)?, charge).await? {
        RefundOutcome::Reversed(_) => {}
        RefundOutcome::Uncovered => tracing::error!(charge, "Telegram refunded a Stars payment whose money the user had spent"),
        RefundOutcome::UnknownPayment => tracing::error!(charge, "Telegram refunded a Stars payment we never recorded"),
    }
    Ok(())
}
