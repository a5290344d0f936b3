//! Arguments of `benchmark`, turned into the library's settings.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use tunas_searcher::benchmark::{
    self, BenchmarkInputs, BenchmarkSettings, RunSettings, TargetChoice,
};
use tunas_searcher::data::{Augmentation, DEFAULT_FASHION_MNIST_DIR};
use tunas_shared::LatencyTable;

/// The images of the searches (and trainings), as `benchmark` and `sweep`
/// take them.
#[derive(Args, Debug)]
pub struct ImageFlags {
    /// Folder with IDX or CIFAR-10 binary files, or class folders of images.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_FASHION_MNIST_DIR)]
    pub data: PathBuf,
    #[command(flatten)]
    pub data_flags: crate::data_cmd::DataFlags,
    /// Use only the first N training images: quick runs.
    #[arg(long, value_name = "N")]
    pub limit_train: Option<usize>,
    /// Held-out images of each search [default: 10,000 of 60,000, else a sixth].
    #[arg(long, value_name = "N")]
    pub holdout: Option<usize>,
}

impl ImageFlags {
    /// Checks the counts before any work.
    pub fn check(&self) -> Result<()> {
        if self.limit_train == Some(0) {
            bail!("--limit-train: at least one image");
        }
        Ok(())
    }
}

/// `--jobs`, or one per core.
pub fn jobs(given: Option<usize>) -> Result<usize> {
    match given {
        Some(0) => bail!("--jobs: at least 1"),
        Some(j) => Ok(j),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// How targets are given, as `benchmark` and `sweep` take them.
#[derive(Args, Debug)]
pub struct TargetFlags {
    /// Target latencies in ms, comma-separated.
    #[arg(
        long,
        value_name = "MS,MS,...",
        value_delimiter = ',',
        conflicts_with = "percentiles",
        allow_negative_numbers = true
    )]
    targets_ms: Vec<f64>,
    /// Targets as percentiles of the estimated latency of 1,000 uniform
    /// samples (seed 1, as `targets` prints them), comma-separated.
    #[arg(
        long,
        value_name = "P,P,...",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    percentiles: Vec<f64>,
}

impl TargetFlags {
    /// The targets given, else `default`.
    pub fn choice(&self, default: TargetChoice) -> TargetChoice {
        if !self.targets_ms.is_empty() {
            TargetChoice::Ms(self.targets_ms.clone())
        } else if !self.percentiles.is_empty() {
            TargetChoice::Percentiles(self.percentiles.clone())
        } else {
            default
        }
    }
}

/// Arguments of `benchmark`.
#[derive(Args, Debug)]
pub struct BenchmarkArgs {
    /// Latency table (from `tunas-profiler profile`).
    #[arg(long, value_name = "FILE", required_unless_present = "report")]
    table: Option<PathBuf>,
    /// A built-in space name or a .toml file [default: the table's space].
    #[arg(long, value_name = "NAME|FILE.toml")]
    space: Option<String>,
    /// Benchmark folder: benchmark.json, journal.jsonl, search runs,
    /// report.json and one chart per target. Run the same command again to
    /// resume.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Targets [default: --percentiles 25,75].
    #[command(flatten)]
    targets: TargetFlags,
    /// Searches per target (seeds from --first-search-seed on).
    #[arg(long, default_value_t = 2)]
    searches: usize,
    /// Seed of the first search of each target (the others follow it):
    /// more seeds of one setting in another folder, its trainings reused
    /// with --trainings-from.
    #[arg(long, default_value_t = 1)]
    first_search_seed: u64,
    /// Random architectures per target, from the band.
    #[arg(long, default_value_t = 20)]
    random: usize,
    /// Relative band around the target for the random architectures.
    #[arg(long, default_value_t = 0.03)]
    band: f64,
    /// Seed of the random architectures.
    #[arg(long, default_value_t = 1)]
    random_seed: u64,
    /// Training seeds of every searched architecture (random ones: seed 0).
    #[arg(long, default_value_t = 2)]
    train_seeds: usize,
    /// Also train the first N random architectures of each target with
    /// every training seed, so that the training noise is measured on more
    /// networks than the searched ones. May be raised on a resumed folder.
    #[arg(long, default_value_t = 0)]
    noise_random: usize,
    /// Epochs of the stand-alone recipe (SGD Nesterov 0.1, cosine, label
    /// smoothing 0.1, pad-crop 2, batch 128, as `train`).
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Search steps.
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Validation batch of the search's Q.
    #[arg(long, default_value_t = 128)]
    validation_batch: usize,
    /// Architectures sampled per search step.
    #[arg(long, default_value_t = 1)]
    samples_per_step: usize,
    /// What the search's Q measures on each validation batch (as `search
    /// --quality`).
    #[arg(long, value_enum, default_value = "accuracy")]
    quality: crate::search_cmd::QualityArg,
    /// Fraction of the search's steps in the warm-up (as `search --warmup`).
    #[arg(long, default_value_t = 0.25)]
    warmup: f64,
    /// What the search's op warm-up does with skip decisions (as `search
    /// --skip-warmup`).
    #[arg(long, value_enum, default_value = "all-values")]
    skip_warmup: crate::search_cmd::SkipWarmupArg,
    /// RL learning rate at the end of the warm-up [default: 40 / steps
    /// after the warm-up] (as `search --rl-lr`).
    #[arg(long)]
    rl_lr: Option<f64>,
    /// Peak learning rate of the search's shared weights (as `search
    /// --lr`).
    #[arg(long, default_value_t = tunas_searcher::search::DEFAULT_WEIGHT_LEARNING_RATE)]
    lr: f32,
    /// β of the search's reward.
    #[arg(long, default_value_t = tunas_searcher::search::DEFAULT_BETA, allow_hyphen_values = true)]
    beta: f64,
    #[command(flatten)]
    images: ImageFlags,
    /// Held-out images for each shared-weight accuracy.
    #[arg(long, default_value_t = 2000)]
    shared_eval_images: usize,
    /// Batches of 256 that recalibrate BN before a shared-weight accuracy.
    #[arg(long, default_value_t = 10)]
    calibration_batches: usize,
    /// Pieces of work side by side, one thread each [default: one per core].
    #[arg(long)]
    jobs: Option<usize>,
    /// Seconds between progress lines on stderr (0: only a line per finished piece).
    #[arg(long, default_value_t = 60)]
    progress_every: u64,
    /// Reuse the finished stand-alone trainings of another benchmark folder
    /// made with the same space, images and recipe (its searches may
    /// differ): they are journaled here as reused, not run again. Repeat
    /// for several folders.
    #[arg(long, value_name = "DIR")]
    trainings_from: Vec<PathBuf>,
    /// Only write the report from the journal as it stands (also while a
    /// benchmark runs).
    #[arg(long)]
    report: bool,
    /// Print report.json to stdout instead of the text summary.
    #[arg(long)]
    json: bool,
}

impl BenchmarkArgs {
    fn settings(&self) -> Result<BenchmarkSettings> {
        let mut s = BenchmarkSettings::defaults();
        s.targets = self.targets.choice(s.targets);
        s.searches = self.searches;
        s.first_search_seed = self.first_search_seed;
        s.random = self.random;
        s.band = self.band;
        s.random_seed = self.random_seed;
        s.train_seeds = self.train_seeds;
        s.noise_random = self.noise_random;
        s.recipe.epochs = self.epochs;
        s.search = tunas_searcher::search::SearchConfig::defaults(self.steps.max(4), 1.0);
        s.search.steps = self.steps;
        s.search.validation_batch = self.validation_batch;
        s.search.samples_per_step = self.samples_per_step;
        s.search.quality = self.quality.measure();
        s.search.warmup_fraction = self.warmup;
        s.search.skip_warmup = self.skip_warmup.setting();
        s.search.rl_learning_rate = match self.rl_lr {
            Some(v) => v,
            None => tunas_searcher::search::default_rl_learning_rate(
                self.steps.saturating_sub(s.search.warmup_steps()),
            ),
        };
        s.search.weight_learning_rate = self.lr;
        s.search.beta = self.beta;
        s.holdout = self.images.holdout;
        s.limit_train = self.images.limit_train;
        s.shared_eval_images = self.shared_eval_images;
        s.calibration_batches = self.calibration_batches;
        s.check().map_err(flag_error)?;
        s.search.check().map_err(|e| anyhow::anyhow!("--{e}"))?;
        if self.epochs == 0 {
            bail!("--epochs: train for at least one epoch");
        }
        self.images.check()?;
        Ok(s)
    }
}

/// The library names settings without dashes; here they are flags.
pub fn flag_error(e: benchmark::BenchmarkError) -> anyhow::Error {
    match e {
        benchmark::BenchmarkError::BadSetting { what, why } => {
            anyhow::anyhow!("--{what}: {why}")
        }
        other => other.into(),
    }
}

/// The table (with its digest), its space and the images, checked
/// against each other.
pub fn read_inputs(
    table_path: &std::path::Path,
    space: Option<&str>,
    images: &ImageFlags,
) -> Result<BenchmarkInputs> {
    let (data, flags) = (images.data.as_path(), &images.data_flags);
    let bytes =
        std::fs::read(table_path).with_context(|| format!("--table {}", table_path.display()))?;
    let table = LatencyTable::read(table_path)?;
    let space = crate::search_cmd::space_for(space, Some(&table))?;
    table.check_space(&space)?;
    let images = crate::data_cmd::load_images(data, flags, &space)?.data;
    Ok(BenchmarkInputs {
        space,
        table,
        table_path: table_path.to_path_buf(),
        table_digest: tunas_shared::content_digest(&bytes),
        data: images,
        // The folder alone when the format is detected, so folders made
        // before --data-format existed still open.
        data_origin: match flags.format()? {
            tunas_searcher::data::DataFormat::Auto => data.display().to_string(),
            f => format!("{} ({})", data.display(), f.name()),
        },
    })
}

/// `benchmark`.
pub fn run_benchmark(a: BenchmarkArgs) -> Result<()> {
    let report = if a.report {
        benchmark::report_only(&a.out)?
    } else {
        let mut settings = a.settings()?;
        let jobs = jobs(a.jobs)?;
        let table_path = a.table.clone().expect("clap requires --table");
        let inputs = read_inputs(&table_path, a.space.as_deref(), &a.images)?;
        let channels = inputs.space.input.channels;
        settings.search.augment = Augmentation::search_default(channels);
        settings
            .recipe
            .set_augmentation(Augmentation::train_default(channels));
        let how = RunSettings {
            jobs,
            progress_every_s: a.progress_every,
            trainings_from: a.trainings_from.clone(),
        };
        benchmark::run(&a.out, &inputs, &settings, &how).map_err(flag_error)?
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", benchmark::report_text(&report));
        eprintln!(
            "report: {} and one chart per target (target-N.svg) in {}",
            benchmark::BenchmarkDir { dir: a.out.clone() }
                .report()
                .display(),
            a.out.display()
        );
    }
    Ok(())
}

/// Arguments of `compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Benchmark folders; the first is the one the others' settings are
    /// compared with.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Which target of the folders (0 for the first).
    #[arg(long, default_value_t = 0)]
    target: usize,
    /// Also draw the folders side by side (.svg or .png).
    #[arg(long, value_name = "FILE")]
    chart: Option<PathBuf>,
    /// Print the comparison as JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// `compare`.
pub fn run_compare(a: CompareArgs) -> Result<()> {
    let c = benchmark::compare(&a.dirs, a.target, a.chart.as_deref()).map_err(flag_error)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        print!("{}", benchmark::comparison_text(&c));
    }
    if let Some(chart) = &a.chart {
        eprintln!("chart: {}", chart.display());
    }
    Ok(())
}
