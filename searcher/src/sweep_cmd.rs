//! Arguments of `sweep`, turned into the library's settings.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use tunas_searcher::benchmark::TargetChoice;
use tunas_searcher::data::Augmentation;
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
    /// What each search's Q measures on a validation batch (as `search
    /// --quality`).
    #[arg(long, value_enum, default_value = "accuracy")]
    quality: crate::search_cmd::QualityArg,
    /// Training batch of each search.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// β of the reward.
    #[arg(long, default_value_t = tunas_searcher::search::DEFAULT_BETA, allow_hyphen_values = true)]
    beta: f64,
    /// Seed of every search.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    images: crate::benchmark_cmd::ImageFlags,
    /// Searches side by side, one thread each [default: one per core].
    #[arg(long)]
    jobs: Option<usize>,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Seconds between lines on the running searches' steps (0: only a line
    /// per search started and finished).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    progress_every: u64,
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
    search.quality = a.quality.measure();
    search.beta = a.beta;
    search.seed = a.seed;
    search.rl_learning_rate = tunas_searcher::search::default_rl_learning_rate(
        a.steps.saturating_sub(search.warmup_steps()),
    );
    search.check().map_err(|e| anyhow::anyhow!("--{e}"))?;
    let settings = SweepSettings {
        targets,
        search,
        holdout: a.images.holdout,
        limit_train: a.images.limit_train,
    };
    settings
        .targets
        .check()
        .map_err(crate::benchmark_cmd::flag_error)?;
    a.images.check()?;
    let jobs = crate::benchmark_cmd::jobs(a.jobs)?;
    let inputs = crate::benchmark_cmd::read_inputs(&a.table, a.space.as_deref(), &a.images)?;
    let mut settings = settings;
    settings.search.augment = Augmentation::search_default(inputs.space.input.channels);
    let progress = sweep::SweepProgress {
        lines: !a.quiet,
        every_s: a.progress_every,
    };
    let report = sweep::run(&a.out, &inputs, &settings, jobs, progress)
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
