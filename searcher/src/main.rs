//! `tunas-searcher`: the command-line front end. Everything testable lives
//! in the library; this file parses arguments and maps errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tunas_searcher::estimate;
use tunas_shared::{Architecture, LatencyTable, load_space};

/// Search for the most accurate network that meets a latency target on your
/// device (TuNAS), using a latency table written by tunas-profiler.
///
/// Data (JSON, CSV) goes to stdout; progress and logs go to stderr.
#[derive(Parser, Debug)]
#[command(name = "tunas-searcher", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Estimate latency (from a table), FLOPs and parameters of one architecture.
    Estimate {
        /// A built-in space name or a path to a .toml file.
        #[arg(long, value_name = "NAME|FILE.toml")]
        space: String,
        /// Latency table written by `tunas-profiler profile` for this space;
        /// without it only FLOPs and parameters are reported.
        #[arg(long, value_name = "FILE")]
        table: Option<PathBuf>,
        /// The architecture: its compact text (one digit per decision),
        /// `largest`, or `random:SEED`.
        #[arg(long, value_name = "ARCH")]
        arch: String,
        /// Print JSON (`latency_ms`, `flops`, `params`) instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Estimate {
            space,
            table,
            arch,
            json,
        } => {
            let space = load_space(&space).context("--space")?;
            let arch = Architecture::parse_spec(&space, &arch).context("--arch")?;
            let table = table.map(|t| LatencyTable::read(&t)).transpose()?;
            let e = estimate::estimate(&space, table.as_ref(), &arch)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                print!("{}", estimate::estimate_text(&space, &arch, &e));
            }
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
