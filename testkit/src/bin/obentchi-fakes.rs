//! Stand-ins for external systems, for local runs (scripts/run-local.sh): the payout provider,
//! the Telegram Bot API, Crypto Pay, and the Telegram simulator's chat page, which talks to the
//! webhook receiver the way Telegram does.
//! Usage: obentchi-fakes [--payout-addr 127.0.0.1:9099] [--bot-api-addr 127.0.0.1:9098]
//!   [--crypto-pay-addr 127.0.0.1:9096] [--crypto-pay-token local-crypto-pay-token]
//!   [--simulator-addr 127.0.0.1:9097] [--webhook-url http://127.0.0.1:8081/telegram/webhook]
//!   [--webhook-secret local-webhook-secret-for-development-only]

use std::sync::Arc;
use std::time::Duration;

use obentchi_testkit::{FakeBotApi, FakeCryptoPay, FakePayoutProvider, PayoutMode, TelegramSimulator};

fn flag(args: &[String], name: &str, default: &str) -> String {
    args.windows(2).find(|pair| pair[0] == name).map_or(default.to_owned(), |pair| pair[1].clone())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let provider = FakePayoutProvider::start_on(&flag(&args, "--payout-addr", "127.0.0.1:9099"), PayoutMode::Succeed).await;
    let bot_api = Arc::new(FakeBotApi::start_on(&flag(&args, "--bot-api-addr", "127.0.0.1:9098")).await);
    let crypto_pay = FakeCryptoPay::start_on(
        &flag(&args, "--crypto-pay-addr", "127.0.0.1:9096"),
        &flag(&args, "--crypto-pay-token", "local-crypto-pay-token"),
    )
    .await;
    let simulator = TelegramSimulator::start_on(
        &flag(&args, "--simulator-addr", "127.0.0.1:9097"),
        bot_api.clone(),
        &flag(&args, "--webhook-url", "http://127.0.0.1:8081/telegram/webhook"),
        &flag(&args, "--webhook-secret", "local-webhook-secret-for-development-only"),
    )
    .await;
    println!("fake payout provider on {}", provider.base_url());
    println!("fake Bot API on {}", bot_api.url());
    println!("fake Crypto Pay on {}", crypto_pay.base_url());
    println!("Telegram simulator (chat page) on {}", simulator.url());
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
