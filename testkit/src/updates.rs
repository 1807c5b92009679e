//! Telegram Update JSON as Telegram sends it, for the simulator and for tests: private-chat and
//! group messages (a leading /command gets its `bot_command` entity), inline-button presses,
//! pre-checkout queries and successful Stars payments.

use serde::Deserialize;
use serde_json::{json, Value};

/// The bot the fake Bot API answers `getMe` with.
const BOT_ID: i64 = 7_000_000_001;

/// A person chatting with the bot; their private chat's id is their user id.
#[derive(Debug, Clone, Deserialize)]
pub struct TelegramUser {
    pub user_id: i64,
    #[serde(default = "default_name")]
    pub first_name: String,
    /// Their Telegram client's language (`en`, `ar`, …), if it tells.
    #[serde(default)]
    pub language_code: Option<String>,
    /// Their @username, if they have one.
    #[serde(default)]
    pub username: Option<String>,
}

fn default_name() -> String {
    "Tester".into()
}

impl TelegramUser {
    pub fn new(user_id: i64, first_name: &str, language_code: Option<&str>) -> TelegramUser {
        TelegramUser { user_id, first_name: first_name.to_owned(), language_code: language_code.map(str::to_owned), username: None }
    }

    /// The same person with `username` as their @username (`None`: they have none).
    pub fn with_username(&self, username: Option<&str>) -> TelegramUser {
        TelegramUser { username: username.map(str::to_owned), ..self.clone() }
    }

    fn user(&self) -> Value {
        let mut user = json!({ "id": self.user_id, "is_bot": false, "first_name": self.first_name });
        if let Some(language) = &self.language_code {
            user["language_code"] = json!(language);
        }
        if let Some(username) = &self.username {
            user["username"] = json!(username);
        }
        user
    }

    fn chat(&self) -> Value {
        json!({ "id": self.user_id, "type": "private", "first_name": self.first_name })
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The content of a text message: `text`, and the entity Telegram adds for a leading /command.
pub fn text(text: &str) -> Value {
    let mut content = json!({ "text": text });
    if text.starts_with('/') {
        let command = text.split_whitespace().next().unwrap_or_default();
        content["entities"] = json!([{ "offset": 0, "length": command.encode_utf16().count(), "type": "bot_command" }]);
    }
    content
}

/// The content of a message reporting a Stars payment.
pub fn successful_payment(stars: u32, payload: &str, charge_id: &str) -> Value {
    json!({ "successful_payment": {
        "currency": "XTR",
        "total_amount": stars,
        "invoice_payload": payload,
        "telegram_payment_charge_id": charge_id,
        "provider_payment_charge_id": "",
    } })
}

/// An update with a message from `from` in their private chat; `content` is its text or payment.
pub fn message(update_id: u32, message_id: u32, from: &TelegramUser, content: Value) -> Value {
    let mut message = json!({ "message_id": message_id, "from": from.user(), "chat": from.chat(), "date": unix_now() });
    message.as_object_mut().expect("an object").extend(content.as_object().expect("content is an object").clone());
    json!({ "update_id": update_id, "message": message })
}

/// An update with a message from `from` in the supergroup `group` (a negative id), optionally
/// replying to the bot's message `replying_to_bot`.
pub fn group_message(update_id: u32, from: &TelegramUser, group: i64, content: Value, replying_to_bot: Option<i64>) -> Value {
    let chat = json!({ "id": group, "type": "supergroup", "title": "Traders" });
    let mut message = json!({ "message_id": update_id, "from": from.user(), "chat": chat.clone(), "date": unix_now() });
    if let Some(bot_message) = replying_to_bot {
        message["reply_to_message"] = json!({
            "message_id": bot_message,
            "from": { "id": BOT_ID, "is_bot": true, "first_name": "Obentchi", "username": "obentchi_bot" },
            "chat": chat,
            "date": unix_now(),
            "text": "…",
        });
    }
    message.as_object_mut().expect("an object").extend(content.as_object().expect("content is an object").clone());
    json!({ "update_id": update_id, "message": message })
}

/// An update with a message from `from` in the chat `chat_id` (their private chat, or a group if
/// negative) replying to the bot's message whose text was `replied_text`.
pub fn reply_to_bot(update_id: u32, from: &TelegramUser, chat_id: i64, replied_text: &str, content: Value) -> Value {
    let chat = if chat_id > 0 { json!({ "id": chat_id, "type": "private", "first_name": "Admin" }) } else { json!({ "id": chat_id, "type": "supergroup", "title": "Admins" }) };
    let mut message = json!({
        "message_id": update_id,
        "from": from.user(),
        "chat": chat.clone(),
        "date": unix_now(),
        "reply_to_message": {
            "message_id": 1,
            "from": { "id": BOT_ID, "is_bot": true, "first_name": "Obentchi", "username": "obentchi_bot" },
            "chat": chat,
            "date": unix_now(),
            "text": replied_text,
        },
    });
    message.as_object_mut().expect("an object").extend(content.as_object().expect("content is an object").clone());
    json!({ "update_id": update_id, "message": message })
}

/// An update with `from` asking to join the channel or supergroup `chat` (a negative id).
pub fn chat_join_request(update_id: u32, from: &TelegramUser, chat: i64) -> Value {
    json!({
        "update_id": update_id,
        "chat_join_request": {
            "chat": { "id": chat, "type": "channel", "title": "VIP" },
            "from": from.user(),
            "user_chat_id": from.user_id,
            "date": unix_now(),
        },
    })
}

/// An update for `from` pressing an inline button with `data` under the bot's message `message_id`.
pub fn callback_query(update_id: u32, from: &TelegramUser, message_id: i64, data: &str) -> Value {
    let shown = json!({
        "message_id": message_id,
        "from": { "id": BOT_ID, "is_bot": true, "first_name": "Obentchi", "username": "obentchi_bot" },
        "chat": from.chat(),
        "date": unix_now(),
        "text": "…",
    });
    let query = json!({
        "id": format!("{update_id}"),
        "from": from.user(),
        "message": shown,
        "chat_instance": format!("chat-{}", from.user_id),
        "data": data,
    });
    json!({ "update_id": update_id, "callback_query": query })
}

/// An update asking the bot to approve paying `stars` for the invoice with `payload`.
pub fn pre_checkout_query(update_id: u32, query_id: &str, from: &TelegramUser, stars: u32, payload: &str) -> Value {
    let query = json!({ "id": query_id, "from": from.user(), "currency": "XTR", "total_amount": stars, "invoice_payload": payload });
    json!({ "update_id": update_id, "pre_checkout_query": query })
}
