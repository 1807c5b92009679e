//! Ledger postings per second against the local MongoDB-wire server: deposit credits, then
//! subscription purchases paid from those deposits.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use mongodb::options::ClientOptions;
use obentchi_core::ids::{IdempotencyKey, ProviderId, UserId};
use obentchi_core::ledger::{Ledger, PostOutcome, Posting};
use obentchi_core::money::{Currency, Money};
use obentchi_core::storage::{migrate, Store};
use obentchi_testkit::MongoServer;

use crate::measure::{build_profile, measure, Measured};

#[derive(clap::Args)]
pub struct Args {
    /// Postings per phase.
    #[arg(long, default_value_t = 20_000)]
    postings: u32,
    /// Distinct users the postings are spread over.
    #[arg(long, default_value_t = 5_000)]
    users: u32,
    /// Postings in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let server = MongoServer::start();
    let server_pid = server.pid().expect("server runs");
    let store = Store::with_options(ClientOptions::parse(server.uri()).await?, "obentchi_bench")?;
    migrate(&store).await?;
    let ledger = Arc::new(Ledger::new(store));
    let provider = ProviderId::new("telegram_stars")?;
    let user = move |i: u32| UserId::new(i64::from(i % args.users) + 1).expect("positive");

    let deposits = apply("deposit credit", args.postings, server_pid, args.concurrency, &ledger, |i| {
        Posting::deposit(user(i), key(format!("dep:{i}")), provider.clone(), usdt(10_000_000), "deposit")
    })
    .await?;
    let purchases = apply("subscription purchase", args.postings, server_pid, args.concurrency, &ledger, |i| {
        Posting::subscription_purchase(user(i), key(format!("sub:{i}")), usdt(1_000_000), "plan monthly")
    })
    .await?;

    println!("| phase | postings | postings/s | client CPU µs/posting | server CPU µs/posting |");
    println!("|---|---|---|---|---|");
    println!("{}", deposits.row(0));
    println!("{}", purchases.row(0));
    println!(
        "\n{} users, concurrency {}, secantusd-rs (WiredTiger, --cache-size 128M), {}",
        args.users,
        args.concurrency,
        build_profile()
    );
    Ok(())
}

/// Applies `postings` fresh postings built by `build`, `concurrency` at a time.
async fn apply(
    label: &str,
    postings: u32,
    server_pid: u32,
    concurrency: usize,
    ledger: &Arc<Ledger>,
    build: impl Fn(u32) -> Result<Posting, obentchi_core::ledger::PostingError>,
) -> anyhow::Result<Measured> {
    let all: Vec<Posting> = (0..postings).map(build).collect::<Result<_, _>>()?;
    let mut results = Vec::new();
    let measured = measure(label, u64::from(postings), server_pid, async {
        results = stream::iter(all)
            .map(|posting| {
                let ledger = ledger.clone();
                async move { ledger.post(&posting).await }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    })
    .await;
    for result in results {
        anyhow::ensure!(matches!(result?, PostOutcome::Applied(_)), "{label}: a fresh key was not applied");
    }
    Ok(measured)
}

fn key(k: String) -> IdempotencyKey {
    IdempotencyKey::new(k).expect("well-formed key")
}

fn usdt(minor: i64) -> Money {
    Money::from_minor(Currency::Usdt, minor)
}
