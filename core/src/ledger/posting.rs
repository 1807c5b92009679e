//! Postings: balanced sets of entries, built only through constructors that keep them valid.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{IdempotencyKey, ProviderId, UserId};
use crate::money::{Currency, Money, MoneyError};

/// An account of the posting's user. These balances are materialized and never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserAccount {
    /// What the user can spend or withdraw.
    Available,
    /// Money set aside for a requested withdrawal until it is paid out or released.
    WithdrawalHold,
}

/// A platform-side account. Their balances are the sums of their entries and are not
/// materialized per posting: one document updated by every purchase would serialize the whole
/// platform on it. Reports aggregate them from the postings instead.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlatformAccount {
    Revenue,
    /// Money received from a payment provider, not yet settled with it.
    DepositClearing(ProviderId),
    /// Money sent out to users' addresses.
    PayoutClearing,
    ReferralExpense,
    /// Counterpart of manual corrections by admins.
    AdminAdjustments,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    User(UserAccount),
    Platform(PlatformAccount),
}

impl UserAccount {
    pub const ALL: [UserAccount; 2] = [UserAccount::Available, UserAccount::WithdrawalHold];

    pub fn code(self) -> &'static str {
        match self {
            UserAccount::Available => "user:available",
            UserAccount::WithdrawalHold => "user:withdrawal_hold",
        }
    }
}

impl Serialize for UserAccount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::User(account) => f.write_str(account.code()),
            Account::Platform(PlatformAccount::Revenue) => f.write_str("platform:revenue"),
            Account::Platform(PlatformAccount::DepositClearing(p)) => write!(f, "platform:deposit_clearing:{p}"),
            Account::Platform(PlatformAccount::PayoutClearing) => f.write_str("platform:payout_clearing"),
            Account::Platform(PlatformAccount::ReferralExpense) => f.write_str("platform:referral_expense"),
            Account::Platform(PlatformAccount::AdminAdjustments) => f.write_str("platform:admin_adjustments"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown account {0:?}")]
pub struct UnknownAccount(pub String);

impl FromStr for Account {
    type Err = UnknownAccount;
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownAccount(code.to_owned());
        Ok(match code {
            "user:available" => Account::User(UserAccount::Available),
            "user:withdrawal_hold" => Account::User(UserAccount::WithdrawalHold),
            "platform:revenue" => Account::Platform(PlatformAccount::Revenue),
            "platform:payout_clearing" => Account::Platform(PlatformAccount::PayoutClearing),
            "platform:referral_expense" => Account::Platform(PlatformAccount::ReferralExpense),
            "platform:admin_adjustments" => Account::Platform(PlatformAccount::AdminAdjustments),
            _ => {
                let provider = code.strip_prefix("platform:deposit_clearing:").ok_or_else(unknown)?;
                Account::Platform(PlatformAccount::DepositClearing(ProviderId::new(provider).map_err(|_| unknown())?))
            }
        })
    }
}

impl Serialize for Account {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Account {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostingKind {
    Deposit,
    SubscriptionPurchase,
    ReferralCommission,
    WithdrawalHold,
    HoldRelease,
    PayoutSettle,
    AdminAdjustment,
    /// A payment the provider gave back to the payer (a Stars refund): the deposit reversed.
    PaymentRefund,
}

/// One line of a posting: a signed amount on one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "StoredEntry", try_from = "StoredEntry")]
pub struct Entry {
    pub account: Account,
    pub amount: Money,
}

/// An entry as stored: a flat, numeric `amount` so the database can sum it.
#[derive(Serialize, Deserialize)]
struct StoredEntry {
    account: Account,
    currency: Currency,
    amount: i64,
}

impl From<Entry> for StoredEntry {
    fn from(e: Entry) -> Self {
        StoredEntry { account: e.account, currency: e.amount.currency(), amount: e.amount.minor() }
    }
}

impl From<StoredEntry> for Entry {
    fn from(e: StoredEntry) -> Self {
        Entry { account: e.account, amount: Money::from_minor(e.currency, e.amount) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostingError {
    #[error("the amount must be positive, got {0}")]
    NotPositive(Money),
    #[error("an adjustment must not be zero")]
    ZeroAdjustment,
    #[error("a posting needs a reason of 1 to {max} characters", max = Posting::MAX_REASON_CHARS)]
    BadReason,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A balanced set of entries that moves money for one user, applied at most once per key.
/// Every posting touches exactly one user's accounts, so it lives on that user's shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    user_id: UserId,
    key: IdempotencyKey,
    kind: PostingKind,
    reason: String,
    entries: Vec<Entry>,
}

impl Posting {
    pub const MAX_REASON_CHARS: usize = 500;

    /// The one place a posting is assembled. Callers are the typed constructors below, each of
    /// which balances its entries by construction.
    fn new(
        user_id: UserId,
        key: IdempotencyKey,
        kind: PostingKind,
        reason: impl Into<String>,
        entries: Vec<Entry>,
    ) -> Result<Posting, PostingError> {
        let reason = reason.into();
        if reason.trim().is_empty() || reason.chars().count() > Self::MAX_REASON_CHARS {
            return Err(PostingError::BadReason);
        }
        debug_assert!(Self::is_balanced(&entries), "constructors build balanced postings");
        Ok(Posting { user_id, key, kind, reason, entries })
    }

    fn is_balanced(entries: &[Entry]) -> bool {
        let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
        for entry in entries {
            *sums.entry(entry.amount.currency()).or_default() += i128::from(entry.amount.minor());
        }
        sums.values().all(|sum| *sum == 0)
    }

    /// A transfer of a positive `amount` from one account to another.
    fn transfer(
        user_id: UserId,
        key: IdempotencyKey,
        kind: PostingKind,
        reason: impl Into<String>,
        from: Account,
        to: Account,
        amount: Money,
    ) -> Result<Posting, PostingError> {
        let amount = positive(amount)?;
        let entries = vec![Entry { account: from, amount: amount.checked_neg()? }, Entry { account: to, amount }];
        Posting::new(user_id, key, kind, reason, entries)
    }

    /// Money received from `provider` for `user`.
    pub fn deposit(
        user_id: UserId,
        key: IdempotencyKey,
        provider: ProviderId,
        amount: Money,
        reason: impl Into<String>,
    ) -> Result<Posting, PostingError> {
        let clearing = Account::Platform(PlatformAccount::DepositClearing(provider));
        Posting::transfer(user_id, key, PostingKind::Deposit, reason, clearing, available(), amount)
    }

    /// A deposit given back by `provider` to the payer: the reverse of `deposit`.
    pub fn payment_refund(
        user_id: UserId,
        key: IdempotencyKey,
        provider: ProviderId,
        amount: Money,
        reason: impl Into<String>,
    ) -> Result<Posting, PostingError> {
        let clearing = Account::Platform(PlatformAccount::DepositClearing(provider));
        Posting::transfer(user_id, key, PostingKind::PaymentRefund, reason, available(), clearing, amount)
    }

    /// A subscription paid from the user's available balance.
    pub fn subscription_purchase(
        user_id: UserId,
        key: IdempotencyKey,
        price: Money,
        reason: impl Into<String>,
    ) -> Result<Posting, PostingError> {
        let revenue = Account::Platform(PlatformAccount::Revenue);
        Posting::transfer(user_id, key, PostingKind::SubscriptionPurchase, reason, available(), revenue, price)
    }

    /// A commission credited to `referrer` (the posting's user) for a referred user's purchase.
    pub fn referral_commission(
        referrer: UserId,
        key: IdempotencyKey,
        commission: Money,
        reason: impl Into<String>,
    ) -> Result<Posting, PostingError> {
        let expense = Account::Platform(PlatformAccount::ReferralExpense);
        Posting::transfer(referrer, key, PostingKind::ReferralCommission, reason, expense, available(), commission)
    }

    /// Sets aside a withdrawal's amount plus fee; fails if the available balance is short.
    pub fn withdrawal_hold(
        user_id: UserId,
        key: IdempotencyKey,
        amount_with_fee: Money,
        reason: impl Into<String>,
    ) -> Result<Posting, PostingError> {
        Posting::transfer(user_id, key, PostingKind::WithdrawalHold, reason, available(), hold(), amount_with_fee)
    }

    /// Returns a held amount to the available balance (withdrawal rejected or failed).
    pub fn hold_release(
        user_id: UserId,
        key: IdempotencyKey,
        amount_with_fee: Money,
        reason: impl Into<String>,
    ) -> Result<Posting, PostingError> {
        Posting::transfer(user_id, key, PostingKind::HoldRelease, reason, hold(), available(), amount_with_fee)
    }

    /// A withdrawal paid out: the hold is consumed, `amount` left to the user's address and the
    /// fee is revenue.
    pub fn payout_settle(
        user_id: UserId,
        key: IdempotencyKey,
        amount: Money,
        fee: Money,
        reason: impl Into<String>,
    ) -> Result<Posting, PostingError> {
        let amount = positive(amount)?;
        let held = amount.checked_add(fee)?;
        if fee.is_negative() {
            return Err(PostingError::NotPositive(fee));
        }
        let mut entries = vec![
            Entry { account: hold(), amount: held.checked_neg()? },
            Entry { account: Account::Platform(PlatformAccount::PayoutClearing), amount },
        ];
        if fee.is_positive() {
            entries.push(Entry { account: Account::Platform(PlatformAccount::Revenue), amount: fee });
        }
        Posting::new(user_id, key, PostingKind::PayoutSettle, reason, entries)
    }

    /// A manual correction of the available balance by an admin: positive credits, negative
    /// debits (and, like any debit, cannot take the balance below zero).
    pub fn admin_adjustment(
        user_id: UserId,
        key: IdempotencyKey,
        change: Money,
        reason: impl Into<String>,
    ) -> Result<Posting, PostingError> {
        if change.minor() == 0 {
            return Err(PostingError::ZeroAdjustment);
        }
        let entries = vec![
            Entry { account: available(), amount: change },
            Entry { account: Account::Platform(PlatformAccount::AdminAdjustments), amount: change.checked_neg()? },
        ];
        Posting::new(user_id, key, PostingKind::AdminAdjustment, reason, entries)
    }

    pub fn user_id(&self) -> UserId {
        self.user_id
    }
    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }
    pub fn kind(&self) -> PostingKind {
        self.kind
    }
    pub fn reason(&self) -> &str {
        &self.reason
    }
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Net change per user account and currency; zero nets are left out.
    pub fn user_changes(&self) -> BTreeMap<(UserAccount, Currency), i64> {
        let mut changes: BTreeMap<(UserAccount, Currency), i64> = BTreeMap::new();
        for entry in &self.entries {
            if let Account::User(account) = entry.account {
                // Constructors never put two entries on one user account, so this cannot overflow.
                *changes.entry((account, entry.amount.currency())).or_default() += entry.amount.minor();
            }
        }
        changes.retain(|_, change| *change != 0);
        changes
    }

    /// A digest of what the posting does to money (kind and entries, not the reason): a key
    /// replayed with a different effect is a caller bug, and is refused rather than ignored.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(serde_json::to_vec(&(self.kind, &self.entries)).expect("entries serialize"));
        hex::encode(hasher.finalize())
    }
}

fn available() -> Account {
    Account::User(UserAccount::Available)
}

fn hold() -> Account {
    Account::User(UserAccount::WithdrawalHold)
}

fn positive(amount: Money) -> Result<Money, PostingError> {
    if amount.is_positive() {
        Ok(amount)
    } else {
        Err(PostingError::NotPositive(amount))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::new(7).unwrap()
    }
    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey::new(k).unwrap()
    }
    fn usdt(minor: i64) -> Money {
        Money::from_minor(Currency::Usdt, minor)
    }

    #[test]
    fn every_constructor_balances() {
        let stars = ProviderId::new("telegram_stars").unwrap();
        let postings = [
            Posting::deposit(user(), key("d"), stars, usdt(5), "deposit").unwrap(),
            Posting::subscription_purchase(user(), key("s"), usdt(5), "plan").unwrap(),
            Posting::referral_commission(user(), key("r"), usdt(1), "ref").unwrap(),
            Posting::withdrawal_hold(user(), key("h"), usdt(6), "hold").unwrap(),
            Posting::hold_release(user(), key("l"), usdt(6), "release").unwrap(),
            Posting::payout_settle(user(), key("p"), usdt(5), usdt(1), "payout").unwrap(),
            Posting::payout_settle(user(), key("p0"), usdt(5), usdt(0), "payout").unwrap(),
            Posting::admin_adjustment(user(), key("a"), usdt(-3), "fix").unwrap(),
        ];
        for posting in &postings {
            assert!(Posting::is_balanced(posting.entries()), "{posting:?}");
        }
    }

    #[test]
    fn rejects_non_positive_amounts_and_empty_reasons() {
        assert_eq!(
            Posting::subscription_purchase(user(), key("s"), usdt(0), "plan"),
            Err(PostingError::NotPositive(usdt(0)))
        );
        assert_eq!(Posting::withdrawal_hold(user(), key("h"), usdt(-1), "x"), Err(PostingError::NotPositive(usdt(-1))));
        assert_eq!(Posting::admin_adjustment(user(), key("a"), usdt(0), "x"), Err(PostingError::ZeroAdjustment));
        assert_eq!(Posting::subscription_purchase(user(), key("s"), usdt(1), "  "), Err(PostingError::BadReason));
    }

    #[test]
    fn account_codes_round_trip() {
        let accounts = [
            Account::User(UserAccount::Available),
            Account::User(UserAccount::WithdrawalHold),
            Account::Platform(PlatformAccount::Revenue),
            Account::Platform(PlatformAccount::DepositClearing(ProviderId::new("gw-1").unwrap())),
            Account::Platform(PlatformAccount::PayoutClearing),
            Account::Platform(PlatformAccount::ReferralExpense),
            Account::Platform(PlatformAccount::AdminAdjustments),
        ];
        for account in accounts {
            assert_eq!(account.to_string().parse::<Account>(), Ok(account));
        }
        assert!("platform:deposit_clearing:".parse::<Account>().is_err());
    }

    #[test]
    fn fingerprint_ignores_the_reason_but_not_the_amount() {
        let a = Posting::subscription_purchase(user(), key("s"), usdt(5), "plan A").unwrap();
        let b = Posting::subscription_purchase(user(), key("s"), usdt(5), "plan A, renamed").unwrap();
        let c = Posting::subscription_purchase(user(), key("s"), usdt(6), "plan A").unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
