//! What a user may withdraw: limits per request and per day, the fee, what is approved without
//! review, and the address format payouts go to.

use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};

/// The address formats payouts can go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressFormat {
    /// TON: user-friendly (48 base64url characters) or raw (`0:` or `-1:` and 64 hex digits).
    Ton,
    /// TRON (TRC-20): `T` and 33 more base58 characters.
    Tron,
    /// Ethereum and compatible chains: `0x` and 40 hex digits.
    Evm,
    /// No address: paid by Crypto Pay `transfer` to the user's own Telegram account. The
    /// "address" is the user's Telegram id, and the bot asks for none.
    Telegram,
}

impl AddressFormat {
    /// Whether the user types an address (not for transfers to their own account).
    pub fn asks_for_address(self) -> bool {
        self != AddressFormat::Telegram
    }
}

impl std::fmt::Display for AddressFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressFormat::Ton => "TON",
            AddressFormat::Tron => "TRON",
            AddressFormat::Evm => "EVM",
            AddressFormat::Telegram => "Telegram account",
        })
    }
}

/// An address in the configured format, so a withdrawal never goes to text that cannot be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutAddress(String);

impl PayoutAddress {
    pub fn parse(format: AddressFormat, text: &str) -> Result<PayoutAddress, PolicyViolation> {
        let text = text.trim();
        let base58 = |c: char| c.is_ascii_alphanumeric() && !matches!(c, '0' | 'O' | 'I' | 'l');
        let valid = match format {
            AddressFormat::Ton => {
                let friendly = text.len() == 48 && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/'));
                let raw = ["0:", "-1:"].iter().any(|workchain| {
                    text.strip_prefix(workchain).is_some_and(|hash| hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()))
                });
                friendly || raw
            }
            AddressFormat::Tron => text.len() == 34 && text.starts_with('T') && text.chars().all(base58),
            AddressFormat::Evm => {
                text.strip_prefix("0x").is_some_and(|hex| hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()))
            }
            AddressFormat::Telegram => text.parse::<i64>().is_ok_and(|id| id > 0),
        };
        if valid {
            Ok(PayoutAddress(text.to_owned()))
        } else {
            Err(PolicyViolation::BadAddress(format))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What users may withdraw: one currency, per-withdrawal and daily limits, a flat fee, and up to
/// which amount requests are approved without an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyConfig", into = "PolicyConfig")]
pub struct WithdrawalPolicy(PolicyConfig);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyConfig {
    #[serde(with = "crate::money::text")]
    min: Money,
    #[serde(with = "crate::money::text")]
    max: Money,
    /// Over a rolling 24 hours, counting requests not rejected or released.
    #[serde(with = "crate::money::text")]
    daily_limit: Money,
    #[serde(with = "crate::money::text")]
    fee: Money,
    #[serde(with = "crate::money::text")]
    auto_approve_up_to: Money,
    address_format: AddressFormat,
}

impl TryFrom<PolicyConfig> for WithdrawalPolicy {
    type Error = String;
    fn try_from(c: PolicyConfig) -> Result<Self, String> {
        let currency = c.min.currency();
        if [c.max, c.daily_limit, c.fee, c.auto_approve_up_to].iter().any(|m| m.currency() != currency) {
            return Err("withdrawal limits, fee and auto-approval must be in one currency".into());
        }
        if !c.min.is_positive() || c.min.minor() > c.max.minor() || c.max.minor() > c.daily_limit.minor() {
            return Err("withdrawal limits must satisfy 0 < min <= max <= daily_limit".into());
        }
        if c.fee.is_negative() || c.auto_approve_up_to.is_negative() {
            return Err("the withdrawal fee and auto-approval limit must not be negative".into());
        }
        Ok(WithdrawalPolicy(c))
    }
}

impl From<WithdrawalPolicy> for PolicyConfig {
    fn from(p: WithdrawalPolicy) -> Self {
        p.0
    }
}

impl Default for WithdrawalPolicy {
    /// Telegram Stars to a TON wallet, the way Stars are cashed out.
    fn default() -> Self {
        let xtr = |minor| Money::from_minor(Currency::Xtr, minor);
        WithdrawalPolicy(PolicyConfig {
            min: xtr(100),
            max: xtr(100_000),
            daily_limit: xtr(250_000),
            fee: xtr(0),
            auto_approve_up_to: xtr(1_000),
            address_format: AddressFormat::Ton,
        })
    }
}

/// The withdrawal policy of each currency users may withdraw: one table in the configuration
/// (`[withdrawals]`, one currency), or an array of tables (`[[withdrawals]]`), one per
/// currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "OneOrMany", into = "Vec<WithdrawalPolicy>")]
pub struct WithdrawalPolicies(Vec<WithdrawalPolicy>);

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(WithdrawalPolicy),
    Many(Vec<WithdrawalPolicy>),
}

impl TryFrom<OneOrMany> for WithdrawalPolicies {
    type Error = String;
    fn try_from(policies: OneOrMany) -> Result<Self, String> {
        let policies = match policies {
            OneOrMany::One(policy) => vec![policy],
            OneOrMany::Many(policies) => policies,
        };
        for (i, policy) in policies.iter().enumerate() {
            if policies[..i].iter().any(|p| p.currency() == policy.currency()) {
                return Err(format!("two withdrawal policies for {}", policy.currency()));
            }
        }
        Ok(WithdrawalPolicies(policies))
    }
}

impl From<WithdrawalPolicies> for Vec<WithdrawalPolicy> {
    fn from(policies: WithdrawalPolicies) -> Self {
        policies.0
    }
}

impl Default for WithdrawalPolicies {
    fn default() -> Self {
        WithdrawalPolicies(vec![WithdrawalPolicy::default()])
    }
}

impl WithdrawalPolicies {
    /// In the order configured (the first is the one shown when a user can withdraw nothing).
    pub fn all(&self) -> &[WithdrawalPolicy] {
        &self.0
    }

    pub fn for_currency(&self, currency: Currency) -> Option<&WithdrawalPolicy> {
        self.0.iter().find(|p| p.currency() == currency)
    }
}

/// Why a withdrawal cannot be requested as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("the minimum withdrawal is {0}")]
    BelowMin(Money),
    #[error("the maximum withdrawal is {0}")]
    AboveMax(Money),
    #[error("over the daily limit: {left} left today")]
    OverDailyLimit { left: Money },
    #[error("not a {0} address")]
    BadAddress(AddressFormat),
}

impl WithdrawalPolicy {
    pub fn currency(&self) -> Currency {
        self.0.min.currency()
    }
    pub fn min(&self) -> Money {
        self.0.min
    }
    pub fn max(&self) -> Money {
        self.0.max
    }
    pub fn fee(&self) -> Money {
        self.0.fee
    }
    pub fn auto_approve_up_to(&self) -> Money {
        self.0.auto_approve_up_to
    }
    pub fn address_format(&self) -> AddressFormat {
        self.0.address_format
    }

    /// Checks `amount` (in the policy's currency) given what the user requested in the last 24 h.
    pub fn check_amount(&self, amount: Money, requested_last_day: Money) -> Result<(), PolicyViolation> {
        if amount.minor() < self.0.min.minor() {
            return Err(PolicyViolation::BelowMin(self.0.min));
        }
        if amount.minor() > self.0.max.minor() {
            return Err(PolicyViolation::AboveMax(self.0.max));
        }
        let left = (self.0.daily_limit.minor() - requested_last_day.minor()).max(0);
        if amount.minor() > left {
            return Err(PolicyViolation::OverDailyLimit { left: Money::from_minor(self.currency(), left) });
        }
        Ok(())
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_per_format() {
        let ok = [
            (AddressFormat::Ton, "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG"),
            (AddressFormat::Ton, "0:83dfd552e63729b472fcbcc8c45ebcc6691702558b68ec7527e1ba403a0f31a8"),
            (AddressFormat::Tron, "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"),
            (AddressFormat::Evm, "0x52908400098527886E0F7030069857D2E4169EE7"),
        ];
        for (format, text) in ok {
            assert_eq!(PayoutAddress::parse(format, &format!(" {text}\n")).unwrap().as_str(), text);
        }
        let bad = [
            (AddressFormat::Ton, "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0Xgg"),
            (AddressFormat::Tron, "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWw0"),
            (AddressFormat::Evm, "52908400098527886E0F7030069857D2E4169EE7"),
            (AddressFormat::Ton, "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"),
        ];
        for (format, text) in bad {
            assert_eq!(PayoutAddress::parse(format, text), Err(PolicyViolation::BadAddress(format)), "{text}");
        }
    }

    #[test]
    fn amounts_are_checked_against_the_limits_and_the_day() {
        let policy = WithdrawalPolicy::default();
        let xtr = |minor| Money::from_minor(Currency::Xtr, minor);
        assert_eq!(policy.check_amount(xtr(99), xtr(0)), Err(PolicyViolation::BelowMin(xtr(100))));
        assert_eq!(policy.check_amount(xtr(100_001), xtr(0)), Err(PolicyViolation::AboveMax(xtr(100_000))));
        assert_eq!(policy.check_amount(xtr(100_000), xtr(200_000)), Err(PolicyViolation::OverDailyLimit { left: xtr(50_000) }));
        assert_eq!(policy.check_amount(xtr(50_000), xtr(200_000)), Ok(()));
    }

    #[test]
    fn a_policy_in_mixed_currencies_or_with_crossed_limits_is_refused() {
        let parse = |toml: &str| serde_json::from_value::<WithdrawalPolicy>(serde_json::from_str(toml).unwrap());
        let valid = r#"{"min":"1 USDT","max":"10 USDT","daily_limit":"20 USDT","fee":"0.5 USDT","auto_approve_up_to":"5 USDT","address_format":"tron"}"#;
        assert_eq!(parse(valid).unwrap().currency(), Currency::Usdt);
        assert!(parse(&valid.replace("\"0.5 USDT\"", "\"1 XTR\"")).is_err());
        assert!(parse(&valid.replace("\"10 USDT\"", "\"30 USDT\"")).is_err());
    }
}
