//! Arguments and glue of `search`, `export` and `random`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use tunas_searcher::controller::RewardKind;
use tunas_searcher::data::{DEFAULT_FASHION_MNIST_DIR, load_dir};
use tunas_searcher::export::{export_onnx, recalibrate_bn};
use tunas_searcher::search::{
    Resource, RunOptions, SearchConfig, SearchData, SearchResult, random_within_band, search,
};
use tunas_searcher::supernet::{BnMode, PathPlan, Supernet, evaluate};
use tunas_searcher::weights::load_store;
use tunas_shared::{Architecture, LatencyTable, SearchSpace, load_space};

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
pub enum ResourceArg {
    /// Latency from the table (ms).
    Latency,
    /// Multiply-adds (millions).
    Flops,
    /// Parameters (millions).
    Params,
}

/// Arguments of `search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// A built-in space name or a path to a .toml file.
    #[arg(long, value_name = "NAME|FILE.toml", default_value = "tiny28")]
    space: String,
    /// Latency table for the space (from `tunas-profiler profile`).
    #[arg(long, value_name = "FILE")]
    table: Option<PathBuf>,
    /// Latency target T0 in ms (with --resource latency).
    #[arg(long, value_name = "MS")]
    target_ms: Option<f64>,
    /// Target for --resource flops (M multiply-adds) or params (M).
    #[arg(long, value_name = "X")]
    target: Option<f64>,
    /// What the cost T is.
    #[arg(long, value_enum, default_value = "latency")]
    resource: ResourceArg,
    /// Run folder: result.json, steps.csv, charts, checkpoints, weights.
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the killed run in DIR from its last checkpoint.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Search steps (each trains one batch and evaluates one).
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Training batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Validation batch size for the reward's Q.
    #[arg(long, default_value_t = 128)]
    validation_batch: usize,
    /// Architectures sampled per step.
    #[arg(long, default_value_t = 1)]
    samples_per_step: usize,
    /// Reward function.
    #[arg(long, value_enum, default_value = "abs")]
    reward: RewardArg,
    /// β of the reward (negative; −0.5 measured to land targets here, TuNAS used −0.07…−0.1 on ImageNet).
    #[arg(long, default_value_t = tunas_searcher::search::DEFAULT_BETA, allow_hyphen_values = true)]
    beta: f64,
    /// RL learning rate at the end of the warm-up (default 40 / steps after the warm-up).
    #[arg(long)]
    rl_lr: Option<f64>,
    /// Peak learning rate of the shared weights.
    #[arg(long, default_value_t = 0.05)]
    lr: f32,
    /// Fraction of steps in the warm-up.
    #[arg(long, default_value_t = 0.25)]
    warmup: f64,
    /// Folder with MNIST-format IDX files or CIFAR-10 binary batches.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_FASHION_MNIST_DIR)]
    data: PathBuf,
    /// Images held out of the training split for the reward (default 10000,
    /// or a sixth of a smaller set).
    #[arg(long)]
    holdout: Option<usize>,
    /// Use only the first N training images (quick runs).
    #[arg(long)]
    limit_train: Option<usize>,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads of the weight kernels.
    #[arg(long)]
    threads: Option<usize>,
    /// Serial reductions: bit-identical results across runs and resumes.
    #[arg(long)]
    deterministic: bool,
    /// Checkpoint every N steps.
    #[arg(long, default_value_t = 250)]
    checkpoint_every: usize,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Print result.json to stdout.
    #[arg(long)]
    json: bool,
    /// Stop after this many steps, as if killed (for resume tests).
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
}

fn load_data(
    dir: &Path,
    limit: Option<usize>,
    holdout: Option<usize>,
    seed: u64,
) -> Result<(
    SearchData,
    tunas_searcher::data::Dataset,
    tunas_searcher::data::Dataset,
)> {
    let tt = load_dir(dir).context("--data")?;
    let mut train = tt.train;
    if let Some(n) = limit {
        let idx: Vec<usize> = (0..n.min(train.len())).collect();
        train = train.subset(&idx);
    }
    let holdout = holdout.unwrap_or(if train.len() >= 60_000 {
        10_000
    } else {
        train.len() / 6
    });
    let data = SearchData::split(&train, holdout, seed);
    Ok((data, train, tt.test))
}

fn threads_pool<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    Ok(tunas_searcher::train::in_thread_pool(threads, f)?)
}

/// `search`.
pub fn run_search(a: SearchArgs) -> Result<()> {
    let dir = a
        .resume
        .clone()
        .or(a.out.clone())
        .expect("clap requires one");
    let (space, config) = if let Some(dir) = &a.resume {
        let cp_path = dir.join("checkpoint.json");
        let text = std::fs::read_to_string(&cp_path).with_context(|| {
            format!(
                "--resume {}: no checkpoint there ({})",
                dir.display(),
                cp_path.display()
            )
        })?;
        let cp: tunas_searcher::search::Checkpoint = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a checkpoint", cp_path.display()))?;
        let space = SearchSpace::from_toml_file(&dir.join("space.toml"))?;
        (space, cp.config)
    } else {
        let space = load_space(&a.space).context("--space")?;
        let resource = match a.resource {
            ResourceArg::Latency => Resource::Latency,
            ResourceArg::Flops => Resource::Flops,
            ResourceArg::Params => Resource::Params,
        };
        let target = match resource {
            Resource::Latency => a
                .target_ms
                .context("--target-ms is needed with --resource latency")?,
            _ => a
                .target
                .context("--target is needed with --resource flops|params")?,
        };
        if target <= 0.0 {
            bail!("the target must be positive, got {target}");
        }
        let mut config = SearchConfig::defaults(a.steps, target);
        config.resource = resource;
        config.warmup_fraction = a.warmup;
        config.batch = a.batch;
        config.validation_batch = a.validation_batch;
        config.samples_per_step = a.samples_per_step;
        config.reward = match a.reward {
            RewardArg::Abs => RewardKind::Abs,
            RewardArg::Mnas => RewardKind::Mnas,
            RewardArg::MnasHard => RewardKind::MnasHard,
        };
        config.beta = a.beta;
        if let Some(lr) = a.rl_lr {
            config.rl_learning_rate = lr;
        } else {
            let post = a.steps - config.warmup_steps();
            config.rl_learning_rate = tunas_searcher::search::default_rl_learning_rate(post);
        }
        config.weight_learning_rate = a.lr;
        config.seed = a.seed;
        config.checkpoint_every = a.checkpoint_every.max(1);
        std::fs::create_dir_all(&dir).with_context(|| format!("--out {}", dir.display()))?;
        if dir.join("checkpoint.json").exists() {
            bail!(
                "{} already holds a run; continue it with --resume {}, or pick another --out",
                dir.display(),
                dir.display()
            );
        }
        tunas_shared::write_atomic(&dir.join("space.toml"), space.to_toml().as_bytes())
            .with_context(|| format!("cannot write to {}", dir.display()))?;
        (space, config)
    };
    let table = match (&a.table, config.resource) {
        (Some(t), _) => Some(LatencyTable::read(t)?),
        (None, Resource::Latency) => bail!(
            "--table FILE is needed for a latency target (write one with `tunas-profiler profile --space {} --out FILE`)",
            space.name
        ),
        (None, _) => None,
    };
    if a.deterministic {
        tunas_searcher::layers::set_serial(true);
    }
    let (data, _, _) = load_data(&a.data, a.limit_train, a.holdout, config.seed)?;
    let opts = RunOptions {
        progress: !a.quiet,
        stop_after: a.stop_after,
    };
    let outcome = threads_pool(a.threads, || {
        search(&space, table.as_ref(), &data, &config, &dir, &opts)
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

fn report(r: &SearchResult, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!("architecture  {}", r.arch);
    if let (Some(est), Some(target)) = (r.est_latency_ms, r.target_ms) {
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
    print!("{}", r.readable);
    Ok(())
}

/// Arguments of `export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A search run folder (with result.json and supernet.weights).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Where to write the ONNX model.
    #[arg(long, value_name = "FILE.onnx")]
    onnx: PathBuf,
    /// Export this architecture instead of the searched one.
    #[arg(long)]
    arch: Option<String>,
    /// Dataset folder (training batches recalibrate BN; the test set is evaluated).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_FASHION_MNIST_DIR)]
    data: PathBuf,
    /// Training batches averaged into the BN statistics.
    #[arg(long, default_value_t = 40)]
    calibration_batches: usize,
    /// Batch size of the exported model's input.
    #[arg(long, default_value_t = 1)]
    batch: u32,
    /// Threads.
    #[arg(long)]
    threads: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `export`.
pub fn run_export(a: ExportArgs) -> Result<()> {
    let space = SearchSpace::from_toml_file(&a.run.join("space.toml"))?;
    let result_path = a.run.join("result.json");
    let result: SearchResult =
        serde_json::from_str(&std::fs::read_to_string(&result_path).with_context(|| {
            format!(
                "{}: the run has no result (did the search finish?)",
                result_path.display()
            )
        })?)
        .with_context(|| format!("{}: not a search result", result_path.display()))?;
    let arch = Architecture::parse_spec(&space, a.arch.as_deref().unwrap_or(&result.arch))
        .context("--arch")?;
    let mut net = Supernet::new(&space, 0);
    load_store(&a.run.join("supernet.weights"), &mut net.store)?;
    let tt = load_dir(&a.data).context("--data")?;
    let maker = tunas_searcher::data::BatchMaker::plain(&tt.train);
    let (onnx, accuracy) = threads_pool(a.threads, || {
        recalibrate_bn(
            &mut net,
            &arch,
            &tt.train,
            &maker,
            a.calibration_batches,
            256,
        );
        let mut correct = 0.0;
        let mut seen = 0usize;
        let plan = PathPlan::single(arch.clone());
        let mut rng = rand::rng();
        for chunk in (0..tt.test.len()).collect::<Vec<_>>().chunks(500) {
            let (x, y) = maker.batch(&tt.test, chunk, &mut rng);
            correct +=
                evaluate(&mut net, x, &y, &plan, BnMode::Running) as f64 * chunk.len() as f64;
            seen += chunk.len();
        }
        (
            export_onnx(&net, &arch, a.batch),
            correct / seen.max(1) as f64,
        )
    })?;
    let onnx = onnx.map_err(anyhow::Error::msg)?;
    tunas_shared::write_atomic(&a.onnx, &onnx)
        .with_context(|| format!("cannot write {}", a.onnx.display()))?;
    let v = serde_json::json!({
        "onnx": a.onnx.display().to_string(),
        "arch": arch.to_compact(),
        "test_accuracy": accuracy,
        "est_latency_ms": result.est_latency_ms,
        "normalization": {"mean": maker.mean, "std": maker.std},
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "wrote {} ({} bytes): {} — test accuracy {:.2}% (shared weights, BN recalibrated), estimated latency {}",
            a.onnx.display(),
            onnx.len(),
            arch.to_compact(),
            accuracy * 100.0,
            result
                .est_latency_ms
                .map(|m| format!("{m:.4} ms"))
                .unwrap_or_else(|| "n/a".into())
        );
        println!(
            "time it on the device: tunas-profiler measure --model {}",
            a.onnx.display()
        );
    }
    Ok(())
}

/// Arguments of `random`.
#[derive(Args, Debug)]
pub struct RandomArgs {
    /// A built-in space name or a path to a .toml file.
    #[arg(long, value_name = "NAME|FILE.toml", default_value = "tiny28")]
    space: String,
    /// Latency table for the space.
    #[arg(long, value_name = "FILE")]
    table: PathBuf,
    /// Latency target T0 in ms.
    #[arg(long, value_name = "MS")]
    target_ms: f64,
    /// Relative band around the target.
    #[arg(long, default_value_t = 0.03)]
    band: f64,
    /// Architectures to return.
    #[arg(long, default_value_t = 5)]
    n: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `random`.
pub fn run_random(a: RandomArgs) -> Result<()> {
    let space = load_space(&a.space).context("--space")?;
    let table = LatencyTable::read(&a.table)?;
    table.check_space(&space)?;
    let kept = random_within_band(
        &space,
        Some(&table),
        Resource::Latency,
        a.target_ms,
        a.band,
        a.n,
        a.seed,
        1_000_000,
    )?;
    if kept.len() < a.n {
        eprintln!(
            "only {} of {} architectures found within ±{:.1}% in 1,000,000 draws",
            kept.len(),
            a.n,
            a.band * 100.0
        );
    }
    if a.json {
        let v: Vec<_> = kept
            .iter()
            .map(|(arch, ms)| serde_json::json!({"arch": arch.to_compact(), "est_latency_ms": ms}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (arch, ms) in kept {
            println!("{} {ms:.4}", arch.to_compact());
        }
    }
    Ok(())
}

/// Arguments of `targets`.
#[derive(Args, Debug)]
pub struct TargetsArgs {
    /// A built-in space name or a path to a .toml file.
    #[arg(long, value_name = "NAME|FILE.toml", default_value = "tiny28")]
    space: String,
    /// Latency table for the space.
    #[arg(long, value_name = "FILE")]
    table: PathBuf,
    /// Uniform samples.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON (`p25_ms`, `p50_ms`, `p75_ms`, `min_ms`, `max_ms`).
    #[arg(long)]
    json: bool,
}

/// `targets`.
pub fn run_targets(a: TargetsArgs) -> Result<()> {
    use rand::SeedableRng;
    let space = load_space(&a.space).context("--space")?;
    let table = LatencyTable::read(&a.table)?;
    table.check_space(&space)?;
    anyhow::ensure!(a.samples >= 1, "--samples must be at least 1");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let mut ms = Vec::with_capacity(a.samples);
    for _ in 0..a.samples {
        let arch = Architecture::sample_uniform(&space, &mut rng);
        ms.push(table.estimate_us(&space, &arch)? / 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| tunas_shared::table::quantile(&ms, p);
    let v = serde_json::json!({
        "space": space.name, "samples": a.samples, "seed": a.seed,
        "min_ms": ms[0], "p25_ms": q(0.25), "p50_ms": q(0.5), "p75_ms": q(0.75), "max_ms": ms[ms.len() - 1],
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} uniform {} architectures: min {:.4} ms, p25 {:.4}, median {:.4}, p75 {:.4}, max {:.4}",
            a.samples,
            space.name,
            ms[0],
            q(0.25),
            q(0.5),
            q(0.75),
            ms[ms.len() - 1]
        );
    }
    Ok(())
}
