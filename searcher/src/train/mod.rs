//! Stand-alone training of one fixed architecture from scratch
//! (docs/design.md, "After the search"), and its evaluation on the test
//! set with fixed (running) BN statistics.
//!
//! The architecture runs as a single path of a fresh [`Supernet`]: the
//! supernet keeps the widest weights, and a single path uses exactly the
//! first channels of each, so it *is* the stand-alone network. Training uses
//! batch statistics and updates the running statistics
//! ([`BnMode::BatchUpdateRunning`]); evaluation uses the running statistics
//! ([`BnMode::Running`]).
//!
//! Defaults: SGD with Nesterov momentum 0.9 and peak learning rate 0.1,
//! weight decay 4e-5 on conv and linear weights, label smoothing 0.1, linear
//! warm-up over 2.5% of the steps then cosine decay, random pad-and-crop by
//! 2 pixels. Measured on the repo's 3,000-image subset (8 epochs of batch
//! 128, a 2.7 M multiply-add network, BN recalibrated, 1,000 test images):
//! weight decay 4e-5 and 5e-4 are indistinguishable (77.6 / 77.4% vs
//! 77.8 / 77.3% over two seeds), so TuNAS's 4e-5 stays; learning rate 0.05
//! gives 74.8%, 0.1 77.6%, 0.2 81.4% (short runs favour large rates);
//! RMSProp (ε = 1) at 0.05 gives 75.5%.
//!
//! ```
//! use tunas_searcher::data::{Dataset, TrainTest};
//! use tunas_searcher::supernet::Supernet;
//! use tunas_searcher::train::{TrainConfig, OptimizerKind, train_architecture};
//! use tunas_shared::{Architecture, builtin_space};
//!
//! // Two tiny classes: black and white images.
//! let images = |n: usize| Dataset {
//!     height: 28, width: 28, channels: 1, classes: 10,
//!     pixels: (0..n).flat_map(|i| vec![if i % 2 == 0 { 0u8 } else { 255 }; 784]).collect(),
//!     labels: (0..n).map(|i| (i % 2) as u8).collect(),
//! };
//! let data = TrainTest { train: images(16), test: images(8) };
//! let space = builtin_space("tiny28").unwrap();
//! // A small network: the first value of every decision.
//! let arch = Architecture::parse(&space, &"0".repeat(30)).unwrap();
//! let mut cfg = TrainConfig::new(OptimizerKind::Sgd);
//! cfg.epochs = 1;
//! cfg.batch = 8;
//! let mut net = Supernet::new(&space, 1);
//! let report = train_architecture(&mut net, &arch, &data, &cfg, true).unwrap();
//! assert_eq!(report.steps, 2);
//! assert!((0.0..=1.0).contains(&report.test_accuracy));
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tunas_shared::{Architecture, SearchSpace};

use crate::data::{Augmentation, BatchMaker, BatchStream, Dataset, TrainTest};
use crate::optim::{Optimizer, RmsProp, Sgd, WarmupCosine};
use crate::supernet::{BnMode, PathPlan, StepSettings, Supernet, train_step};
use crate::weights::{WeightsError, save_supernet};

mod run;
pub use run::train_architecture;

/// Training could not start or its results could not be saved.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The images do not fit the space's input.
    #[error(
        "the data has {data_h}x{data_w}x{data_c} images with {data_classes} classes, but space '{space}' takes {h}x{w}x{c} with {classes} classes: use images that match the space, or a space that matches the images"
    )]
    DataMismatch {
        /// Space name.
        space: String,
        /// Space input height.
        h: u32,
        /// Space input width.
        w: u32,
        /// Space input channels.
        c: u32,
        /// Space classes.
        classes: u32,
        /// Image height.
        data_h: usize,
        /// Image width.
        data_w: usize,
        /// Image channels.
        data_c: usize,
        /// Classes in the data.
        data_classes: usize,
    },
    /// Fewer training images than one batch.
    #[error("{images} training images is less than one batch of {batch}: use a smaller batch")]
    TooFewImages {
        /// Training images.
        images: usize,
        /// Batch size.
        batch: usize,
    },
    /// A setting is out of range.
    #[error("{what} = {value} is invalid: {why}")]
    BadSetting {
        /// The setting (its flag's name without dashes).
        what: &'static str,
        /// Its value.
        value: String,
        /// Why.
        why: &'static str,
    },
    /// The thread pool could not be built.
    #[error("cannot start {threads} worker threads")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// Rayon's error.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    /// Weights could not be saved or loaded.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A result file could not be written.
    #[error("{}: cannot write", path.display())]
    Io {
        /// File path.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Which optimiser trains the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with Nesterov momentum.
    Sgd,
    /// TensorFlow-style RMSProp (TuNAS's choice on ImageNet).
    #[value(name = "rmsprop")]
    RmsProp,
}

/// Settings of a stand-alone training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per step.
    pub batch: usize,
    /// Optimiser.
    pub(crate) optimizer: OptimizerKind,
    /// Peak learning rate (after warm-up).
    pub lr: f32,
    /// Momentum (SGD: Nesterov momentum; RMSProp: its momentum).
    pub momentum: f32,
    /// L2 weight decay on conv and linear weights.
    pub weight_decay: f32,
    /// Label smoothing of the cross-entropy.
    pub label_smoothing: f32,
    /// Share of all steps spent in linear learning-rate warm-up.
    pub warmup_fraction: f64,
    /// Random pad-and-crop augmentation, in pixels (0 = off).
    pub(crate) pad_crop: usize,
    /// Random horizontal flips.
    pub(crate) flip: bool,
    /// Seed of the initial weights, the batch order and the augmentation.
    pub seed: u64,
    /// Train on only this many (seeded random) training images.
    pub limit_train: Option<usize>,
    /// Images per evaluation batch.
    pub(crate) eval_batch: usize,
    /// Evaluate on the test set after every epoch (else only at the end).
    pub eval_every_epoch: bool,
    /// Before each evaluation, replace the running BN statistics by the
    /// plain average over this many training batches (0: keep the running
    /// averages of training). With TuNAS's BN momentum of 0.99 the running
    /// averages need a few hundred steps to forget their initial values, so
    /// after short runs they evaluate much worse than the network is. See
    /// [`crate::export::recalibrate_bn`].
    pub bn_recalibration_batches: usize,
}

impl TrainConfig {
    /// The defaults for `optimizer`: 10 epochs of batch 128, peak learning
    /// rate 0.1 (SGD) or 0.05 (RMSProp), momentum 0.9, weight decay 4e-5,
    /// label smoothing 0.1, 2.5% warm-up, the grey inputs' augmentation
    /// ([`Augmentation::train_default`]: pad-and-crop 2, no flips), seed 0,
    /// evaluation with the running BN statistics of training.
    pub fn new(optimizer: OptimizerKind) -> Self {
        TrainConfig {
            epochs: 10,
            batch: 128,
            optimizer,
            lr: match optimizer {
                OptimizerKind::Sgd => 0.1,
                OptimizerKind::RmsProp => 0.05,
            },
            momentum: 0.9,
            weight_decay: 4e-5,
            label_smoothing: 0.1,
            warmup_fraction: 0.025,
            pad_crop: Augmentation::train_default(1).pad_crop,
            flip: Augmentation::train_default(1).flip,
            seed: 0,
            limit_train: None,
            eval_batch: 500,
            eval_every_epoch: true,
            bn_recalibration_batches: 0,
        }
    }

    /// Sets the training batches' augmentation.
    pub fn set_augmentation(&mut self, augment: Augmentation) {
        self.pad_crop = augment.pad_crop;
        self.flip = augment.flip;
    }

    /// The optimiser these settings describe.
    pub(crate) fn optimizer(&self) -> Optimizer {
        match self.optimizer {
            OptimizerKind::Sgd => Optimizer::Sgd(Sgd {
                momentum: self.momentum,
                weight_decay: self.weight_decay,
                nesterov: true,
            }),
            OptimizerKind::RmsProp => Optimizer::RmsProp(RmsProp {
                momentum: self.momentum,
                weight_decay: self.weight_decay,
                ..RmsProp::tunas()
            }),
        }
    }

    fn check(&self) -> Result<(), TrainError> {
        let bad = |what, value: String, why| Err(TrainError::BadSetting { what, value, why });
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "train for at least one epoch");
        }
        if self.batch == 0 {
            return bad("batch", "0".into(), "a batch needs at least one image");
        }
        if self.eval_batch == 0 {
            return bad("eval batch", "0".into(), "a batch needs at least one image");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", self.lr.to_string(), "must be a positive number");
        }
        if !(0.0..=1.0).contains(&self.label_smoothing) {
            return bad(
                "label-smoothing",
                self.label_smoothing.to_string(),
                "must be in [0, 1]",
            );
        }
        if !(0.0..1.0).contains(&self.warmup_fraction) {
            return bad(
                "warmup",
                self.warmup_fraction.to_string(),
                "must be in [0, 1)",
            );
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", self.momentum.to_string(), "must lie in [0, 1)");
        }
        if self.pad_crop > 64 {
            return bad(
                "pad-crop",
                self.pad_crop.to_string(),
                "pads of more than 64 pixels leave no image",
            );
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(
                "weight-decay",
                self.weight_decay.to_string(),
                "must be zero or positive",
            );
        }
        Ok(())
    }
}

/// Per-channel normalisation applied to every image (from the training set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of the pixels scaled to [0, 1], per channel.
    pub(crate) mean: Vec<f32>,
    /// Standard deviation, per channel.
    pub(crate) std: Vec<f32>,
}

impl Normalization {
    /// Statistics of `data`.
    pub fn of(data: &Dataset) -> Self {
        let (mean, std) = data.channel_stats();
        Normalization { mean, std }
    }

    /// A batch maker with this normalisation and no augmentation.
    pub fn maker(&self) -> BatchMaker {
        BatchMaker {
            mean: self.mean.clone(),
            std: self.std.clone(),
            pad_crop: 0,
            flip: false,
        }
    }
}

/// What one epoch did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub(crate) epoch: usize,
    /// Mean training loss over the epoch's steps (with label smoothing).
    pub train_loss: f32,
    /// Mean training-batch accuracy (batch BN statistics, augmented data).
    pub(crate) train_accuracy: f32,
    /// Test accuracy with running BN statistics, if evaluated.
    pub(crate) test_accuracy: Option<f32>,
    /// Learning rate of the epoch's last step.
    pub(crate) lr: f32,
    /// Seconds spent training (excluding evaluation).
    pub(crate) train_seconds: f64,
    /// Seconds spent evaluating.
    pub(crate) eval_seconds: f64,
}

/// The result of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Space name.
    pub(crate) space: String,
    /// Space content hash.
    pub(crate) space_hash: String,
    /// Compact architecture text.
    pub(crate) arch: String,
    /// Epochs run.
    pub epochs: usize,
    /// Optimiser steps run.
    pub steps: usize,
    /// Training images used.
    pub(crate) train_images: usize,
    /// Test images evaluated.
    pub(crate) test_images: usize,
    /// Final test accuracy (running BN statistics).
    pub test_accuracy: f32,
    /// Mean training loss of the last epoch.
    pub(crate) final_train_loss: f32,
    /// Wall-clock seconds of the whole run (training and evaluations).
    pub seconds: f64,
    /// Seconds spent in training steps only.
    pub(crate) train_seconds: f64,
    /// Training throughput: images per second of training-step time.
    pub images_per_s: f64,
    /// Rayon threads the run had.
    pub(crate) threads: usize,
    /// Whether layers ran serially (deterministic mode).
    pub(crate) serial: bool,
    /// Normalisation used for training and test images.
    pub normalization: Normalization,
    /// The settings.
    pub(crate) config: TrainConfig,
    /// One entry per epoch.
    pub history: Vec<EpochReport>,
}

/// Test-set evaluation of saved weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Space name.
    pub space: String,
    /// Compact architecture text.
    pub arch: String,
    /// Test accuracy (running BN statistics).
    pub test_accuracy: f32,
    /// Test images evaluated.
    pub test_images: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Evaluation throughput, images per second.
    pub(crate) images_per_s: f64,
}

/// Runs `f` on a rayon pool of `threads` threads (`None`: rayon's default,
/// one per core), so the layers' parallel loops use exactly that many.
pub fn in_thread_pool<R: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> R + Send,
) -> Result<R, TrainError> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        if n == 0 {
            return Err(TrainError::BadSetting {
                what: "threads",
                value: "0".into(),
                why: "at least one thread is needed",
            });
        }
        builder = builder.num_threads(n);
    }
    let pool = builder.build().map_err(|source| TrainError::Threads {
        threads: threads.unwrap_or(0),
        source,
    })?;
    Ok(pool.install(f))
}

/// Checks that `data` fits `space`'s input.
pub fn check_data(space: &SearchSpace, data: &Dataset) -> Result<(), TrainError> {
    let i = &space.input;
    if data.height != i.height as usize
        || data.width != i.width as usize
        || data.channels != i.channels as usize
        || data.classes > i.classes as usize
    {
        return Err(TrainError::DataMismatch {
            space: space.name.clone(),
            h: i.height,
            w: i.width,
            c: i.channels,
            classes: i.classes,
            data_h: data.height,
            data_w: data.width,
            data_c: data.channels,
            data_classes: data.classes,
        });
    }
    Ok(())
}

/// Accuracy of `plan` on all of `data` with running BN statistics, in
/// batches of `batch` (the last batch may be smaller).
pub fn evaluate_dataset(
    net: &mut Supernet,
    plan: &PathPlan,
    data: &Dataset,
    maker: &BatchMaker,
    batch: usize,
) -> f32 {
    if data.is_empty() {
        return 0.0;
    }
    // No augmentation, so the RNG is never drawn from.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut correct = 0usize;
    let all: Vec<usize> = (0..data.len()).collect();
    for chunk in all.chunks(batch.max(1)) {
        let (x, labels) = maker.batch(data, chunk, &mut rng);
        let (logits, _) = net.forward(x, plan, BnMode::Running, false);
        correct += crate::layers::loss::correct_count(logits.view(), &labels);
    }
    correct as f32 / data.len() as f32
}

/// File names a training run writes into its output folder.
pub(crate) const WEIGHTS_FILE: &str = "weights.bin";
/// See [`WEIGHTS_FILE`].
pub(crate) const RESULT_FILE: &str = "result.json";

/// Writes the trained weights (with the normalisation and the report in the
/// file's metadata) and `result.json` into `dir`, creating it if needed.
/// Returns both paths.
pub fn save_run(
    dir: &Path,
    net: &Supernet,
    arch: &Architecture,
    report: &TrainReport,
) -> Result<(PathBuf, PathBuf), TrainError> {
    std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let weights = dir.join(WEIGHTS_FILE);
    let extra = serde_json::json!({
        "normalization": report.normalization,
        "test_accuracy": report.test_accuracy,
        "epochs": report.epochs,
    });
    save_supernet(&weights, net, Some(arch), extra)?;
    let result = dir.join(RESULT_FILE);
    let json = serde_json::to_vec_pretty(report).expect("a report always serialises");
    tunas_shared::write_atomic(&result, &json).map_err(|source| TrainError::Io {
        path: result.clone(),
        source,
    })?;
    Ok((weights, result))
}

/// The normalisation recorded in a weights file's metadata by [`save_run`].
pub fn saved_normalization(extra: &serde_json::Value) -> Option<Normalization> {
    serde_json::from_value(extra.get("normalization")?.clone()).ok()
}

/// Evaluates `net` (weights already loaded) on `test` with running BN
/// statistics.
pub fn evaluate_weights(
    net: &mut Supernet,
    arch: &Architecture,
    test: &Dataset,
    normalization: &Normalization,
    batch: usize,
) -> Result<EvalReport, TrainError> {
    check_data(&net.space, test)?;
    let started = Instant::now();
    let plan = PathPlan::single(arch.clone());
    let acc = evaluate_dataset(net, &plan, test, &normalization.maker(), batch);
    let seconds = started.elapsed().as_secs_f64();
    Ok(EvalReport {
        space: net.space.name.clone(),
        arch: arch.to_compact(),
        test_accuracy: acc,
        test_images: test.len(),
        seconds,
        images_per_s: test.len() as f64 / seconds.max(1e-9),
    })
}
