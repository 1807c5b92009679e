//! Stand-ins for external systems, for local runs (scripts/run-local.sh): the payout provider.
//! Usage: obentchi-fakes [--payout-addr 127.0.0.1:9099]

use std::time::Duration;

use obentchi_testkit::{FakePayoutProvider, PayoutMode};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .windows(2)
        .find(|pair| pair[0] == "--payout-addr")
        .map_or("127.0.0.1:9099".to_owned(), |pair| pair[1].clone());
    let provider = FakePayoutProvider::start_on(&addr, PayoutMode::Succeed).await;
    println!("fake payout provider on {}", provider.base_url());
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
