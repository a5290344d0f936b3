//! Arguments of `sweep`, turned into the library's settings.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use tunas_searcher::benchmark::TargetChoice;
use tunas_searcher::data::DEFAULT_FASHION_MNIST_DIR;
use tunas_searcher::search::SearchConfig;
use tunas_searcher::sweep::{self, SweepSettings};

/// Arguments of `sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Latency table (from `tunas-profiler profile`).
    #[arg(long, value_name = "FILE")]
    table: PathBuf,
    /// A built-in space name or a .toml file [default: the table's space].
    #[arg(long, value_name = "NAME|FILE.toml")]
    space: Option<String>,
    /// Sweep folder: sweep.json, one run folder per target (target-N/),
    /// front.json and front.svg. Run the same command again to resume.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Targets [default: --percentiles 10,25,50,75,90].
    #[command(flatten)]
    targets: crate::benchmark_cmd::TargetFlags,
    /// Search steps per target.
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Validation batch of each search's Q.
    #[arg(long, default_value_t = 128)]
    validation_batch: usize,
    /// Training batch of each search.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// β of the reward.
    #[arg(long, default_value_t = tunas_searcher::search::DEFAULT_BETA, allow_hyphen_values = true)]
    beta: f64,
    /// Seed of every search.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder with IDX or CIFAR-10 binary files.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_FASHION_MNIST_DIR)]
    data: PathBuf,
    #[command(flatten)]
    data_flags: crate::data_cmd::DataFlags,
    /// Use only the first N training images (quick runs).
    #[arg(long, value_name = "N")]
    limit_train: Option<usize>,
    /// Held-out images of each search [default: 10,000 of 60,000, else a sixth].
    #[arg(long, value_name = "N")]
    holdout: Option<usize>,
    /// Searches side by side, one thread each [default: one per core].
    #[arg(long)]
    jobs: Option<usize>,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Print front.json to stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// `sweep`.
pub fn run_sweep(a: SweepArgs) -> Result<()> {
    let targets = a.targets.choice(TargetChoice::Percentiles(vec![
        10.0, 25.0, 50.0, 75.0, 90.0,
    ]));
    let mut search = SearchConfig::defaults(a.steps.max(4), 1.0);
    search.steps = a.steps;
    search.validation_batch = a.validation_batch;
    search.batch = a.batch;
    search.beta = a.beta;
    search.seed = a.seed;
    search.rl_learning_rate = tunas_searcher::search::default_rl_learning_rate(
        a.steps.saturating_sub(search.warmup_steps()),
    );
    search.check().map_err(|e| anyhow::anyhow!("--{e}"))?;
    let settings = SweepSettings {
        targets,
        search,
        holdout: a.holdout,
        limit_train: a.limit_train,
    };
    settings
        .targets
        .check()
        .map_err(crate::benchmark_cmd::flag_error)?;
    if a.limit_train == Some(0) {
        bail!("--limit-train: at least one image");
    }
    let jobs = match a.jobs {
        Some(0) => bail!("--jobs: at least 1"),
        Some(j) => j,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let inputs =
        crate::benchmark_cmd::read_inputs(&a.table, a.space.as_deref(), &a.data, &a.data_flags)?;
    let report = sweep::run(&a.out, &inputs, &settings, jobs, !a.quiet)
        .map_err(crate::benchmark_cmd::flag_error)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", sweep::text(&report));
        eprintln!(
            "front: {} and {}; export one with `tunas-searcher export --run {}/target-N --onnx N.onnx`",
            a.out.join("front.json").display(),
            a.out.join("front.svg").display(),
            tunas_shared::output::shell_quote(&a.out.display().to_string())
        );
    }
    Ok(())
}
