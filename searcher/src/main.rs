//! `tunas-searcher`: the command-line front end. Everything testable lives
//! in the library; this file parses arguments and maps errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use baseline_cmd::{RandomArgs, TargetsArgs};
use clap::{Parser, Subcommand};
use export_cmd::ExportArgs;
use search_cmd::SearchArgs;
use tunas_searcher::estimate;

mod baseline_cmd;
mod bench_cmd;
mod benchmark_cmd;
mod data_cmd;
mod export_cmd;
mod search_cmd;
mod sweep_cmd;
mod train_cmd;

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
    /// Train one fixed architecture from scratch and report its test accuracy
    /// (running BN statistics); with --weights, only evaluate saved weights.
    Train(train_cmd::TrainArgs),
    /// Measure training-step throughput (images/s) and peak memory of one
    /// path on random batches.
    Bench(bench_cmd::BenchArgs),
    /// Search: train the supernet jointly with the controller (TuNAS) and
    /// write the most likely architecture to --out.
    Search(SearchArgs),
    /// Write a searched (or any) architecture as ONNX with the run's trained
    /// shared weights (BN recalibrated on training batches, then folded).
    Export(ExportArgs),
    /// Random-search baseline: uniform samples whose cost lies within a band
    /// around the target.
    Random(RandomArgs),
    /// Percentiles of the estimated latency of uniform random architectures,
    /// to choose latency targets.
    Targets(TargetsArgs),
    /// Searched against random networks of the same latency: searches,
    /// random architectures from the band, stand-alone training of all,
    /// shared-weight rank correlation; resumable, with a report and charts.
    /// Targets default to the 25th and 75th percentiles.
    Benchmark(benchmark_cmd::BenchmarkArgs),
    /// Benchmark folders of one space, table, images, recipe and target side
    /// by side: what each changes against the first, its searched networks
    /// against the random networks of all, and every search pooled (mean,
    /// Welch difference to the random mean, how many reach the random p90).
    Compare(benchmark_cmd::CompareArgs),
    /// A family of networks: one search per target latency (a size
    /// ladder), resumable, with the accuracy/latency front as JSON and chart.
    /// Targets default to the 10/25/50/75/90th percentiles.
    Sweep(sweep_cmd::SweepArgs),
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
        Command::Train(args) => train_cmd::run_train(args)?,
        Command::Bench(args) => bench_cmd::run_bench(args)?,
        Command::Search(args) => search_cmd::run_search(args)?,
        Command::Export(args) => export_cmd::run_export(args)?,
        Command::Random(args) => baseline_cmd::run_random(args)?,
        Command::Targets(args) => baseline_cmd::run_targets(args)?,
        Command::Benchmark(args) => benchmark_cmd::run_benchmark(args)?,
        Command::Compare(args) => benchmark_cmd::run_compare(args)?,
        Command::Sweep(args) => sweep_cmd::run_sweep(args)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    tunas_searcher::heap::keep_freed_pages();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
