use std::process::ExitCode;

use clap::Parser;
use obentchi_core::service::{self, ConfigArgs};

/// OBENTCHI Telegram bot: webhook receivers and update consumers.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service::main(&cli.config, obentchi_bot::run)
}
