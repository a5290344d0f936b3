//! Arguments and glue of `train`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tunas_shared::{Architecture, load_space};

use crate::data_cmd;

/// Arguments of `train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
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
    #[command(flatten)]
    augment: data_cmd::AugmentFlags,
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

pub fn run_train(a: TrainArgs) -> Result<()> {
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
    cfg.set_augmentation(
        a.augment
            .over(tunas_searcher::data::Augmentation::train_default(
                space.input.channels,
            )),
    );
    cfg.seed = a.seed;
    cfg.limit_train = a.limit_train;
    cfg.bn_recalibration_batches = a.recalibrate_bn;
    let report = train::in_thread_pool(a.threads, || {
        train::train_architecture(&mut net, &arch, &data, &cfg, a.quiet)
    })
    .map_err(train_error)?
    .map_err(train_error)?;
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

/// A training error with the flag that fixes it (the library names the
/// setting, not the flag).
fn train_error(e: tunas_searcher::train::TrainError) -> anyhow::Error {
    match e {
        tunas_searcher::train::TrainError::BadSetting { what, value, why } => {
            anyhow::anyhow!("--{what} {value} is invalid: {why}")
        }
        tunas_searcher::train::TrainError::DataMismatch { .. } => {
            anyhow::anyhow!("{e} (--data, --space)")
        }
        tunas_searcher::train::TrainError::TooFewImages { .. } => anyhow::anyhow!("{e} (--batch)"),
        other => other.into(),
    }
}
