//! Money as integer minor units of one currency. No floats anywhere.
//!
//! `Money` is signed because ledger entries are signed; amounts a person types are parsed with
//! [`Money::parse`], which only yields non-negative values. All arithmetic is checked: an
//! overflow or a currency mix-up is an error, never a wrap.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A currency the platform holds, with its number of minor-unit decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Currency {
    /// Tether, 6 decimals (1 USDT = 1,000,000 minor units).
    #[serde(rename = "USDT")]
    Usdt,
    /// Telegram Stars, whole units only.
    #[serde(rename = "XTR")]
    Xtr,
}

impl Currency {
    pub const ALL: [Currency; 2] = [Currency::Usdt, Currency::Xtr];

    pub fn code(self) -> &'static str {
        match self {
            Currency::Usdt => "USDT",
            Currency::Xtr => "XTR",
        }
    }

    pub fn decimals(self) -> u32 {
        match self {
            Currency::Usdt => 6,
            Currency::Xtr => 0,
        }
    }

    fn minor_per_unit(self) -> i64 {
        10_i64.pow(self.decimals())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency {0:?}: expected USDT or XTR")]
pub struct UnknownCurrency(pub String);

impl FromStr for Currency {
    type Err = UnknownCurrency;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownCurrency(s.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount overflow")]
    Overflow,
    #[error("currency mismatch: {0} vs {1}")]
    CurrencyMismatch(Currency, Currency),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseMoneyError {
    #[error("enter an amount, for example 12.5")]
    Empty,
    #[error("the amount must not be negative")]
    Negative,
    #[error("{0:?} is not an amount: use digits and at most one decimal point, for example 12.5")]
    NotANumber(String),
    #[error("{currency} allows at most {max} decimal places")]
    TooManyDecimals { currency: Currency, max: u32 },
    #[error("the amount is too large: at most {max_units} {currency}")]
    TooLarge { currency: Currency, max_units: i64 },
    #[error("{0:?} is not an amount with a currency, for example \"12.50 USDT\"")]
    NoCurrency(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    currency: Currency,
    minor: i64,
}

impl Money {
    /// The largest amount a person may type, in whole units of any currency. Far above any real
    /// balance, and small enough that every sum of a few such amounts fits an `i64`.
    pub const MAX_PARSED_UNITS: i64 = 1_000_000_000_000;

    pub const fn from_minor(currency: Currency, minor: i64) -> Self {
        Money { currency, minor }
    }

    pub const fn zero(currency: Currency) -> Self {
        Money { currency, minor: 0 }
    }

    pub const fn currency(self) -> Currency {
        self.currency
    }

    pub const fn minor(self) -> i64 {
        self.minor
    }

    pub const fn is_positive(self) -> bool {
        self.minor > 0
    }

    pub const fn is_negative(self) -> bool {
        self.minor < 0
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self.minor.checked_add(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(self.currency, minor))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self.minor.checked_sub(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(self.currency, minor))
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(self.currency, minor))
    }

    /// `self × bps / 10,000`, rounded toward zero: commissions and fees in basis points never
    /// create money out of rounding.
    pub fn share_bps(self, bps: u32) -> Result<Money, MoneyError> {
        let minor = i128::from(self.minor) * i128::from(bps) / 10_000;
        let minor = i64::try_from(minor).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::from_minor(self.currency, minor))
    }

    /// `parse_typed` with `.` as the decimal mark: configuration and API amounts.
    pub fn parse(currency: Currency, text: &str) -> Result<Money, ParseMoneyError> {
        Self::parse_typed(currency, text, false)
    }

    /// Parses an amount a person typed: `12.5`, `12,50`, ` 7 `, `1,000`, `1 234,5`, also with
    /// Arabic-Indic digits and Arabic's decimal (`٫`) and group (`٬`) marks. A lone separator
    /// followed by exactly three digits groups unless it is the writer's decimal mark
    /// (`decimal_comma`: `,` is, as in French, German, Spanish or Russian; else `.` is); any other
    /// lone separator is the decimal mark, whichever it is. With both `.` and `,`, the last one is
    /// the decimal mark. Spaces and apostrophes group. Negative, non-numeric, malformed groups,
    /// over-precise and absurdly large inputs are rejected with an error that says which; nothing
    /// is rounded.
    pub fn parse_typed(currency: Currency, text: &str, decimal_comma: bool) -> Result<Money, ParseMoneyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ParseMoneyError::Empty);
        }
        if text.starts_with('-') || text.starts_with('\u{2212}') {
            return Err(ParseMoneyError::Negative);
        }
        let not_a_number = || ParseMoneyError::NotANumber(text.to_owned());
        // Digits in runs, and the separator before each run.
        let mut runs: Vec<(Option<char>, String)> = vec![(None, String::new())];
        for ch in text.chars() {
            match ch {
                '.' | ',' | '\u{066B}' | '\u{066C}' | ' ' | '\u{00A0}' | '\u{202F}' | '\'' => runs.push((Some(ch), String::new())),
                _ => runs.last_mut().expect("one run at least").1.push(ascii_digit(ch).ok_or_else(not_a_number)?),
            }
        }
        let is_group = |sep: char| matches!(sep, '\u{066C}' | ' ' | '\u{00A0}' | '\u{202F}' | '\'');
        let count = |wanted: char| runs.iter().filter(|(sep, _)| *sep == Some(wanted)).count();
        let (dots, commas) = (count('.'), count(','));
        let decimal_mark = if count('\u{066B}') > 0 {
            Some('\u{066B}')
        } else {
            match (dots, commas) {
                (0, 0) => None,
                // Both: the last one is the decimal mark.
                (_, _) if dots > 0 && commas > 0 => runs.iter().rev().find_map(|(sep, _)| sep.filter(|s| matches!(s, '.' | ','))),
                (1, 0) | (0, 1) => {
                    let mark = if dots == 1 { '.' } else { ',' };
                    let locale_decimal = if decimal_comma { ',' } else { '.' };
                    let next_run = runs.iter().find(|(sep, _)| *sep == Some(mark)).map_or(0, |(_, digits)| digits.len());
                    // `0,500` is half, never five hundred: nobody groups after a leading zero.
                    (mark == locale_decimal || next_run != 3 || runs[0].1.starts_with('0')).then_some(mark)
                }
                // The same mark several times: grouping.
                _ => None,
            }
        };
        let (mut whole, mut fraction, mut seen_decimal) = (String::new(), String::new(), false);
        for (sep, digits) in &runs {
            match sep {
                None => whole.push_str(digits),
                Some(mark) if Some(*mark) == decimal_mark && !seen_decimal => {
                    seen_decimal = true;
                    fraction.push_str(digits);
                }
                Some(mark) if !seen_decimal && (is_group(*mark) || matches!(mark, '.' | ',')) => {
                    // A group: three digits, after one to three that do not start with zero.
                    if digits.len() != 3 || !(1..=3).contains(&runs[0].1.len()) || runs[0].1.starts_with('0') {
                        return Err(not_a_number());
                    }
                    whole.push_str(digits);
                }
                _ => return Err(not_a_number()),
            }
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(not_a_number());
        }
        Self::from_digits(currency, &whole, &fraction, not_a_number)
    }

    /// The amount `whole`.`fraction` (ASCII digits; either may be empty) in `currency`:
    /// refused if finer than a minor unit or beyond `MAX_PARSED_UNITS`, never rounded.
    fn from_digits(
        currency: Currency,
        whole: &str,
        fraction: &str,
        not_a_number: impl Fn() -> ParseMoneyError,
    ) -> Result<Money, ParseMoneyError> {
        let fraction = fraction.trim_end_matches('0');
        let decimals = currency.decimals();
        if fraction.len() > decimals as usize {
            return Err(ParseMoneyError::TooManyDecimals { currency, max: decimals });
        }
        let too_large = ParseMoneyError::TooLarge { currency, max_units: Self::MAX_PARSED_UNITS };
        let whole = whole.trim_start_matches('0');
        // More digits than MAX_PARSED_UNITS has can only be larger; this also keeps the
        // integer parse below from overflowing.
        if whole.len() > 13 {
            return Err(too_large);
        }
        let units: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| not_a_number())? };
        let fraction_minor: i64 = if fraction.is_empty() {
            0
        } else {
            let scale = 10_i64.pow(decimals - fraction.len() as u32);
            fraction.parse::<i64>().map_err(|_| not_a_number())? * scale
        };
        if units > Self::MAX_PARSED_UNITS || (units == Self::MAX_PARSED_UNITS && fraction_minor > 0) {
            return Err(too_large);
        }
        Ok(Money::from_minor(currency, units * currency.minor_per_unit() + fraction_minor))
    }

    /// An amount as a payment provider writes it (`"12.5"`, `"0.000001"`, `"150"`): ASCII digits
    /// with at most one `.`, nothing else. Strict where `parse` is forgiving, since this is
    /// money someone else counted: no sign, comma, spaces or exponent, and an amount finer than
    /// the currency's minor unit is an error, never rounded. Trailing zeros are fine.
    pub fn from_decimal(currency: Currency, text: &str) -> Result<Money, ParseMoneyError> {
        let not_a_number = || ParseMoneyError::NotANumber(text.to_owned());
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || (text.contains('.') && fraction.is_empty()) {
            return Err(not_a_number());
        }
        Self::from_digits(currency, whole, fraction, not_a_number)
    }

    /// The amount as `from_decimal` reads it, in its shortest form: no trailing zeros and no
    /// trailing point (`12.5`, `0.000001`, `150`). What providers are sent.
    pub fn decimal(self) -> String {
        let decimals = self.currency.decimals() as usize;
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let per_unit = self.currency.minor_per_unit().unsigned_abs();
        let fraction = format!("{:0width$}", abs % per_unit, width = decimals);
        match fraction.trim_end_matches('0') {
            "" => format!("{sign}{}", abs / per_unit),
            trimmed => format!("{sign}{}.{trimmed}", abs / per_unit),
        }
    }

    /// The amount without its currency, locale-neutral: `.` as the decimal point, no grouping,
    /// trailing zeros trimmed to two decimals (`12.50`, `0.000001`, `150`).
    pub fn amount_text(self) -> String {
        let text = self.decimal();
        if self.currency.decimals() == 0 {
            return text;
        }
        match text.split_once('.') {
            None => format!("{text}.00"),
            Some((whole, fraction)) => format!("{whole}.{fraction:0<2}"),
        }
    }
}

/// `"<amount> <currency>"` as displayed (`12.50 USDT`, `150 XTR`): how configuration writes
/// prices and limits.
impl FromStr for Money {
    type Err = ParseMoneyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (amount, code) = text.trim().rsplit_once(' ').ok_or_else(|| ParseMoneyError::NoCurrency(text.to_owned()))?;
        let currency: Currency = code.parse().map_err(|_| ParseMoneyError::NoCurrency(text.to_owned()))?;
        Money::parse(currency, amount)
    }
}

/// Serde as text (`"12.50 USDT"`), for configuration files: `#[serde(with = "money::text")]`.
pub mod text {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Money;

    pub fn serialize<S: Serializer>(money: &Money, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(money)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Maps ASCII, Arabic-Indic (U+0660..) and Extended Arabic-Indic (U+06F0..) digits to ASCII.
fn ascii_digit(ch: char) -> Option<char> {
    let value = match ch {
        '0'..='9' => ch as u32 - '0' as u32,
        '\u{0660}'..='\u{0669}' => ch as u32 - 0x0660,
        '\u{06F0}'..='\u{06F9}' => ch as u32 - 0x06F0,
        _ => return None,
    };
    char::from_digit(value, 10)
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_text(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usdt(text: &str) -> Result<i64, ParseMoneyError> {
        Money::parse(Currency::Usdt, text).map(Money::minor)
    }

    #[test]
    fn parses_what_people_type() {
        assert_eq!(usdt("12.5"), Ok(12_500_000));
        assert_eq!(usdt("12,50"), Ok(12_500_000));
        assert_eq!(usdt(" 7 "), Ok(7_000_000));
        assert_eq!(usdt(".5"), Ok(500_000));
        assert_eq!(usdt("5."), Ok(5_000_000));
        assert_eq!(usdt("0.000001"), Ok(1));
        assert_eq!(usdt("١٢٫٥"), Ok(12_500_000));
        assert_eq!(usdt("1.5000000000"), Ok(1_500_000), "trailing zeros are not precision");
        assert_eq!(Money::parse(Currency::Xtr, "150").map(Money::minor), Ok(150));
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(usdt("  "), Err(ParseMoneyError::Empty));
        assert_eq!(usdt("-3"), Err(ParseMoneyError::Negative));
        assert!(matches!(usdt("abc"), Err(ParseMoneyError::NotANumber(_))));
        assert!(matches!(usdt("1.2.3"), Err(ParseMoneyError::NotANumber(_))));
        assert_eq!(usdt("1,000.50"), Ok(1_000_500_000), "grouped, with a decimal point");
        assert!(matches!(usdt("1,00.50"), Err(ParseMoneyError::NotANumber(_))));
        assert_eq!(usdt("0,500"), Ok(500_000), "a leading zero is never a group");
        assert!(matches!(usdt("0 500"), Err(ParseMoneyError::NotANumber(_))));
        assert!(matches!(usdt("."), Err(ParseMoneyError::NotANumber(_))));
        assert!(matches!(usdt("1e5"), Err(ParseMoneyError::NotANumber(_))));
        assert_eq!(usdt("0.0000001"), Err(ParseMoneyError::TooManyDecimals { currency: Currency::Usdt, max: 6 }));
        assert_eq!(
            Money::parse(Currency::Xtr, "1.5"),
            Err(ParseMoneyError::TooManyDecimals { currency: Currency::Xtr, max: 0 })
        );
        assert!(matches!(usdt("1000000000000.01"), Err(ParseMoneyError::TooLarge { .. })));
        assert!(matches!(usdt("99999999999999999999999"), Err(ParseMoneyError::TooLarge { .. })));
    }

    #[test]
    fn displays_locale_neutral() {
        assert_eq!(Money::from_minor(Currency::Usdt, 12_500_000).to_string(), "12.50 USDT");
        assert_eq!(Money::from_minor(Currency::Usdt, 1).to_string(), "0.000001 USDT");
        assert_eq!(Money::from_minor(Currency::Usdt, -3_000_000).to_string(), "-3.00 USDT");
        assert_eq!(Money::from_minor(Currency::Xtr, 150).to_string(), "150 XTR");
    }

    #[test]
    fn text_with_currency_round_trips() {
        for money in [Money::from_minor(Currency::Usdt, 12_500_000), Money::from_minor(Currency::Xtr, 150)] {
            assert_eq!(money.to_string().parse::<Money>(), Ok(money));
        }
        assert!(matches!("12.5".parse::<Money>(), Err(ParseMoneyError::NoCurrency(_))));
        assert!(matches!("12.5 EUR".parse::<Money>(), Err(ParseMoneyError::NoCurrency(_))));
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Money::from_minor(Currency::Usdt, i64::MAX);
        let one = Money::from_minor(Currency::Usdt, 1);
        assert_eq!(max.checked_add(one), Err(MoneyError::Overflow));
        assert_eq!(Money::from_minor(Currency::Usdt, i64::MIN).checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(
            one.checked_add(Money::from_minor(Currency::Xtr, 1)),
            Err(MoneyError::CurrencyMismatch(Currency::Usdt, Currency::Xtr))
        );
        assert_eq!(Money::from_minor(Currency::Xtr, 999).share_bps(1_000), Ok(Money::from_minor(Currency::Xtr, 99)));
    }
}
