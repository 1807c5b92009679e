//! The texts users see, in Arabic (the default), English and Russian. A text missing in a language
//! falls back to English, so adding a text never leaves a user with nothing.
//!
//! A user's language is what they chose with /language; before that, their Telegram client's
//! language if we have it, else Arabic.

use serde::{Deserialize, Serialize};

use crate::users::Profile;

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

    /// The user's language: chosen with /language, else their Telegram client's (`telegram`,
    /// the current update's or the one stored at registration), else Arabic.
    pub fn for_user(profile: &Profile, telegram: Option<&str>) -> Lang {
        profile.language.as_deref().or(telegram).and_then(Lang::from_code).unwrap_or_default()
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
    Banned,
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
    KindDeposit,
    KindSubscription,
    KindReferralCommission,
    KindWithdrawal,
    KindWithdrawalReturned,
    KindPayout,
    KindAdjustment,
    KindRefund,
    Confirm,
    Cancel,
    Cancelled,
    Expired,
    Plans,
    PlanButton,
    SubscribedUntil,
    ConfirmPurchase,
    Subscribed,
    NotEnoughBalance,
    UnknownPlan,
    ReferralInfo,
    ReferralEarned,
    WithdrawNotEnough,
    WithdrawAskAmount,
    WithdrawBadAmount,
    WithdrawAskAddress,
    WithdrawBadAddress,
    WithdrawConfirm,
    WithdrawApproved,
    WithdrawPendingReview,
    WithdrawRefused,
    WithdrawStatus,
    SubscriptionEndsSoon,
    SubscriptionExpired,
    WithdrawalSent,
    WithdrawalReturned,
    CryptoInvoice,
    PayButton,
    CryptoRefused,
    PaySupport,
    Terms,
    AnsweredInPrivate,
    OpenPrivately,
    WithdrawChooseCurrency,
}

impl Text {
    pub const ALL: [Text; 61] = [
        Text::Welcome, Text::Help, Text::Banned, Text::BalanceZero, Text::BalanceHeader, Text::DepositUsage,
        Text::DepositLimits, Text::InvoiceTitle, Text::InvoiceDescription, Text::PaymentReceived, Text::NotUnderstood,
        Text::InvoiceNotYours, Text::OnlyStars, Text::OutsideLimits, Text::ChooseLanguage, Text::LanguageChosen,
        Text::HistoryEmpty, Text::HistoryPage, Text::KindDeposit, Text::KindSubscription, Text::KindReferralCommission,
        Text::KindWithdrawal, Text::KindWithdrawalReturned, Text::KindPayout, Text::KindAdjustment, Text::KindRefund, Text::Confirm,
        Text::Cancel, Text::Cancelled, Text::Expired, Text::Plans, Text::PlanButton, Text::SubscribedUntil,
        Text::ConfirmPurchase, Text::Subscribed, Text::NotEnoughBalance, Text::UnknownPlan, Text::ReferralInfo,
        Text::ReferralEarned, Text::WithdrawNotEnough, Text::WithdrawAskAmount, Text::WithdrawBadAmount,
        Text::WithdrawAskAddress, Text::WithdrawBadAddress, Text::WithdrawConfirm, Text::WithdrawApproved,
        Text::WithdrawPendingReview, Text::WithdrawRefused, Text::WithdrawStatus, Text::SubscriptionEndsSoon,
        Text::SubscriptionExpired, Text::WithdrawalSent, Text::WithdrawalReturned, Text::CryptoInvoice, Text::PayButton,
        Text::CryptoRefused, Text::PaySupport, Text::Terms, Text::AnsweredInPrivate, Text::OpenPrivately,
        Text::WithdrawChooseCurrency,
    ];
}

type Table = &'static [(Lang, Text, &'static str)];

/// `{name}` placeholders are filled by `tr`.
const TRANSLATIONS: Table = &[
    (Lang::En, Text::Welcome, "Welcome! /balance shows your balance, /deposit adds Telegram Stars, /subscribe buys a subscription, /help lists everything."),
    (Lang::Ar, Text::Welcome, "أهلاً بك! ‎/balance‎ يعرض رصيدك، و‎/deposit‎ لإيداع نجوم تيليجرام، و‎/help‎ لعرض كل الأوامر."),
    (Lang::Ru, Text::Welcome, "Добро пожаловать! /balance — ваш баланс, /deposit — пополнить звёздами Telegram, /help — все команды."),
    (Lang::En, Text::Help, "/start — start\n/balance — your balance\n/history — your transactions\n/deposit 250 — deposit Telegram Stars\n/deposit 10 USDT — deposit USDT via @CryptoBot\n/subscribe — buy a subscription\n/referral — your referral link and earnings\n/withdraw — withdraw to your wallet\n/cancel — stop what you started\n/language — change the language\n/paysupport — help with a payment\n/terms — the terms\n/help — this list"),
    (Lang::Ar, Text::Help, "‎/start‎ — البدء\n‎/balance‎ — رصيدك\n‎/history‎ — معاملاتك\n‎/deposit 250‎ — إيداع نجوم تيليجرام\n‎/deposit 10 USDT‎ — إيداع USDT عبر ‎@CryptoBot‎\n‎/subscribe‎ — شراء اشتراك\n‎/referral‎ — رابط الإحالة وأرباحك\n‎/withdraw‎ — السحب إلى محفظتك\n‎/cancel‎ — إيقاف ما بدأته\n‎/language‎ — تغيير اللغة\n‎/paysupport‎ — المساعدة في دفعة\n‎/terms‎ — الشروط\n‎/help‎ — هذه القائمة"),
    (Lang::Ru, Text::Help, "/start — начать\n/balance — ваш баланс\n/history — ваши операции\n/deposit 250 — пополнить звёздами Telegram\n/deposit 10 USDT — пополнить USDT через @CryptoBot\n/subscribe — купить подписку\n/referral — реферальная ссылка и доход\n/withdraw — вывести на кошелёк\n/cancel — прервать начатое\n/language — сменить язык\n/paysupport — помощь с оплатой\n/terms — условия\n/help — этот список"),
    (Lang::En, Text::Banned, "Sorry, your account is suspended. If you think this is a mistake, please contact support."),
    (Lang::Ar, Text::Banned, "عذراً، حسابك موقوف. إذا كنت تعتقد أن هذا خطأ، يرجى التواصل مع الدعم."),
    (Lang::Ru, Text::Banned, "Извините, ваш аккаунт заблокирован. Если это ошибка, напишите в поддержку."),
    (Lang::En, Text::BalanceZero, "Your balance is 0."),
    (Lang::Ar, Text::BalanceZero, "رصيدك 0."),
    (Lang::Ru, Text::BalanceZero, "Ваш баланс: 0."),
    (Lang::En, Text::BalanceHeader, "Your balance:"),
    (Lang::Ar, Text::BalanceHeader, "رصيدك:"),
    (Lang::Ru, Text::BalanceHeader, "Ваш баланс:"),
    (Lang::En, Text::DepositUsage, "{error}. For example: /deposit 250"),
    (Lang::Ar, Text::DepositUsage, "{error}. مثال: ‎/deposit 250‎"),
    (Lang::Ru, Text::DepositUsage, "{error}. Например: /deposit 250"),
    (Lang::En, Text::CryptoInvoice, "Invoice for {amount}: pay it in @CryptoBot with the button below. Your balance is credited once it is paid."),
    (Lang::Ar, Text::CryptoInvoice, "فاتورة بمبلغ {amount}: ادفعها في ‎@CryptoBot‎ بالزر أدناه. يُضاف المبلغ إلى رصيدك بعد الدفع."),
    (Lang::Ru, Text::CryptoInvoice, "Счёт на {amount}: оплатите его в @CryptoBot кнопкой ниже. Баланс пополнится после оплаты."),
    (Lang::En, Text::PayButton, "Pay {amount}"),
    (Lang::Ar, Text::PayButton, "ادفع {amount}"),
    (Lang::Ru, Text::PayButton, "Оплатить {amount}"),
    (Lang::En, Text::CryptoRefused, "The payment service refused this invoice ({error}). Try another amount."),
    (Lang::Ar, Text::CryptoRefused, "رفضت خدمة الدفع هذه الفاتورة ({error}). جرّب مبلغًا آخر."),
    (Lang::Ru, Text::CryptoRefused, "Платёжный сервис отклонил этот счёт ({error}). Попробуйте другую сумму."),
    (Lang::En, Text::PaySupport, "Questions about a payment: write to {contact} with your user id {user_id} and what happened. Stars refunds are handled there too."),
    (Lang::Ar, Text::PaySupport, "للاستفسار عن دفعة: اكتب إلى {contact} مع رقمك ‎{user_id}‎ وما حدث. طلبات استرداد النجوم تُعالج هناك أيضًا."),
    (Lang::Ru, Text::PaySupport, "Вопросы об оплате: напишите {contact}, укажите ваш id {user_id} и что случилось. Возвраты звёзд — там же."),
    (Lang::En, Text::Terms, "Terms: deposits in Telegram Stars pay for subscriptions in this bot and are refunded only through /paysupport. USDT deposits and withdrawals go through @CryptoBot. Withdrawals are checked and may be held for review. Full terms: {url}"),
    (Lang::Ar, Text::Terms, "الشروط: الإيداع بنجوم تيليجرام يُستخدم للاشتراكات في هذا البوت ولا يُسترد إلا عبر ‎/paysupport‎. الإيداع والسحب بعملة USDT يتمّان عبر ‎@CryptoBot‎. تُراجَع طلبات السحب وقد تُعلَّق للمراجعة. الشروط كاملة: {url}"),
    (Lang::Ru, Text::Terms, "Условия: звёзды Telegram идут на подписки в этом боте и возвращаются только через /paysupport. Пополнение и вывод USDT — через @CryptoBot. Выводы проверяются и могут ждать проверки. Полные условия: {url}"),
    (Lang::En, Text::AnsweredInPrivate, "I answered you in our private chat."),
    (Lang::Ar, Text::AnsweredInPrivate, "أجبتك في محادثتنا الخاصة."),
    (Lang::Ru, Text::AnsweredInPrivate, "Я ответил вам в личном чате."),
    (Lang::En, Text::OpenPrivately, "Your money is not shown in groups: open a private chat with @{bot} and send the command there."),
    (Lang::Ar, Text::OpenPrivately, "لا تُعرض أموالك في المجموعات: افتح محادثة خاصة مع ‎@{bot}‎ وأرسل الأمر هناك."),
    (Lang::Ru, Text::OpenPrivately, "Ваши деньги не показываются в группах: откройте личный чат с @{bot} и отправьте команду там."),
    (Lang::En, Text::WithdrawChooseCurrency, "Which balance do you withdraw from?"),
    (Lang::Ar, Text::WithdrawChooseCurrency, "من أي رصيد تريد السحب؟"),
    (Lang::Ru, Text::WithdrawChooseCurrency, "С какого баланса вывести?"),
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
    (Lang::En, Text::KindDeposit, "deposit"),
    (Lang::Ar, Text::KindDeposit, "إيداع"),
    (Lang::Ru, Text::KindDeposit, "пополнение"),
    (Lang::En, Text::KindSubscription, "subscription"),
    (Lang::Ar, Text::KindSubscription, "اشتراك"),
    (Lang::Ru, Text::KindSubscription, "подписка"),
    (Lang::En, Text::KindReferralCommission, "referral commission"),
    (Lang::Ar, Text::KindReferralCommission, "عمولة إحالة"),
    (Lang::Ru, Text::KindReferralCommission, "реферальное вознаграждение"),
    (Lang::En, Text::KindWithdrawal, "withdrawal"),
    (Lang::Ar, Text::KindWithdrawal, "سحب"),
    (Lang::Ru, Text::KindWithdrawal, "вывод"),
    (Lang::En, Text::KindWithdrawalReturned, "withdrawal returned"),
    (Lang::Ar, Text::KindWithdrawalReturned, "إرجاع سحب"),
    (Lang::Ru, Text::KindWithdrawalReturned, "возврат вывода"),
    (Lang::En, Text::KindPayout, "payout sent"),
    (Lang::Ar, Text::KindPayout, "تم إرسال الدفعة"),
    (Lang::Ru, Text::KindPayout, "выплата отправлена"),
    (Lang::En, Text::KindAdjustment, "adjustment"),
    (Lang::Ar, Text::KindAdjustment, "تسوية"),
    (Lang::Ru, Text::KindAdjustment, "корректировка"),
    (Lang::En, Text::KindRefund, "payment refunded"),
    (Lang::Ar, Text::KindRefund, "استرداد الدفعة"),
    (Lang::Ru, Text::KindRefund, "возврат платежа"),
    (Lang::En, Text::Confirm, "Confirm"),
    (Lang::Ar, Text::Confirm, "تأكيد"),
    (Lang::Ru, Text::Confirm, "Подтвердить"),
    (Lang::En, Text::Cancel, "Cancel"),
    (Lang::Ar, Text::Cancel, "إلغاء"),
    (Lang::Ru, Text::Cancel, "Отмена"),
    (Lang::En, Text::Cancelled, "Cancelled."),
    (Lang::Ar, Text::Cancelled, "تم الإلغاء."),
    (Lang::Ru, Text::Cancelled, "Отменено."),
    (Lang::En, Text::Expired, "That request expired. Please start again."),
    (Lang::Ar, Text::Expired, "انتهت صلاحية هذا الطلب. يرجى البدء من جديد."),
    (Lang::Ru, Text::Expired, "Запрос устарел. Начните заново."),
    (Lang::En, Text::Plans, "Choose a plan:"),
    (Lang::Ar, Text::Plans, "اختر خطة:"),
    (Lang::Ru, Text::Plans, "Выберите тариф:"),
    (Lang::En, Text::PlanButton, "{plan}: {days} days, {price}"),
    (Lang::Ar, Text::PlanButton, "{plan}: {days} يوماً، {price}"),
    (Lang::Ru, Text::PlanButton, "{plan}: {days} дн., {price}"),
    (Lang::En, Text::SubscribedUntil, "Your subscription runs until {until}."),
    (Lang::Ar, Text::SubscribedUntil, "اشتراكك ساري حتى {until}."),
    (Lang::Ru, Text::SubscribedUntil, "Ваша подписка действует до {until}."),
    (Lang::En, Text::ConfirmPurchase, "Buy {plan} ({days} days) for {price} from your balance?"),
    (Lang::Ar, Text::ConfirmPurchase, "شراء {plan} ({days} يوماً) مقابل {price} من رصيدك؟"),
    (Lang::Ru, Text::ConfirmPurchase, "Купить {plan} ({days} дн.) за {price} с баланса?"),
    (Lang::En, Text::Subscribed, "Done: {plan} until {until}."),
    (Lang::Ar, Text::Subscribed, "تم: {plan} حتى {until}."),
    (Lang::Ru, Text::Subscribed, "Готово: {plan} до {until}."),
    (Lang::En, Text::NotEnoughBalance, "Not enough balance: {amount} needed. /deposit adds funds."),
    (Lang::Ar, Text::NotEnoughBalance, "الرصيد غير كافٍ: المطلوب {amount}. ‎/deposit‎ لإضافة رصيد."),
    (Lang::Ru, Text::NotEnoughBalance, "Недостаточно средств: нужно {amount}. /deposit — пополнить."),
    (Lang::En, Text::UnknownPlan, "That plan is no longer offered. /subscribe shows the current ones."),
    (Lang::Ar, Text::UnknownPlan, "هذه الخطة لم تعد متاحة. ‎/subscribe‎ يعرض الخطط الحالية."),
    (Lang::Ru, Text::UnknownPlan, "Этого тарифа больше нет. /subscribe — текущие тарифы."),
    (Lang::En, Text::ReferralInfo, "Your referral link: {link}\nInvited: {count}\nEarned: {earned}\nYou get {percent}% of every subscription your referrals buy."),
    (Lang::Ar, Text::ReferralInfo, "رابط الإحالة الخاص بك: {link}\nالمدعوون: {count}\nالأرباح: {earned}\nتحصل على {percent}% من كل اشتراك يشتريه من دعوتهم."),
    (Lang::Ru, Text::ReferralInfo, "Ваша реферальная ссылка: {link}\nПриглашено: {count}\nЗаработано: {earned}\nВы получаете {percent}% от каждой подписки ваших рефералов."),
    (Lang::En, Text::ReferralEarned, "You earned {amount}: someone you invited bought a subscription."),
    (Lang::Ar, Text::ReferralEarned, "ربحت {amount}: أحد من دعوتهم اشترى اشتراكاً."),
    (Lang::Ru, Text::ReferralEarned, "Вы заработали {amount}: ваш реферал купил подписку."),
    (Lang::En, Text::WithdrawNotEnough, "You can withdraw from {min} (fee {fee}); your available balance is {available}."),
    (Lang::Ar, Text::WithdrawNotEnough, "يمكنك السحب بدءاً من {min} (الرسوم {fee})؛ رصيدك المتاح {available}."),
    (Lang::Ru, Text::WithdrawNotEnough, "Вывод — от {min} (комиссия {fee}); доступно {available}."),
    (Lang::En, Text::WithdrawAskAmount, "How much do you want to withdraw? From {min} to {max}; available {available}, fee {fee}. /cancel stops."),
    (Lang::Ar, Text::WithdrawAskAmount, "كم تريد أن تسحب؟ من {min} إلى {max}؛ المتاح {available}، الرسوم {fee}. ‎/cancel‎ للإيقاف."),
    (Lang::Ru, Text::WithdrawAskAmount, "Сколько вывести? От {min} до {max}; доступно {available}, комиссия {fee}. /cancel — прервать."),
    (Lang::En, Text::WithdrawBadAmount, "That amount does not work: {error}. Send another, or /cancel."),
    (Lang::Ar, Text::WithdrawBadAmount, "هذا المبلغ غير مقبول: {error}. أرسل مبلغاً آخر، أو ‎/cancel‎."),
    (Lang::Ru, Text::WithdrawBadAmount, "Эта сумма не подходит: {error}. Отправьте другую или /cancel."),
    (Lang::En, Text::WithdrawAskAddress, "Send the {format} address to pay {amount} to."),
    (Lang::Ar, Text::WithdrawAskAddress, "أرسل عنوان {format} الذي سيُدفع إليه {amount}."),
    (Lang::Ru, Text::WithdrawAskAddress, "Отправьте адрес {format} для выплаты {amount}."),
    (Lang::En, Text::WithdrawBadAddress, "That is not a {format} address. Send it again, or /cancel."),
    (Lang::Ar, Text::WithdrawBadAddress, "هذا ليس عنوان {format}. أرسله مرة أخرى، أو ‎/cancel‎."),
    (Lang::Ru, Text::WithdrawBadAddress, "Это не адрес {format}. Отправьте ещё раз или /cancel."),
    (Lang::En, Text::WithdrawConfirm, "Withdraw {amount} (fee {fee}) to {address}?"),
    (Lang::Ar, Text::WithdrawConfirm, "سحب {amount} (الرسوم {fee}) إلى {address}؟"),
    (Lang::Ru, Text::WithdrawConfirm, "Вывести {amount} (комиссия {fee}) на {address}?"),
    (Lang::En, Text::WithdrawApproved, "Withdrawal of {amount} approved; it is on its way."),
    (Lang::Ar, Text::WithdrawApproved, "تمت الموافقة على سحب {amount}؛ الدفعة في الطريق."),
    (Lang::Ru, Text::WithdrawApproved, "Вывод {amount} одобрен и уже отправляется."),
    (Lang::En, Text::WithdrawPendingReview, "Withdrawal of {amount} requested; the amount is set aside until a review approves it."),
    (Lang::Ar, Text::WithdrawPendingReview, "تم طلب سحب {amount}؛ المبلغ محجوز حتى تتم مراجعته."),
    (Lang::Ru, Text::WithdrawPendingReview, "Запрошен вывод {amount}; сумма зарезервирована до проверки."),
    (Lang::En, Text::WithdrawRefused, "The withdrawal of {amount} was refused: {reason}."),
    (Lang::Ar, Text::WithdrawRefused, "رُفض سحب {amount}: {reason}."),
    (Lang::Ru, Text::WithdrawRefused, "Вывод {amount} отклонён: {reason}."),
    (Lang::En, Text::WithdrawStatus, "Your withdrawal of {amount} is {status}."),
    (Lang::Ar, Text::WithdrawStatus, "حالة سحب {amount}: {status}."),
    (Lang::Ru, Text::WithdrawStatus, "Статус вывода {amount}: {status}."),
    (Lang::En, Text::SubscriptionEndsSoon, "Your subscription ends on {date}. /subscribe to extend it."),
    (Lang::Ar, Text::SubscriptionEndsSoon, "ينتهي اشتراكك في {date}. أرسل /subscribe لتمديده."),
    (Lang::Ru, Text::SubscriptionEndsSoon, "Ваша подписка заканчивается {date}. /subscribe — продлить."),
    (Lang::En, Text::SubscriptionExpired, "Your subscription has ended. /subscribe to renew it."),
    (Lang::Ar, Text::SubscriptionExpired, "انتهى اشتراكك. أرسل /subscribe لتجديده."),
    (Lang::Ru, Text::SubscriptionExpired, "Ваша подписка закончилась. /subscribe — возобновить."),
    (Lang::En, Text::WithdrawalSent, "Your withdrawal of {amount} was sent."),
    (Lang::Ar, Text::WithdrawalSent, "تم إرسال سحب {amount}."),
    (Lang::Ru, Text::WithdrawalSent, "Вывод {amount} отправлен."),
    (Lang::En, Text::WithdrawalReturned, "Your withdrawal of {amount} did not go through; the money is back in your balance."),
    (Lang::Ar, Text::WithdrawalReturned, "لم يتم سحب {amount}؛ أُعيد المبلغ إلى رصيدك."),
    (Lang::Ru, Text::WithdrawalReturned, "Вывод {amount} не прошёл; деньги вернулись на баланс."),
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
        for text in Text::ALL {
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
