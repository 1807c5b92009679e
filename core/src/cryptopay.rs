//! Crypto Pay, the payment API of Telegram's @CryptoBot: USDT deposits by invoice, payouts by
//! `transfer` to the user's own Telegram account.
//!
//! Every method is `POST {base_url}/api/{method}` with a JSON body and the app token in
//! `Crypto-Pay-API-Token`. It answers `{"ok": true, "result": …}`, or
//! `{"ok": false, "error": {"code": 400, "name": "…"}}`. Amounts travel as decimal strings and
//! become integer minor units here (`Money::from_decimal`): an amount finer than the currency
//! allows is an error, never rounded.
//!
//! - **Deposits.** `createInvoice` carries our payload `deposit:<user>:<update>`. Crypto Pay
//!   posts `invoice_paid` to our webhook, signed with the HMAC-SHA-256 of the raw body under the
//!   SHA-256 of the app token (`crypto-pay-api-signature`). The invoice id is the payment id,
//!   so a webhook delivered many times credits once. `getInvoices` finds paid invoices whose
//!   webhook never came (the reconciler).
//! - **Payouts.** `transfer` takes our withdrawal id as `spend_id`, Crypto Pay's idempotency key.
//!   The payout rules of `payout` apply. Only a documented refusal of the first send counts as
//!   final (the app lacks funds, the amount is out of bounds, the user has no Crypto Bot
//!   account). Everything else is looked up with `getTransfers(spend_id)`: timeouts, 5xx, a
//!   `spend_id` refused as already used, unknown errors. A transfer that lookups do not show
//!   (yet) is sent again with the same `spend_id`, which Crypto Pay executes at most once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use hmac::{Hmac, Mac};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::{IssuedToken, Secret};
use crate::ids::{ProviderId, UserId};
use crate::money::{Currency, Money, ParseMoneyError};
use crate::payments::PaymentJob;
use crate::payout::{LookupOutcome, PayoutProvider, PayoutRequest, SendOutcome};
use crate::storage::{collections, is_duplicate_key, Store};

/// The provider id of Crypto Pay payments (`payments`' `provider`).
pub const CRYPTO_PAY: &str = "cryptopay";

/// The header Crypto Pay signs webhook bodies in.
pub const SIGNATURE_HEADER: &str = "crypto-pay-api-signature";

/// Transfer errors that mean the transfer was not made. Final only for the first send of a
/// `spend_id` (the caller knows which send it is).
const TRANSFER_REFUSALS: [&str; 5] = ["INSUFFICIENT_FUNDS", "AMOUNT_TOO_SMALL", "AMOUNT_TOO_BIG", "USER_NOT_FOUND", "ASSET_INVALID"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CryptoPayConfig {
    /// `https://pay.crypt.bot` (mainnet) or `https://testnet-pay.crypt.bot`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    pub api_token: Secret<IssuedToken>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// What `/deposit` offers besides Stars, and what withdrawals in these currencies are paid
    /// out by transfer.
    #[serde(default = "default_assets")]
    pub assets: Vec<Currency>,
    /// How long an invoice can be paid.
    #[serde(default = "default_invoice_lifetime_s")]
    pub invoice_lifetime_s: u64,
}

fn default_base_url() -> String {
    "https://pay.crypt.bot".into()
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_assets() -> Vec<Currency> {
    vec![Currency::Usdt]
}
fn default_invoice_lifetime_s() -> u64 {
    3_600
}

/// Why a call did not give a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No answer (timeout, connection refused or reset): the call may have been executed.
    #[error("no answer from Crypto Pay: {0}")]
    NoAnswer(String),
    /// An answer that is not the API's envelope (a proxy's 502 page, say).
    #[error("Crypto Pay answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// The API's own error.
    #[error("Crypto Pay error {code} {name}")]
    Api { code: u16, name: String },
    #[error("unreadable Crypto Pay answer: {0}")]
    Unreadable(String),
}

#[derive(Deserialize)]
struct Envelope<T> {
    ok: bool,
    result: Option<T>,
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    code: u16,
    name: String,
}

/// An invoice as Crypto Pay describes it (the fields we use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub invoice_id: i64,
    /// `active`, `paid` or `expired`.
    pub status: String,
    #[serde(default)]
    pub asset: Option<String>,
    pub amount: String,
    #[serde(default)]
    pub payload: Option<String>,
    /// The link that opens the invoice in @CryptoBot.
    #[serde(default)]
    pub bot_invoice_url: Option<String>,
}

impl Invoice {
    /// What the invoice asks for, in minor units.
    pub fn money(&self) -> Result<Money, InvoiceError> {
        let asset = self.asset.as_deref().ok_or(InvoiceError::NoAsset)?;
        let currency: Currency = asset.parse().map_err(|_| InvoiceError::UnknownAsset(asset.to_owned()))?;
        Ok(Money::from_decimal(currency, &self.amount)?)
    }

    /// The user and the update our payload names (`deposit:<user>:<update>`).
    pub fn depositor(&self) -> Result<(UserId, u32), InvoiceError> {
        let payload = self.payload.as_deref().unwrap_or_default();
        parse_deposit_payload(payload).ok_or_else(|| InvoiceError::NotOurs(payload.to_owned()))
    }
}

/// The payload of a deposit invoice: who asked, and with which update.
pub fn deposit_payload(user: UserId, update: u32) -> String {
    format!("deposit:{user}:{update}")
}

fn parse_deposit_payload(payload: &str) -> Option<(UserId, u32)> {
    let (user, update) = payload.strip_prefix("deposit:")?.split_once(':')?;
    Some((UserId::new(user.parse().ok()?).ok()?, update.parse().ok()?))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    #[error("the invoice has no asset")]
    NoAsset,
    #[error("the invoice is in {0}, which we do not hold")]
    UnknownAsset(String),
    #[error("the invoice amount: {0}")]
    Amount(#[from] ParseMoneyError),
    #[error("the invoice was not created by us (payload {0:?})")]
    NotOurs(String),
}

/// A transfer as Crypto Pay describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub transfer_id: i64,
    pub spend_id: String,
    /// `completed` is the only status Crypto Pay documents.
    pub status: String,
}

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

/// A webhook update (`invoice_paid` is the only kind Crypto Pay sends today).
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookUpdate {
    pub update_id: i64,
    pub update_type: String,
    pub payload: Invoice,
}

/// Whether `signature` (hex) is the HMAC-SHA-256 of `body` under the SHA-256 of `token`, as
/// Crypto Pay signs webhooks. Constant-time.
pub fn signature_valid(token: &str, body: &[u8], signature: &str) -> bool {
    let Ok(presented) = hex::decode(signature.trim()) else { return false };
    webhook_mac(token, body).verify_slice(&presented).is_ok()
}

/// The signature Crypto Pay puts on `body` (for the fake and for tests).
pub fn sign_webhook(token: &str, body: &[u8]) -> String {
    hex::encode(webhook_mac(token, body).finalize().into_bytes())
}

fn webhook_mac(token: &str, body: &[u8]) -> Hmac<Sha256> {
    let key = Sha256::digest(token.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

#[derive(Clone)]
pub struct CryptoPay {
    client: reqwest::Client,
    base_url: String,
    token: Secret<IssuedToken>,
    invoice_lifetime_s: u64,
    assets: Vec<Currency>,
}

impl CryptoPay {
    pub fn new(config: &CryptoPayConfig) -> Result<CryptoPay, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(Duration::from_millis(config.timeout_ms)).build()?;
        Ok(CryptoPay {
            client,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            token: config.api_token.clone(),
            invoice_lifetime_s: config.invoice_lifetime_s,
            assets: config.assets.clone(),
        })
    }

    /// The currencies deposited and paid out through Crypto Pay.
    pub fn assets(&self) -> &[Currency] {
        &self.assets
    }

    pub fn token(&self) -> &str {
        self.token.expose().as_str()
    }

    async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, CallError> {
        let response = self
            .client
            .post(format!("{}/api/{method}", self.base_url))
            .header("Crypto-Pay-API-Token", self.token.expose().as_str())
            .json(&params)
            .send()
            .await
            .map_err(|e| CallError::NoAnswer(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| CallError::NoAnswer(e.to_string()))?;
        let Ok(envelope) = serde_json::from_slice::<Envelope<T>>(&body) else {
            let body = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(if status == 200 { CallError::Unreadable(body) } else { CallError::Http { status, body } });
        };
        match (envelope.ok, envelope.result, envelope.error) {
            (true, Some(result), _) => Ok(result),
            (false, _, Some(error)) => Err(CallError::Api { code: error.code, name: error.name }),
            _ => Err(CallError::Unreadable(format!("HTTP {status} without result or error"))),
        }
    }

    /// A new invoice for `amount`, tagged with `payload`.
    pub async fn create_invoice(&self, amount: Money, payload: &str, description: &str) -> Result<Invoice, CallError> {
        let params = json!({
            "currency_type": "crypto",
            "asset": amount.currency().code(),
            "amount": amount.decimal(),
            "description": description,
            "payload": payload,
            "expires_in": self.invoice_lifetime_s,
        });
        self.call("createInvoice", params).await
    }

    /// The invoices with these ids (at most 1,000).
    pub async fn invoices(&self, ids: &[i64]) -> Result<Vec<Invoice>, CallError> {
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        let found: Items<Invoice> = self.call("getInvoices", json!({ "invoice_ids": ids.join(","), "count": 1000 })).await?;
        Ok(found.items)
    }

    async fn transfer(&self, user: i64, amount: Money, spend_id: &str) -> Result<Transfer, CallError> {
        let params = json!({
            "user_id": user,
            "asset": amount.currency().code(),
            "amount": amount.decimal(),
            "spend_id": spend_id,
        });
        self.call("transfer", params).await
    }

    async fn transfers_by_spend_id(&self, spend_id: &str) -> Result<Vec<Transfer>, CallError> {
        let found: Items<Transfer> = self.call("getTransfers", json!({ "spend_id": spend_id })).await?;
        Ok(found.items)
    }
}

/// Payouts by `transfer`: the withdrawal's address is the user's Telegram id.
impl PayoutProvider for CryptoPay {
    async fn send(&self, request: &PayoutRequest) -> SendOutcome {
        // The address of a transfer is the withdrawing user's own id, which also starts the
        // withdrawal id (`<user>:<request>`): a transfer goes to nobody else.
        let owner = request.id.split(':').next().unwrap_or_default();
        let Some(user) = request.address.parse::<i64>().ok().filter(|_| request.address == owner) else {
            return SendOutcome::Rejected { reason: format!("{:?} is not the withdrawing user's Telegram id", request.address) };
        };
        let amount = Money::from_minor(request.currency, request.amount);
        match self.transfer(user, amount, &request.id).await {
            Ok(transfer) if transfer.status == "completed" => SendOutcome::Sent { reference: transfer.transfer_id.to_string() },
            Ok(transfer) => SendOutcome::Ambiguous { reason: format!("transfer status {:?}", transfer.status) },
            Err(CallError::Api { code: 400, name }) if TRANSFER_REFUSALS.contains(&name.as_str()) => {
                SendOutcome::Rejected { reason: format!("Crypto Pay refused the transfer: {name}") }
            }
            // Among others: a `spend_id` refused as already used, which Crypto Pay says when the
            // first send went through.
            Err(err) => SendOutcome::Ambiguous { reason: err.to_string() },
        }
    }

    async fn lookup(&self, request: &PayoutRequest) -> Result<LookupOutcome, String> {
        let id = request.id.as_str();
        let transfers = self.transfers_by_spend_id(id).await.map_err(|e| e.to_string())?;
        Ok(match transfers.into_iter().find(|t| t.spend_id == id) {
            Some(t) if t.status == "completed" => LookupOutcome::Sent { reference: t.transfer_id.to_string() },
            Some(_) => LookupOutcome::Pending,
            // Not made, or not visible yet: sending again with the same spend_id is safe.
            None => LookupOutcome::NotFound,
        })
    }
}

/// The invoices we created, one per deposit request: a redelivered `/deposit` update shows the
/// same invoice instead of creating another, a paid invoice is checked against what we asked
/// for, and the reconciler knows which invoices to ask about.
#[derive(Clone)]
pub struct DepositInvoices {
    invoices: Collection<Document>,
}

/// A deposit invoice the user can pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvoice {
    pub invoice_id: i64,
    pub pay_url: String,
    pub amount: Money,
}

#[derive(Debug, thiserror::Error)]
pub enum DepositError {
    #[error("Crypto Pay: {0}")]
    Call(#[from] CallError),
    #[error("storage: {0}")]
    Storage(#[from] mongodb::error::Error),
    #[error(transparent)]
    Invoice(#[from] InvoiceError),
    #[error("invoice {invoice_id} does not match the one we created: {detail}")]
    Mismatch { invoice_id: i64, detail: String },
    #[error("Crypto Pay answered an invoice without a pay link")]
    NoPayLink,
}

/// Reconciling reads every open invoice across all users.
const FAN_OUT_OPEN_INVOICES: &str = "fan-out: open deposit invoices";

impl DepositInvoices {
    pub fn new(store: &Store) -> DepositInvoices {
        DepositInvoices { invoices: store.collection(collections::DEPOSIT_INVOICES) }
    }

    fn filter(user: UserId, update: u32) -> Document {
        doc! { "_id": format!("{user}:{update}"), "user_id": user.get() }
    }

    /// The invoice for the deposit `user` asked for with `update`: created at the first call,
    /// the same one at every later call.
    pub async fn open(&self, api: &CryptoPay, user: UserId, update: u32, amount: Money, description: &str) -> Result<OpenInvoice, DepositError> {
        // (Update ids repeat only after a week without any update, when Telegram may restart
        // them: a repeated id would show the old invoice again, never pay it twice.)
        if let Some(found) = self.invoices.find_one(Self::filter(user, update)).await? {
            return Self::as_open(&found);
        }
        let invoice = api.create_invoice(amount, &deposit_payload(user, update), description).await?;
        let pay_url = invoice.bot_invoice_url.clone().ok_or(DepositError::NoPayLink)?;
        let mut record = Self::filter(user, update);
        record.extend(doc! {
            "invoice_id": invoice.invoice_id,
            "pay_url": &pay_url,
            "currency": amount.currency().code(),
            "minor": amount.minor(),
            "status": "active",
            "created_at": Bson::DateTime(Utc::now().into()),
        });
        match self.invoices.insert_one(record).await {
            Ok(_) => Ok(OpenInvoice { invoice_id: invoice.invoice_id, pay_url, amount }),
            // A concurrent run created one too: show the one that was stored (the other is
            // never shown and expires unpaid).
            Err(e) if is_duplicate_key(&e) => {
                let stored = self.invoices.find_one(Self::filter(user, update)).await?.ok_or(DepositError::NoPayLink)?;
                Self::as_open(&stored)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn as_open(record: &Document) -> Result<OpenInvoice, DepositError> {
        let bad = |what: &str| DepositError::Mismatch { invoice_id: record.get_i64("invoice_id").unwrap_or_default(), detail: what.to_owned() };
        let currency: Currency = record.get_str("currency").map_err(|_| bad("currency"))?.parse().map_err(|_| bad("currency"))?;
        Ok(OpenInvoice {
            invoice_id: record.get_i64("invoice_id").map_err(|_| bad("invoice_id"))?,
            pay_url: record.get_str("pay_url").map_err(|_| bad("pay_url"))?.to_owned(),
            amount: Money::from_minor(currency, record.get_i64("minor").map_err(|_| bad("minor"))?),
        })
    }

    /// The payment a paid invoice makes, once it is checked against the invoice we created:
    /// same id, same asset and amount. The caller records it, then calls `recorded`.
    pub async fn payment_for(&self, invoice: &Invoice) -> Result<PaymentJob, DepositError> {
        let (user, update) = invoice.depositor()?;
        let paid = invoice.money()?;
        let mismatch = |detail: String| DepositError::Mismatch { invoice_id: invoice.invoice_id, detail };
        let record = self.invoices.find_one(Self::filter(user, update)).await?.ok_or_else(|| mismatch("no such invoice of ours".into()))?;
        let ours = Self::as_open(&record)?;
        if ours.invoice_id != invoice.invoice_id || ours.amount != paid {
            return Err(mismatch(format!("we created {} for {}, Crypto Pay reports {} for {paid}", ours.invoice_id, ours.amount, invoice.invoice_id)));
        }
        Ok(PaymentJob {
            user_id: user,
            provider: ProviderId::new(CRYPTO_PAY).expect("a valid provider id"),
            external_id: invoice.invoice_id.to_string(),
            amount: paid,
        })
    }

    /// The invoice's payment is recorded (the payments collection has it from now on): the
    /// reconciler stops asking about it. Only after the record, or a failure between the two
    /// would leave a paid invoice that nothing looks at again.
    pub async fn recorded(&self, payment: &PaymentJob) -> Result<(), DepositError> {
        self.close(payment.user_id, &payment.external_id, "paid").await
    }

    /// A paid invoice that does not match ours: closed for the reconciler (it would only fail
    /// again) and left to a person, who finds it by this status.
    pub async fn mismatched(&self, invoice: &Invoice) -> Result<(), DepositError> {
        let Ok((user, _)) = invoice.depositor() else { return Ok(()) };
        self.close(user, &invoice.invoice_id.to_string(), "mismatch").await
    }

    async fn close(&self, user: UserId, invoice_id: &str, status: &str) -> Result<(), DepositError> {
        let Ok(invoice_id) = invoice_id.parse::<i64>() else { return Ok(()) };
        let filter = doc! { "user_id": user.get(), "invoice_id": invoice_id };
        self.invoices.update_one(filter, doc! { "$set": { "status": status } }).await?;
        Ok(())
    }

    /// Invoice ids still open (not known paid or expired), created before `before`, oldest
    /// first: what the reconciler asks Crypto Pay about.
    pub async fn still_open(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<i64>, DepositError> {
        let open: Vec<Document> = self
            .invoices
            .find(doc! { "status": "active", "created_at": { "$lte": Bson::DateTime(before.into()) } })
            .sort(doc! { "created_at": 1 })
            .limit(i64::from(limit))
            .comment(Bson::String(FAN_OUT_OPEN_INVOICES.into()))
            .await?
            .try_collect()
            .await?;
        Ok(open.iter().filter_map(|d| d.get_i64("invoice_id").ok()).collect())
    }

    /// Records that an invoice can no longer be paid.
    pub async fn expired(&self, invoice: &Invoice) -> Result<(), DepositError> {
        let (user, _) = invoice.depositor()?;
        self.close(user, &invoice.invoice_id.to_string(), "expired").await
    }

    /// Records that Crypto Pay no longer knows an invoice of ours (deleted, or from another
    /// network): nothing can pay it, and it must not crowd the reconciler's batch.
    pub async fn vanished(&self, invoice_id: i64) -> Result<(), DepositError> {
        let filter = doc! { "invoice_id": invoice_id, "status": "active" };
        self.invoices.update_many(filter, doc! { "$set": { "status": "vanished" } }).comment(Bson::String(FAN_OUT_OPEN_INVOICES.into())).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signatures_are_checked_against_the_token() {
        let body = br#"{"update_id":1,"update_type":"invoice_paid"}"#;
        let signature = sign_webhook("1234:AAA", body);
        assert!(signature_valid("1234:AAA", body, &signature));
        assert!(!signature_valid("1234:AAB", body, &signature));
        assert!(!signature_valid("1234:AAA", b"{}", &signature));
        assert!(!signature_valid("1234:AAA", body, "not hex"));
    }

    #[test]
    fn our_payloads_name_the_depositor() {
        let user = UserId::new(42).unwrap();
        let invoice = |payload: &str| Invoice {
            invoice_id: 1,
            status: "paid".into(),
            asset: Some("USDT".into()),
            amount: "10.5".into(),
            payload: Some(payload.into()),
            bot_invoice_url: None,
        };
        assert_eq!(invoice(&deposit_payload(user, 7)).depositor(), Ok((user, 7)));
        assert!(invoice("deposit:0:7").depositor().is_err());
        assert!(invoice("something else").depositor().is_err());
        assert_eq!(invoice("x").money().unwrap(), Money::from_minor(Currency::Usdt, 10_500_000));
        let over_precise = Invoice { amount: "10.0000001".into(), ..invoice("x") };
        assert!(over_precise.money().is_err());
    }
}
