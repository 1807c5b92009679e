//! What the bot does with an update: a dptree tree over teloxide's `Update`. Every reply is an
//! outbound job keyed by the update, so handling an update twice sends one reply.
//!
//! So far: `/start` (registers the user, with a referral deep link `ref_<user id>`),
//! `/balance`, `/history` (paged), `/language`, `/help`, and deposits in Telegram Stars: `/deposit <stars>` sends an invoice,
//! `pre_checkout_query` is validated and answered at once (Telegram allows 10 s), and
//! `successful_payment` is recorded and becomes a payment job. Withdrawals, subscriptions and
//! conversation state come with the rest of the issue. Texts come from `i18n` in
//! the user's language.

use std::ops::ControlFlow;
use std::sync::LazyLock;

use obentchi_core::ids::{ProviderId, UserId};
use obentchi_core::ledger::{Ledger, UserAccount};
use obentchi_core::money::{Currency, Money};
use obentchi_core::outbound::{OutboundMessage, StarsInvoice};
use obentchi_core::payments::{PaymentJob, Payments, TELEGRAM_STARS};
use obentchi_core::queue::Queue;
use obentchi_core::users::Users;
use teloxide::dispatching::{DpHandlerDescription, HandlerExt, UpdateFilterExt};
use teloxide::payloads::AnswerPreCheckoutQuerySetters;
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, Me, Message, PreCheckoutQuery, SuccessfulPayment, Update, User};
use teloxide::utils::command::BotCommands;
use teloxide::Bot;

use crate::i18n::{tr, Lang, Text};

/// Transactions per /history page.
pub const HISTORY_PAGE: u32 = 5;

/// Stars per deposit invoice.
pub const MIN_DEPOSIT_STARS: u32 = 1;
pub const MAX_DEPOSIT_STARS: u32 = 10_000;

pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
pub type HandlerResult = Result<(), HandlerError>;

#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    /// Start, optionally from a referral link.
    Start(String),
    /// Show your balances.
    Balance,
    /// Deposit Telegram Stars: /deposit 250
    Deposit(String),
    /// Choose the language.
    Language,
    /// Your transactions, newest first.
    History,
    /// List the commands.
    Help,
}

/// What handlers need, passed to the tree as a dependency.
#[derive(Clone)]
pub struct Deps {
    pub users: Users,
    pub ledger: Ledger,
    pub payments: Payments,
    /// The payments queue, which payment jobs go to.
    pub payment_jobs: Queue,
    pub outbound: Queue,
    /// For answers that cannot wait in a queue (pre-checkout queries).
    pub bot: Bot,
    pub bot_id: String,
}

/// The update being handled (its id keys the reply).
#[derive(Clone, Copy)]
struct UpdateId(u32);

impl Deps {
    async fn send(&self, update: UpdateId, message: OutboundMessage) -> HandlerResult {
        self.outbound.enqueue(&message, Some(&format!("reply:{}:{}", self.bot_id, update.0))).await?;
        Ok(())
    }

    async fn reply(&self, update: UpdateId, chat_id: i64, text: String) -> HandlerResult {
        self.send(update, OutboundMessage::text(chat_id, text)).await
    }

    /// The language to answer `user` in: chosen with /language, else their Telegram client's,
    /// else Arabic.
    async fn lang(&self, user: &User) -> Result<Lang, HandlerError> {
        let chosen = match user_id(user) {
            Some(id) => self.users.language(id).await?,
            None => None,
        };
        Ok(chosen
            .as_deref()
            .or(user.language_code.as_deref())
            .and_then(Lang::from_code)
            .unwrap_or_default())
    }
}

/// Our id for a Telegram user (`None` for ids we do not serve, e.g. non-positive ones).
fn user_id(user: &User) -> Option<UserId> {
    UserId::new(user.id.0 as i64).ok()
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

pub fn tree() -> dptree::Handler<'static, HandlerResult, DpHandlerDescription> {
    dptree::entry()
        .branch(Update::filter_pre_checkout_query().endpoint(on_pre_checkout))
        .branch(
            Update::filter_message()
                .filter_map(|m: Message| m.successful_payment().cloned())
                .endpoint(on_successful_payment),
        )
        .branch(Update::filter_callback_query().endpoint(on_callback))
        .branch(Update::filter_message().filter_command::<Command>().endpoint(on_command))
        .branch(Update::filter_message().endpoint(on_other_message))
}

/// Runs the tree on one update's raw JSON. Kinds the tree does not handle (including kinds
/// newer than our Telegram types) are left alone.
pub async fn handle(raw: &str, me: &Me, deps: &Deps) -> HandlerResult {
    let update: Update = serde_json::from_str(raw)?;
    let id = UpdateId(update.id.0);
    // Built once: the tree is the same for every update.
    static TREE: LazyLock<dptree::Handler<'static, HandlerResult, DpHandlerDescription>> = LazyLock::new(tree);
    match TREE.dispatch(dptree::deps![update, me.clone(), deps.clone(), id]).await {
        ControlFlow::Break(result) => result,
        ControlFlow::Continue(_) => Ok(()),
    }
}

async fn on_command(message: Message, command: Command, deps: Deps, update: UpdateId) -> HandlerResult {
    let Some(from) = message.from.as_ref() else { return Ok(()) };
    let Some(user) = user_id(from) else { return Ok(()) };
    let lang = deps.lang(from).await?;
    let chat = message.chat.id.0;
    let text = match command {
        Command::Start(payload) => {
            let referrer = payload.strip_prefix("ref_").and_then(|id| id.parse::<i64>().ok()).and_then(|id| UserId::new(id).ok());
            deps.users.register(user, referrer).await?;
            tr(lang, Text::Welcome, &[])
        }
        Command::Balance => {
            let balances = deps.ledger.balances(user).await?;
            let lines: Vec<String> = balances
                .iter()
                .filter(|b| b.account == UserAccount::Available)
                .map(|b| b.amount.to_string())
                .collect();
            if lines.is_empty() {
                tr(lang, Text::BalanceZero, &[])
            } else {
                format!("{}\n{}", tr(lang, Text::BalanceHeader, &[]), lines.join("\n"))
            }
        }
        Command::Deposit(amount) => match Money::parse(Currency::Xtr, &amount) {
            Ok(stars) if (i64::from(MIN_DEPOSIT_STARS)..=i64::from(MAX_DEPOSIT_STARS)).contains(&stars.minor()) => {
                let amount = stars.to_string();
                let invoice = StarsInvoice {
                    title: tr(lang, Text::InvoiceTitle, &[("amount", &amount)]),
                    payload: deposit_payload(user, update),
                    stars: stars.minor() as u32,
                };
                let description = tr(lang, Text::InvoiceDescription, &[("amount", &amount)]);
                return deps.send(update, OutboundMessage { invoice: Some(invoice), ..OutboundMessage::text(chat, description) }).await;
            }
            Ok(_) => tr(
                lang,
                Text::DepositLimits,
                &[("min", &MIN_DEPOSIT_STARS.to_string()), ("max", &MAX_DEPOSIT_STARS.to_string())],
            ),
            Err(err) => tr(lang, Text::DepositUsage, &[("error", &err.to_string())]),
        },
        Command::Language => {
            let buttons: Vec<serde_json::Value> = Lang::ALL
                .iter()
                .map(|l| serde_json::json!({ "text": l.name(), "callback_data": format!("lang:{}", l.code()) }))
                .collect();
            let keyboard = serde_json::json!({ "inline_keyboard": [buttons] });
            let prompt = OutboundMessage { reply_markup: Some(keyboard), ..OutboundMessage::text(chat, tr(lang, Text::ChooseLanguage, &[])) };
            return deps.send(update, prompt).await;
        }
        Command::History => return deps.send(update, history_page(&deps, user, lang, chat, 1).await?).await,
        Command::Help => tr(lang, Text::Help, &[]),
    };
    deps.reply(update, chat, text).await
}

/// One page of the user's postings (newest first) as their effect on the available balance,
/// with ◀ ▶ buttons to the neighbouring pages.
async fn history_page(deps: &Deps, user: UserId, lang: Lang, chat: i64, page: u32) -> Result<OutboundMessage, HandlerError> {
    let page = page.max(1);
    let offset = u64::from((page - 1) * HISTORY_PAGE);
    // One more than a page tells whether a next page exists.
    let mut postings = deps.ledger.history(user, offset, HISTORY_PAGE + 1).await?;
    let has_next = postings.len() > HISTORY_PAGE as usize;
    postings.truncate(HISTORY_PAGE as usize);
    if postings.is_empty() {
        return Ok(OutboundMessage::text(chat, tr(lang, Text::HistoryEmpty, &[])));
    }
    let lines: Vec<String> = postings
        .iter()
        .map(|p| {
            let change = p
                .entries
                .iter()
                .filter(|e| e.account == obentchi_core::ledger::Account::User(UserAccount::Available))
                .map(|e| e.amount.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let kind = serde_json::to_value(p.kind).ok().and_then(|k| k.as_str().map(|k| k.replace('_', " "))).unwrap_or_default();
            format!("{} · {kind} · {change}", p.created_at.format("%Y-%m-%d"))
        })
        .collect();
    let mut buttons = Vec::new();
    if page > 1 {
        buttons.push(serde_json::json!({ "text": "◀", "callback_data": format!("history:{}", page - 1) }));
    }
    if has_next {
        buttons.push(serde_json::json!({ "text": "▶", "callback_data": format!("history:{}", page + 1) }));
    }
    let text = format!("{}\n{}", tr(lang, Text::HistoryPage, &[("page", &page.to_string())]), lines.join("\n"));
    let reply_markup = (!buttons.is_empty()).then(|| serde_json::json!({ "inline_keyboard": [buttons] }));
    Ok(OutboundMessage { reply_markup, ..OutboundMessage::text(chat, text) })
}

/// Inline keyboard presses. The press is acknowledged directly (Telegram shows a spinner until
/// then); the visible answer is a queued message.
async fn on_callback(query: CallbackQuery, deps: Deps, update: UpdateId) -> HandlerResult {
    deps.bot.answer_callback_query(query.id.clone()).await?;
    let Some(user) = user_id(&query.from) else { return Ok(()) };
    let chat = query.message.as_ref().map_or(query.from.id.0 as i64, |m| m.chat().id.0);
    let data = query.data.as_deref().unwrap_or_default();
    if let Some(lang) = data.strip_prefix("lang:").and_then(Lang::from_code) {
        deps.users.set_language(user, lang.code()).await?;
        return deps.reply(update, chat, tr(lang, Text::LanguageChosen, &[])).await;
    }
    if let Some(page) = data.strip_prefix("history:").and_then(|p| p.parse::<u32>().ok()) {
        let lang = deps.lang(&query.from).await?;
        return deps.send(update, history_page(&deps, user, lang, chat, page).await?).await;
    }
    Ok(())
}

/// Answered directly, not queued: Telegram cancels the payment if no answer comes in 10 s.
async fn on_pre_checkout(query: PreCheckoutQuery, deps: Deps) -> HandlerResult {
    let verdict = validate_pre_checkout(&query);
    let answer = deps.bot.answer_pre_checkout_query(query.id.clone(), verdict.is_ok());
    match verdict {
        Ok(()) => answer.await?,
        Err(reason) => answer.error_message(tr(deps.lang(&query.from).await?, reason, &[])).await?,
    };
    Ok(())
}

/// Records the payment first, then enqueues the job that credits it (idempotent on the charge).
async fn on_successful_payment(message: Message, payment: SuccessfulPayment, deps: Deps, update: UpdateId) -> HandlerResult {
    let Some(user) = message.from.as_ref().and_then(user_id) else {
        return Ok(());
    };
    if payment.currency != Currency::Xtr.code() {
        return Err(format!("unexpected payment currency {}", payment.currency).into());
    }
    let job = PaymentJob {
        user_id: user,
        provider: ProviderId::new(TELEGRAM_STARS)?,
        external_id: payment.telegram_payment_charge_id.0.clone(),
        amount: Money::from_minor(Currency::Xtr, i64::from(payment.total_amount)),
    };
    deps.payments.record(&job).await?;
    deps.payment_jobs.enqueue(&job, Some(&job.job_key())).await?;
    let lang = match &message.from {
        Some(from) => deps.lang(from).await?,
        None => Lang::default(),
    };
    let text = tr(lang, Text::PaymentReceived, &[("amount", &job.amount.to_string())]);
    deps.reply(update, message.chat.id.0, text).await
}

async fn on_other_message(message: Message, deps: Deps, update: UpdateId) -> HandlerResult {
    if let (Some(_), Some(from)) = (message.text(), &message.from) {
        let text = tr(deps.lang(from).await?, Text::NotUnderstood, &[]);
        deps.reply(update, message.chat.id.0, text).await?;
    }
    Ok(())
}
