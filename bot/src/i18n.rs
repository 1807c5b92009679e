//! The bot's texts in Arabic (the default), English and Russian. A text missing in a language
//! falls back to English, so adding a text never leaves a user with nothing.
//!
//! A user's language is what they chose with /language; before that, their Telegram client's
//! language if we have it, else Arabic.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Ar,
    En,
    Ru,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Ar, Lang::En, Lang::Ru];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ar => "ar",
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// From an IETF tag as Telegram gives it (`ar`, `en-US`, `ru`).
    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The language's own name, for the /language keyboard.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Ar => "العربية",
            Lang::En => "English",
            Lang::Ru => "Русский",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Welcome,
    Help,
    BalanceZero,
    BalanceHeader,
    DepositUsage,
    DepositLimits,
    InvoiceTitle,
    InvoiceDescription,
    PaymentReceived,
    NotUnderstood,
    InvoiceNotYours,
    OnlyStars,
    OutsideLimits,
    ChooseLanguage,
    LanguageChosen,
    HistoryEmpty,
    HistoryPage,
}

type Table = &'static [(Lang, Text, &'static str)];

/// `{name}` placeholders are filled by `tr`.
const TRANSLATIONS: Table = &[
    (Lang::En, Text::Welcome, "Welcome! /balance shows your balance, /deposit adds Telegram Stars, /help lists everything."),
    (Lang::Ar, Text::Welcome, "أهلاً بك! ‎/balance‎ يعرض رصيدك، و‎/deposit‎ لإيداع نجوم تيليجرام، و‎/help‎ لعرض كل الأوامر."),
    (Lang::Ru, Text::Welcome, "Добро пожаловать! /balance — ваш баланс, /deposit — пополнить звёздами Telegram, /help — все команды."),
    (Lang::En, Text::Help, "/start — start\n/balance — your balance\n/history — your transactions\n/deposit 250 — deposit Telegram Stars\n/language — change the language\n/help — this list"),
    (Lang::Ar, Text::Help, "‎/start‎ — البدء\n‎/balance‎ — رصيدك\n‎/history‎ — معاملاتك\n‎/deposit 250‎ — إيداع نجوم تيليجرام\n‎/language‎ — تغيير اللغة\n‎/help‎ — هذه القائمة"),
    (Lang::Ru, Text::Help, "/start — начать\n/balance — ваш баланс\n/history — ваши операции\n/deposit 250 — пополнить звёздами Telegram\n/language — сменить язык\n/help — этот список"),
    (Lang::En, Text::BalanceZero, "Your balance is 0."),
    (Lang::Ar, Text::BalanceZero, "رصيدك 0."),
    (Lang::Ru, Text::BalanceZero, "Ваш баланс: 0."),
    (Lang::En, Text::BalanceHeader, "Your balance:"),
    (Lang::Ar, Text::BalanceHeader, "رصيدك:"),
    (Lang::Ru, Text::BalanceHeader, "Ваш баланс:"),
    (Lang::En, Text::DepositUsage, "{error}. For example: /deposit 250"),
    (Lang::Ar, Text::DepositUsage, "{error}. مثال: ‎/deposit 250‎"),
    (Lang::Ru, Text::DepositUsage, "{error}. Например: /deposit 250"),
    (Lang::En, Text::DepositLimits, "Deposits are {min} to {max} stars, for example /deposit 250."),
    (Lang::Ar, Text::DepositLimits, "الإيداع من {min} إلى {max} نجمة، مثال: ‎/deposit 250‎."),
    (Lang::Ru, Text::DepositLimits, "Пополнение — от {min} до {max} звёзд, например /deposit 250."),
    (Lang::En, Text::InvoiceTitle, "Deposit {amount}"),
    (Lang::Ar, Text::InvoiceTitle, "إيداع {amount}"),
    (Lang::Ru, Text::InvoiceTitle, "Пополнение {amount}"),
    (Lang::En, Text::InvoiceDescription, "Adds {amount} to your balance."),
    (Lang::Ar, Text::InvoiceDescription, "يضيف {amount} إلى رصيدك."),
    (Lang::Ru, Text::InvoiceDescription, "Добавит {amount} на ваш баланс."),
    (Lang::En, Text::PaymentReceived, "Payment received: {amount}. It will show in /balance in a moment."),
    (Lang::Ar, Text::PaymentReceived, "تم استلام الدفع: {amount}. سيظهر في ‎/balance‎ خلال لحظات."),
    (Lang::Ru, Text::PaymentReceived, "Платёж получен: {amount}. Он появится в /balance через мгновение."),
    (Lang::En, Text::NotUnderstood, "I did not understand that. /help lists what I can do."),
    (Lang::Ar, Text::NotUnderstood, "لم أفهم ذلك. ‎/help‎ يعرض ما يمكنني فعله."),
    (Lang::Ru, Text::NotUnderstood, "Я не понял. /help — что я умею."),
    (Lang::En, Text::InvoiceNotYours, "This invoice is not yours."),
    (Lang::Ar, Text::InvoiceNotYours, "هذه الفاتورة ليست لك."),
    (Lang::Ru, Text::InvoiceNotYours, "Этот счёт выставлен не вам."),
    (Lang::En, Text::OnlyStars, "Only Telegram Stars are accepted."),
    (Lang::Ar, Text::OnlyStars, "نقبل نجوم تيليجرام فقط."),
    (Lang::Ru, Text::OnlyStars, "Принимаются только звёзды Telegram."),
    (Lang::En, Text::OutsideLimits, "This amount is outside the deposit limits."),
    (Lang::Ar, Text::OutsideLimits, "هذا المبلغ خارج حدود الإيداع."),
    (Lang::Ru, Text::OutsideLimits, "Сумма вне лимитов пополнения."),
    (Lang::En, Text::ChooseLanguage, "Choose your language:"),
    (Lang::Ar, Text::ChooseLanguage, "اختر لغتك:"),
    (Lang::Ru, Text::ChooseLanguage, "Выберите язык:"),
    (Lang::En, Text::LanguageChosen, "Language set: English."),
    (Lang::Ar, Text::LanguageChosen, "تم اختيار اللغة: العربية."),
    (Lang::Ru, Text::LanguageChosen, "Язык: русский."),
    (Lang::En, Text::HistoryEmpty, "No transactions yet."),
    (Lang::Ar, Text::HistoryEmpty, "لا توجد معاملات بعد."),
    (Lang::Ru, Text::HistoryEmpty, "Операций пока нет."),
    (Lang::En, Text::HistoryPage, "History, page {page}:"),
    (Lang::Ar, Text::HistoryPage, "السجل، الصفحة {page}:"),
    (Lang::Ru, Text::HistoryPage, "История, страница {page}:"),
];

fn lookup(table: Table, lang: Lang, text: Text) -> &'static str {
    let find = |lang: Lang| table.iter().find(|(l, t, _)| *l == lang && *t == text).map(|(_, _, s)| *s);
    find(lang).or_else(|| find(Lang::En)).unwrap_or("…")
}

/// The text in `lang` (or English), with `{name}` placeholders filled from `args`.
pub fn tr(lang: Lang, text: Text, args: &[(&str, &str)]) -> String {
    args.iter().fold(lookup(TRANSLATIONS, lang, text).to_owned(), |s, (name, value)| s.replace(&format!("{{{name}}}"), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_exists_in_english_and_a_missing_translation_falls_back() {
        let texts = [
            Text::Welcome, Text::Help, Text::BalanceZero, Text::BalanceHeader, Text::DepositUsage, Text::DepositLimits,
            Text::InvoiceTitle, Text::InvoiceDescription, Text::PaymentReceived, Text::NotUnderstood, Text::InvoiceNotYours,
            Text::OnlyStars, Text::OutsideLimits, Text::ChooseLanguage, Text::LanguageChosen, Text::HistoryEmpty,
            Text::HistoryPage,
        ];
        for text in texts {
            assert!(TRANSLATIONS.iter().any(|(l, t, _)| *l == Lang::En && *t == text), "{text:?} has no English");
        }
        const PARTIAL: Table = &[(Lang::En, Text::Welcome, "Welcome"), (Lang::Ar, Text::Help, "مساعدة")];
        assert_eq!(lookup(PARTIAL, Lang::Ru, Text::Welcome), "Welcome");
        assert_eq!(lookup(PARTIAL, Lang::Ar, Text::Help), "مساعدة");
    }

    #[test]
    fn fills_placeholders_and_reads_telegram_language_tags() {
        assert_eq!(tr(Lang::En, Text::InvoiceTitle, &[("amount", "250 XTR")]), "Deposit 250 XTR");
        assert_eq!(Lang::from_code("ru-RU"), Some(Lang::Ru));
        assert_eq!(Lang::from_code("de"), None);
        assert_eq!(Lang::default(), Lang::Ar);
    }
}
