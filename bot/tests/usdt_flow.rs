//! USDT through Crypto Pay, as processes (receiver, consumer, workers, admin API) against the
//! fake Crypto Pay: `/deposit 20 USDT` → invoice → paid webhook delivered three times → one
//! credit → a subscription bought in USDT → a withdrawal paid by one transfer to the user's
//! Telegram account. Then the same with Crypto Pay answering like a stressed provider: the
//! transfer executes but its answer comes too late, the re-sent `spend_id` is refused as
//! already used, lookups lag, and a 429 and a 502 come first. The outcome must be the same: one
//! transfer, no refund.

mod support;

use std::time::Duration;

use mongodb::options::ClientOptions;
use obentchi_core::ids::UserId;
use obentchi_core::ledger::{Ledger, UserAccount};
use obentchi_core::money::Currency;
use obentchi_core::storage::{migrate, Store};
use obentchi_core::withdrawals::{WithdrawalStatus, Withdrawals};
use obentchi_testkit::updates::{self, TelegramUser};
use obentchi_testkit::{CryptoPayFaults, FakeBotApi, FakeCryptoPay, MongoServer, RedisServer};
use support::{deliver, shared_settings, start_platform};

const SECRET: &str = "usdt-flow-webhook-secret-of-at-least-32-bytes";
const CRYPTO_PAY_TOKEN: &str = "12345:AAtestCryptoPayToken";
const USER: i64 = 581_777_001;

async fn eventually<T>(what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
    support::eventually(what, Duration::from_secs(60), check).await
}

/// Runs the flow; returns how many `transfer` calls Crypto Pay received.
async fn usdt_flow(faults: CryptoPayFaults) -> u32 {
    let (redis, mongo) = (RedisServer::start(), MongoServer::start());
    let bot_api = FakeBotApi::start().await;
    let crypto_pay = FakeCryptoPay::start(CRYPTO_PAY_TOKEN).await;
    let store = Store::with_options(ClientOptions::parse(mongo.uri()).await.unwrap(), "obentchi").unwrap();
    migrate(&store).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("platform.toml");
    // The workers' claim on a withdrawal being paid (a top-level key, so first): longer than
    // cryptopay.timeout_ms.
    let settings = "withdrawal_lease_ms = 1500\n".to_owned()
        + &shared_settings(&mongo.uri(), &redis.url(), &bot_api.url(), SECRET)
        + &format!(
            r#"
[payout]
base_url = "http://127.0.0.1:9"
api_token = "unused: no on-chain payouts here"
timeout_ms = 800
[cryptopay]
base_url = "{crypto_pay}"
api_token = "{CRYPTO_PAY_TOKEN}"
timeout_ms = 800
[subscriptions]
plans = [{{ id = "month_usdt", price = "5 USDT", days = 30 }}]
[withdrawals]
min = "1 USDT"
max = "100 USDT"
daily_limit = "500 USDT"
fee = "0.5 USDT"
auto_approve_up_to = "50 USDT"
address_format = "telegram"
[queues.withdrawals]
max_attempts = 50
retry_backoff_base_ms = 200
retry_backoff_max_ms = 1000
"#,
            crypto_pay = crypto_pay.base_url(),
        );
    std::fs::write(&config, settings).unwrap();
    let (_platform, ports) = start_platform(&config, dir.path()).await;
    let client = reqwest::Client::new();
    let user = TelegramUser::new(USER, "Layla", Some("en"));
    let receiver = ports.receiver;
    let send = |update_id: u32, text: &str| {
        let (client, update) = (client.clone(), updates::message(update_id, update_id, &user, updates::text(text)).to_string());
        async move { assert_eq!(deliver(&client, receiver, SECRET, update).await, 200) }
    };
    let press = |update_id: u32, data: &str| {
        let (client, update) = (client.clone(), updates::callback_query(update_id, &user, 1, data).to_string());
        async move { assert_eq!(deliver(&client, receiver, SECRET, update).await, 200) }
    };
    let reply = |prefix: &'static str| {
        let bot_api = &bot_api;
        async move {
            eventually(prefix, async || {
                bot_api.calls_to(USER).into_iter().find(|c| c.body["text"].as_str().is_some_and(|t| t.starts_with(prefix))).map(|c| c.body)
            })
            .await
        }
    };
    let ledger = Ledger::new(store.clone());
    let available = async || ledger.balance(UserId::new(USER).unwrap(), UserAccount::Available, Currency::Usdt).await.unwrap().minor();

    // Deposit 20 USDT: an invoice with a pay button; the same update again makes no second one.
    send(1, "/deposit 20 USDT").await;
    send(1, "/deposit 20 USDT").await;
    let invoice = reply("Invoice for 20.00 USDT").await;
    let pay_url = invoice["reply_markup"]["inline_keyboard"][0][0]["url"].as_str().unwrap().to_owned();
    assert!(pay_url.starts_with("https://t.me/CryptoBot?start=IV"), "{invoice}");
    let invoice_id = eventually("the invoice", async || crypto_pay.invoice_ids().first().copied()).await;
    assert_eq!(crypto_pay.invoice_ids().len(), 1);

    // Paid; Crypto Pay delivers the webhook three times (its retries); one credit.
    let paid = crypto_pay.pay(invoice_id);
    let webhook = format!("http://127.0.0.1:{}/payments/cryptopay", ports.api);
    for _ in 0..3 {
        assert_eq!(crypto_pay.deliver_webhook(&webhook, &paid).await, 200);
    }
    let forged = paid.replace("\"20\"", "\"2000\"");
    let forged_status = client.post(&webhook).header("crypto-pay-api-signature", "00").body(forged).send().await.unwrap().status();
    assert_eq!(forged_status, 401, "an unsigned webhook is refused");
    eventually("the credit", async || (available().await == 20_000_000).then_some(())).await;

    // A subscription bought in USDT.
    send(2, "/subscribe").await;
    reply("Choose a plan").await;
    press(3, "sub:month_usdt").await;
    let confirm = reply("Buy month_usdt").await;
    let confirm_data = confirm["reply_markup"]["inline_keyboard"][0][0]["callback_data"].as_str().unwrap().to_owned();
    press(4, &confirm_data).await;
    reply("Done: month_usdt until").await;
    assert_eq!(available().await, 15_000_000);

    // From here on Crypto Pay answers the way this run's faults say (they concern payouts).
    crypto_pay.set_faults(faults);

    // Withdraw 10 USDT (+ 0.5 fee) to their own Telegram account: no address asked.
    send(5, "/withdraw").await;
    reply("How much").await;
    send(6, "10").await;
    reply("Withdraw 10.00 USDT (fee 0.50 USDT)").await;
    press(7, "wd:ok:5").await;
    press(7, "wd:ok:5").await;
    reply("Withdrawal of 10.00 USDT approved").await;
    let withdrawals = Withdrawals::new(&store, ledger.clone());
    let user_id = UserId::new(USER).unwrap();
    eventually("the withdrawal to be sent", async || {
        let w = withdrawals.get(user_id, "tg:5").await.unwrap();
        assert_ne!(w.status, WithdrawalStatus::Released, "money went back on an ambiguous answer: {w:?}");
        (w.status == WithdrawalStatus::Sent).then_some(())
    })
    .await;
    reply("Your withdrawal of 10.00 USDT was sent").await;

    let transfers = crypto_pay.transfers();
    assert_eq!(transfers.len(), 1, "one transfer: {transfers:?}");
    let (spend_id, to, asset, amount) = &transfers[0];
    assert_eq!((spend_id.as_str(), *to, asset.as_str(), amount.as_str()), (format!("{USER}:tg:5").as_str(), USER, "USDT", "10"));
    assert_eq!(available().await, 4_500_000);
    assert_eq!(ledger.balance(user_id, UserAccount::WithdrawalHold, Currency::Usdt).await.unwrap().minor(), 0);
    assert_eq!(ledger.audit_user(user_id).await.unwrap(), vec![]);
    crypto_pay.transfer_calls()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdt_deposit_subscription_and_withdrawal_through_crypto_pay() {
    assert_eq!(usdt_flow(CryptoPayFaults::default()).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdt_withdrawal_survives_a_late_answer_a_refused_resend_and_lagging_lookups() {
    let sends = usdt_flow(CryptoPayFaults {
        execute_then_answer_late: 1,
        late_by: Duration::from_millis(2_000),
        refuse_resent_spend_id: true,
        lookup_lag: 2,
        rate_limited_calls: 1,
        server_error_calls: 1,
    })
    .await;
    // The first send met a 429 and a lookup a 502; the send that executed answered too late and
    // lookups did not show the transfer, so it was sent again with the same spend_id and refused
    // as already used: still one transfer.
    assert!(sends >= 2, "the faults were exercised: {sends} transfer calls");
}
