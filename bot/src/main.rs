use std::process::ExitCode;

use clap::{Parser, Subcommand};
use obentchi_bot::{webhook, Config};
use obentchi_core::service::{self, ConfigArgs};

/// OBENTCHI Telegram bot: webhook receivers and update consumers.
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
    /// Serve the webhook receiver (the default).
    Serve,
    /// Consume updates: handle each chat's updates in order.
    Consume,
    /// Manage the webhook registered with Telegram; run once per deploy.
    Webhook {
        #[command(subcommand)]
        action: WebhookAction,
    },
}

#[derive(Subcommand, Clone, Copy)]
enum WebhookAction {
    /// setWebhook with the public URL, secret, allowed updates and max connections from config.
    Set,
    /// deleteWebhook.
    Delete,
    /// getWebhookInfo.
    Info,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => service::main(&cli.config, obentchi_bot::run),
        Command::Consume => service::main(&cli.config, obentchi_bot::consume),
        Command::Webhook { action } => service::main(&cli.config, move |config: Config| async move {
            let outcome = match action {
                WebhookAction::Set => webhook::set(&config).await?,
                WebhookAction::Delete => webhook::delete(&config).await?,
                WebhookAction::Info => webhook::info(&config).await?,
            };
            println!("{outcome}");
            Ok(())
        }),
    }
}
