use std::process::ExitCode;

use clap::Parser;
use obentchi_core::service::{self, ConfigArgs};

/// OBENTCHI scheduler: periodic jobs under one leader.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service::main(&cli.config, obentchi_scheduler::run)
}
