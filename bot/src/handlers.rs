//! What the bot does with an update: a dptree tree over teloxide's `Update`. Every reply is an
//! outbound job keyed by the update, so handling an update twice sends one reply.
//!
//! So far: `/start` (registers the user), `/balance`, `/help`. Deposits, withdrawals,
//! subscriptions, referrals, languages and conversation state come with the rest of the issue.

use std::ops::ControlFlow;

use obentchi_core::ids::UserId;
use obentchi_core::ledger::{Ledger, UserAccount};
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::queue::Queue;
use obentchi_core::users::Users;
use teloxide::dispatching::{DpHandlerDescription, HandlerExt, UpdateFilterExt};
use teloxide::types::{Me, Message, Update};
use teloxide::utils::command::BotCommands;

pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
pub type HandlerResult = Result<(), HandlerError>;

#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    /// Start, optionally from a referral link.
    Start(String),
    /// Show your balances.
    Balance,
    /// List the commands.
    Help,
}

/// What handlers need, passed to the tree as a dependency.
#[derive(Clone)]
pub struct Deps {
    pub users: Users,
    pub ledger: Ledger,
    pub outbound: Queue,
    pub bot_id: String,
}

/// The update being handled (its id keys the reply).
#[derive(Clone, Copy)]
struct UpdateId(u32);

impl Deps {
    async fn reply(&self, update: UpdateId, chat_id: i64, text: String) -> HandlerResult {
        let message = OutboundMessage { chat_id, text, reply_markup: None, broadcast: None };
        self.outbound.enqueue(&message, Some(&format!("reply:{}:{}", self.bot_id, update.0))).await?;
        Ok(())
    }
}

pub fn tree() -> dptree::Handler<'static, HandlerResult, DpHandlerDescription> {
    dptree::entry()
        .branch(Update::filter_message().filter_command::<Command>().endpoint(on_command))
        .branch(Update::filter_message().endpoint(on_other_message))
}

/// Runs the tree on one update's raw JSON. Kinds the tree does not handle (including kinds
/// newer than our Telegram types) are left alone.
pub async fn handle(raw: &str, me: &Me, deps: &Deps) -> HandlerResult {
    let update: Update = serde_json::from_str(raw)?;
    let id = UpdateId(update.id.0);
    match tree().dispatch(dptree::deps![update, me.clone(), deps.clone(), id]).await {
        ControlFlow::Break(result) => result,
        ControlFlow::Continue(_) => Ok(()),
    }
}

async fn on_command(message: Message, command: Command, deps: Deps, update: UpdateId) -> HandlerResult {
    let Some(user) = message.from.as_ref().and_then(|u| UserId::new(u.id.0 as i64).ok()) else {
        return Ok(());
    };
    let text = match command {
        Command::Start(_payload) => {
            deps.users.register(user).await?;
            "Welcome! /balance shows your balances; /help lists what I can do.".to_owned()
        }
        Command::Balance => {
            let balances = deps.ledger.balances(user).await?;
            let lines: Vec<String> = balances
                .iter()
                .filter(|b| b.account == UserAccount::Available)
                .map(|b| b.amount.to_string())
                .collect();
            if lines.is_empty() { "Your balance is 0.".to_owned() } else { format!("Your balance:\n{}", lines.join("\n")) }
        }
        Command::Help => Command::descriptions().to_string(),
    };
    deps.reply(update, message.chat.id.0, text).await
}

async fn on_other_message(message: Message, deps: Deps, update: UpdateId) -> HandlerResult {
    if message.text().is_some() {
        deps.reply(update, message.chat.id.0, "I did not understand that. /help lists what I can do.".into()).await?;
    }
    Ok(())
}
