//! What the bot does with an update: a dptree tree over teloxide's `Update`. Every reply is an
//! outbound job keyed by the update, so handling an update twice sends one reply; every money
//! effect is keyed by the update that asked for it, so handling it twice does it once.
//!
//! - `/start` registers the user (referral deep link `ref_<user id>`); `/balance`; `/history`
//!   (paged, ◀ ▶); `/language`; `/help`; `/referral` (link, invited, earned).
//! - Deposits in Telegram Stars: `/deposit <stars>` sends an invoice, `pre_checkout_query` is
//!   validated and answered at once (Telegram allows 10 s), `successful_payment` is recorded and
//!   becomes a payment job.
//! - `/subscribe`: plan buttons → confirm → paid from the balance (key: the update that showed
//!   the confirm button, so double taps buy once); the referrer is paid and told.
//! - `/withdraw`: amount → address → confirm, state in `conversation`; confirming requests the
//!   withdrawal (key: the update that started the conversation) and holds the money.
//! - Banned users get a polite refusal and nothing else; a payment they already made is still
//!   recorded (money is never dropped).

use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use apalis_redis_streams::Queue;
use obentchi_core::ids::{IdempotencyKey, ProviderId, UserId};
use obentchi_core::ledger::{Account, Ledger, PostingKind, UserAccount};
use obentchi_core::money::{Currency, Money};
use obentchi_core::outbound::{OutboundMessage, StarsInvoice};
use obentchi_core::payments::{PaymentJob, Payments, TELEGRAM_STARS};
use obentchi_core::subscriptions::{SubscriptionError, Subscriptions, SubscriptionsConfig};
use obentchi_core::users::{Profile, Registration, Users};
use obentchi_core::withdrawals::{
    NewWithdrawal, PayoutAddress, Withdrawal, WithdrawalError, WithdrawalPolicy, WithdrawalStatus, Withdrawals,
};
use serde_json::json;
use teloxide::dispatching::{DpHandlerDescription, HandlerExt, UpdateFilterExt};
use teloxide::payloads::{AnswerCallbackQuerySetters, AnswerPreCheckoutQuerySetters};
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, Me, Message, PreCheckoutQuery, SuccessfulPayment, Update, UpdateKind, User};
use teloxide::utils::command::BotCommands;
use teloxide::Bot;

use crate::conversation::{Conversation, Conversations};
use obentchi_core::i18n::{tr, Lang, Text};

/// Transactions per /history page.
pub const HISTORY_PAGE: u32 = 5;

/// Stars per deposit invoice.
pub const MIN_DEPOSIT_STARS: u32 = 1;
pub const MAX_DEPOSIT_STARS: u32 = 10_000;

pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
pub type HandlerResult = Result<(), HandlerError>;

/// An update the bot refuses for good: handling it again would fail the same way.
#[derive(Debug, thiserror::Error)]
#[error("refused: {0}")]
pub struct Refused(pub String);

/// Whether handling failed for good (retrying cannot help) rather than for a passing reason
/// (MongoDB, Redis or Telegram unreachable).
pub fn is_permanent(err: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    use obentchi_core::payments::PaymentError;
    use obentchi_core::subscriptions::SubscriptionError as S;
    use obentchi_core::withdrawals::WithdrawalError as W;
    err.is::<Refused>()
        || matches!(err.downcast_ref::<W>(), Some(W::Id(_) | W::Posting(_) | W::Conflict(_) | W::InvalidState { .. }))
        || matches!(err.downcast_ref::<S>(), Some(S::Id(_) | S::Posting(_) | S::Money(_)))
        || err.is::<serde_json::Error>()
        || matches!(err.downcast_ref::<teloxide::RequestError>(), Some(teloxide::RequestError::Api(_) | teloxide::RequestError::InvalidJson { .. }))
        || err.is::<obentchi_core::ids::IdError>()
        || matches!(err.downcast_ref::<PaymentError>(), Some(PaymentError::Conflict(_) | PaymentError::Id(_) | PaymentError::Posting(_)))
}

#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    /// Start, optionally from a referral link.
    Start(String),
    /// Show your balances.
    Balance,
    /// Deposit Telegram Stars: /deposit 250
    Deposit(String),
    /// Buy a subscription.
    Subscribe,
    /// Your referral link and earnings.
    Referral,
    /// Withdraw to your wallet.
    Withdraw,
    /// Stop a conversation (e.g. a withdrawal) you started.
    Cancel,
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
    pub subscriptions: Subscriptions,
    pub plans: Arc<SubscriptionsConfig>,
    pub withdrawals: Withdrawals,
    /// The withdrawals queue: approved withdrawals go there to be paid out.
    pub withdrawal_jobs: Queue,
    pub withdrawal_policy: Arc<WithdrawalPolicy>,
    pub conversations: Conversations,
    pub outbound: Queue,
    /// For answers that cannot wait in a queue (pre-checkout and callback queries).
    pub bot: Bot,
    pub bot_id: String,
}

/// The update being handled (its id keys the reply and any money effect it asks for).
#[derive(Clone, Copy)]
struct UpdateId(u32);

/// Who sent the update, read once per update.
#[derive(Clone)]
struct Caller {
    id: UserId,
    lang: Lang,
    profile: Profile,
}

impl Deps {
    async fn send(&self, update: UpdateId, message: OutboundMessage) -> HandlerResult {
        self.outbound.enqueue(&message, Some(&format!("reply:{}:{}", self.bot_id, update.0))).await?;
        Ok(())
    }

    async fn reply(&self, update: UpdateId, chat_id: i64, text: String) -> HandlerResult {
        self.send(update, OutboundMessage::text(chat_id, text)).await
    }

    async fn available(&self, user: UserId, currency: Currency) -> Result<Money, HandlerError> {
        Ok(self.ledger.balance(user, UserAccount::Available, currency).await?)
    }
}

/// Our id for a Telegram user (`None` for ids we do not serve, e.g. non-positive ones).
fn user_id(user: &User) -> Option<UserId> {
    UserId::new(user.id.0 as i64).ok()
}

fn keyboard(rows: Vec<Vec<serde_json::Value>>) -> serde_json::Value {
    json!({ "inline_keyboard": rows })
}

fn button(text: impl Into<String>, data: impl Into<String>) -> serde_json::Value {
    json!({ "text": text.into(), "callback_data": data.into() })
}

fn with_keyboard(chat: i64, text: String, rows: Vec<Vec<serde_json::Value>>) -> OutboundMessage {
    OutboundMessage { reply_markup: Some(keyboard(rows)), ..OutboundMessage::text(chat, text) }
}

fn date_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
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
        // First, even for banned users: Telegram has taken the money, so it is recorded.
        .branch(
            Update::filter_message()
                .filter_map(|m: Message| m.successful_payment().cloned())
                .endpoint(on_successful_payment),
        )
        .branch(dptree::filter(|caller: Caller| caller.profile.banned).endpoint(on_banned))
        .branch(Update::filter_pre_checkout_query().endpoint(on_pre_checkout))
        .branch(Update::filter_callback_query().endpoint(on_callback))
        .branch(Update::filter_message().filter_command::<Command>().endpoint(on_command))
        .branch(Update::filter_message().endpoint(on_text))
}

/// Runs the tree on one update's raw JSON. Updates without a sender, and kinds the tree does
/// not handle (including kinds newer than our Telegram types), are left alone.
pub async fn handle(raw: &str, me: &Me, deps: &Deps) -> HandlerResult {
    let update: Update = serde_json::from_str(raw)?;
    let Some(from) = update.from() else { return Ok(()) };
    let Some(id) = user_id(from) else { return Ok(()) };
    let profile = deps.users.profile(id).await?.unwrap_or_default();
    let caller = Caller { id, lang: Lang::for_user(&profile, from.language_code.as_deref()), profile };
    let update_id = UpdateId(update.id.0);
    // Built once: the tree is the same for every update.
    static TREE: LazyLock<dptree::Handler<'static, HandlerResult, DpHandlerDescription>> = LazyLock::new(tree);
    match TREE.dispatch(dptree::deps![update, me.clone(), deps.clone(), update_id, caller]).await {
        ControlFlow::Break(result) => result,
        ControlFlow::Continue(_) => Ok(()),
    }
}

async fn on_banned(update: Update, caller: Caller, deps: Deps, id: UpdateId) -> HandlerResult {
    let refusal = tr(caller.lang, Text::Banned, &[]);
    match update.kind {
        UpdateKind::PreCheckoutQuery(query) => {
            deps.bot.answer_pre_checkout_query(query.id, false).error_message(refusal).await?;
        }
        UpdateKind::CallbackQuery(query) => {
            deps.bot.answer_callback_query(query.id).text(refusal).await?;
        }
        UpdateKind::Message(message) => deps.reply(id, message.chat.id.0, refusal).await?,
        _ => {}
    }
    Ok(())
}

async fn on_command(message: Message, command: Command, caller: Caller, me: Me, deps: Deps, update: UpdateId) -> HandlerResult {
    let (lang, user, chat) = (caller.lang, caller.id, message.chat.id.0);
    let text = match command {
        Command::Start(payload) => {
            let referrer = payload.strip_prefix("ref_").and_then(|id| id.parse::<i64>().ok()).and_then(|id| UserId::new(id).ok());
            // A referrer counts only for a user who has bought nothing yet: commissions are fixed
            // at purchase time, and a purchase whose period is still being written (a crash
            // between its steps) must not find a referrer that was not there when it was paid.
            let referrer = match referrer {
                Some(_) if deps.ledger.has_posting_of_kind(user, PostingKind::SubscriptionPurchase).await? => None,
                other => other,
            };
            let from = message.from.as_ref();
            let registration = Registration {
                referrer,
                telegram_language: from.and_then(|f| f.language_code.as_deref()),
                username: from.and_then(|f| f.username.as_deref()),
            };
            deps.users.register(user, registration).await?;
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
        Command::Subscribe => return deps.send(update, plans_message(&deps, &caller, chat).await?).await,
        Command::Referral => referral_text(&deps, &caller, &me).await?,
        Command::Withdraw => return start_withdrawal(&deps, &caller, chat, update).await,
        Command::Cancel => {
            deps.conversations.clear(chat, user).await?;
            tr(lang, Text::Cancelled, &[])
        }
        Command::Language => {
            let buttons = Lang::ALL.iter().map(|l| button(l.name(), format!("lang:{}", l.code()))).collect();
            return deps.send(update, with_keyboard(chat, tr(lang, Text::ChooseLanguage, &[]), vec![buttons])).await;
        }
        Command::History => return deps.send(update, history_page(&deps, &caller, chat, 1).await?).await,
        Command::Help => tr(lang, Text::Help, &[]),
    };
    deps.reply(update, chat, text).await
}

/// Inline keyboard presses. The press is acknowledged directly (Telegram shows a spinner until
/// then); the visible answer is a queued message.
async fn on_callback(query: CallbackQuery, caller: Caller, deps: Deps, update: UpdateId) -> HandlerResult {
    // Only stops the client's spinner. A redelivered press is answered again and Telegram
    // refuses that ("query is too old"): that must not fail the money step below (a purchase
    // half done would then be dead-lettered instead of completed).
    if let Err(err) = deps.bot.answer_callback_query(query.id.clone()).await {
        tracing::info!(%err, "callback query not answered");
    }
    let chat = query.message.as_ref().map_or(caller.id.get(), |m| m.chat().id.0);
    let data = query.data.as_deref().unwrap_or_default();
    let lang = caller.lang;
    if let Some(chosen) = data.strip_prefix("lang:").and_then(Lang::from_code) {
        deps.users.set_language(caller.id, chosen.code()).await?;
        return deps.reply(update, chat, tr(chosen, Text::LanguageChosen, &[])).await;
    }
    if let Some(page) = data.strip_prefix("history:").and_then(|p| p.parse::<u32>().ok()) {
        return deps.send(update, history_page(&deps, &caller, chat, page).await?).await;
    }
    if let Some(plan) = data.strip_prefix("sub:") {
        return deps.send(update, confirm_purchase_message(&deps, lang, chat, plan, update)).await;
    }
    if let Some((plan, shown_by)) = data.strip_prefix("subok:").and_then(|rest| rest.split_once(':')) {
        return buy(&deps, &caller, chat, plan, shown_by, update).await;
    }
    if let Some(started_by) = data.strip_prefix("wd:ok:").and_then(|n| n.parse::<u32>().ok()) {
        return confirm_withdrawal(&deps, &caller, chat, started_by, update).await;
    }
    if data == "cancel" {
        deps.conversations.clear(chat, caller.id).await?;
        return deps.reply(update, chat, tr(lang, Text::Cancelled, &[])).await;
    }
    Ok(())
}

/// Plain text: the next step of a conversation, if one is going on.
async fn on_text(message: Message, caller: Caller, deps: Deps, update: UpdateId) -> HandlerResult {
    let Some(text) = message.text() else { return Ok(()) };
    let chat = message.chat.id.0;
    let reply = match deps.conversations.get(chat, caller.id).await? {
        Some(Conversation::WithdrawAmount { started_by }) => withdrawal_amount(&deps, &caller, chat, started_by, text).await?,
        Some(Conversation::WithdrawAddress { started_by, amount }) => {
            withdrawal_address(&deps, &caller, chat, started_by, amount, text).await?
        }
        Some(Conversation::WithdrawConfirm { started_by, amount, address }) => {
            withdrawal_confirm_prompt(&deps, caller.lang, chat, started_by, amount, &address)
        }
        None => OutboundMessage::text(chat, tr(caller.lang, Text::NotUnderstood, &[])),
    };
    deps.send(update, reply).await
}

/// Answered directly, not queued: Telegram cancels the payment if no answer comes in 10 s.
async fn on_pre_checkout(query: PreCheckoutQuery, caller: Caller, deps: Deps) -> HandlerResult {
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
async fn on_successful_payment(
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
    let text = tr(caller.lang, Text::PaymentReceived, &[("amount", &job.amount.to_string())]);
    deps.reply(update, message.chat.id.0, text).await
}

fn kind_text(kind: PostingKind) -> Text {
    match kind {
        PostingKind::Deposit => Text::KindDeposit,
        PostingKind::SubscriptionPurchase => Text::KindSubscription,
        PostingKind::ReferralCommission => Text::KindReferralCommission,
        PostingKind::WithdrawalHold => Text::KindWithdrawal,
        PostingKind::HoldRelease => Text::KindWithdrawalReturned,
        PostingKind::PayoutSettle => Text::KindPayout,
        PostingKind::AdminAdjustment => Text::KindAdjustment,
        PostingKind::PaymentRefund => Text::KindRefund,
    }
}

/// One page of the user's postings (newest first) as their effect on the available balance,
/// with ◀ ▶ buttons to the neighbouring pages.
async fn history_page(deps: &Deps, caller: &Caller, chat: i64, page: u32) -> Result<OutboundMessage, HandlerError> {
    let page = page.max(1);
    let offset = u64::from((page - 1) * HISTORY_PAGE);
    // One more than a page tells whether a next page exists.
    let mut postings = deps.ledger.history(caller.id, offset, HISTORY_PAGE + 1).await?;
    let has_next = postings.len() > HISTORY_PAGE as usize;
    postings.truncate(HISTORY_PAGE as usize);
    if postings.is_empty() {
        return Ok(OutboundMessage::text(chat, tr(caller.lang, Text::HistoryEmpty, &[])));
    }
    let lines: Vec<String> = postings
        .iter()
        .map(|p| {
            let change = p
                .entries
                .iter()
                .filter(|e| e.account == Account::User(UserAccount::Available))
                .map(|e| e.amount.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let kind = tr(caller.lang, kind_text(p.kind), &[]);
            format!("{} · {kind} · {change}", p.created_at.format("%Y-%m-%d"))
        })
        .collect();
    let mut buttons = Vec::new();
    if page > 1 {
        buttons.push(button("◀", format!("history:{}", page - 1)));
    }
    if has_next {
        buttons.push(button("▶", format!("history:{}", page + 1)));
    }
    let text = format!("{}\n{}", tr(caller.lang, Text::HistoryPage, &[("page", &page.to_string())]), lines.join("\n"));
    let reply_markup = (!buttons.is_empty()).then(|| keyboard(vec![buttons]));
    Ok(OutboundMessage { reply_markup, ..OutboundMessage::text(chat, text) })
}

/// The plans as buttons (one per row), after the current subscription's end if it runs.
async fn plans_message(deps: &Deps, caller: &Caller, chat: i64) -> Result<OutboundMessage, HandlerError> {
    let lang = caller.lang;
    let mut text = String::new();
    if let Some(until) = deps.subscriptions.active_until(caller.id).await?.filter(|until| *until > Utc::now()) {
        text = format!("{}\n", tr(lang, Text::SubscribedUntil, &[("until", &date_time(until))]));
    }
    text.push_str(&tr(lang, Text::Plans, &[]));
    let rows = deps
        .plans
        .plans
        .iter()
        .map(|p| {
            let label = tr(lang, Text::PlanButton, &[("plan", p.id()), ("days", &p.days().to_string()), ("price", &p.price().to_string())]);
            vec![button(label, format!("sub:{}", p.id()))]
        })
        .collect();
    Ok(with_keyboard(chat, text, rows))
}

/// "Buy this plan?" with a confirm button keyed by this update: pressing it twice buys once.
fn confirm_purchase_message(deps: &Deps, lang: Lang, chat: i64, plan_id: &str, update: UpdateId) -> OutboundMessage {
    let Some(plan) = deps.plans.plan(plan_id) else {
        return OutboundMessage::text(chat, tr(lang, Text::UnknownPlan, &[]));
    };
    let text = tr(lang, Text::ConfirmPurchase, &[("plan", plan.id()), ("days", &plan.days().to_string()), ("price", &plan.price().to_string())]);
    let buttons = vec![button(tr(lang, Text::Confirm, &[]), format!("subok:{}:{}", plan.id(), update.0)), button(tr(lang, Text::Cancel, &[]), "cancel")];
    with_keyboard(chat, text, vec![buttons])
}

async fn buy(deps: &Deps, caller: &Caller, chat: i64, plan_id: &str, shown_by: &str, update: UpdateId) -> HandlerResult {
    let lang = caller.lang;
    let (Some(plan), Ok(shown_by)) = (deps.plans.plan(plan_id), shown_by.parse::<u32>()) else {
        return deps.reply(update, chat, tr(lang, Text::UnknownPlan, &[])).await;
    };
    let key = IdempotencyKey::new(format!("tg:{shown_by}"))?;
    let text = match deps.subscriptions.purchase(caller.id, caller.profile.referrer, plan, &key).await {
        Ok(purchase) => {
            if let Some((referrer, commission)) = purchase.commission {
                // No update of theirs at hand: the client language they registered with.
                let profile = deps.users.profile(referrer).await?.unwrap_or_default();
                let referrer_lang = Lang::for_user(&profile, profile.telegram_language.as_deref());
                let note = tr(referrer_lang, Text::ReferralEarned, &[("amount", &commission.to_string())]);
                // Keyed by the purchase: a replay tells the referrer once.
                let key = format!("refpaid:{}:{}:{key}", deps.bot_id, caller.id);
                deps.outbound.enqueue(&OutboundMessage::text(referrer.get(), note), Some(&key)).await?;
            }
            tr(lang, Text::Subscribed, &[("plan", plan.id()), ("until", &date_time(purchase.period.expires_at))])
        }
        Err(SubscriptionError::InsufficientFunds(needed)) => tr(lang, Text::NotEnoughBalance, &[("amount", &needed.to_string())]),
        Err(other) => return Err(other.into()),
    };
    deps.reply(update, chat, text).await
}

async fn referral_text(deps: &Deps, caller: &Caller, me: &Me) -> Result<String, HandlerError> {
    let earned = deps.ledger.total_of_kind(caller.id, PostingKind::ReferralCommission).await?;
    let earned = if earned.is_empty() { "0".to_owned() } else { earned.iter().map(Money::to_string).collect::<Vec<_>>().join(", ") };
    let bps = deps.plans.referral_commission_bps;
    let percent = format!("{}.{:02}", bps / 100, bps % 100);
    let percent = percent.trim_end_matches('0').trim_end_matches('.');
    let link = format!("https://t.me/{}?start=ref_{}", me.username(), caller.id);
    Ok(tr(
        caller.lang,
        Text::ReferralInfo,
        &[("link", &link), ("count", &caller.profile.referrals.to_string()), ("earned", &earned), ("percent", percent)],
    ))
}

async fn start_withdrawal(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
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
async fn confirm_withdrawal(deps: &Deps, caller: &Caller, chat: i64, started_by: u32, update: UpdateId) -> HandlerResult {
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
