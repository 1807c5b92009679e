//! `/balance` and `/history` (paged, ◀ ▶).

use obentchi_core::i18n::{format_day, format_money, tr, Text};
use obentchi_core::ledger::{Account, PostingKind, UserAccount};
use obentchi_core::outbound::OutboundMessage;

use super::{button, keyboard, Caller, Deps, HandlerError, HandlerResult, UpdateId};

/// Transactions per /history page.
pub const HISTORY_PAGE: u32 = 5;

pub(super) async fn balance(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
    let lang = caller.lang;
    let balances = deps.ledger.balances(caller.id).await?;
    let lines: Vec<String> =
        balances.iter().filter(|b| b.account == UserAccount::Available).map(|b| format_money(lang, b.amount)).collect();
    let text = if lines.is_empty() {
        tr(lang, Text::BalanceZero, &[])
    } else {
        format!("{}\n{}", tr(lang, Text::BalanceHeader, &[]), lines.join("\n"))
    };
    deps.reply(update, chat, text).await
}

/// One page of the user's postings (newest first) as their effect on the available balance,
/// with ◀ ▶ buttons to the neighbouring pages.
pub(super) async fn history(deps: &Deps, caller: &Caller, chat: i64, page: u32, update: UpdateId) -> HandlerResult {
    deps.send(update, history_page(deps, caller, chat, page).await?).await
}

async fn history_page(deps: &Deps, caller: &Caller, chat: i64, page: u32) -> Result<OutboundMessage, HandlerError> {
    let page = page.max(1);
    let offset = u64::from((page - 1) * HISTORY_PAGE);
    // One more than a page tells whether a next page exists.
    let mut postings = deps.ledger.history(caller.id, offset, HISTORY_PAGE + 1).await?;
    let has_next = postings.len() > HISTORY_PAGE as usize;
    postings.truncate(HISTORY_PAGE as usize);
    if postings.is_empty() {
        return Ok(OutboundMessage::text(chat, tr(caller.lang, Text::HistoryEmpty, &[])));
    }
    let lines: Vec<String> = postings
        .iter()
        .map(|p| {
            let change = p
                .entries
                .iter()
                .filter(|e| e.account == Account::User(UserAccount::Available))
                .map(|e| format_money(caller.lang, e.amount))
                .collect::<Vec<_>>()
                .join(", ");
            let kind = tr(caller.lang, kind_text(p.kind), &[]);
            tr(caller.lang, Text::HistoryLine, &[("date", &format_day(caller.lang, p.created_at)), ("kind", &kind), ("change", &change)])
        })
        .collect();
    let mut buttons = Vec::new();
    if page > 1 {
        buttons.push(button("◀", format!("history:{}", page - 1)));
    }
    if has_next {
        buttons.push(button("▶", format!("history:{}", page + 1)));
    }
    let text = format!("{}\n{}", tr(caller.lang, Text::HistoryPage, &[("page", &page)]), lines.join("\n"));
    let reply_markup = (!buttons.is_empty()).then(|| keyboard(vec![buttons]));
    Ok(OutboundMessage { reply_markup, ..OutboundMessage::text(chat, text) })
}

fn kind_text(kind: PostingKind) -> Text {
    match kind {
        PostingKind::Deposit => Text::KindDeposit,
        PostingKind::SubscriptionPurchase => Text::KindSubscription,
        PostingKind::ReferralCommission => Text::KindReferralCommission,
        PostingKind::WithdrawalHold => Text::KindWithdrawal,
        PostingKind::HoldRelease => Text::KindWithdrawalReturned,
        PostingKind::PayoutSettle => Text::KindPayout,
        PostingKind::AdminAdjustment => Text::KindAdjustment,
        PostingKind::PaymentRefund => Text::KindRefund,
    }
}
