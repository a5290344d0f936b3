//! `tunas-profiler`: the command-line front end. Everything testable lives
//! in the library; this file parses arguments and maps errors to exit codes.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tunas_profiler::catalog;
use tunas_shared::load_space;

/// Measure what every op of a neural-architecture search space costs on
/// this device, and write it as a latency table for tunas-searcher.
///
/// Data (tables, CSV, JSON) goes to stdout; progress and logs go to stderr.
#[derive(Parser, Debug)]
#[command(name = "tunas-profiler", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the built-in search spaces, or print one as TOML.
    ///
    /// Columns: number of decisions, number of op keys a latency table for
    /// the space needs, log10 of the number of distinct networks, and the
    /// content hash that tables record.
    Spaces {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
        /// Print this space (a built-in name or a .toml file) as TOML, the
        /// format to copy when writing your own space.
        #[arg(long, value_name = "NAME")]
        show: Option<String>,
    },
    /// Print the op keys a space needs, as CSV (one row per op to profile).
    Ops {
        /// A built-in space name (see `spaces`) or a path to a .toml file.
        #[arg(long, value_name = "NAME|FILE.toml")]
        space: String,
        /// Batch size of every op.
        #[arg(long, default_value_t = 1)]
        batch: u32,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Spaces { json, show } => {
            if let Some(name) = show {
                let space = load_space(&name)?;
                print!("{}", space.to_toml());
            } else if json {
                let list = catalog::builtin_summaries();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", catalog::summaries_text(&catalog::builtin_summaries()));
            }
        }
        Command::Ops { space, batch } => {
            anyhow::ensure!(batch >= 1, "--batch must be at least 1");
            let space = load_space(&space).context("--space")?;
            print!("{}", catalog::op_keys_csv(&space, batch));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
