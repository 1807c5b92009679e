//! What the bot does with an update: a dptree tree over teloxide's `Update`, one module per
//! conversation. Every reply is an outbound job keyed by the update, so handling an update twice
//! sends one reply; every money effect is keyed by the update that asked for it, so handling it
//! twice does it once.
//!
//! - `start`: `/start` (referral deep link `ref_<user id>`) and `/referral`.
//! - `balance`: `/balance` and `/history`.
//! - `deposit`: Stars invoices, pre-checkout, successful payments.
//! - `subscribe`: plans, confirm, purchase, the referrer's commission.
//! - `access`: the private channel a plan grants (invite link, join requests).
//! - `withdraw`: amount → address → confirm.
//! - `support`: `/support` and `/paysupport` threads; admins answer from their chats.
//! - `notifications`: broadcasts and reminders on or off.
//! - `language`, `help` (also /terms).
//!
//! Every update first registers its sender if they are new, or refreshes their name, @username
//! and client language if these changed (`Users::observe`). Banned users get a polite refusal
//! and nothing else; a payment they already made is still recorded (money is never dropped).

mod access;
mod balance;
mod deposit;
mod help;
mod language;
mod notifications;
mod start;
mod subscribe;
mod support;
mod withdraw;

use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

use apalis_redis_streams::{now_ms, Queue};
use obentchi_core::cryptopay::{CryptoPay, DepositInvoices};
use obentchi_core::i18n::{tr, Lang, Text};
use obentchi_core::ids::UserId;
use obentchi_core::ledger::{Ledger, UserAccount};
use obentchi_core::money::{Currency, Money};
use obentchi_core::outbound::{OutboundMessage, ReplyOrder};
use obentchi_core::payments::Payments;
use obentchi_core::settings::LiveSettings;
use obentchi_core::subscriptions::Subscriptions;
use obentchi_core::support::{SupportThreads, Topic};
use obentchi_core::users::{Notification, Profile, Sender, Users};
use obentchi_core::withdrawals::{WithdrawalPolicies, Withdrawals};
use serde_json::json;
use teloxide::dispatching::{DpHandlerDescription, HandlerExt, UpdateFilterExt};
use teloxide::payloads::{AnswerCallbackQuerySetters, AnswerPreCheckoutQuerySetters};
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, Me, Message, MessageKind, Update, UpdateKind, User};
use teloxide::utils::command::BotCommands;
use teloxide::Bot;

use crate::conversation::{Conversation, Conversations, SupportStep};
use crate::SupportConfig;

pub use balance::HISTORY_PAGE;
pub use deposit::{validate_pre_checkout, MAX_DEPOSIT_STARS, MIN_DEPOSIT_STARS};

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
    /// Help with a payment (Telegram asks bots that sell for Stars to answer it).
    PaySupport,
    /// Write to our team.
    Support,
    /// Turn broadcasts and reminders on or off.
    Notifications,
    /// The terms of service.
    Terms,
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
    pub withdrawals: Withdrawals,
    /// The withdrawals queue: approved withdrawals go there to be paid out.
    pub withdrawal_jobs: Queue,
    /// Plans, the referral commission and the withdrawal policies in force (`settings`).
    pub settings: LiveSettings,
    pub conversations: Conversations,
    pub outbound: Queue,
    /// Each chat's replies in order (see `obentchi_core::outbound::ReplyOrder`).
    pub reply_order: ReplyOrder,
    /// Where replies wait while a consumer handles a batch (`None`: queued one by one).
    pub replies: Option<ReplyBuffer>,
    /// Crypto Pay, when configured: USDT deposits by invoice.
    pub crypto_pay: Option<CryptoPay>,
    pub deposit_invoices: DepositInvoices,
    pub support: Arc<SupportConfig>,
    pub support_threads: SupportThreads,
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

/// Replies produced while a consumer handles a batch of updates, queued together by
/// `Deps::flush_replies` before the batch is acknowledged.
pub type ReplyBuffer = Arc<std::sync::Mutex<Vec<(OutboundMessage, String)>>>;

impl Deps {
    /// The reply to `update`, with its place in its chat's reply order so the senders keep it
    /// after the replies to earlier updates: kept in `replies` when a consumer batches them,
    /// queued at once otherwise.
    async fn send(&self, update: UpdateId, message: OutboundMessage) -> HandlerResult {
        let message = OutboundMessage { order: Some(ReplyOrder::place(update.0)), ..message };
        let key = format!("reply:{}:{}", self.bot_id, update.0);
        match &self.replies {
            Some(buffer) => buffer.lock().expect("reply buffer lock").push((message, key)),
            None => {
                let partition_key = key.clone();
                self.queue_replies(&[(message, key)], &partition_key).await?;
            }
        }
        Ok(())
    }

    /// Queues the replies kept in `replies` (registered in their chats' reply order first),
    /// on the outbound partition of `partition_key`; they stay kept if that fails.
    pub async fn flush_replies(&self, partition_key: &str) -> HandlerResult {
        let Some(buffer) = &self.replies else { return Ok(()) };
        let replies = buffer.lock().expect("reply buffer lock").clone();
        self.queue_replies(&replies, partition_key).await?;
        buffer.lock().expect("reply buffer lock").drain(..replies.len());
        Ok(())
    }

    /// Whether replies wait in `replies`.
    pub fn has_unqueued_replies(&self) -> bool {
        self.replies.as_ref().is_some_and(|buffer| !buffer.lock().expect("reply buffer lock").is_empty())
    }

    /// The user's profile as stored now, not as the consumer keeps it: what money decisions
    /// read, so a ban or a referrer set moments ago elsewhere counts.
    async fn stored_profile(&self, user: UserId) -> Result<Profile, HandlerError> {
        Ok(self.users.profile(user).await?.unwrap_or_default())
    }

    async fn queue_replies(&self, replies: &[(OutboundMessage, String)], partition_key: &str) -> HandlerResult {
        if replies.is_empty() {
            return Ok(());
        }
        let places: Vec<(i64, &str)> = replies.iter().filter_map(|(m, _)| Some((m.chat_id, m.order.as_deref()?))).collect();
        self.reply_order.register(&places, now_ms()).await?;
        self.outbound.enqueue_ordered_batch(replies, partition_key).await?;
        Ok(())
    }

    async fn reply(&self, update: UpdateId, chat_id: i64, text: String) -> HandlerResult {
        self.send(update, OutboundMessage::text(chat_id, text)).await
    }

    /// The withdrawal policies in force now.
    fn withdrawal_policies(&self) -> WithdrawalPolicies {
        self.settings.current().settings.withdrawals.clone()
    }

    async fn available(&self, user: UserId, currency: Currency) -> Result<Money, HandlerError> {
        Ok(self.ledger.balance(user, UserAccount::Available, currency).await?)
    }
}

/// Our id for a Telegram user (`None` for ids we do not serve, e.g. non-positive ones).
fn user_id(user: &User) -> Option<UserId> {
    UserId::new(user.id.0 as i64).ok()
}

/// A button that opens a link.
fn link_button(text: impl Into<String>, url: impl Into<String>) -> serde_json::Value {
    json!({ "text": text.into(), "url": url.into() })
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

pub fn tree() -> dptree::Handler<'static, HandlerResult, DpHandlerDescription> {
    dptree::entry()
        // First, even for banned users: Telegram has taken the money, so it is recorded.
        .branch(
            Update::filter_message()
                .filter_map(|m: Message| m.successful_payment().cloned())
                .endpoint(deposit::on_successful_payment),
        )
        .branch(
            Update::filter_message()
                .filter_map(|m: Message| match m.kind {
                    MessageKind::RefundedPayment(refund) => Some(refund.refunded_payment),
                    _ => None,
                })
                .endpoint(deposit::on_refunded_payment),
        )
        // Group chatter that is not for us: another bot's command, or text that is not a reply
        // to us. Left alone, without a word.
        .branch(Update::filter_message().filter(|m: Message, me: Me| not_for_us(&m, &me)).endpoint(|| async { Ok(()) }))
        // Before the ban check: a banned user's request is declined, not left pending.
        .branch(Update::filter_chat_join_request().endpoint(access::on_join_request))
        .branch(dptree::filter(|caller: Caller| caller.profile.banned).endpoint(on_banned))
        // An admin replying, in an admin chat, to a user's message we forwarded there.
        .branch(
            Update::filter_message()
                .filter_map(|m: Message, me: Me, deps: Deps| support::admin_answer(&m, &me, &deps))
                .endpoint(support::answer_from_admin_chat),
        )
        .branch(Update::filter_pre_checkout_query().endpoint(deposit::on_pre_checkout))
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
    // Every user the bot meets is registered, whatever their first update is.
    let sender = Sender {
        username: from.username.as_deref(),
        first_name: Some(from.first_name.as_str()),
        last_name: from.last_name.as_deref(),
        telegram_language: from.language_code.as_deref(),
        in_private: update.chat().is_some_and(|c| c.is_private()),
    };
    let profile = deps.users.observe(id, &sender).await?;
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

/// A message in a group, supergroup or channel.
fn in_group(message: &Message) -> bool {
    !message.chat.is_private()
}

/// A command addressed to another bot (`/balance@other_bot`), or, in a group, text that is
/// neither a command nor a reply to one of our messages.
fn not_for_us(message: &Message, me: &Me) -> bool {
    let text = message.text().unwrap_or_default();
    let addressee = text.strip_prefix('/').and_then(|t| t.split_whitespace().next()).and_then(|c| c.split_once('@')).map(|(_, bot)| bot);
    if let Some(bot) = addressee {
        return !bot.eq_ignore_ascii_case(me.username());
    }
    let replies_to_us = message.reply_to_message().and_then(|r| r.from.as_ref()).is_some_and(|from| from.id == me.id);
    in_group(message) && !text.starts_with('/') && !replies_to_us
}

impl Command {
    /// Commands never answered in a group: they show or move the user's money, open their
    /// support conversation or change their settings.
    fn private_only(&self) -> bool {
        matches!(
            self,
            Command::Balance
                | Command::History
                | Command::Deposit(_)
                | Command::Withdraw
                | Command::Referral
                | Command::Subscribe
                | Command::Support
                | Command::PaySupport
                | Command::Notifications
        )
    }
}

async fn on_command(message: Message, command: Command, caller: Caller, me: Me, deps: Deps, update: UpdateId) -> HandlerResult {
    let (deps, caller, mut chat) = (&deps, &caller, message.chat.id.0);
    if in_group(&message) && command.private_only() {
        // Answered in the user's private chat if they opened one (its id is theirs), with a
        // note in the group; otherwise the group is told where to ask.
        let note = if caller.profile.private_chat {
            chat = caller.id.get();
            tr(caller.lang, Text::AnsweredInPrivate, &[])
        } else {
            tr(caller.lang, Text::OpenPrivately, &[("bot", &me.username())])
        };
        let key = format!("reply:{}:{}:group", deps.bot_id, update.0);
        deps.outbound.enqueue(&OutboundMessage::text(message.chat.id.0, note), Some(&key)).await?;
        if !caller.profile.private_chat {
            return Ok(());
        }
    }
    match command {
        Command::Start(payload) => start::start(deps, caller, &message, &payload, update).await,
        Command::Balance => balance::balance(deps, caller, chat, update).await,
        Command::Deposit(amount) => deposit::invoice(deps, caller, chat, &amount, update).await,
        Command::Subscribe => subscribe::plans(deps, caller, chat, update).await,
        Command::Referral => start::referral(deps, caller, &me, chat, update).await,
        Command::Withdraw => withdraw::start(deps, caller, chat, update).await,
        Command::Cancel => cancel(deps, caller, chat, update).await,
        Command::Language => language::choose(deps, caller, chat, update).await,
        Command::History => balance::history(deps, caller, chat, 1, update).await,
        Command::Help => help::help(deps, caller, chat, update).await,
        Command::PaySupport => support::start(deps, caller, chat, Topic::Payment, update).await,
        Command::Support => support::start(deps, caller, chat, Topic::General, update).await,
        Command::Notifications => notifications::show(deps, caller, chat, update).await,
        Command::Terms => help::terms(deps, caller, chat, update).await,
    }
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
    let (deps, caller) = (&deps, &caller);
    let chat = query.message.as_ref().map_or(caller.id.get(), |m| m.chat().id.0);
    let data = query.data.as_deref().unwrap_or_default();
    if let Some(chosen) = data.strip_prefix("lang:").and_then(Lang::from_code) {
        return language::chosen(deps, caller, chat, chosen, update).await;
    }
    if let Some((name, state)) = data.strip_prefix("notif:").and_then(|rest| rest.split_once(':')) {
        let Some(notification) = Notification::from_name(name) else { return Ok(()) };
        return notifications::set(deps, caller, chat, notification, state == "on", update).await;
    }
    if let Some(page) = data.strip_prefix("history:").and_then(|p| p.parse::<u32>().ok()) {
        return balance::history(deps, caller, chat, page, update).await;
    }
    if let Some(plan) = data.strip_prefix("sub:") {
        return subscribe::confirm(deps, caller.lang, chat, plan, update).await;
    }
    if let Some((plan, shown_by)) = data.strip_prefix("subok:").and_then(|rest| rest.split_once(':')) {
        return subscribe::buy(deps, caller, chat, plan, shown_by, update).await;
    }
    if let Some((code, started_by)) = data.strip_prefix("wd:cur:").and_then(|rest| rest.split_once(':')) {
        let Ok(started_by) = started_by.parse::<u32>() else { return Ok(()) };
        return withdraw::currency_chosen(deps, caller, chat, code, started_by, update).await;
    }
    if let Some(started_by) = data.strip_prefix("wd:ok:").and_then(|n| n.parse::<u32>().ok()) {
        return withdraw::confirm(deps, caller, chat, started_by, update).await;
    }
    if data == "cancel" {
        return cancel(deps, caller, chat, update).await;
    }
    Ok(())
}

/// Plain text: the next step of a conversation, if one is going on.
async fn on_text(message: Message, caller: Caller, deps: Deps, update: UpdateId) -> HandlerResult {
    let Some(text) = message.text() else { return Ok(()) };
    if in_group(&message) && text.starts_with('/') {
        // A command we do not have, sent to every bot of the group: not ours to answer.
        return Ok(());
    }
    let chat = message.chat.id.0;
    let reply = match deps.conversations.get(chat, caller.id).await? {
        Some(Conversation::Withdraw(step)) => withdraw::next_step(&deps, &caller, chat, step, text).await?,
        Some(Conversation::Support(SupportStep::Support { topic })) => support::from_user(&deps, &caller, chat, topic, text, update).await?,
        None => help::not_understood(&caller, chat),
    };
    deps.send(update, reply).await
}

/// `/cancel` or a Cancel button: ends the conversation going on, if any.
async fn cancel(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
    deps.conversations.clear(chat, caller.id).await?;
    deps.reply(update, chat, tr(caller.lang, Text::Cancelled, &[])).await
}
