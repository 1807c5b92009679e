//! Outbound Telegram messages: every message the platform sends is a job on the `outbound`
//! queue, and every sender, in any replica, asks one shared flood control before sending.
//!
//! Flood control is GCRA (generic cell rate algorithm) kept in Redis: one "theoretical arrival
//! time" per bot and one per chat, checked and advanced together in one script, plus pause keys
//! set from Telegram's `retry_after`. All keys of one bot share the hash tag `{flood:<bot>}`, so
//! the script is single-slot on a cluster. The caller passes the clock in, which keeps the
//! decision deterministic under test.
//!
//! Replies to one chat go out in the order they were produced (`ReplyOrder`). A reply carries
//! its place, `order`: the zero-padded id of the update it answers, which grows with every
//! update of a chat. The bot registers it in the chat's set of unsent replies before
//! enqueueing. The same flood-control script lets a reply go only when no earlier one of its
//! chat is still unsent; a later one waits (`Permit::Behind`) and tries again after a chat
//! interval. So flood-control waits, 429s, retries and several worker replicas cannot swap two
//! replies, and other chats are not held back. A reply stuck longer than `ORDER_ABANDON_MS`
//! (dead-lettered, or its job lost with Redis) stops holding the ones after it.

use redis::Script;
use serde::{Deserialize, Serialize};

use apalis_redis_streams::RedisConn;


/// The outbound queue's job: one message to one chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub chat_id: i64,
    pub text: String,
    /// A Bot API `reply_markup` object, passed through as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_markup: Option<serde_json::Value>,
    /// The broadcast this message belongs to, for its progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<String>,
    /// Send a Telegram Stars invoice (with `text` as its description) instead of a text message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<StarsInvoice>,
    /// The reply's place among its chat's replies (`ReplyOrder`); `None` for messages that need
    /// none (broadcasts, notices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

impl OutboundMessage {
    pub fn text(chat_id: i64, text: impl Into<String>) -> OutboundMessage {
        OutboundMessage { chat_id, text: text.into(), reply_markup: None, broadcast: None, invoice: None, order: None }
    }
}

/// A reply unsent this long stops holding back the later replies of its chat.
pub const ORDER_ABANDON_MS: u64 = 120_000;

/// Each chat's replies not sent yet, in order (a sorted set per chat under the bot's flood
/// tag). See the module's notes.
#[derive(Clone)]
pub struct ReplyOrder {
    redis: RedisConn,
    bot: String,
}

impl ReplyOrder {
    pub fn new(redis: RedisConn, bot: &str) -> ReplyOrder {
        ReplyOrder { redis, bot: bot.to_owned() }
    }

    /// The place of the reply to update `update_id`: sorts as the updates do.
    pub fn place(update_id: u32) -> String {
        format!("{update_id:010}")
    }

    fn key(&self, chat_id: i64) -> String {
        format!("{{flood:{}}}:order:{chat_id}", self.bot)
    }

    /// Records replies as unsent, `(chat, place)` each (again: idempotent); one round trip.
    pub async fn register(&self, replies: &[(i64, &str)], now_ms: u64) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        for (chat_id, place) in replies {
            pipe.cmd("ZADD").arg(self.key(*chat_id)).arg("NX").arg(now_ms).arg(*place).ignore();
        }
        pipe.query_async(&mut self.redis.clone()).await
    }

    /// The reply at `place` is sent (or will never be): the next one may go.
    pub async fn done(&self, chat_id: i64, place: &str) -> redis::RedisResult<()> {
        redis::cmd("ZREM").arg(self.key(chat_id)).arg(place).query_async(&mut self.redis.clone()).await
    }
}

/// An invoice in Telegram Stars (`XTR`, whole stars; no payment provider token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarsInvoice {
    pub title: String,
    /// Comes back in `pre_checkout_query` and `successful_payment`.
    pub payload: String,
    pub stars: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FloodConfig {
    /// Messages per second per bot (Telegram's documented bulk limit is ~30).
    pub per_bot_per_second: u32,
    /// Messages per second per chat (Telegram: about one).
    pub per_chat_per_second: u32,
    /// Messages a bot may send at once before the per-bot rate applies.
    pub bot_burst: u32,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig { per_bot_per_second: 30, per_chat_per_second: 1, bot_burst: 30 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Granted,
    /// Not before this many milliseconds from `now`.
    RetryIn(u64),
    /// An earlier reply to this chat is still unsent: it goes first.
    Behind,
}

// KEYS: bot tat, chat tat, bot pause, chat pause, chat's unsent replies.
// ARGV: now ms, bot interval ms, bot tolerance ms, chat interval ms, chat tolerance ms,
// this reply's place ('' if none), abandon-before ms.
// Returns 0 (granted, both cells advanced), the milliseconds to wait, or -1 (an earlier reply
// of the chat is unsent).
const GCRA: &str = r"
local now = tonumber(ARGV[1])
if ARGV[6] ~= '' then
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[7])
    local head = redis.call('ZRANGE', KEYS[5], 0, 0)
    if head[1] and head[1] < ARGV[6] then return -1 end
end
local wait = 0
for i = 3, 4 do
    local paused_until = tonumber(redis.call('GET', KEYS[i]) or '0')
    if paused_until - now > wait then wait = paused_until - now end
end
local function tat_of(key)
    local tat = tonumber(redis.call('GET', key) or '0')
    if tat < now then return now end
    return tat
end
local bot_tat, chat_tat = tat_of(KEYS[1]), tat_of(KEYS[2])
local bot_wait = bot_tat - tonumber(ARGV[3]) - now
local chat_wait = chat_tat - tonumber(ARGV[5]) - now
if bot_wait > wait then wait = bot_wait end
if chat_wait > wait then wait = chat_wait end
if wait > 0 then return wait end
local next_bot, next_chat = bot_tat + tonumber(ARGV[2]), chat_tat + tonumber(ARGV[4])
redis.call('SET', KEYS[1], next_bot, 'PX', next_bot - now + 1000)
redis.call('SET', KEYS[2], next_chat, 'PX', next_chat - now + 1000)
return 0
";

#[derive(Clone)]
pub struct FloodControl {
    redis: RedisConn,
    bot: String,
    order: ReplyOrder,
    bot_interval_ms: u64,
    bot_tolerance_ms: u64,
    chat_interval_ms: u64,
    script: Script,
}

impl FloodControl {
    /// `bot` names the bot whose limits these are (its id, not its token).
    pub fn new(redis: RedisConn, bot: &str, config: &FloodConfig) -> FloodControl {
        let bot_interval_ms = 1_000 / u64::from(config.per_bot_per_second.max(1));
        FloodControl {
            order: ReplyOrder::new(redis.clone(), bot),
            redis,
            bot: bot.to_owned(),
            bot_interval_ms,
            bot_tolerance_ms: bot_interval_ms * u64::from(config.bot_burst.saturating_sub(1)),
            chat_interval_ms: 1_000 / u64::from(config.per_chat_per_second.max(1)),
            script: Script::new(GCRA),
        }
    }

    fn key(&self, part: &str) -> String {
        format!("{{flood:{}}}:{part}", self.bot)
    }

    /// Takes one send for `chat_id` at `now_ms`, or says how long to wait.
    pub async fn acquire(&self, chat_id: i64, now_ms: u64) -> redis::RedisResult<Permit> {
        self.acquire_in_order(chat_id, None, now_ms).await
    }

    /// `acquire` for a reply at `place` among its chat's replies: `Behind` while an earlier one
    /// is unsent.
    pub async fn acquire_in_order(&self, chat_id: i64, place: Option<&str>, now_ms: u64) -> redis::RedisResult<Permit> {
        let wait: i64 = self
            .script
            .key(self.key("bot"))
            .key(self.key(&format!("chat:{chat_id}")))
            .key(self.key("pause"))
            .key(self.key(&format!("pause:{chat_id}")))
            .key(self.order.key(chat_id))
            .arg(now_ms)
            .arg(self.bot_interval_ms)
            .arg(self.bot_tolerance_ms)
            .arg(self.chat_interval_ms)
            .arg(0)
            .arg(place.unwrap_or_default())
            .arg(now_ms.saturating_sub(ORDER_ABANDON_MS))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(match wait {
            0 => Permit::Granted,
            -1 => Permit::Behind,
            wait => Permit::RetryIn(wait.unsigned_abs()),
        })
    }

    /// The chat's unsent replies.
    pub fn order(&self) -> &ReplyOrder {
        &self.order
    }

    /// How long a chat waits between two messages.
    pub fn chat_interval_ms(&self) -> u64 {
        self.chat_interval_ms
    }

    /// Honours a 429: nothing more to this chat, nor from this bot, until `until_ms`.
    pub async fn pause(&self, chat_id: i64, until_ms: u64, now_ms: u64) -> redis::RedisResult<()> {
        let ttl = until_ms.saturating_sub(now_ms).max(1);
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(self.key("pause")).arg(until_ms).arg("PX").arg(ttl).ignore();
        pipe.cmd("SET").arg(self.key(&format!("pause:{chat_id}"))).arg(until_ms).arg("PX").arg(ttl).ignore();
        pipe.query_async(&mut self.redis.clone()).await
    }
}
