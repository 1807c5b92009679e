use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

/// Each message of a Fluent source with the `$variables` it uses, read off the text: a message
/// starts at `id =` in the first column and runs over the indented lines after it.
fn messages(source: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut messages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in source.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            let id = line.split_once(" =").map(|(id, _)| id.to_owned()).unwrap_or_else(|| panic!("not a message: {line:?}"));
            messages.insert(id.clone(), BTreeSet::new());
            current = Some(id);
        }
        let variables = messages.get_mut(current.as_ref().expect("a message started")).expect("inserted");
        for (i, _) in line.match_indices('$') {
            let name: String = line[i + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            variables.insert(name);
        }
    }
    messages
}

/// Every variable any message uses, as a number: numbers format in any placeable and choose a
/// plural form in selectors.
fn sample_args() -> Vec<(&'static str, u32)> {
    let names: BTreeSet<String> = messages(SOURCES[1].1).into_values().flatten().collect();
    names.into_iter().map(|n| (&*Box::leak(n.into_boxed_str()), 3)).collect()
}

#[test]
fn every_message_exists_in_every_locale_and_formats_with_sample_arguments() {
    let samples = sample_args();
    for lang in Lang::ALL {
        let bundle = CATALOG.bundle(lang).expect("a bundle per language");
        for text in Text::ALL {
            let pattern = bundle.get_message(text.id()).and_then(|m| m.value());
            let pattern = pattern.unwrap_or_else(|| panic!("{}.ftl has no {}", lang.code(), text.id()));
            let mut args = FluentArgs::new();
            for (name, value) in &samples {
                args.set(*name, value.value(lang));
            }
            let mut errors = Vec::new();
            let formatted = bundle.format_pattern(pattern, Some(&args), &mut errors);
            assert!(errors.is_empty(), "{}: {} formats with errors: {errors:?}", lang.code(), text.id());
            assert!(!formatted.trim().is_empty(), "{}: {} is empty", lang.code(), text.id());
        }
    }
}

#[test]
fn every_locale_has_the_same_messages_with_the_same_variables_as_english() {
    let english = messages(SOURCES[1].1);
    let ids: BTreeSet<&str> = Text::ALL.iter().map(|t| t.id()).collect();
    assert_eq!(english.keys().map(String::as_str).collect::<BTreeSet<_>>(), ids, "en.ftl and `Text` differ");
    for (lang, source) in SOURCES {
        assert_eq!(messages(source), english, "{}.ftl differs from en.ftl in its messages or their variables", lang.code());
    }
}

#[test]
fn plurals_follow_cldr() {
    let days = |lang: Lang, n: u32| tr(lang, Text::PlanButton, &[("plan", &"p"), ("days", &n), ("price", &"x")]);
    // Arabic: zero, one, two, few (3–10), many (11–99), other (100–102).
    let arabic: BTreeSet<String> = [0, 1, 2, 3, 11, 100].into_iter().map(|n| days(Lang::Ar, n)).collect();
    assert_eq!(arabic.len(), 6, "{arabic:#?}");
    assert!(days(Lang::Ar, 2).contains("يومان"));
    assert!(days(Lang::Ar, 11).contains("يومًا"));
    // Russian: one (1, 21), few (2–4), many (5–20).
    assert!(days(Lang::Ru, 1).contains("1 день") && days(Lang::Ru, 21).contains("21 день"));
    assert!(days(Lang::Ru, 3).contains("3 дня"));
    assert!(days(Lang::Ru, 5).contains("5 дней") && days(Lang::Ru, 11).contains("11 дней"));
    assert_eq!(days(Lang::En, 1), "p: 1 day, x");
    assert_eq!(days(Lang::En, 30), "p: 30 days, x");
    // French counts 0 and 1 as one.
    assert!(days(Lang::Fr, 0).contains("0 jour,"));
}

#[test]
fn numbers_and_amounts_are_written_the_languages_way() {
    let usdt = Money::from_minor(Currency::Usdt, 1_234_567_500_000);
    let stars = |n| Money::from_minor(Currency::Xtr, n);
    assert_eq!(format_money(Lang::En, usdt), "1,234,567.50 USDT");
    assert_eq!(format_money(Lang::Zh, usdt), "1,234,567.50 USDT");
    assert_eq!(format_money(Lang::De, usdt), "1.234.567,50\u{A0}USDT");
    assert_eq!(format_money(Lang::Fr, usdt), "1\u{202F}234\u{202F}567,50\u{A0}USDT");
    assert_eq!(format_money(Lang::Ru, usdt), "1\u{A0}234\u{A0}567,50\u{A0}USDT");
    assert_eq!(format_money(Lang::Es, usdt), "1.234.567,50\u{A0}USDT");
    assert_eq!(format_money(Lang::Ar, usdt), "١٬٢٣٤٬٥٦٧٫٥٠ USDT");
    // Spanish leaves four digits ungrouped; the others do not.
    assert_eq!(format_money(Lang::Es, stars(1_000)), "1000\u{A0}XTR");
    assert_eq!(format_money(Lang::En, stars(1_000)), "1,000 XTR");
    assert_eq!(format_money(Lang::En, stars(-250)), "-250 XTR");
    assert_eq!(format_money(Lang::En, Money::from_minor(Currency::Usdt, 1)), "0.000001 USDT");
    assert_eq!(format_integer(Lang::Ar, 2_026), "٢٬٠٢٦");
    // Numbers in texts go through the same rules.
    assert_eq!(tr(Lang::De, Text::HistoryPage, &[("page", &12_000u32)]), "Verlauf, Seite 12.000:");
}

#[test]
fn typed_amounts_are_read_the_languages_way() {
    let read = |lang, currency, text| parse_amount(lang, currency, text).map(Money::minor);
    // A separator followed by three digits groups where the language groups with it.
    assert_eq!(read(Lang::En, Currency::Usdt, "1,000"), Ok(1_000_000_000));
    assert_eq!(read(Lang::De, Currency::Usdt, "1,000"), Ok(1_000_000));
    assert_eq!(read(Lang::De, Currency::Usdt, "1.000"), Ok(1_000_000_000));
    assert_eq!(read(Lang::En, Currency::Xtr, "1,000"), Ok(1_000));
    assert_eq!(read(Lang::De, Currency::Usdt, "0.250"), Ok(250_000), "a leading zero is never a group");
    // Anything else after a lone separator is decimals, in any language.
    assert_eq!(read(Lang::En, Currency::Usdt, "12,5"), Ok(12_500_000));
    assert_eq!(read(Lang::De, Currency::Usdt, "12.5"), Ok(12_500_000));
    assert_eq!(read(Lang::En, Currency::Usdt, "1,234,567.5"), Ok(1_234_567_500_000));
    assert_eq!(read(Lang::De, Currency::Usdt, "1.234.567,5"), Ok(1_234_567_500_000));
    assert_eq!(read(Lang::Fr, Currency::Usdt, "1 234,5"), Ok(1_234_500_000));
    assert_eq!(read(Lang::Ar, Currency::Usdt, "١٬٢٣٤٫٥"), Ok(1_234_500_000));
    assert_eq!(read(Lang::Ar, Currency::Xtr, "٢٥٠"), Ok(250));
    // Refused, never guessed or rounded.
    assert_eq!(read(Lang::En, Currency::Xtr, "1.5"), Err(ParseMoneyError::TooManyDecimals { currency: Currency::Xtr, max: 0 }));
    assert!(matches!(read(Lang::En, Currency::Usdt, "1,00,000"), Err(ParseMoneyError::NotANumber(_))));
    assert!(matches!(read(Lang::En, Currency::Usdt, "1234,567.5"), Err(ParseMoneyError::NotANumber(_))));
    assert!(matches!(read(Lang::En, Currency::Usdt, "1.5.5"), Err(ParseMoneyError::NotANumber(_))));
    assert!(matches!(read(Lang::En, Currency::Usdt, "12 USDT"), Err(ParseMoneyError::NotANumber(_))));
    assert_eq!(read(Lang::En, Currency::Usdt, "-5"), Err(ParseMoneyError::Negative));
    assert_eq!(read(Lang::En, Currency::Usdt, " "), Err(ParseMoneyError::Empty));
}

proptest! {
    #[test]
    fn an_amount_as_written_reads_back_the_same(minor in 0i64..=Money::MAX_PARSED_UNITS, lang in 0usize..7, stars in any::<bool>()) {
        let currency = if stars { Currency::Xtr } else { Currency::Usdt };
        let money = Money::from_minor(currency, minor);
        let lang = Lang::ALL[lang];
        let written = format_money(lang, money);
        let number = written.rsplit_once([' ', '\u{A0}']).map(|(number, _)| number).expect("number and code");
        prop_assert_eq!(parse_amount(lang, currency, number), Ok(money), "{}", written);
    }
}

#[test]
fn a_missing_message_falls_back_to_arabic() {
    let catalog = Catalog::new(&[(Lang::Ar, "only-here = عربي\nboth = عربي\n"), (Lang::En, "both = English\n")]);
    assert_eq!(catalog.format(Lang::En, "only-here", &[]), "عربي");
    assert_eq!(catalog.format(Lang::En, "both", &[]), "English");
    assert_eq!(catalog.format(Lang::Fr, "both", &[]), "عربي");
    assert_eq!(catalog.format(Lang::En, "nowhere", &[]), "nowhere");
}

#[test]
fn arabic_texts_keep_latin_runs_isolated() {
    // Values put into Arabic texts are wrapped in first-strong isolates.
    let text = tr(Lang::Ar, Text::InvoiceTitle, &[("amount", &Money::from_minor(Currency::Xtr, 250))]);
    assert_eq!(text, "إيداع \u{2068}٢٥٠ XTR\u{2069}");
    // Commands and @names written in Arabic texts sit in left-to-right isolates.
    for (id, _) in messages(SOURCES[0].1) {
        let text = CATALOG.format(Lang::Ar, &id, &[]);
        for (i, ch) in text.char_indices() {
            if (ch == '/' || ch == '@') && text[..i].chars().last().is_some_and(|c| !c.is_ascii_alphanumeric() && c != '/') {
                assert!(text[..i].ends_with('\u{2066}'), "{id}: {ch} at {i} does not open a left-to-right isolate: {text:?}");
            }
        }
    }
    // Other languages need no marks, and get none.
    assert_eq!(tr(Lang::En, Text::InvoiceTitle, &[("amount", &Money::from_minor(Currency::Xtr, 250))]), "Deposit 250 XTR");
}

#[test]
fn reads_telegram_language_tags() {
    assert_eq!(Lang::from_code("ru-RU"), Some(Lang::Ru));
    assert_eq!(Lang::from_code("zh-hans"), Some(Lang::Zh));
    assert_eq!(Lang::from_code("pt-br"), None);
    assert_eq!(Lang::default(), Lang::Ar);
}

#[test]
fn refusals_of_typed_amounts_are_in_the_users_language() {
    let error = ParseMoneyError::TooManyDecimals { currency: Currency::Xtr, max: 0 };
    assert_eq!(amount_error(Lang::En, &error), "XTR allows whole amounts only");
    assert_eq!(amount_error(Lang::De, &ParseMoneyError::Negative), "der Betrag darf nicht negativ sein");
}
