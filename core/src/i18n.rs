//! The texts users see, in seven languages: Arabic (the default), English, French, Spanish,
//! German, Russian and Chinese.
//!
//! The texts are Project Fluent files, one per language (`core/locales/<code>.ftl`), compiled
//! into the binary. Plurals follow CLDR through Fluent's selectors (Arabic has six forms, Russian
//! three). Numbers and amounts are written the language's way (digits, decimal mark, grouping),
//! and read back the same way (`parse_amount`). A message missing in a language falls back to
//! Arabic, so adding a text never leaves a user with nothing; `tests::every_message_*` keeps
//! every locale complete.
//!
//! Right to left: in Arabic every value put into a text (an amount, a command, a link) is
//! wrapped in Unicode isolates (Fluent's `use_isolating`), and commands and @names written in the
//! Arabic texts themselves sit in left-to-right isolates (U+2066 … U+2069), so a Latin run never
//! reorders the sentence around it.
//!
//! A user's language is what they chose with /language; before that, their Telegram client's
//! language if we have it, else Arabic.

use std::borrow::Cow;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, ParseMoneyError};
use crate::users::Profile;
use crate::withdrawals::PolicyViolation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Ar,
    En,
    Fr,
    Es,
    De,
    Ru,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 7] = [Lang::Ar, Lang::En, Lang::Fr, Lang::Es, Lang::De, Lang::Ru, Lang::Zh];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ar => "ar",
            Lang::En => "en",
            Lang::Fr => "fr",
            Lang::Es => "es",
            Lang::De => "de",
            Lang::Ru => "ru",
            Lang::Zh => "zh",
        }
    }

    /// From an IETF tag as Telegram gives it (`ar`, `en-US`, `zh-hans`).
    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The user's language: chosen with /language, else their Telegram client's (`telegram`,
    /// the current update's or the one stored at registration), else Arabic.
    pub fn for_user(profile: &Profile, telegram: Option<&str>) -> Lang {
        Lang::chosen_or(profile.language.as_deref(), telegram)
    }

    /// `chosen` (with /language), else `telegram` (the client's tag), else Arabic.
    pub fn chosen_or(chosen: Option<&str>, telegram: Option<&str>) -> Lang {
        chosen.or(telegram).and_then(Lang::from_code).unwrap_or_default()
    }

    /// The language's own name, for the /language keyboard.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Ar => "العربية",
            Lang::En => "English",
            Lang::Fr => "Français",
            Lang::Es => "Español",
            Lang::De => "Deutsch",
            Lang::Ru => "Русский",
            Lang::Zh => "中文",
        }
    }

    pub fn is_right_to_left(self) -> bool {
        self == Lang::Ar
    }

    fn index(self) -> usize {
        Lang::ALL.iter().position(|l| *l == self).expect("every language is in ALL")
    }

    /// How the language writes numbers (CLDR's default numbering system and symbols).
    fn numbers(self) -> NumberFormat {
        let latin = |group, decimal, min_grouping| NumberFormat { group, decimal, min_grouping, arabic_digits: false };
        match self {
            Lang::Ar => NumberFormat { group: "\u{066C}", decimal: "\u{066B}", min_grouping: 1, arabic_digits: true },
            Lang::En | Lang::Zh => latin(",", ".", 1),
            Lang::Fr => latin("\u{202F}", ",", 1),
            // Spanish leaves four-digit numbers ungrouped (CLDR's minimumGroupingDigits 2).
            Lang::Es => latin(".", ",", 2),
            Lang::De => latin(".", ",", 1),
            Lang::Ru => latin("\u{00A0}", ",", 1),
        }
    }

    /// Whether a lone `,` in a typed amount is the decimal mark (else `.` is).
    fn comma_is_decimal(self) -> bool {
        matches!(self, Lang::Fr | Lang::Es | Lang::De | Lang::Ru)
    }

    /// Between an amount and its currency code: a no-break space where CLDR puts one.
    fn currency_gap(self) -> &'static str {
        if self.comma_is_decimal() { "\u{00A0}" } else { " " }
    }
}

struct NumberFormat {
    group: &'static str,
    decimal: &'static str,
    /// Digits the integer part needs beyond three before it is grouped at all.
    min_grouping: usize,
    arabic_digits: bool,
}

impl NumberFormat {
    /// `digits` (ASCII, the integer part without sign) grouped by thousands.
    fn group(&self, digits: &str) -> String {
        if digits.len() < 3 + self.min_grouping {
            return digits.to_owned();
        }
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 * self.group.len());
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push_str(self.group);
            }
            out.push(ch);
        }
        out
    }

    /// `sign`, then `whole` (ASCII digits) grouped, then `fraction` after the decimal mark if
    /// there is one, in the language's digits.
    fn write(&self, sign: &str, whole: &str, fraction: Option<&str>) -> String {
        let mut number = format!("{sign}{}", self.group(whole));
        if let Some(fraction) = fraction {
            number.push_str(self.decimal);
            number.push_str(fraction);
        }
        self.script(number)
    }

    fn script(&self, text: String) -> String {
        if !self.arabic_digits {
            return text;
        }
        text.chars()
            .map(|ch| match ch.to_digit(10) {
                Some(d) if ch.is_ascii_digit() => char::from_u32(0x0660 + d).expect("Arabic-Indic digit"),
                _ => ch,
            })
            .collect()
    }
}

/// An integer written the language's way (`12,345`, `12 345`, `١٢٬٣٤٥`). Counts, not money.
pub fn format_integer(lang: Lang, n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    lang.numbers().write(sign, &n.unsigned_abs().to_string(), None)
}

/// A moment in ISO order (`2026-12-02 18:00 UTC`), unambiguous in every language, in the
/// language's digits.
pub fn format_date_time(lang: Lang, at: DateTime<Utc>) -> String {
    lang.numbers().script(at.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// A day in ISO order (`2026-12-02`), in the language's digits.
pub fn format_day(lang: Lang, at: DateTime<Utc>) -> String {
    lang.numbers().script(at.format("%Y-%m-%d").to_string())
}

/// An amount and its currency written the language's way (`1,234.50 USDT`, `1 234,50 USDT`,
/// `١٬٢٣٤٫٥٠ USDT`), from its integer minor units.
pub fn format_money(lang: Lang, money: Money) -> String {
    let text = money.amount_text();
    let (sign, unsigned) = text.strip_prefix('-').map_or(("", text.as_str()), |rest| ("-", rest));
    let (whole, fraction) = unsigned.split_once('.').map_or((unsigned, None), |(whole, fraction)| (whole, Some(fraction)));
    format!("{}{}{}", lang.numbers().write(sign, whole, fraction), lang.currency_gap(), money.currency())
}

/// An amount a person typed, read the way their language writes numbers (see
/// `Money::parse_typed`): `1,000` is a thousand in English and one in German, where `1.000` is
/// the thousand. `format_money` reads back to the same amount.
pub fn parse_amount(lang: Lang, currency: Currency, text: &str) -> Result<Money, ParseMoneyError> {
    Money::parse_typed(currency, text, lang.comma_is_decimal())
}

/// A value put into a text: numbers stay numbers (they choose the plural form and are written
/// the language's way), amounts are written the language's way, text goes in as it is.
pub trait Arg: Sync {
    fn value<'a>(&'a self, lang: Lang) -> FluentValue<'a>;
}

impl Arg for &str {
    fn value<'a>(&'a self, _: Lang) -> FluentValue<'a> {
        FluentValue::String(Cow::Borrowed(self))
    }
}

impl Arg for String {
    fn value<'a>(&'a self, _: Lang) -> FluentValue<'a> {
        FluentValue::String(Cow::Borrowed(self))
    }
}

impl Arg for DateTime<Utc> {
    fn value<'a>(&'a self, lang: Lang) -> FluentValue<'a> {
        FluentValue::String(Cow::Owned(format_date_time(lang, *self)))
    }
}

impl Arg for Money {
    fn value<'a>(&'a self, lang: Lang) -> FluentValue<'a> {
        FluentValue::String(Cow::Owned(format_money(lang, *self)))
    }
}

macro_rules! integer_args {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn value<'a>(&'a self, _: Lang) -> FluentValue<'a> {
                FluentValue::from(*self)
            }
        }
    )*};
}
integer_args!(u32, u64, i64, usize);

macro_rules! texts {
    ($($variant:ident = $id:literal,)*) => {
        /// Every text a user can see; its Fluent message id beside it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Text { $($variant,)* }

        impl Text {
            pub const ALL: &'static [Text] = &[$(Text::$variant,)*];

            pub fn id(self) -> &'static str {
                match self { $(Text::$variant => $id,)* }
            }
        }
    };
}

texts! {
    Welcome = "welcome",
    Help = "help",
    Banned = "banned",
    BalanceZero = "balance-zero",
    BalanceHeader = "balance-header",
    DepositUsage = "deposit-usage",
    DepositLimits = "deposit-limits",
    InvoiceTitle = "invoice-title",
    InvoiceDescription = "invoice-description",
    PaymentReceived = "payment-received",
    NotUnderstood = "not-understood",
    InvoiceNotYours = "invoice-not-yours",
    OnlyStars = "only-stars",
    OutsideLimits = "outside-limits",
    ChooseLanguage = "choose-language",
    LanguageChosen = "language-chosen",
    HistoryEmpty = "history-empty",
    HistoryPage = "history-page",
    HistoryLine = "history-line",
    KindDeposit = "kind-deposit",
    KindSubscription = "kind-subscription",
    KindReferralCommission = "kind-referral-commission",
    KindWithdrawal = "kind-withdrawal",
    KindWithdrawalReturned = "kind-withdrawal-returned",
    KindPayout = "kind-payout",
    KindAdjustment = "kind-adjustment",
    KindRefund = "kind-refund",
    Confirm = "confirm",
    Cancel = "cancel",
    Cancelled = "cancelled",
    Expired = "expired",
    Plans = "plans",
    PlanButton = "plan-button",
    SubscribedUntil = "subscribed-until",
    ConfirmPurchase = "confirm-purchase",
    Subscribed = "subscribed",
    NotEnoughBalance = "not-enough-balance",
    UnknownPlan = "unknown-plan",
    ReferralInfo = "referral-info",
    ReferralEarned = "referral-earned",
    WithdrawNotEnough = "withdraw-not-enough",
    WithdrawAskAmount = "withdraw-ask-amount",
    WithdrawBadAmount = "withdraw-bad-amount",
    WithdrawAskAddress = "withdraw-ask-address",
    WithdrawBadAddress = "withdraw-bad-address",
    WithdrawConfirm = "withdraw-confirm",
    WithdrawApproved = "withdraw-approved",
    WithdrawPendingReview = "withdraw-pending-review",
    WithdrawRefused = "withdraw-refused",
    WithdrawStatus = "withdraw-status",
    SubscriptionEndsSoon = "subscription-ends-soon",
    SubscriptionExpired = "subscription-expired",
    WithdrawalSent = "withdrawal-sent",
    WithdrawalReturned = "withdrawal-returned",
    CryptoInvoice = "crypto-invoice",
    PayButton = "pay-button",
    CryptoRefused = "crypto-refused",
    PaySupport = "pay-support",
    Terms = "terms",
    AnsweredInPrivate = "answered-in-private",
    OpenPrivately = "open-privately",
    WithdrawChooseCurrency = "withdraw-choose-currency",
    AmountEmpty = "amount-empty",
    AmountNegative = "amount-negative",
    AmountNotANumber = "amount-not-a-number",
    AmountTooManyDecimals = "amount-too-many-decimals",
    AmountTooLarge = "amount-too-large",
    AmountNotPositive = "amount-not-positive",
    AssetNotOffered = "asset-not-offered",
    WithdrawBelowMin = "withdraw-below-min",
    WithdrawAboveMax = "withdraw-above-max",
    WithdrawOverDailyLimit = "withdraw-over-daily-limit",
    WithdrawShortOfFee = "withdraw-short-of-fee",
    SupportStarted = "support-started",
    SupportSent = "support-sent",
    SupportAnswer = "support-answer",
    SupportClosed = "support-closed",
    Notifications = "notifications",
    NotificationButton = "notification-button",
    WithdrawFeeChanged = "withdraw-fee-changed",
    AccessGranted = "access-granted",
    AccessByRequest = "access-by-request",
    AccessNeedsSubscription = "access-needs-subscription",
    AccessEnded = "access-ended",
}

/// The texts in every language, parsed once.
struct Catalog {
    bundles: Vec<(Lang, FluentBundle<FluentResource>)>,
}

impl Catalog {
    /// One bundle per `(language, Fluent source)`. A source that does not parse is a bug in a
    /// file compiled into this binary: the locale test fails on it, and so does the first text.
    fn new(sources: &[(Lang, &str)]) -> Catalog {
        let bundles = sources
            .iter()
            .map(|(lang, source)| {
                let resource = FluentResource::try_new((*source).to_owned())
                    .unwrap_or_else(|(_, errors)| panic!("{}.ftl does not parse: {errors:?}", lang.code()));
                let locale = lang.code().parse().expect("a language code is a language identifier");
                let mut bundle = FluentBundle::new_concurrent(vec![locale]);
                bundle.set_use_isolating(lang.is_right_to_left());
                bundle.set_formatter(Some(number_formatter(*lang)));
                bundle.add_resource(resource).unwrap_or_else(|errors| panic!("{}.ftl repeats a message: {errors:?}", lang.code()));
                (*lang, bundle)
            })
            .collect();
        Catalog { bundles }
    }

    fn bundle(&self, lang: Lang) -> Option<&FluentBundle<FluentResource>> {
        self.bundles.iter().find(|(l, _)| *l == lang).map(|(_, b)| b)
    }

    /// `id` in `lang`, else in Arabic (the default), else the id itself.
    fn format(&self, lang: Lang, id: &str, args: &[(&str, &dyn Arg)]) -> String {
        for lang in [lang, Lang::default()] {
            let Some(bundle) = self.bundle(lang) else { continue };
            let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else { continue };
            let mut values = FluentArgs::with_capacity(args.len());
            for (name, arg) in args {
                values.set(*name, arg.value(lang));
            }
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&values), &mut errors);
            if !errors.is_empty() {
                tracing::warn!(lang = lang.code(), id, ?errors, "a text did not format cleanly");
            }
            return text.into_owned();
        }
        tracing::error!(id, "a text exists in no language");
        id.to_owned()
    }
}

const SOURCES: [(Lang, &str); 7] = [
    (Lang::Ar, include_str!("../locales/ar.ftl")),
    (Lang::En, include_str!("../locales/en.ftl")),
    (Lang::Fr, include_str!("../locales/fr.ftl")),
    (Lang::Es, include_str!("../locales/es.ftl")),
    (Lang::De, include_str!("../locales/de.ftl")),
    (Lang::Ru, include_str!("../locales/ru.ftl")),
    (Lang::Zh, include_str!("../locales/zh.ftl")),
];

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog::new(&SOURCES));

/// `text` in `lang` (or Arabic), with its `{ $name }` placeables filled from `args`.
pub fn tr(lang: Lang, text: Text, args: &[(&str, &dyn Arg)]) -> String {
    CATALOG.format(lang, text.id(), args)
}

/// Fluent's number formatting, replaced by the language's own (a formatter is a plain `fn`, so
/// one is made per language).
fn number_formatter<M>(lang: Lang) -> fn(&FluentValue, &M) -> Option<String> {
    fn format<M, const LANG: usize>(value: &FluentValue, _: &M) -> Option<String> {
        let FluentValue::Number(number) = value else { return None };
        // Counts only (money goes in as text): whole numbers well inside f64's exact range.
        (number.value.fract() == 0.0 && number.value.abs() < 1e15).then(|| format_integer(Lang::ALL[LANG], number.value as i64))
    }
    [format::<M, 0>, format::<M, 1>, format::<M, 2>, format::<M, 3>, format::<M, 4>, format::<M, 5>, format::<M, 6>][lang.index()]
}

/// Why an amount a user typed was refused, in their language.
pub fn amount_error(lang: Lang, error: &ParseMoneyError) -> String {
    match error {
        ParseMoneyError::Empty => tr(lang, Text::AmountEmpty, &[]),
        ParseMoneyError::Negative => tr(lang, Text::AmountNegative, &[]),
        ParseMoneyError::NotANumber(input) | ParseMoneyError::NoCurrency(input) => tr(lang, Text::AmountNotANumber, &[("input", input)]),
        ParseMoneyError::TooManyDecimals { currency, max } => {
            tr(lang, Text::AmountTooManyDecimals, &[("currency", &currency.code()), ("max", max)])
        }
        ParseMoneyError::TooLarge { currency, max_units } => {
            let max = format!("{}{}{currency}", format_integer(lang, *max_units), lang.currency_gap());
            tr(lang, Text::AmountTooLarge, &[("max", &max)])
        }
    }
}

/// Why a withdrawal amount breaks its currency's policy, in the user's language.
pub fn policy_violation(lang: Lang, violation: &PolicyViolation) -> String {
    match violation {
        PolicyViolation::BelowMin(min) => tr(lang, Text::WithdrawBelowMin, &[("min", min)]),
        PolicyViolation::AboveMax(max) => tr(lang, Text::WithdrawAboveMax, &[("max", max)]),
        PolicyViolation::OverDailyLimit { left } => tr(lang, Text::WithdrawOverDailyLimit, &[("left", left)]),
        PolicyViolation::BadAddress(format) => tr(lang, Text::WithdrawBadAddress, &[("format", &format.to_string())]),
    }
}

/// A share in basis points as the number of a percentage, the language's way (`12.5`, `12,5`,
/// `١٢٫٥`; `10` for 1000): integers only, trailing zeros dropped.
pub fn percent_of_bps(lang: Lang, bps: u32) -> String {
    let fraction = format!("{:02}", bps % 100);
    let fraction = fraction.trim_end_matches('0');
    lang.numbers().write("", &(bps / 100).to_string(), (!fraction.is_empty()).then_some(fraction))
}

#[cfg(test)]
mod tests;
