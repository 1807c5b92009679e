use std::process::ExitCode;

use clap::{Parser, Subcommand};
use obentchi_core::api_tokens::{ApiTokens, Scope};
use obentchi_core::service::{self, ConfigArgs};
use obentchi_core::storage::Store;
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
    /// Manage admin API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (the only time it is shown; only its hash is stored).
    Create {
        /// Who or what holds it, for the audit log.
        #[arg(long)]
        name: String,
        /// Repeat for several; `write` includes `read`.
        #[arg(long = "scope", value_enum, required = true)]
        scopes: Vec<Scope>,
    },
    /// Revoke a token by its id (the 16 hex digits after `obt_`).
    Revoke { id: String },
    /// List tokens (ids, names, scopes; never secrets).
    List,
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
        Command::Token(command) => service::main(&cli.config, |config: Config| async move {
            let tokens = ApiTokens::new(&Store::connect(&config.mongodb).await?);
            match command {
                TokenCommand::Create { name, scopes } => {
                    let (token, secret) = tokens.create(&name, &scopes).await?;
                    eprintln!("created token {} ({}) with scopes {:?}; store it now, it is not shown again", token.id, token.name, token.scopes);
                    println!("{secret}");
                }
                TokenCommand::Revoke { id } => {
                    anyhow::ensure!(tokens.revoke(&id).await?, "no token with id {id}");
                    eprintln!("revoked {id} (API replicas stop accepting it within token_cache_ms)");
                }
                TokenCommand::List => {
                    for token in tokens.list().await? {
                        let state = if token.revoked_at.is_some() { "revoked" } else { "active" };
                        println!("{}\t{}\t{:?}\t{}\t{}", token.id, token.name, token.scopes, token.created_at.to_rfc3339(), state);
                    }
                }
            }
            Ok(())
        }),
    }
}
