# Russian.

welcome = Добро пожаловать! /balance — ваш баланс, /deposit — пополнить звёздами Telegram, /subscribe — купить подписку, /help — все команды.
help =
    /start — начать
    /balance — ваш баланс
    /history — ваши операции
    /deposit 250 — пополнить звёздами Telegram
    /deposit 10 USDT — пополнить USDT через @CryptoBot
    /subscribe — купить подписку
    /referral — реферальная ссылка и доход
    /withdraw — вывести на кошелёк
    /cancel — прервать начатое
    /language — сменить язык
    /paysupport — помощь с оплатой
    /support — написать нашей команде
    /notifications — включить или выключить новости и напоминания
    /terms — условия
    /help — этот список
banned = Извините, ваш аккаунт заблокирован. Если это ошибка, напишите в поддержку.
balance-zero = Ваш баланс: 0.
balance-header = Ваш баланс:
deposit-usage = { $error }. Например: /deposit 250
deposit-limits = Пополнение — от { $min } до { $max }, например /deposit 250.
invoice-title = Пополнение { $amount }
invoice-description = Добавит { $amount } на ваш баланс.
payment-received = Платёж получен: { $amount }. Он появится в /balance через мгновение.
not-understood = Я не понял. /help — что я умею.
invoice-not-yours = Этот счёт выставлен не вам.
only-stars = Принимаются только звёзды Telegram.
outside-limits = Сумма вне лимитов пополнения.
choose-language = Выберите язык:
language-chosen = Язык: русский.
history-empty = Операций пока нет.
history-page = История, страница { $page }:
history-line = { $date } · { $kind } · { $change }
kind-deposit = пополнение
kind-subscription = подписка
kind-referral-commission = реферальное вознаграждение
kind-withdrawal = вывод
kind-withdrawal-returned = возврат вывода
kind-payout = выплата отправлена
kind-adjustment = корректировка
kind-refund = возврат платежа
confirm = Подтвердить
cancel = Отмена
cancelled = Отменено.
expired = Запрос устарел. Начните заново.
plans = Выберите тариф:
plan-button = { $plan }: { $days ->
        [one] { $days } день
        [few] { $days } дня
        [many] { $days } дней
       *[other] { $days } дня
    }, { $price }
subscribed-until = Ваша подписка действует до { $until }.
confirm-purchase = Купить { $plan } ({ $days ->
        [one] { $days } день
        [few] { $days } дня
        [many] { $days } дней
       *[other] { $days } дня
    }) за { $price } с баланса?
subscribed = Готово: { $plan } до { $until }.
not-enough-balance = Недостаточно средств: нужно { $amount }. /deposit — пополнить.
unknown-plan = Этого тарифа больше нет. /subscribe — текущие тарифы.
referral-info =
    Ваша реферальная ссылка: { $link }
    Приглашено: { $count ->
        [one] { $count } человек
        [few] { $count } человека
        [many] { $count } человек
       *[other] { $count } человека
    }
    Заработано: { $earned }
    Вы получаете { $percent } % от каждой подписки ваших рефералов.
referral-earned = Вы заработали { $amount }: ваш реферал купил подписку.
withdraw-not-enough = Вывод — от { $min } (комиссия { $fee }); доступно { $available }.
withdraw-ask-amount = Сколько вывести? От { $min } до { $max }; доступно { $available }, комиссия { $fee }. /cancel — прервать.
withdraw-bad-amount = Эта сумма не подходит: { $error }. Отправьте другую или /cancel.
withdraw-ask-address = Отправьте адрес { $format } для выплаты { $amount }.
withdraw-bad-address = Это не адрес { $format }. Отправьте ещё раз или /cancel.
withdraw-confirm = Вывести { $amount } (комиссия { $fee }) на { $address }?
withdraw-approved = Вывод { $amount } одобрен и уже отправляется.
withdraw-pending-review = Запрошен вывод { $amount }; сумма зарезервирована до проверки.
withdraw-refused = Вывод { $amount } отклонён: { $reason }.
withdraw-status = Ваш вывод { $amount }: { $status ->
        [requested] ждёт проверки
        [approved] одобрен
        [processing] выплачивается
        [sent] отправлен
        [releasing] возвращается на баланс
        [released] возвращён на баланс
        [rejected] отклонён
       *[other] { $status }
    }.
subscription-ends-soon = Ваша подписка заканчивается { $date }. /subscribe — продлить.
subscription-expired = Ваша подписка закончилась. /subscribe — возобновить.
withdrawal-sent = Вывод { $amount } отправлен.
withdrawal-returned = Вывод { $amount } не прошёл; деньги вернулись на баланс.
crypto-invoice = Счёт на { $amount }: оплатите его в @CryptoBot кнопкой ниже. Баланс пополнится после оплаты.
pay-button = Оплатить { $amount }
crypto-refused = Платёжный сервис отклонил этот счёт ({ $error }). Попробуйте другую сумму.
pay-support = Вопросы об оплате: опишите, что случилось, в следующем сообщении — наша команда ответит здесь. Ваш id: { $user_id }; можно также написать { $contact }. Возвраты звёзд — тоже здесь. /cancel — прервать.
terms = Условия: звёзды Telegram идут на подписки в этом боте и возвращаются только через /paysupport. Пополнение и вывод USDT — через @CryptoBot. Выводы проверяются и могут ждать проверки. Полные условия: { $url }
answered-in-private = Я ответил вам в личном чате.
open-privately = Ваши деньги не показываются в группах: откройте личный чат с @{ $bot } и отправьте команду там.
withdraw-choose-currency = С какого баланса вывести?
amount-empty = введите сумму, например 12,5
amount-negative = сумма не может быть отрицательной
amount-not-a-number = «{ $input }» — не сумма: используйте цифры, например 12,5
amount-too-many-decimals = { $currency } допускает { $max ->
        [0] только целые суммы
        [one] не более { $max } знака после запятой
       *[other] не более { $max } знаков после запятой
    }
amount-too-large = слишком большая сумма: не более { $max }
amount-not-positive = сумма должна быть больше 0
asset-not-offered = { $currency } не принимается
withdraw-below-min = минимальный вывод — { $min }
withdraw-above-max = максимальный вывод — { $max }
withdraw-over-daily-limit = превышен дневной лимит: сегодня осталось { $left }
withdraw-short-of-fee = доступно { $available }, с комиссией нужно { $needed }
support-started = Напишите вопрос в следующем сообщении — он уйдёт нашей команде, ответ придёт сюда. /cancel — прервать.
support-sent = Отправлено нашей команде. Ответ придёт сюда.
support-answer = Поддержка: { $text }
support-closed = Ваше обращение в поддержку закрыто. /support — открыть снова.
notifications =
    Что мне можно присылать без запроса?
    Новости и предложения: { $broadcasts ->
        [on] включены
       *[off] выключены
    }
    Напоминания о подписке: { $reminders ->
        [on] включены
       *[off] выключены
    }
notification-button = { $state ->
        [on] Выключить
       *[off] Включить
    }: { $kind ->
        [broadcasts] новости и предложения
       *[reminders] напоминания о подписке
    }
withdraw-fee-changed = Комиссия за вывод теперь { $fee }.
access-granted = Ваш тариф включает наш закрытый канал: откройте ссылку и подайте заявку — её одобрят, пока действует подписка: { $link }
access-by-request = Ваш тариф включает наш закрытый канал: подайте заявку на вступление — её одобрят, пока действует подписка.
access-needs-subscription = Для вступления нужна подписка, включающая канал. /subscribe — тарифы.
access-ended = Ваша подписка закончилась, поэтому вы удалены из закрытого канала. /subscribe — вернуться.
