//! The invariants, checked at the end of a run from MongoDB (the source of truth) and from the
//! fakes' own records (what Telegram took, what the gateway reported, what the payout provider
//! executed) — never from the platform's own counters. Each check prints its numbers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use obentchi_core::i18n::{tr, Lang, Text};
use obentchi_core::ledger::Ledger;
use obentchi_core::storage::{collections, Store};
use obentchi_testkit::{FakeBotApi, FakePayoutProvider};

use crate::platform::{COMMISSION_BPS, PLAN_DAYS, PLAN_PRICE, WITHDRAWAL_FEE};
use crate::traffic::Journal;

/// One invariant: what was measured, and every way it was broken.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub numbers: String,
    pub violations: Vec<String>,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

async fn all(store: &Store, collection: &str, filter: Document) -> anyhow::Result<Vec<Document>> {
    let cursor = store.collection::<Document>(collection).find(filter).await?;
    Ok(cursor.try_collect().await?)
}

fn int(doc: &Document, key: &str) -> i64 {
    match doc.get(key) {
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Int32(v)) => i64::from(*v),
        _ => 0,
    }
}

fn text<'a>(doc: &'a Document, key: &str) -> &'a str {
    doc.get_str(key).unwrap_or_default()
}

/// The amount a posting moved onto `account` (summed over its entries).
fn moved(posting: &Document, account: &str) -> i64 {
    posting
        .get_array("entries")
        .map(|entries| {
            entries.iter().filter_map(Bson::as_document).filter(|e| text(e, "account") == account).map(|e| int(e, "amount")).sum()
        })
        .unwrap_or(0)
}

fn millis(doc: &Document, key: &str) -> i64 {
    doc.get_datetime(key).map_or(i64::MIN, |d| d.timestamp_millis())
}

fn check(name: &'static str, numbers: String, violations: Vec<String>) -> Check {
    Check { name, numbers, violations }
}

/// Every invariant of a finished run.
pub async fn check_all(store: &Store, bot_api: &FakeBotApi, provider: &FakePayoutProvider, journal: &Journal) -> anyhow::Result<Vec<Check>> {
    let postings = all(store, collections::POSTINGS, doc! {}).await?;
    let withdrawals = all(store, collections::WITHDRAWALS, doc! {}).await?;
    let balances = all(store, collections::BALANCES, doc! {}).await?;
    let periods = all(store, collections::SUBSCRIPTIONS, doc! {}).await?;
    let users = all(store, collections::USERS, doc! {}).await?;
    let of_kind = |kind: &'static str| postings.iter().filter(move |p| text(p, "kind") == kind);
    let mut checks = Vec::new();

    // 1. Balances equal the sum of their entries; none is negative.
    let audit = Ledger::new(store.clone()).audit_all(4).await?;
    let negative = balances.iter().filter(|b| int(b, "amount") < 0).count();
    let mut violations: Vec<String> = audit.mismatches.iter().map(|m| format!("{m:?}")).collect();
    if negative > 0 {
        violations.push(format!("{negative} negative balances"));
    }
    checks.push(check(
        "balances equal the sum of their entries, none negative",
        format!("{} users audited, {} balance documents, {} mismatches, {negative} negative", audit.users, balances.len(), audit.mismatches.len()),
        violations,
    ));

    // 2. Every Stars charge Telegram took and every gateway payment the API accepted is
    //    credited exactly once, to its payer, for its amount; nothing else is credited.
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for transaction in bot_api.star_transactions() {
        let id = transaction["id"].as_str().unwrap_or_default().to_owned();
        if let Some(payer) = transaction["source"]["user"]["id"].as_i64() {
            expected.insert(format!("deposit:telegram_stars:{id}"), (payer, transaction["amount"].as_i64().unwrap_or(0)));
        }
    }
    let stars_charges = expected.len();
    for (id, (user, amount)) in &journal.gateway_accepted {
        expected.insert(format!("deposit:{}:{id}", crate::platform::GATEWAY), (*user, *amount));
    }
    let mut credited: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for posting in of_kind("deposit") {
        credited.entry(text(posting, "key").to_owned()).or_default().push((int(posting, "user_id"), moved(posting, "user:available")));
    }
    let mut violations = Vec::new();
    for (key, want) in &expected {
        match credited.get(key).map(Vec::as_slice) {
            Some([got]) if got == want => {}
            Some(got) => violations.push(format!("{key}: expected {want:?} once, credited {got:?}")),
            None => violations.push(format!("{key}: never credited")),
        }
    }
    for (key, got) in &credited {
        if !expected.contains_key(key) {
            violations.push(format!("{key}: credited {got:?} but no fake accepted it"));
        }
    }
    if journal.stolen_accepted > 0 {
        violations.push(format!("{} gateway payments re-reported for another user were accepted", journal.stolen_accepted));
    }
    checks.push(check(
        "every Stars charge and accepted gateway payment credited exactly once",
        format!(
            "{stars_charges} Stars charges, {} gateway payments accepted, {} deposit postings; {} re-reports for another user refused",
            journal.gateway_accepted.len(),
            credited.values().map(Vec::len).sum::<usize>(),
            journal.stolen_refused
        ),
        violations,
    ));

    // 3. The provider executed each withdrawal id at most once.
    let executed = provider.executed();
    let doubled: Vec<String> = executed.iter().filter(|e| e.times != 1).map(|e| format!("{} executed {} times", e.id, e.times)).collect();
    checks.push(check(
        "the provider executed each withdrawal at most once",
        format!("{} payouts executed, {} executions", executed.len(), provider.total_executions()),
        doubled,
    ));

    // 4. Executed payouts are exactly the withdrawals marked sent; none is both sent and
    //    released in the ledger.
    let executed_ids: BTreeSet<&str> = executed.iter().map(|e| e.id.as_str()).collect();
    let sent: BTreeSet<&str> = withdrawals.iter().filter(|w| text(w, "status") == "sent").map(|w| text(w, "_id")).collect();
    let mut violations: Vec<String> = executed_ids.difference(&sent).map(|id| format!("{id}: executed, not marked sent")).collect();
    violations.extend(sent.difference(&executed_ids).map(|id| format!("{id}: marked sent, never executed")));
    let keys: BTreeSet<(i64, &str)> = postings.iter().map(|p| (int(p, "user_id"), text(p, "key"))).collect();
    let mut both = 0;
    for w in &withdrawals {
        let (user, request) = (int(w, "user_id"), text(w, "request_id"));
        let settled = keys.contains(&(user, format!("wd-settle:{request}").as_str()));
        let released = keys.contains(&(user, format!("wd-release:{request}").as_str()));
        if settled && released {
            both += 1;
            violations.push(format!("{}: both settled and released", text(w, "_id")));
        }
        if settled != (text(w, "status") == "sent") {
            violations.push(format!("{}: status {} but settlement posted: {settled}", text(w, "_id"), text(w, "status")));
        }
    }
    checks.push(check(
        "executed payouts equal withdrawals marked sent; none both sent and released",
        format!("{} executed, {} marked sent, {both} both settled and released", executed_ids.len(), sent.len()),
        violations,
    ));

    // 5. Every withdrawal ended; no ended withdrawal still holds money.
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for w in &withdrawals {
        *by_status.entry(text(w, "status")).or_default() += 1;
    }
    let open: Vec<String> = withdrawals
        .iter()
        .filter(|w| !["sent", "released", "rejected"].contains(&text(w, "status")))
        .map(|w| format!("{}: still {} ({})", text(w, "_id"), text(w, "status"), text(w, "reason")))
        .collect();
    let held: i64 = balances.iter().filter(|b| text(b, "account") == "user:withdrawal_hold").map(|b| int(b, "amount")).sum();
    let mut violations = open;
    if held != 0 {
        violations.push(format!("{held} XTR still held"));
    }
    checks.push(check(
        "no withdrawal left open, nothing left on hold",
        format!("{} withdrawals {by_status:?}; held {held}", withdrawals.len()),
        violations,
    ));

    // 6. Subscription days granted equal days bought.
    let purchases: Vec<&Document> = of_kind("subscription_purchase").collect();
    let period_days: HashMap<String, i64> = periods
        .iter()
        .map(|p| (text(p, "_id").to_owned(), (millis(p, "expires_at") - millis(p, "starts_at")) / 86_400_000))
        .collect();
    let mut violations = Vec::new();
    let days_bought = purchases.len() as i64 * PLAN_DAYS;
    let days_granted: i64 = period_days.values().sum();
    for purchase in &purchases {
        let key = text(purchase, "key").strip_prefix("sub:").unwrap_or_default();
        let period = format!("{}:{key}", int(purchase, "user_id"));
        match period_days.get(&period) {
            Some(days) if *days == PLAN_DAYS => {}
            other => violations.push(format!("{period}: purchase with period days {other:?}")),
        }
    }
    if days_granted != days_bought {
        violations.push(format!("{days_granted} days granted for {days_bought} bought"));
    }
    checks.push(check(
        "subscription days granted equal days bought",
        format!("{} purchases, {} periods, {days_bought} days bought, {days_granted} granted", purchases.len(), periods.len()),
        violations,
    ));

    // 7. Commission = rate × purchases made while the buyer had a referrer (registered with
    //    one before the purchase).
    let referrer_since: HashMap<i64, (i64, i64)> = users
        .iter()
        .filter_map(|u| match u.get("referrer_id") {
            Some(Bson::Int64(r)) => Some((int(u, "_id"), (*r, millis(u, "created_at")))),
            _ => None,
        })
        .collect();
    let mut expected_commission: BTreeMap<i64, i64> = BTreeMap::new();
    for purchase in &purchases {
        if let Some((referrer, since)) = referrer_since.get(&int(purchase, "user_id")) {
            if millis(purchase, "created_at") >= *since {
                *expected_commission.entry(*referrer).or_default() += PLAN_PRICE * COMMISSION_BPS / 10_000;
            }
        }
    }
    let mut paid_commission: BTreeMap<i64, i64> = BTreeMap::new();
    for posting in of_kind("referral_commission") {
        *paid_commission.entry(int(posting, "user_id")).or_default() += moved(posting, "user:available");
    }
    let mut violations = Vec::new();
    for referrer in expected_commission.keys().chain(paid_commission.keys()).collect::<BTreeSet<_>>() {
        let (want, got) = (expected_commission.get(referrer).copied().unwrap_or(0), paid_commission.get(referrer).copied().unwrap_or(0));
        if want != got {
            violations.push(format!("referrer {referrer}: expected {want}, paid {got}"));
        }
    }
    checks.push(check(
        "commission paid equals the rate times purchases made with a referrer",
        format!(
            "{} referrers, expected {}, paid {}",
            expected_commission.len(),
            expected_commission.values().sum::<i64>(),
            paid_commission.values().sum::<i64>()
        ),
        violations,
    ));

    // 8. Money is conserved: what users hold = deposits − payouts − fees − purchases +
    //    commissions (the platform's income is purchases + fees − commissions).
    let user_balances: i64 = balances.iter().filter(|b| text(b, "account").starts_with("user:")).map(|b| int(b, "amount")).sum();
    let deposits: i64 = expected.values().map(|(_, amount)| amount).sum();
    let payouts: i64 = executed.iter().map(|e| e.amount).sum();
    let fees = executed.len() as i64 * WITHDRAWAL_FEE;
    let bought = purchases.len() as i64 * PLAN_PRICE;
    let commissions: i64 = paid_commission.values().sum();
    let refunds: i64 = of_kind("payment_refund").map(|p| -moved(p, "user:available")).sum();
    let should_hold = deposits - refunds - payouts - fees - bought + commissions;
    let violations = if user_balances == should_hold {
        Vec::new()
    } else {
        vec![format!("users hold {user_balances}, the books say {should_hold}")]
    };
    checks.push(check(
        "money conserved: balances = deposits − refunds − payouts − fees − purchases + commissions",
        format!(
            "balances {user_balances} = {deposits} − {refunds} − {payouts} − {fees} − {bought} + {commissions}; platform income {}",
            bought + fees - commissions
        ),
        violations,
    ));

    // 9. Every acknowledged update had its effect, in order: each acknowledged /help got a
    //    reply (Telegram's sendMessage has no idempotency key, so a worker killed between
    //    Telegram's answer and its ack sends twice: counted, not a violation), and each user's
    //    language is the last one they chose.
    let help_texts: BTreeSet<String> = Lang::ALL.iter().map(|l| tr(*l, Text::Help, &[])).collect();
    let mut replies: HashMap<i64, u64> = HashMap::new();
    for call in bot_api.calls() {
        if call.status == 200 && call.body["text"].as_str().is_some_and(|t| help_texts.contains(t)) {
            *replies.entry(call.body["chat_id"].as_i64().unwrap_or_default()).or_default() += 1;
        }
    }
    let language: HashMap<i64, &str> = users.iter().map(|u| (int(u, "_id"), text(u, "language"))).collect();
    let mut violations = Vec::new();
    let (mut asked, mut duplicates) = (0, 0);
    for (user, updates) in &journal.help_acked {
        if bot_api.is_blocked(*user) {
            continue;
        }
        let acked = updates.len() as u64;
        asked += acked;
        let got = replies.get(user).copied().unwrap_or(0);
        duplicates += got.saturating_sub(acked);
        if got < acked {
            violations.push(format!("user {user}: /help acknowledged in updates {updates:?}, {got} answered"));
        }
    }
    for (user, last) in &journal.last_language {
        if language.get(user).copied() != Some(last.as_str()) {
            violations.push(format!("user {user}: last chose {last}, has {:?}", language.get(user)));
        }
    }
    checks.push(check(
        "every acknowledged update had its effect, each chat in order",
        format!(
            "{} updates acknowledged ({} never: Telegram gave up); {asked} /help answered with {duplicates} duplicate sends; {} users' last language choice kept",
            journal.updates_acked,
            journal.updates_given_up,
            journal.last_language.len()
        ),
        violations,
    ));
    Ok(checks)
}
