//! `obentchi-chaos --profile small|full --seed N [--report FILE]`: one chaos run; prints the
//! report and exits 1 if any invariant was broken or the platform did not settle.

use std::path::PathBuf;

use clap::Parser;
use obentchi_chaos::{run, Options, Profile};

#[derive(Parser)]
struct Args {
    /// `small` (a few thousand money operations) or `full` (over 100,000).
    #[arg(long, default_value = "small")]
    profile: String,
    /// The seed of every random choice; a failing seed replays.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the report as Markdown to this file too.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Machine description for the report.
    #[arg(long, default_value = "this machine")]
    machine: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let profile = match args.profile.as_str() {
        "small" => Profile::small(),
        "full" => Profile::full(),
        other => anyhow::bail!("unknown profile {other:?} (small or full)"),
    };
    let bin_dir = std::env::current_exe()?.parent().expect("a binary lives in a directory").to_owned();
    let report = run(Options { profile, seed: args.seed, bin_dir, broken: None }).await?;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let markdown = report.markdown(&args.machine, &date);
    println!("{markdown}");
    if let Some(path) = args.report {
        std::fs::write(&path, &markdown)?;
    }
    if report.violations() > 0 || !report.settled {
        std::process::exit(1);
    }
    Ok(())
}
