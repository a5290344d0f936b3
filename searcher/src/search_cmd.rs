//! Arguments and glue of `search`, `export` and `random`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use tunas_searcher::controller::RewardKind;
use tunas_searcher::data::{Augmentation, DEFAULT_FASHION_MNIST_DIR};
use tunas_searcher::search::{
    MultiDevice, QualityMeasure, Resource, RunFiles, RunInputs, RunOptions, SearchConfig,
    SearchData, SearchError, SearchResult, SkipWarmup, search,
};
use tunas_shared::{LatencyTable, SearchSpace, load_space};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RewardArg {
    /// r = Q + β·|T/T0 − 1| (TuNAS).
    Abs,
    /// r = Q·(T/T0)^β (MnasNet soft).
    Mnas,
    /// r = Q·min((T/T0)^β, 1) (MnasNet hard).
    MnasHard,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MultiArg {
    /// r = Q + β·Σ_d |T_d/T0_d − 1|.
    Sum,
    /// r = Q + β·max_d |T_d/T0_d − 1|.
    Max,
}

/// What the reward's Q measures on each validation batch.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum QualityArg {
    /// The fraction classified correctly (TuNAS).
    Accuracy,
    /// The mean softmax probability of the true class (less noisy per batch).
    Probability,
}

impl QualityArg {
    /// The library's measure.
    pub fn measure(self) -> QualityMeasure {
        match self {
            QualityArg::Accuracy => QualityMeasure::Accuracy,
            QualityArg::Probability => QualityMeasure::Probability,
        }
    }
}

/// What the op warm-up does with skip decisions.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SkipWarmupArg {
    /// Run the layer on and off and average, as the other op decisions
    /// (TuNAS).
    AllValues,
    /// Keep the uniform sample: train at the depths paths really have.
    Sampled,
    /// Turn the layer on (not skipped) with the warm-up's probability, so
    /// optional layers train about as often as the mandatory ones.
    Present,
}

impl SkipWarmupArg {
    /// The library's setting.
    pub fn setting(self) -> SkipWarmup {
        match self {
            SkipWarmupArg::AllValues => SkipWarmup::AllValues,
            SkipWarmupArg::Sampled => SkipWarmup::Sampled,
            SkipWarmupArg::Present => SkipWarmup::Present,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ResourceArg {
    /// Latency from the table (ms).
    Latency,
    /// Multiply-adds (millions).
    Flops,
    /// Parameters (millions).
    Params,
}

/// Arguments of `search`. Settings are optional here: a new run takes
/// each default from [`SearchConfig::defaults`] (its one home), and a
/// resumed run keeps what it was started with; a setting given on resume
/// that differs from the stored one is an error.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// A built-in space name or a path to a .toml file [default: the
    /// table's space].
    #[arg(long, value_name = "NAME|FILE.toml")]
    space: Option<String>,
    /// Latency table for the space (from `tunas-profiler profile`). Give it
    /// once per device, each followed by its --target-ms, to search one
    /// network for several devices.
    #[arg(long, value_name = "FILE")]
    table: Vec<PathBuf>,
    /// Latency target T0 in ms (with --resource latency), one per --table,
    /// in the same order.
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    target_ms: Vec<f64>,
    /// With several tables: the reward adds up every device's miss (sum) or
    /// takes the worst one (max) [default: sum].
    #[arg(long, value_enum)]
    multi: Option<MultiArg>,
    /// Target for --resource flops (M multiply-adds) or params (M).
    #[arg(long, value_name = "X")]
    target: Option<f64>,
    /// What the cost T is [default: latency].
    #[arg(long, value_enum)]
    resource: Option<ResourceArg>,
    /// Run folder: result.json, steps.csv, charts, checkpoints, weights.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "resume",
        conflicts_with = "resume"
    )]
    out: Option<PathBuf>,
    /// Continue the killed run in DIR from its last checkpoint (everything
    /// else is read from the folder).
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Search steps (each trains one batch and evaluates one) [default: 3000].
    #[arg(long)]
    steps: Option<usize>,
    /// Training batch size [default: 64].
    #[arg(long)]
    batch: Option<usize>,
    /// Validation batch size for the reward's Q [default: 128].
    #[arg(long)]
    validation_batch: Option<usize>,
    /// Architectures sampled per step [default: 1].
    #[arg(long)]
    samples_per_step: Option<usize>,
    /// Reward function [default: abs].
    #[arg(long, value_enum)]
    reward: Option<RewardArg>,
    /// What Q measures on each validation batch [default: accuracy].
    #[arg(long, value_enum)]
    quality: Option<QualityArg>,
    /// β of the reward [default: −0.5, measured to land targets here; TuNAS
    /// used −0.07…−0.1 on ImageNet].
    #[arg(long, allow_hyphen_values = true)]
    beta: Option<f64>,
    /// RL learning rate at the end of the warm-up [default: 40 / steps after
    /// the warm-up].
    #[arg(long)]
    rl_lr: Option<f64>,
    /// Peak learning rate of the shared weights [default: 0.05].
    #[arg(long)]
    lr: Option<f32>,
    /// Fraction of steps in the warm-up [default: 0.25].
    #[arg(long)]
    warmup: Option<f64>,
    /// What the op warm-up does with skip decisions [default: all-values].
    #[arg(long, value_enum)]
    skip_warmup: Option<SkipWarmupArg>,
    /// Folder with MNIST-format IDX files or CIFAR-10 binary batches
    /// [default: /usr/share/datasets/fashion-mnist].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(flatten)]
    data_flags: crate::data_cmd::DataFlags,
    #[command(flatten)]
    augment: crate::data_cmd::AugmentFlags,
    /// Images held out of the training split for the reward [default:
    /// 10000, or a sixth of a smaller set].
    #[arg(long)]
    holdout: Option<usize>,
    /// Use only the first N training images (quick runs).
    #[arg(long)]
    limit_train: Option<usize>,
    /// Seed of everything random [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Threads of the weight kernels [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
    /// Serial reductions: bit-identical results across runs and resumes.
    #[arg(long)]
    deterministic: bool,
    /// Checkpoint every N steps [default: 250].
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
    /// Print result.json to stdout.
    #[arg(long)]
    json: bool,
    /// Stop after this many steps, as if killed (for resume tests).
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
}

/// A setting given on resume must equal the stored one.
fn same_on_resume<T: PartialEq + std::fmt::Debug>(
    flag: &str,
    given: Option<T>,
    stored: T,
    dir: &Path,
) -> Result<()> {
    match given {
        Some(g) if g != stored => bail!(
            "{flag} {g:?} differs from the {stored:?} that the run in {} was started with; a resumed run keeps its settings (start a new run with --out for other ones)",
            dir.display()
        ),
        _ => Ok(()),
    }
}

/// [`same_on_resume`] for a count that may have been left to its default.
fn same_count_on_resume(
    flag: &str,
    given: Option<usize>,
    stored: Option<usize>,
    dir: &Path,
) -> Result<()> {
    match (given, stored) {
        (Some(g), s) if Some(g) != s => bail!(
            "{flag} {g} differs from the {} that the run in {} was started with; a resumed run keeps its settings (start a new run with --out for other ones)",
            s.map_or("default".to_string(), |s| s.to_string()),
            dir.display()
        ),
        _ => Ok(()),
    }
}

impl SearchArgs {
    fn resource(&self) -> Resource {
        match self.resource {
            None | Some(ResourceArg::Latency) => Resource::Latency,
            Some(ResourceArg::Flops) => Resource::Flops,
            Some(ResourceArg::Params) => Resource::Params,
        }
    }

    /// The config of a new run: the defaults, overridden by what was given.
    fn new_config(&self) -> Result<SearchConfig> {
        let resource = self.resource();
        let target = match resource {
            Resource::Latency => {
                if self.target.is_some() {
                    bail!(
                        "--target is for --resource flops|params; a latency target is --target-ms"
                    );
                }
                if self.target_ms.len() != self.table.len().max(1) {
                    bail!(
                        "--table and --target-ms come in pairs, in order: {} tables, {} targets",
                        self.table.len(),
                        self.target_ms.len()
                    );
                }
                self.target_ms[0]
            }
            _ => {
                if !self.target_ms.is_empty() {
                    bail!(
                        "--target-ms is for --resource latency; use --target with --resource flops|params"
                    );
                }
                self.target
                    .context("--target is needed with --resource flops|params")?
            }
        };
        let steps = self.steps.unwrap_or(3000);
        let mut c = SearchConfig::defaults(steps.max(4), target);
        c.steps = steps;
        c.resource = resource;
        if resource == Resource::Latency {
            c.more_targets = self.target_ms[1..].to_vec();
        }
        if let Some(m) = self.multi {
            c.multi = multi_device(m);
        }
        if let Some(v) = self.warmup {
            c.warmup_fraction = v;
        }
        if let Some(v) = self.batch {
            c.batch = v;
        }
        if let Some(v) = self.validation_batch {
            c.validation_batch = v;
        }
        if let Some(v) = self.samples_per_step {
            c.samples_per_step = v;
        }
        if let Some(r) = self.reward {
            c.reward = reward_kind(r);
        }
        if let Some(q) = self.quality {
            c.quality = q.measure();
        }
        if let Some(v) = self.beta {
            c.beta = v;
        }
        c.rl_learning_rate = match self.rl_lr {
            Some(v) => v,
            None => tunas_searcher::search::default_rl_learning_rate(
                steps.saturating_sub(c.warmup_steps()),
            ),
        };
        if let Some(v) = self.lr {
            c.weight_learning_rate = v;
        }
        if let Some(v) = self.skip_warmup {
            c.skip_warmup = v.setting();
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if let Some(v) = self.checkpoint_every {
            c.checkpoint_every = v;
        }
        self.check_config(&c)?;
        Ok(c)
    }

    /// [`SearchConfig::check`], with the error naming the flag.
    fn check_config(&self, c: &SearchConfig) -> Result<()> {
        let flag = |what: &str| match what {
            "target" if c.resource == Resource::Latency => "--target-ms".to_string(),
            w => format!("--{w}"),
        };
        c.check().map_err(|e| match e {
            SearchError::BadSetting { what, why } => anyhow::anyhow!("{}: {why}", flag(what)),
            other => other.into(),
        })
    }

    /// The training-batch augmentation of a new run on `space`: its default
    /// ([`Augmentation::search_default`]), overridden by the flags.
    fn augmentation(&self, space: &SearchSpace) -> Augmentation {
        self.augment
            .over(Augmentation::search_default(space.input.channels))
    }

    /// Every setting given on resume equals the stored one.
    fn check_resume(&self, c: &SearchConfig, inputs: &RunInputs, dir: &Path) -> Result<()> {
        if self.space.is_some() {
            bail!(
                "--space: a resumed run uses the space stored in {}",
                dir.display()
            );
        }
        let latency = c.resource == Resource::Latency;
        if latency {
            let stored: Vec<f64> = std::iter::once(c.target)
                .chain(c.more_targets.iter().copied())
                .collect();
            let given = (!self.target_ms.is_empty()).then(|| self.target_ms.clone());
            same_on_resume("--target-ms", given, stored, dir)?;
            same_on_resume("--multi", self.multi.map(multi_device), c.multi, dir)?;
        } else {
            same_on_resume("--target", self.target, c.target, dir)?;
        }
        same_on_resume("--steps", self.steps, c.steps, dir)?;
        same_on_resume("--batch", self.batch, c.batch, dir)?;
        same_on_resume(
            "--validation-batch",
            self.validation_batch,
            c.validation_batch,
            dir,
        )?;
        same_on_resume(
            "--samples-per-step",
            self.samples_per_step,
            c.samples_per_step,
            dir,
        )?;
        same_on_resume("--reward", self.reward.map(reward_kind), c.reward, dir)?;
        same_on_resume(
            "--quality",
            self.quality.map(QualityArg::measure),
            c.quality,
            dir,
        )?;
        same_on_resume("--beta", self.beta, c.beta, dir)?;
        same_on_resume("--rl-lr", self.rl_lr, c.rl_learning_rate, dir)?;
        same_on_resume("--lr", self.lr, c.weight_learning_rate, dir)?;
        same_on_resume("--warmup", self.warmup, c.warmup_fraction, dir)?;
        same_on_resume(
            "--skip-warmup",
            self.skip_warmup.map(SkipWarmupArg::setting),
            c.skip_warmup,
            dir,
        )?;
        same_on_resume("--seed", self.seed, c.seed, dir)?;
        same_on_resume("--pad-crop", self.augment.pad_crop, c.augment.pad_crop, dir)?;
        same_on_resume(
            "--flip/--no-flip",
            self.augment.flip_given(),
            c.augment.flip,
            dir,
        )?;
        same_on_resume(
            "--checkpoint-every",
            self.checkpoint_every,
            c.checkpoint_every,
            dir,
        )?;
        same_on_resume(
            "--resource",
            self.resource.map(|_| self.resource()),
            c.resource,
            dir,
        )?;
        let data = self.data.as_ref().map(|d| d.display().to_string());
        same_on_resume("--data", data, inputs.data.clone(), dir)?;
        same_count_on_resume("--limit-train", self.limit_train, inputs.limit_train, dir)?;
        same_count_on_resume("--holdout", self.holdout, inputs.holdout, dir)?;
        if self.deterministic && !inputs.deterministic {
            bail!(
                "--deterministic: the run in {} was started without it; a resumed run keeps its settings",
                dir.display()
            );
        }
        Ok(())
    }
}

fn multi_device(m: MultiArg) -> MultiDevice {
    match m {
        MultiArg::Sum => MultiDevice::Sum,
        MultiArg::Max => MultiDevice::Max,
    }
}

fn reward_kind(r: RewardArg) -> RewardKind {
    match r {
        RewardArg::Abs => RewardKind::Abs,
        RewardArg::Mnas => RewardKind::Mnas,
        RewardArg::MnasHard => RewardKind::MnasHard,
    }
}

/// The table with its content digest.
fn read_table(path: &Path) -> Result<(LatencyTable, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("--table {}", path.display()))?;
    let table = LatencyTable::read(path)?;
    Ok((table, tunas_shared::content_digest(&bytes)))
}

/// What `search --resume DIR` reads back from the folder.
fn resumed(a: &SearchArgs, dir: &Path) -> Result<Prepared> {
    let files = RunFiles {
        dir: dir.to_path_buf(),
    };
    let text = std::fs::read_to_string(files.checkpoint()).with_context(|| {
        format!(
            "--resume {}: no checkpoint there ({}); a run killed before its first checkpoint starts again with --out",
            dir.display(),
            files.checkpoint().display()
        )
    })?;
    let cp: tunas_searcher::search::Checkpoint = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a checkpoint", files.checkpoint().display()))?;
    let space = SearchSpace::from_toml_file(&files.space())?;
    let inputs = RunInputs::read(&files)?;
    a.check_resume(&cp.config, &inputs, dir)?;
    let stored = inputs.tables();
    if !a.table.is_empty() && a.table.len() != stored.len() {
        bail!(
            "--table: the run in {} was started with {} table(s), {} given",
            dir.display(),
            stored.len(),
            a.table.len()
        );
    }
    let mut tables = Vec::with_capacity(stored.len());
    for (i, (stored_path, stored_digest)) in stored.iter().enumerate() {
        let path = a
            .table
            .get(i)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(stored_path));
        let (table, digest) = read_table(&path)?;
        if &digest != stored_digest {
            bail!(
                "--table {}: its content differs from the table the run in {} was started with ({stored_path}, digest {stored_digest}); resume with that table",
                path.display(),
                dir.display()
            );
        }
        tables.push(table);
    }
    Ok(Prepared {
        space,
        config: cp.config,
        inputs,
        tables,
    })
}

/// What a new `search --out DIR` runs with, checked before any work.
fn fresh(a: &SearchArgs, dir: &Path) -> Result<Prepared> {
    let config = a.new_config()?;
    let tables = a
        .table
        .iter()
        .map(|t| read_table(t))
        .collect::<Result<Vec<_>>>()?;
    for (i, (_, d)) in tables.iter().enumerate() {
        if let Some(j) = tables[..i].iter().position(|(_, e)| e == d) {
            bail!(
                "--table {} and --table {} are the same table (content digest {d}); give each device's own",
                a.table[j].display(),
                a.table[i].display()
            );
        }
    }
    if tables.is_empty() && config.resource == Resource::Latency {
        bail!(
            "--table FILE is needed for a latency target (write one with `tunas-profiler profile --space {} --out FILE`)",
            a.space.as_deref().unwrap_or("tiny28")
        );
    }
    let space = space_for(a.space.as_deref(), tables.first().map(|t| &t.0))?;
    let mut config = config;
    config.augment = a.augmentation(&space);
    a.check_config(&config)?;
    let targets: Vec<f64> = std::iter::once(config.target)
        .chain(config.more_targets.iter().copied())
        .collect();
    for ((t, _), (path, target)) in tables.iter().zip(a.table.iter().zip(&targets)) {
        t.check_space(&space)
            .with_context(|| format!("--table {}", path.display()))?;
        check_target_reachable(&space, t, &config, *target)?;
    }
    let files = RunFiles {
        dir: dir.to_path_buf(),
    };
    if files.checkpoint().exists() {
        bail!(
            "{} already holds a run; continue it with --resume {}, or pick another --out",
            dir.display(),
            dir.display()
        );
    }
    let inputs = RunInputs {
        table: a.table.first().map(|t| t.display().to_string()),
        table_digest: tables.first().map(|t| t.1.clone()),
        more_tables: a
            .table
            .iter()
            .zip(&tables)
            .skip(1)
            .map(|(p, (_, d))| (p.display().to_string(), d.clone()))
            .collect(),
        data: a
            .data
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_FASHION_MNIST_DIR))
            .display()
            .to_string(),
        data_format: a.data_flags.format()?.name().to_string(),
        skip_bad_images: a.data_flags.skip_bad_images,
        classes: Vec::new(),
        limit_train: a.limit_train,
        holdout: a.holdout,
        deterministic: a.deterministic,
    };
    Ok(Prepared {
        space,
        config,
        inputs,
        tables: tables.into_iter().map(|t| t.0).collect(),
    })
}

/// Everything a search runs with.
struct Prepared {
    space: SearchSpace,
    config: SearchConfig,
    inputs: RunInputs,
    tables: Vec<LatencyTable>,
}

/// `search`.
pub fn run_search(a: SearchArgs) -> Result<()> {
    let dir = a
        .resume
        .clone()
        .or(a.out.clone())
        .expect("clap requires --out or --resume");
    let mut p = match &a.resume {
        Some(_) => resumed(&a, &dir)?,
        None => fresh(&a, &dir)?,
    };
    if let Some(0) = a.threads {
        bail!("--threads: at least 1");
    }
    if p.inputs.limit_train == Some(0) {
        bail!("--limit-train: at least one image");
    }
    if p.inputs.deterministic {
        tunas_searcher::layers::set_serial(true);
    }
    let flags = crate::data_cmd::DataFlags {
        data_format: p.inputs.data_format.clone(),
        skip_bad_images: p.inputs.skip_bad_images,
    };
    let loaded = crate::data_cmd::load_images(Path::new(&p.inputs.data), &flags, &p.space)?;
    p.inputs.classes = loaded.classes.clone();
    let tt = loaded.data;
    let mut data = SearchData::prepare(
        &tt.train,
        p.inputs.limit_train,
        p.inputs.holdout,
        p.config.seed,
    );
    data.classes = loaded.classes.clone();
    if data.validation.len() < p.config.validation_batch || data.train.len() < p.config.batch {
        bail!(
            "--batch {} / --validation-batch {}: only {} training and {} held-out images (--limit-train, --holdout)",
            p.config.batch,
            p.config.validation_batch,
            data.train.len(),
            data.validation.len()
        );
    }
    if a.resume.is_none() {
        let files = RunFiles { dir: dir.clone() };
        std::fs::create_dir_all(&dir).with_context(|| format!("--out {}", dir.display()))?;
        tunas_shared::write_atomic(&files.space(), p.space.to_toml().as_bytes())
            .with_context(|| format!("cannot write to {}", dir.display()))?;
        p.inputs.write(&files)?;
    }
    let opts = RunOptions {
        progress: !a.quiet,
        stop_after: a.stop_after,
        steps_done: None,
    };
    let outcome = threads_pool(a.threads, || {
        let tables: Vec<&LatencyTable> = p.tables.iter().collect();
        search(&p.space, &tables, &data, &p.config, &dir, &opts)
    })??;
    match outcome {
        None => eprintln!(
            "stopped after step {} (resume with --resume {})",
            a.stop_after.unwrap_or(0),
            dir.display()
        ),
        Some(r) => report(&r, a.json)?,
    }
    Ok(())
}

/// A latency target far outside what the space's networks take cannot be
/// met: said before any work.
fn check_target_reachable(
    space: &SearchSpace,
    table: &LatencyTable,
    c: &SearchConfig,
    target: f64,
) -> Result<()> {
    if c.resource != Resource::Latency {
        return Ok(());
    }
    let ms = tunas_searcher::search::latency_samples(space, table, 200, 1)?;
    let (lo, hi) = (ms[0], ms[ms.len() - 1]);
    if target < lo * 0.5 || target > hi * 2.0 {
        bail!(
            "--target-ms {}: uniform samples of {} take {lo:.4}–{hi:.4} ms on this table; pick a target in that range (`tunas-searcher targets --table …` prints percentiles)",
            target,
            space.name
        );
    }
    Ok(())
}

/// The space: `--space` when given, else the built-in space the table was
/// made for (a table of a TOML space needs `--space FILE.toml`).
pub fn space_for(flag: Option<&str>, table: Option<&LatencyTable>) -> Result<SearchSpace> {
    match (flag, table) {
        (Some(s), _) => load_space(s).with_context(|| format!("--space {s}")),
        (None, Some(t)) => tunas_shared::builtin_space_of(t).with_context(|| {
            format!(
                "the table was made for space '{}' (hash {}), which is not built in: pass its file with --space FILE.toml",
                t.provenance.space, t.provenance.space_hash
            )
        }),
        (None, None) => Ok(load_space("tiny28")?),
    }
}

pub fn threads_pool<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    Ok(tunas_searcher::train::in_thread_pool(threads, f)?)
}

fn report(r: &SearchResult, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!("architecture  {}", r.arch);
    if r.devices.len() > 1 {
        for d in &r.devices {
            println!(
                "latency       {:.4} ms estimated on {} ({}), target {:.4} ms ({:+.1}%){}",
                d.est_latency_ms,
                d.device,
                d.cpu,
                d.target_ms,
                d.miss_pct,
                if d.miss_pct.abs() > 3.0 {
                    "  <- misses by more than 3%"
                } else {
                    ""
                }
            );
        }
    } else if let (Some(est), Some(target)) = (r.est_latency_ms, r.target_ms) {
        println!(
            "latency       {est:.4} ms estimated, target {target:.4} ms ({:+.1}%)",
            (est / target - 1.0) * 100.0
        );
    }
    println!(
        "flops         {:.2} M   params {:.3} M   validation accuracy {:.2}%   {:.0} s",
        r.flops as f64 / 1e6,
        r.params as f64 / 1e6,
        r.validation_accuracy * 100.0,
        r.seconds
    );
    for line in r.phase_times.summary_lines() {
        println!("time          {line}");
    }
    print!("{}", r.readable);
    Ok(())
}
