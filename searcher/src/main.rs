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
mod benchmark_cmd;
mod data_cmd;
mod export_cmd;
mod search_cmd;
mod sweep_cmd;

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
    Train(TrainArgs),
    /// Measure training-step throughput (images/s) and peak memory of one
    /// path on random batches.
    Bench(BenchArgs),
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
        Command::Train(args) => run_train(args)?,
        Command::Bench(args) => run_bench(args)?,
        Command::Search(args) => search_cmd::run_search(args)?,
        Command::Export(args) => export_cmd::run_export(args)?,
        Command::Random(args) => baseline_cmd::run_random(args)?,
        Command::Targets(args) => baseline_cmd::run_targets(args)?,
        Command::Benchmark(args) => benchmark_cmd::run_benchmark(args)?,
        Command::Sweep(args) => sweep_cmd::run_sweep(args)?,
    }
    Ok(())
}

/// Arguments of `train`.
#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// A built-in space name or a path to a .toml file (default with
    /// --weights: the space recorded in the weights file).
    #[arg(
        long,
        value_name = "NAME|FILE.toml",
        required_unless_present = "weights"
    )]
    space: Option<String>,
    /// The architecture: compact text, `largest`, or `random:SEED` (default
    /// with --weights: the architecture recorded in the file).
    #[arg(long, value_name = "ARCH", required_unless_present = "weights")]
    arch: Option<String>,
    /// Passes over the training images.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Folder with IDX (Fashion-MNIST, MNIST) or CIFAR-10 binary files.
    #[arg(long, value_name = "DIR", default_value = tunas_searcher::data::DEFAULT_FASHION_MNIST_DIR)]
    data: PathBuf,
    #[command(flatten)]
    data_flags: data_cmd::DataFlags,
    /// Images per training step.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Peak learning rate [default: 0.1 for sgd, 0.05 for rmsprop].
    #[arg(long)]
    lr: Option<f32>,
    /// Optimiser of the weights.
    #[arg(long, value_enum, default_value = "sgd")]
    optimizer: tunas_searcher::train::OptimizerKind,
    /// L2 weight decay on conv and linear weights.
    #[arg(long, default_value_t = 4e-5)]
    weight_decay: f32,
    /// Momentum (Nesterov for sgd).
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    /// Label smoothing of the cross-entropy loss.
    #[arg(long, default_value_t = 0.1)]
    label_smoothing: f32,
    /// Share of the steps spent in linear learning-rate warm-up.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.025)]
    warmup: f64,
    /// Random pad-and-crop augmentation in pixels (0: off) [default: 2 for
    /// a grey space, 4 for an RGB one].
    #[arg(long, value_name = "PIXELS")]
    pad_crop: Option<usize>,
    /// Random horizontal flips [default: on for an RGB space].
    #[arg(long, conflicts_with = "no_flip")]
    flip: bool,
    /// No horizontal flips.
    #[arg(long)]
    no_flip: bool,
    /// Seed of the weights, the batch order and the augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
    /// Train on only N (seeded random) training images.
    #[arg(long, value_name = "N")]
    limit_train: Option<usize>,
    /// Before each evaluation, set the running BN statistics to the average
    /// over N training batches (useful after short runs: BN momentum 0.99
    /// needs a few hundred steps to settle); 0 keeps training's averages.
    #[arg(long, value_name = "N", default_value_t = 0)]
    recalibrate_bn: usize,
    /// Folder for weights.bin and result.json.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Load weights saved by an earlier `train --out` and only evaluate them.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Run every layer serially: bit-identical results for a given seed.
    #[arg(long)]
    deterministic: bool,
    /// No progress bar or per-epoch lines.
    #[arg(long)]
    quiet: bool,
    /// Print the result as JSON (test_accuracy, epochs, seconds,
    /// images_per_s, arch, space, per-epoch history) instead of text.
    #[arg(long)]
    json: bool,
}

fn run_train(a: TrainArgs) -> Result<()> {
    use tunas_searcher::{supernet::Supernet, train, weights};
    tunas_searcher::layers::set_serial(a.deterministic);
    let meta = a
        .weights
        .as_ref()
        .map(|w| weights::read_meta(w))
        .transpose()?;
    let space_name = a
        .space
        .clone()
        .or_else(|| meta.as_ref().map(|m| m.space.clone()))
        .context("--space is needed")?;
    let space = load_space(&space_name).context("--space")?;
    let arch_spec = a
        .arch
        .clone()
        .or_else(|| meta.as_ref().and_then(|m| m.arch.clone()))
        .context("--arch is needed: the weights file records no architecture")?;
    let arch = Architecture::parse_spec(&space, &arch_spec).context("--arch")?;
    let data = data_cmd::load_images(&a.data, &a.data_flags, &space)?.data;
    let mut net = Supernet::new(&space, a.seed);
    if let (Some(path), Some(meta)) = (&a.weights, &meta) {
        weights::load_supernet(path, &mut net)?;
        let norm = train::saved_normalization(&meta.extra)
            .unwrap_or_else(|| train::Normalization::of(&data.train));
        let report = train::in_thread_pool(a.threads, || {
            train::evaluate_weights(&mut net, &arch, &data.test, &norm, 500)
        })??;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "test accuracy {:.4} on {} images ({}, {}; {:.1} s)",
                report.test_accuracy, report.test_images, report.space, report.arch, report.seconds
            );
        }
        return Ok(());
    }
    let mut cfg = train::TrainConfig::new(a.optimizer);
    cfg.epochs = a.epochs;
    cfg.batch = a.batch;
    if let Some(lr) = a.lr {
        cfg.lr = lr;
    }
    cfg.weight_decay = a.weight_decay;
    cfg.momentum = a.momentum;
    cfg.label_smoothing = a.label_smoothing;
    cfg.warmup_fraction = a.warmup;
    let mut augment = tunas_searcher::data::Augmentation::train_default(space.input.channels);
    if let Some(p) = a.pad_crop {
        augment.pad_crop = p;
    }
    if a.flip || a.no_flip {
        augment.flip = a.flip;
    }
    cfg.set_augmentation(augment);
    cfg.seed = a.seed;
    cfg.limit_train = a.limit_train;
    cfg.bn_recalibration_batches = a.recalibrate_bn;
    let report = train::in_thread_pool(a.threads, || {
        train::train_architecture(&mut net, &arch, &data, &cfg, a.quiet)
    })??;
    if let Some(dir) = &a.out {
        let (w, r) = train::save_run(dir, &net, &arch, &report)?;
        eprintln!("wrote {} and {}", w.display(), r.display());
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "test accuracy {:.4} after {} epochs ({:.1} s, {:.0} training images/s)",
            report.test_accuracy, report.epochs, report.seconds, report.images_per_s
        );
    }
    Ok(())
}

/// Arguments of `bench`.
#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// A built-in space name or a path to a .toml file.
    #[arg(long, value_name = "NAME|FILE.toml", default_value = "tiny28")]
    space: String,
    /// The architecture: compact text, `largest`, or `random:SEED`.
    #[arg(long, value_name = "ARCH", default_value = "largest")]
    arch: String,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Worker threads [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
    /// Measured steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Unmeasured steps before them.
    #[arg(long, default_value_t = 3)]
    warmup_steps: usize,
    /// Which path to train.
    #[arg(
        long,
        value_enum,
        default_value = "single-path",
        conflicts_with = "all_values"
    )]
    variant: tunas_searcher::bench::BenchVariant,
    /// Measure op warm-up (every kernel/SE/skip decision runs all its
    /// values) with and without rematerialization, one after the other.
    #[arg(long)]
    all_values: bool,
    /// Seed of the weights and the random batch.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run every layer serially (ignores --threads).
    #[arg(long)]
    deterministic: bool,
    /// Print JSON (`images_per_s`, `peak_rss_mb`, per-phase timings; with
    /// --all-values one object per variant) instead of text.
    #[arg(long)]
    json: bool,
}

fn run_bench(a: BenchArgs) -> Result<()> {
    use tunas_searcher::bench;
    tunas_searcher::layers::set_serial(a.deterministic);
    let space = load_space(&a.space).context("--space")?;
    let arch = Architecture::parse_spec(&space, &a.arch).context("--arch")?;
    anyhow::ensure!(a.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(a.steps > 0, "--steps must be at least 1");
    let cfg = bench::BenchConfig {
        batch: a.batch,
        steps: a.steps,
        warmup_steps: a.warmup_steps,
        seed: a.seed,
    };
    if a.all_values {
        // One fresh process per variant, so neither's memory figures include
        // what the allocator kept from the other.
        let exe = std::env::current_exe().context("locating this executable")?;
        let mut results = Vec::new();
        for v in ["all-values-remat", "all-values-no-remat"] {
            let mut args: Vec<String> = [
                "bench",
                "--space",
                &a.space,
                "--arch",
                &a.arch,
                "--variant",
                v,
                "--json",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            for (flag, value) in [
                ("--batch", a.batch),
                ("--steps", a.steps),
                ("--warmup-steps", a.warmup_steps),
            ] {
                args.extend([flag.to_string(), value.to_string()]);
            }
            args.extend(["--seed".to_string(), a.seed.to_string()]);
            if let Some(t) = a.threads {
                args.extend(["--threads".to_string(), t.to_string()]);
            }
            if a.deterministic {
                args.push("--deterministic".into());
            }
            let r = bench::bench_in_child(&exe, &args)?;
            if !a.json {
                println!("{}", bench::bench_text(&r));
            }
            results.push(r);
        }
        if a.json {
            let json = serde_json::json!({
                "all_values_remat": results[0],
                "all_values_no_remat": results[1],
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        return Ok(());
    }
    let r = tunas_searcher::train::in_thread_pool(a.threads, || {
        bench::bench(&space, &arch, a.variant, &cfg)
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("{}", bench::bench_text(&r));
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
