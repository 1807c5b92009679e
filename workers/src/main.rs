use std::process::ExitCode;

use clap::Parser;
use obentchi_core::service::{self, ConfigArgs};

/// OBENTCHI worker pools: payments, withdrawals, outbound messages, broadcasts.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service::main(&cli.config, obentchi_workers::run)
}
