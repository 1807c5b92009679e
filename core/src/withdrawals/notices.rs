//! Telling the user how their withdrawal ended.

use apalis_redis_streams::{Queue, QueueError};

use super::{Withdrawal, WithdrawalStatus};
use crate::i18n::{tr, Text};
use crate::outbound::OutboundMessage;
use crate::users::Users;

/// Tells the user how their withdrawal ended (sent, or returned to their balance) in their
/// language; nothing for a withdrawal still under way. The message is keyed by withdrawal and
/// outcome, so the redeliveries a finished withdrawal's job can get tell the user once.
pub async fn notify_outcome(users: &Users, outbound: &Queue, w: &Withdrawal) -> Result<(), NoticeError> {
    let text = match w.status {
        WithdrawalStatus::Sent => Text::WithdrawalSent,
        WithdrawalStatus::Released => Text::WithdrawalReturned,
        _ => return Ok(()),
    };
    let lang = users.language(w.user_id).await?;
    let message = OutboundMessage::text(w.user_id.get(), tr(lang, text, &[("amount", &w.amount)]));
    outbound.enqueue(&message, Some(&format!("wd-notice:{}:{}", w.id, w.status.as_str()))).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("users storage: {0}")]
    Storage(#[from] mongodb::error::Error),
    #[error(transparent)]
    Queue(#[from] QueueError),
}
