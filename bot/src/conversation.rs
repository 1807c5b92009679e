//! Conversation state: where a user is in a multi-step exchange (`/withdraw`, `/support`), in
//! Redis with a TTL so abandoned conversations vanish by themselves.
//!
//! Redis may lose a write on failover, so nothing about money depends on this state alone: a
//! lost state means the user is told the conversation expired and starts again, and a state
//! that survived its own deletion only lets the user confirm the same request again, which is
//! idempotent (the request id comes from the update that started the conversation).

use std::time::Duration;

use apalis_redis_streams::RedisConn;
use obentchi_core::money::{Currency, Money};
use obentchi_core::ids::UserId;
use obentchi_core::support::Topic;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

/// Each kind of conversation is its own enum, tagged by `step`; the outer enum adds no tag of
/// its own, so states stored before `/support` existed still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Conversation {
    Withdraw(WithdrawStep),
    Support(SupportStep),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum WithdrawStep {
    /// `/withdraw` asked for the amount (in `currency`; none: the first policy's, as stored by
    /// earlier versions).
    WithdrawAmount {
        started_by: u32,
        #[serde(default)]
        currency: Option<Currency>,
    },
    /// The amount passed the checks; asked for the address.
    WithdrawAddress { started_by: u32, amount: Money },
    /// Asked to confirm with the buttons, showing `fee` (absent in states stored before the fee
    /// was kept: confirming those shows the fee in force first).
    WithdrawConfirm {
        started_by: u32,
        amount: Money,
        address: String,
        #[serde(default)]
        fee: Option<Money>,
    },
}

impl WithdrawStep {
    /// The update that started it: its id is the withdrawal's request id.
    pub fn started_by(&self) -> u32 {
        match self {
            WithdrawStep::WithdrawAmount { started_by, .. }
            | WithdrawStep::WithdrawAddress { started_by, .. }
            | WithdrawStep::WithdrawConfirm { started_by, .. } => *started_by,
        }
    }
}

impl From<WithdrawStep> for Conversation {
    fn from(step: WithdrawStep) -> Conversation {
        Conversation::Withdraw(step)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum SupportStep {
    /// `/support` or `/paysupport`: what the user writes goes to their thread.
    Support { topic: Topic },
}

#[derive(Clone)]
pub struct Conversations {
    redis: RedisConn,
    bot_id: String,
    ttl: Duration,
}

impl Conversations {
    pub fn new(redis: RedisConn, bot_id: String, ttl: Duration) -> Conversations {
        Conversations { redis, bot_id, ttl }
    }

    /// Per bot, chat and user: in a group, each member has their own conversation.
    fn key(&self, chat: i64, user: UserId) -> String {
        format!("conv:{}:{chat}:{user}", self.bot_id)
    }

    /// The current state; an unreadable one (written by an older version) counts as none.
    pub async fn get(&self, chat: i64, user: UserId) -> redis::RedisResult<Option<Conversation>> {
        let raw: Option<String> = self.redis.clone().get(self.key(chat, user)).await?;
        Ok(raw.and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    pub async fn set(&self, chat: i64, user: UserId, state: &Conversation) -> redis::RedisResult<()> {
        let json = serde_json::to_string(state).expect("conversation state serializes");
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        self.redis.clone().pset_ex(self.key(chat, user), json, ttl_ms).await
    }

    pub async fn clear(&self, chat: i64, user: UserId) -> redis::RedisResult<()> {
        self.redis.clone().del(self.key(chat, user)).await
    }
}
