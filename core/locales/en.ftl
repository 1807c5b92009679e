# English. Message ids are those of `Text` in core/src/i18n.rs; every locale has every one
# (the locale test checks it).

welcome = Welcome! /balance shows your balance, /deposit adds Telegram Stars, /subscribe buys a subscription, /help lists everything.
help =
    /start — start
    /balance — your balance
    /history — your transactions
    /deposit 250 — deposit Telegram Stars
    /deposit 10 USDT — deposit USDT via @CryptoBot
    /subscribe — buy a subscription
    /referral — your referral link and earnings
    /withdraw — withdraw to your wallet
    /cancel — stop what you started
    /language — change the language
    /paysupport — help with a payment
    /support — write to our team
    /notifications — news and reminders on or off
    /terms — the terms
    /help — this list
banned = Sorry, your account is suspended. If you think this is a mistake, please contact support.
balance-zero = Your balance is 0.
balance-header = Your balance:
deposit-usage = { $error }. For example: /deposit 250
deposit-limits = Deposits are { $min } to { $max }, for example /deposit 250.
invoice-title = Deposit { $amount }
invoice-description = Adds { $amount } to your balance.
payment-received = Payment received: { $amount }. It will show in /balance in a moment.
not-understood = I did not understand that. /help lists what I can do.
invoice-not-yours = This invoice is not yours.
only-stars = Only Telegram Stars are accepted.
outside-limits = This amount is outside the deposit limits.
choose-language = Choose your language:
language-chosen = Language set: English.
history-empty = No transactions yet.
history-page = History, page { $page }:
history-line = { $date } · { $kind } · { $change }
kind-deposit = deposit
kind-subscription = subscription
kind-referral-commission = referral commission
kind-withdrawal = withdrawal
kind-withdrawal-returned = withdrawal returned
kind-payout = payout sent
kind-adjustment = adjustment
kind-refund = payment refunded
confirm = Confirm
cancel = Cancel
cancelled = Cancelled.
expired = That request expired. Please start again.
plans = Choose a plan:
plan-button = { $plan }: { $days ->
        [one] { $days } day
       *[other] { $days } days
    }, { $price }
subscribed-until = Your subscription runs until { $until }.
confirm-purchase = Buy { $plan } ({ $days ->
        [one] { $days } day
       *[other] { $days } days
    }) for { $price } from your balance?
subscribed = Done: { $plan } until { $until }.
not-enough-balance = Not enough balance: { $amount } needed. /deposit adds funds.
unknown-plan = That plan is no longer offered. /subscribe shows the current ones.
referral-info =
    Your referral link: { $link }
    Invited: { $count ->
        [one] { $count } person
       *[other] { $count } people
    }
    Earned: { $earned }
    You get { $percent }% of every subscription your referrals buy.
referral-earned = You earned { $amount }: someone you invited bought a subscription.
withdraw-not-enough = You can withdraw from { $min } (fee { $fee }); your available balance is { $available }.
withdraw-ask-amount = How much do you want to withdraw? From { $min } to { $max }; available { $available }, fee { $fee }. /cancel stops.
withdraw-bad-amount = That amount does not work: { $error }. Send another, or /cancel.
withdraw-ask-address = Send the { $format } address to pay { $amount } to.
withdraw-bad-address = That is not a { $format } address. Send it again, or /cancel.
withdraw-confirm = Withdraw { $amount } (fee { $fee }) to { $address }?
withdraw-approved = Withdrawal of { $amount } approved; it is on its way.
withdraw-pending-review = Withdrawal of { $amount } requested; the amount is set aside until a review approves it.
withdraw-refused = The withdrawal of { $amount } was refused: { $reason }.
withdraw-status = Your withdrawal of { $amount } is { $status ->
        [requested] waiting for review
        [approved] approved
        [processing] being paid out
        [sent] sent
        [releasing] being returned to your balance
        [released] returned to your balance
        [rejected] refused
       *[other] { $status }
    }.
subscription-ends-soon = Your subscription ends on { $date }. /subscribe to extend it.
subscription-expired = Your subscription has ended. /subscribe to renew it.
withdrawal-sent = Your withdrawal of { $amount } was sent.
withdrawal-returned = Your withdrawal of { $amount } did not go through; the money is back in your balance.
crypto-invoice = Invoice for { $amount }: pay it in @CryptoBot with the button below. Your balance is credited once it is paid.
pay-button = Pay { $amount }
crypto-refused = The payment service refused this invoice ({ $error }). Try another amount.
pay-support = Questions about a payment: describe what happened in your next message, and our team answers here. Your user id is { $user_id }; you can also write to { $contact }. Stars refunds are handled here too. /cancel stops.
terms = Terms: deposits in Telegram Stars pay for subscriptions in this bot and are refunded only through /paysupport. USDT deposits and withdrawals go through @CryptoBot. Withdrawals are checked and may be held for review. Full terms: { $url }
answered-in-private = I answered you in our private chat.
open-privately = Your money is not shown in groups: open a private chat with @{ $bot } and send the command there.
withdraw-choose-currency = Which balance do you withdraw from?
amount-empty = enter an amount, for example 12.5
amount-negative = the amount must not be negative
amount-not-a-number = “{ $input }” is not an amount: use digits, for example 12.5
amount-too-many-decimals = { $currency } allows { $max ->
        [0] whole amounts only
        [one] at most { $max } decimal place
       *[other] at most { $max } decimal places
    }
amount-too-large = the amount is too large: at most { $max }
amount-not-positive = the amount must be more than 0
asset-not-offered = { $currency } is not offered
withdraw-below-min = the minimum withdrawal is { $min }
withdraw-above-max = the maximum withdrawal is { $max }
withdraw-over-daily-limit = over the daily limit: { $left } left today
withdraw-short-of-fee = { $available } available, { $needed } needed with the fee
support-started = Write your question in your next message; it goes to our team, who answer here. /cancel stops.
support-sent = Sent to our team. Their answer comes here.
support-answer = Support: { $text }
support-closed = Your support request is closed. /support opens it again.
notifications =
    What may I send you unasked?
    News and offers: { $broadcasts ->
        [on] on
       *[off] off
    }
    Subscription reminders: { $reminders ->
        [on] on
       *[off] off
    }
notification-button = { $state ->
        [on] Turn off
       *[off] Turn on
    }: { $kind ->
        [broadcasts] news and offers
       *[reminders] subscription reminders
    }
withdraw-fee-changed = The withdrawal fee is now { $fee }.
access-granted = Your plan includes our private channel: open this link and ask to join; your request is approved while your subscription runs: { $link }
access-by-request = Your plan includes our private channel: ask to join it, and your request is approved while your subscription runs.
access-needs-subscription = Joining needs a subscription that includes the channel. /subscribe shows the plans.
access-ended = Your subscription ended, so you were removed from the private channel. /subscribe to come back.
