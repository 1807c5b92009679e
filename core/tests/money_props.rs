//! Property tests for money parsing and arithmetic.

use obentchi_core::money::{Currency, Money, MoneyError, ParseMoneyError};
use proptest::prelude::*;

fn currency() -> impl Strategy<Value = Currency> {
    prop_oneof![Just(Currency::Usdt), Just(Currency::Xtr)]
}

fn parseable_minor(currency: Currency) -> i64 {
    Money::MAX_PARSED_UNITS * 10_i64.pow(currency.decimals())
}

proptest! {
    #[test]
    fn a_provider_amount_round_trips_exactly((c, minor) in currency().prop_flat_map(|c| (Just(c), 0..=parseable_minor(c)))) {
        let money = Money::from_minor(c, minor);
        let text = money.decimal();
        prop_assert_eq!(Money::from_decimal(c, &text), Ok(money));
        // And the text is the canonical one: read back, written again, unchanged.
        prop_assert_eq!(Money::from_decimal(c, &text).unwrap().decimal(), text);
    }

    #[test]
    fn a_provider_amount_with_trailing_zeros_means_the_same(units in 0..1_000_000_000i64, frac in 0..1_000_000i64, zeros in 0..4usize) {
        let text = format!("{units}.{frac:06}{}", "0".repeat(zeros));
        prop_assert_eq!(Money::from_decimal(Currency::Usdt, &text).unwrap().minor(), units * 1_000_000 + frac);
    }

    #[test]
    fn a_provider_amount_finer_than_a_minor_unit_is_refused_not_rounded(units in 0..1_000_000i64, frac in 0..1_000_000i64, extra in 1..10u8) {
        let text = format!("{units}.{frac:06}{extra}");
        prop_assert_eq!(Money::from_decimal(Currency::Usdt, &text), Err(ParseMoneyError::TooManyDecimals { currency: Currency::Usdt, max: 6 }));
        let stars = format!("{units}.{extra}");
        prop_assert!(Money::from_decimal(Currency::Xtr, &stars).is_err());
    }

    #[test]
    fn a_malformed_provider_amount_is_refused(text in "\\PC{0,20}") {
        let strict = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && text.matches('.').count() <= 1
            && !text.starts_with('.')
            && !text.ends_with('.');
        if !strict {
            prop_assert!(Money::from_decimal(Currency::Usdt, &text).is_err(), "{:?}", text);
        }
    }

    #[test]
    fn display_then_parse_is_identity((c, minor) in currency().prop_flat_map(|c| (Just(c), 0..=parseable_minor(c)))) {
        let money = Money::from_minor(c, minor);
        prop_assert_eq!(Money::parse(c, &money.amount_text()), Ok(money));
    }

    #[test]
    fn comma_and_dot_mean_the_same(units in 0..1_000_000i64, frac in 0..1_000_000i64) {
        let dot = Money::parse(Currency::Usdt, &format!("{units}.{frac:06}"));
        let comma = Money::parse(Currency::Usdt, &format!("  {units},{frac:06} "));
        prop_assert_eq!(dot.clone(), comma);
        prop_assert_eq!(dot.unwrap().minor(), units * 1_000_000 + frac);
    }

    #[test]
    fn parse_never_panics_and_never_yields_a_negative(c in currency(), text in "\\PC{0,30}") {
        if let Ok(money) = Money::parse(c, &text) {
            prop_assert!(!money.is_negative());
            prop_assert!(money.minor() <= parseable_minor(c));
        }
    }

    #[test]
    fn negatives_are_refused(c in currency(), units in 1..1_000_000i64) {
        prop_assert_eq!(Money::parse(c, &format!("-{units}")), Err(ParseMoneyError::Negative));
    }

    #[test]
    fn extra_decimals_are_refused(units in 0..1_000i64, frac in 1..10i64) {
        let err = Money::parse(Currency::Usdt, &format!("{units}.000000{frac}"));
        prop_assert_eq!(err, Err(ParseMoneyError::TooManyDecimals { currency: Currency::Usdt, max: 6 }));
    }

    #[test]
    fn add_is_exact_or_an_overflow(c in currency(), a in any::<i64>(), b in any::<i64>()) {
        let sum = Money::from_minor(c, a).checked_add(Money::from_minor(c, b));
        match a.checked_add(b) {
            Some(expected) => prop_assert_eq!(sum, Ok(Money::from_minor(c, expected))),
            None => prop_assert_eq!(sum, Err(MoneyError::Overflow)),
        }
    }

    #[test]
    fn sub_undoes_add(c in currency(), a in -(1i64 << 60)..(1i64 << 60), b in -(1i64 << 60)..(1i64 << 60)) {
        let a = Money::from_minor(c, a);
        let b = Money::from_minor(c, b);
        prop_assert_eq!(a.checked_add(b).unwrap().checked_sub(b), Ok(a));
    }

    #[test]
    fn shares_never_exceed_the_whole(minor in 0..i64::MAX, bps in 0..=10_000u32) {
        let whole = Money::from_minor(Currency::Usdt, minor);
        let share = whole.share_bps(bps).unwrap();
        prop_assert!(share.minor() >= 0 && share.minor() <= minor);
    }
}
