//! Stand-ins for external systems, for local runs (scripts/run-local.sh): the payout provider
//! and the Telegram Bot API.
//! Usage: obentchi-fakes [--payout-addr 127.0.0.1:9099] [--bot-api-addr 127.0.0.1:9098]

use std::time::Duration;

use obentchi_testkit::{FakeBotApi, FakePayoutProvider, PayoutMode};

fn flag(args: &[String], name: &str, default: &str) -> String {
    args.windows(2).find(|pair| pair[0] == name).map_or(default.to_owned(), |pair| pair[1].clone())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let provider = FakePayoutProvider::start_on(&flag(&args, "--payout-addr", "127.0.0.1:9099"), PayoutMode::Succeed).await;
    let bot_api = FakeBotApi::start_on(&flag(&args, "--bot-api-addr", "127.0.0.1:9098")).await;
    println!("fake payout provider on {}", provider.base_url());
    println!("fake Bot API on {}", bot_api.url());
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
