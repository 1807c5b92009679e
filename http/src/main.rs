use std::process::ExitCode;

use clap::{Parser, Subcommand};
use obentchi_core::service::{self, ConfigArgs};
use obentchi_http::Config;

/// OBENTCHI admin and ops HTTP API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Create MongoDB collections and indexes, and shard them when connected to a mongos.
    /// Idempotent; run once per deploy.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => service::main(&cli.config, obentchi_http::serve),
        Command::Migrate => service::main(&cli.config, |config: Config| async move {
            let report = obentchi_http::migrate(&config.mongodb).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }),
    }
}
