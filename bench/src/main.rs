//! `obentchi-bench <benchmark>`: each benchmark starts the servers it needs on loopback and
//! prints a Markdown table for docs/BENCHMARKS.md. Run release builds via scripts/bench.sh.

mod admin_api;
mod e2e;
mod ledger;
mod measure;
mod payments;
mod receiver;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "OBENTCHI benchmarks")]
struct Cli {
    #[command(subcommand)]
    benchmark: Benchmark,
}

#[derive(Subcommand)]
enum Benchmark {
    /// Ledger postings per second: deposit credits and subscription purchases.
    Ledger(ledger::Args),
    /// Payment jobs end to end through the payment pool, with ledger writes.
    Payments(payments::Args),
    /// The webhook receiver under wrk (needs `--bot <release obentchi-bot>`).
    Receiver(receiver::Args),
    /// Webhook to reply through every process, against the grammY peer (`scripts/bench.sh e2e`).
    E2e(e2e::Args),
    /// The admin API under wrk: /healthz and GET /admin/queues (needs `--http <release obentchi-http>`).
    AdminApi(admin_api::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().benchmark {
        Benchmark::Ledger(args) => ledger::run(args).await,
        Benchmark::Payments(args) => payments::run(args).await,
        Benchmark::Receiver(args) => receiver::run(args).await,
        Benchmark::AdminApi(args) => admin_api::run(args).await,
        Benchmark::E2e(args) => e2e::run(args).await,
    }
}
