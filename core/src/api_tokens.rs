//! Admin API tokens. A token is `obt_<id>_<secret>`; only its SHA-256 is stored, under its id,
//! with a name and scopes. Tokens are created and revoked by `obentchi-http token …` (an
//! operator at a shell), never through the API itself.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::doc;
use mongodb::Collection;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::storage::{collections, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every GET.
    Read,
    /// Every change (ban, approve, broadcast, dead-letter retry …); includes `read`.
    Write,
    /// Moving money by hand: refunds and balance corrections; includes `write`.
    Money,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Money => "money",
        }
    }

    /// Whether holding this scope grants `other`.
    fn includes(self, other: Scope) -> bool {
        match self {
            Scope::Money => true,
            Scope::Write => other != Scope::Money,
            Scope::Read => other == Scope::Read,
        }
    }
}

/// A token as stored (without its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    hash: String,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "bson::serde_helpers::chrono_datetime_as_bson_datetime_optional")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// `money` includes `write`, which includes `read`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|held| held.includes(scope))
    }
}

const PREFIX: &str = "obt_";

/// The id part of a presented token, if it has our shape (cheap; nothing is verified).
pub fn token_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 16) && hex(secret, 64)).then_some(id)
}

fn digest(presented: &str) -> String {
    hex::encode(Sha256::digest(presented.as_bytes()))
}

#[derive(Clone)]
pub struct ApiTokens {
    tokens: Collection<ApiToken>,
}

impl ApiTokens {
    pub fn new(store: &Store) -> ApiTokens {
        ApiTokens { tokens: store.collection(collections::API_TOKENS) }
    }

    /// Creates a token; returns it with the secret, which is shown this once and never stored.
    pub async fn create(&self, name: &str, scopes: &[Scope]) -> mongodb::error::Result<(ApiToken, String)> {
        let mut bytes = [0u8; 40];
        rand::rng().fill_bytes(&mut bytes);
        let presented = format!("{PREFIX}{}_{}", hex::encode(&bytes[..8]), hex::encode(&bytes[8..]));
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let token = ApiToken {
            id: token_id(&presented).expect("a fresh token has our shape").to_owned(),
            name: name.to_owned(),
            scopes,
            hash: digest(&presented),
            created_at: Utc::now(),
            revoked_at: None,
        };
        self.tokens.insert_one(&token).await?;
        Ok((token, presented))
    }

    /// The live token `presented` stands for, if any. The hash comparison is constant-time.
    pub async fn verify(&self, presented: &str) -> mongodb::error::Result<Option<ApiToken>> {
        let Some(id) = token_id(presented) else { return Ok(None) };
        let Some(token) = self.tokens.find_one(doc! { "_id": id }).await? else { return Ok(None) };
        let matches: bool = digest(presented).as_bytes().ct_eq(token.hash.as_bytes()).into();
        Ok((matches && token.revoked_at.is_none()).then_some(token))
    }

    /// Revokes a token (idempotent); `false` if there is no such token.
    pub async fn revoke(&self, id: &str) -> mongodb::error::Result<bool> {
        let result = self
            .tokens
            .update_one(doc! { "_id": id, "revoked_at": null }, doc! { "$set": { "revoked_at": bson::DateTime::now() } })
            .await?;
        Ok(result.matched_count == 1 || self.tokens.find_one(doc! { "_id": id }).await?.is_some())
    }

    pub async fn list(&self) -> mongodb::error::Result<Vec<ApiToken>> {
        self.tokens.find(doc! {}).sort(doc! { "created_at": 1 }).await?.try_collect().await
    }
}
