//! Identifiers that parse rather than validate: a value of these types is always well formed.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a user id is a positive integer, got {0}")]
    UserId(i64),
    #[error("an idempotency key is 1 to {max} visible ASCII characters, got {0:?}", max = IdempotencyKey::MAX_LEN)]
    IdempotencyKey(String),
    #[error("a provider id is 1 to 32 of a-z, 0-9, '_' and '-', got {0:?}")]
    Provider(String),
}

/// A Telegram user id: positive, up to 52 bits, so an `i64` (Telegram documents it as such).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct UserId(i64);

impl UserId {
    pub fn new(id: i64) -> Result<Self, IdError> {
        if id > 0 {
            Ok(UserId(id))
        } else {
            Err(IdError::UserId(id))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for UserId {
    type Error = IdError;
    fn try_from(id: i64) -> Result<Self, Self::Error> {
        UserId::new(id)
    }
}

impl From<UserId> for i64 {
    fn from(id: UserId) -> i64 {
        id.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The key that makes an operation happen once: a provider's charge id, a job's id, an update id.
/// Callers build it from the identity of the thing being done (`stars:<charge id>`), never from
/// a clock or a random number, so a replay produces the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 200;

    pub fn new(key: impl Into<String>) -> Result<Self, IdError> {
        let key = key.into();
        let well_formed = !key.is_empty()
            && key.len() <= Self::MAX_LEN
            && key.bytes().all(|b| b.is_ascii_graphic());
        if well_formed {
            Ok(IdempotencyKey(key))
        } else {
            Err(IdError::IdempotencyKey(key))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = IdError;
    fn try_from(key: String) -> Result<Self, Self::Error> {
        IdempotencyKey::new(key)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> String {
        key.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A payment provider's name as it appears in account names and idempotency keys
/// (`telegram_stars`, `gateway-x`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderId(String);

impl ProviderId {
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        let well_formed = (1..=32).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if well_formed {
            Ok(ProviderId(id))
        } else {
            Err(IdError::Provider(id))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProviderId {
    type Error = IdError;
    fn try_from(id: String) -> Result<Self, Self::Error> {
        ProviderId::new(id)
    }
}

impl From<ProviderId> for String {
    fn from(id: ProviderId) -> String {
        id.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_ids() {
        assert!(UserId::new(0).is_err());
        assert!(UserId::new(-5).is_err());
        assert!(IdempotencyKey::new("").is_err());
        assert!(IdempotencyKey::new("has space").is_err());
        assert!(IdempotencyKey::new("x".repeat(201)).is_err());
        assert!(IdempotencyKey::new("stars:abc-123").is_ok());
        assert!(ProviderId::new("Telegram").is_err());
        assert!(ProviderId::new("telegram_stars").is_ok());
    }

    #[test]
    fn serde_goes_through_the_parser() {
        assert!(serde_json::from_str::<UserId>("-1").is_err());
        assert_eq!(serde_json::from_str::<UserId>("42").unwrap().get(), 42);
        assert!(serde_json::from_str::<IdempotencyKey>("\"a b\"").is_err());
    }
}
