//! The TuNAS search loop (docs/design.md, "The search"; the defaults'
//! evidence is in docs/decisions/).
//!
//! Each step samples an architecture (uniformly during the warm-up, from the
//! controller after it), trains the shared weights it uses on a training
//! batch, evaluates the same architecture on a validation batch with the
//! updated weights (Q), estimates its cost T from the latency table (or
//! FLOPs / parameters), and updates the controller with REINFORCE on the
//! reward. During the warm-up (first 25% of steps) the RL learning rate is 0;
//! op warm-up runs a kernel / SE / skip decision over all its values with
//! probability p (1 → 0), filter warm-up gives a filters / expansion decision
//! its largest value with probability q (1 → 0).
//!
//! Everything random at step t is drawn from generators seeded by
//! `(seed, t)`, and the data order of an epoch from `(seed, epoch)`, so a
//! run resumed from a checkpoint continues exactly as an uninterrupted one
//! would.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tunas_shared::{
    Architecture, DecisionKind, LatencyTable, SearchSpace, TableError, architecture_flops,
    architecture_params,
};

use crate::controller::{Controller, RewardKind, rl_learning_rate};
use crate::data::{BatchMaker, Dataset};
use crate::optim::{Optimizer, Sgd, WarmupCosine};
use crate::supernet::{BnMode, PathPlan, Supernet, evaluate, train_step};
use crate::weights::{WeightsError, WeightsMeta, load_store, save_store};

/// What the cost T of an architecture is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    /// Latency from the table, ms.
    Latency,
    /// Multiply-adds, millions.
    Flops,
    /// Parameters, millions.
    Params,
}

/// Everything that defines a search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// Total steps.
    pub steps: usize,
    /// Fraction of steps in the warm-up.
    pub warmup_fraction: f64,
    /// Training batch size.
    pub batch: usize,
    /// Validation batch size (for Q).
    pub validation_batch: usize,
    /// Samples per step.
    pub samples_per_step: usize,
    /// Reward function.
    pub reward: RewardKind,
    /// β (negative).
    pub beta: f64,
    /// Target T0, in the resource's unit (ms, M multiply-adds, M params).
    pub target: f64,
    /// Which resource T measures.
    pub resource: Resource,
    /// RL learning rate at the end of the warm-up (grows ×10 to the end).
    pub rl_learning_rate: f64,
    /// Peak learning rate of the shared weights.
    pub weight_learning_rate: f32,
    /// Weight decay of the shared weights.
    pub weight_decay: f32,
    /// Label smoothing.
    pub label_smoothing: f32,
    /// Keep only decision inputs for all-values decisions.
    pub rematerialize: bool,
    /// Seed of everything random.
    pub seed: u64,
    /// Checkpoint every this many steps.
    pub checkpoint_every: usize,
    /// Record controller probabilities every this many steps.
    pub record_every: usize,
    /// Latency targets (ms) of further devices, one per further table, in
    /// the order the tables are given; `target` is the first device's.
    #[serde(default)]
    pub more_targets: Vec<f64>,
    /// How several devices' misses add up in the reward.
    #[serde(default)]
    pub multi: MultiDevice,
}

/// How several devices' latency misses combine in the reward
/// `r = Q + β·combine_d |T_d/T0_d − 1|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MultiDevice {
    /// The sum of every device's miss.
    #[default]
    Sum,
    /// The worst device's miss.
    Max,
}

/// The reward of quality `q` when device d costs `costs[d]` against
/// `targets[d]`: for one device exactly `RewardKind::reward`; for several
/// (absolute reward only) `q + β·combine_d |T_d/T0_d − 1|`.
pub fn device_reward(
    kind: RewardKind,
    multi: MultiDevice,
    q: f64,
    costs: &[f64],
    targets: &[f64],
    beta: f64,
) -> f64 {
    if costs.len() == 1 {
        return kind.reward(q, costs[0], targets[0], beta);
    }
    let misses = costs
        .iter()
        .zip(targets)
        .map(|(t, t0)| (t / t0 - 1.0).abs());
    let miss = match multi {
        MultiDevice::Sum => misses.sum::<f64>(),
        MultiDevice::Max => misses.fold(0.0, f64::max),
    };
    q + beta * miss
}

/// Default β of the reward: −0.5.
///
/// TuNAS used −0.07…−0.1 on ImageNet, where Q comes from large validation
/// batches. Here Q is the accuracy on one 128-image batch (standard deviation
/// about 3 points), so a 5% latency miss at β = −0.1 (0.005 of reward) is lost
/// in Q's noise: default searches at the 25/50/75th latency percentiles ended
/// +5.6%, −2.7% and −8.9% off target. At β = −0.5 the same searches ended
/// −1.4%, −1.4% and +0.1% off, with validation accuracy as high (README,
/// "Latency targeting").
pub const DEFAULT_BETA: f64 = -0.5;

/// Default RL learning rate at the end of the warm-up for a search phase of
/// `search_steps` steps: `40 / search_steps`.
///
/// Adam with β1 = 0 moves a logit by about the learning rate per step, so the
/// total movement the schedule allows (×10 growth: about 3.9 × lr × steps)
/// is the same for any search length. Measured on tiny28 (README "Latency
/// targeting"): with 1.5 / steps the controller ended near uniform (entropy
/// 12–15 nats) and the argmax architecture missed a 25th-percentile target by
/// +27%; with 40 / steps it ends at 1–3 nats.
pub fn default_rl_learning_rate(search_steps: usize) -> f64 {
    40.0 / search_steps.max(1) as f64
}

impl SearchConfig {
    /// The defaults for `steps` steps at target `target`.
    pub fn defaults(steps: usize, target: f64) -> Self {
        let warmup = (steps as f64 * 0.25).round() as usize;
        SearchConfig {
            steps,
            warmup_fraction: 0.25,
            batch: 64,
            validation_batch: 128,
            samples_per_step: 1,
            reward: RewardKind::Abs,
            beta: DEFAULT_BETA,
            target,
            resource: Resource::Latency,
            rl_learning_rate: default_rl_learning_rate(steps - warmup),
            weight_learning_rate: 0.05,
            weight_decay: 4e-5,
            label_smoothing: 0.1,
            rematerialize: true,
            seed: 1,
            checkpoint_every: 250,
            record_every: 10,
            more_targets: Vec::new(),
            multi: MultiDevice::Sum,
        }
    }

    /// Checks every setting's range; the error names the setting (as the
    /// command-line flags do, without dashes).
    pub fn check(&self) -> Result<(), SearchError> {
        let bad = |what: &'static str, why: String| Err(SearchError::BadSetting { what, why });
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if self.steps < 4 {
            return bad(
                "steps",
                format!("{}: a search needs at least 4 steps", self.steps),
            );
        }
        for (what, v) in [
            ("batch", self.batch),
            ("validation-batch", self.validation_batch),
            ("samples-per-step", self.samples_per_step),
            ("checkpoint-every", self.checkpoint_every),
            ("record-every", self.record_every),
        ] {
            if v == 0 {
                return bad(what, "must be at least 1".into());
            }
        }
        if !(self.beta.is_finite() && self.beta < 0.0) {
            return bad(
                "beta",
                format!(
                    "{}: β must be a negative number (a cost penalty)",
                    self.beta
                ),
            );
        }
        if !positive(self.target) {
            return bad(
                "target",
                format!("{}: the target must be a positive number", self.target),
            );
        }
        // Adam moves a logit by about the RL rate per step (the default
        // 40 / search steps is 13 for a 4-step test search); past 1000 the
        // softmax saturates at once, and SGD steps of more than 10 diverge:
        // larger rates are mistakes.
        if !(positive(self.rl_learning_rate) && self.rl_learning_rate <= 1000.0) {
            return bad(
                "rl-lr",
                format!("{}: must lie in (0, 1000]", self.rl_learning_rate),
            );
        }
        let lr = f64::from(self.weight_learning_rate);
        if !(positive(lr) && lr <= 10.0) {
            return bad("lr", format!("{lr}: must lie in (0, 10]"));
        }
        if !(0.0..1.0).contains(&self.warmup_fraction) {
            return bad(
                "warmup",
                format!(
                    "{}: the warm-up fraction must lie in [0, 1)",
                    self.warmup_fraction
                ),
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight-decay",
                format!("{}: must be ≥ 0", self.weight_decay),
            );
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(
                "label-smoothing",
                format!("{}: must lie in [0, 1)", self.label_smoothing),
            );
        }
        if let Some(t) = self.more_targets.iter().find(|t| !positive(**t)) {
            return bad(
                "target-ms",
                format!("{t}: every device's target must be a positive number of ms"),
            );
        }
        if !self.more_targets.is_empty()
            && (self.resource != Resource::Latency || self.reward != RewardKind::Abs)
        {
            return bad(
                "target-ms",
                "several devices need --resource latency and --reward abs".into(),
            );
        }
        if self.steps - self.warmup_steps() < 1 {
            return bad("warmup", "leaves no search steps after the warm-up".into());
        }
        Ok(())
    }

    /// Steps in the warm-up.
    pub fn warmup_steps(&self) -> usize {
        (self.steps as f64 * self.warmup_fraction).round() as usize
    }
}

/// A search could not run or resume.
#[derive(Debug, Error)]
pub enum SearchError {
    /// The table could not be used.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A file of the run folder could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// Path.
        path: String,
        /// What failed.
        message: String,
    },
    /// A setting is out of range.
    #[error("{what}: {why}")]
    BadSetting {
        /// Flag.
        what: &'static str,
        /// Why.
        why: String,
    },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SearchError + '_ {
    move |e| SearchError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The data a search uses.
#[derive(Clone, Debug)]
pub struct SearchData {
    /// Images that train the shared weights.
    pub train: Dataset,
    /// Held-out images that give the reward's Q.
    pub validation: Dataset,
    /// Normalisation (from `train`).
    pub maker: BatchMaker,
}

impl SearchData {
    /// Held-out images for the reward when none are asked for: 10,000 of a
    /// full 60,000-image training set, else a sixth.
    pub fn default_holdout(train_images: usize) -> usize {
        if train_images >= 60_000 {
            10_000
        } else {
            train_images / 6
        }
    }

    /// The search's data from a training set: its first `limit` images (all
    /// without a limit), split into shared-weight training images and
    /// `holdout` (default [`Self::default_holdout`]) held-out images.
    pub fn prepare(
        train: &Dataset,
        limit: Option<usize>,
        holdout: Option<usize>,
        seed: u64,
    ) -> Self {
        let limited;
        let train = match limit {
            Some(n) if n < train.len() => {
                limited = train.subset(&(0..n).collect::<Vec<_>>());
                &limited
            }
            _ => train,
        };
        let holdout = holdout.unwrap_or_else(|| Self::default_holdout(train.len()));
        Self::split(train, holdout, seed)
    }

    /// Splits a training set: `holdout` images (seeded) for the reward.
    pub fn split(all: &Dataset, holdout: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xda7a);
        let (train, validation) = all.split(holdout, &mut rng);
        let maker = BatchMaker::plain(&train);
        SearchData {
            train,
            validation,
            maker,
        }
    }
}

/// One row of the per-step log.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    /// Step (0-based).
    pub step: usize,
    /// `warmup` or `search`.
    pub phase: &'static str,
    /// Learning rate of the shared weights.
    pub weight_lr: f32,
    /// RL learning rate.
    pub rl_lr: f64,
    /// Op warm-up probability.
    pub op_warmup_p: f64,
    /// Filter warm-up probability.
    pub filter_warmup_q: f64,
    /// Sampled architecture.
    pub arch: String,
    /// Training loss.
    pub train_loss: f32,
    /// Validation accuracy of the sampled architecture (Q).
    pub quality: f64,
    /// Cost T.
    pub cost: f64,
    /// Reward.
    pub reward: f64,
    /// Baseline after the update.
    pub baseline: f64,
    /// Controller entropy over the sample's active decisions.
    pub entropy: f64,
}

const LOG_HEADER: &str = "step,phase,weight_lr,rl_lr,op_warmup_p,filter_warmup_q,arch,train_loss,quality,cost,reward,baseline,entropy";

impl StepRecord {
    fn csv(&self) -> String {
        format!(
            "{},{},{:.6},{:.6e},{:.4},{:.4},{},{:.5},{:.5},{:.5},{:.6},{:.6},{:.5}",
            self.step,
            self.phase,
            self.weight_lr,
            self.rl_lr,
            self.op_warmup_p,
            self.filter_warmup_q,
            self.arch,
            self.train_loss,
            self.quality,
            self.cost,
            self.reward,
            self.baseline,
            self.entropy
        )
    }
}

/// What a checkpoint holds besides the weights file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Next step to run.
    pub next_step: usize,
    /// The config the run started with.
    pub config: SearchConfig,
    /// Controller with its optimiser state and baseline.
    pub controller: Controller,
    /// Recorded controller probabilities: (step, per decision, per value).
    pub history: Vec<(usize, Vec<Vec<f32>>)>,
}

/// The cost of an architecture in the resource's unit.
pub fn cost_of(
    space: &SearchSpace,
    table: Option<&LatencyTable>,
    resource: Resource,
    arch: &Architecture,
) -> Result<f64, SearchError> {
    Ok(match resource {
        Resource::Latency => {
            let table = table.ok_or(SearchError::BadSetting {
                what: "--table",
                why: "a latency table is needed for --resource latency".into(),
            })?;
            table.estimate_us(space, arch)? / 1000.0
        }
        Resource::Flops => architecture_flops(space, arch) as f64 / 1e6,
        Resource::Params => architecture_params(space, arch) as f64 / 1e6,
    })
}

fn step_rng(seed: u64, step: usize, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng.set_word_pos((step as u128) << 20);
    rng
}

/// Indices of batch `index` of an epoch-ordered stream over `len` items.
fn batch_indices(len: usize, batch: usize, seed: u64, index: usize) -> Vec<usize> {
    let per_epoch = (len / batch).max(1);
    let epoch = index / per_epoch;
    let within = index % per_epoch;
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng = step_rng(seed, epoch, 7);
    order.shuffle(&mut rng);
    order[within * batch..(within + 1) * batch].to_vec()
}

/// The plan of one sample: warm-ups applied to the sampled architecture.
fn warmup_plan(
    space: &SearchSpace,
    sampled: &Architecture,
    p: f64,
    q: f64,
    rematerialize: bool,
    rng: &mut ChaCha8Rng,
) -> PathPlan {
    let mut arch = sampled.clone();
    let largest = Architecture::largest(space);
    let mut all_values = vec![false; space.decisions.len()];
    for (i, d) in space.decisions.iter().enumerate() {
        match d.kind {
            DecisionKind::Filters | DecisionKind::Expansion => {
                if q > 0.0 && rng.random_bool(q.min(1.0)) {
                    arch.indices[i] = largest.indices[i];
                }
            }
            DecisionKind::Kernel | DecisionKind::SqueezeExcite | DecisionKind::Skip => {
                all_values[i] = p > 0.0 && rng.random_bool(p.min(1.0));
            }
            DecisionKind::Op => {}
        }
    }
    PathPlan {
        arch,
        all_values,
        rematerialize,
    }
}

/// What a run was started with besides its config: what `--resume DIR`
/// needs to continue it from the folder alone (`inputs.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInputs {
    /// The latency table's path, if any.
    pub table: Option<String>,
    /// Content digest of the table file ([`tunas_shared::content_digest`]).
    pub table_digest: Option<String>,
    /// Further devices' tables: (path, content digest), in order.
    #[serde(default)]
    pub more_tables: Vec<(String, String)>,
    /// The image folder.
    pub data: String,
    /// Training images used (the first N).
    pub limit_train: Option<usize>,
    /// Held-out images asked for.
    pub holdout: Option<usize>,
    /// Serial reductions (bit-identical resumes).
    pub deterministic: bool,
}

impl RunInputs {
    /// Every table of the run, (path, digest), first device first.
    pub fn tables(&self) -> Vec<(String, String)> {
        let first = self
            .table
            .clone()
            .zip(self.table_digest.clone())
            .into_iter();
        first.chain(self.more_tables.iter().cloned()).collect()
    }

    /// Reads `inputs.json` of a run folder.
    pub fn read(files: &RunFiles) -> Result<Self, SearchError> {
        let path = files.inputs();
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        serde_json::from_str(&text).map_err(|e| SearchError::Io {
            path: path.display().to_string(),
            message: format!("not a run's inputs: {e}"),
        })
    }

    /// Writes `inputs.json` atomically.
    pub fn write(&self, files: &RunFiles) -> Result<(), SearchError> {
        let path = files.inputs();
        let json = serde_json::to_string_pretty(self).expect("serialises") + "\n";
        tunas_shared::write_atomic(&path, json.as_bytes()).map_err(io_err(&path))
    }
}

/// Files of a run folder.
pub struct RunFiles {
    /// The folder.
    pub dir: PathBuf,
}

impl RunFiles {
    /// The space, as TOML.
    pub fn space(&self) -> PathBuf {
        self.dir.join("space.toml")
    }
    /// What the run was started with besides its config.
    pub fn inputs(&self) -> PathBuf {
        self.dir.join("inputs.json")
    }
    /// Per-step CSV log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("steps.csv")
    }
    /// Checkpoint state (JSON).
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }
    /// Checkpoint weights.
    pub fn checkpoint_weights(&self) -> PathBuf {
        self.dir.join("checkpoint.weights")
    }
    /// The shared weights as they were at the end of the warm-up.
    pub fn warmup_weights(&self) -> PathBuf {
        self.dir.join("warmup.weights")
    }
    /// Final weights.
    pub fn weights(&self) -> PathBuf {
        self.dir.join("supernet.weights")
    }
    /// Final result.
    pub fn result(&self) -> PathBuf {
        self.dir.join("result.json")
    }
}

/// The outcome of a search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchResult {
    /// Space name.
    pub space: String,
    /// Space hash.
    pub space_hash: String,
    /// Final architecture (argmax of every decision).
    pub arch: String,
    /// Its readable form.
    pub readable: String,
    /// Estimated latency from the table (ms), if a table was given.
    pub est_latency_ms: Option<f64>,
    /// Target in the resource's unit.
    pub target: f64,
    /// Target latency (ms), when the resource is latency.
    pub target_ms: Option<f64>,
    /// The resource.
    pub resource: Resource,
    /// Multiply-adds.
    pub flops: u64,
    /// Parameters.
    pub params: u64,
    /// Validation accuracy of the final architecture (over the held-out
    /// images, shared weights, batch statistics).
    pub validation_accuracy: f64,
    /// Its reward.
    pub final_reward: f64,
    /// Seed.
    pub seed: u64,
    /// Steps run.
    pub steps: usize,
    /// Wall time of the search (this process), s.
    pub seconds: f64,
    /// The table's provenance, one `field = value` per entry.
    pub table_provenance: Vec<String>,
    /// Every device's estimate, target and miss, in table order (one entry
    /// per table; empty without a table).
    #[serde(default)]
    pub devices: Vec<DeviceEstimate>,
    /// The config.
    pub config: SearchConfig,
}

/// One device's estimate of the searched architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceEstimate {
    /// The table's device (from its provenance).
    pub device: String,
    /// The table's CPU or SoC.
    pub cpu: String,
    /// Estimated latency, ms.
    pub est_latency_ms: f64,
    /// Target, ms.
    pub target_ms: f64,
    /// Miss, percent (positive: slower than the target).
    pub miss_pct: f64,
}

/// Options that do not define the search itself.
pub struct RunOptions {
    /// Progress bar on stderr.
    pub progress: bool,
    /// Stop after this step (as if killed), for tests.
    pub stop_after: Option<usize>,
}

/// Runs (or resumes) a search in `dir`.
pub fn search(
    space: &SearchSpace,
    tables: &[&LatencyTable],
    data: &SearchData,
    config: &SearchConfig,
    dir: &Path,
    opts: &RunOptions,
) -> Result<Option<SearchResult>, SearchError> {
    for t in tables {
        t.check_space(space)?;
    }
    config.check()?;
    if tables.len() > 1 && tables.len() != config.more_targets.len() + 1 {
        return Err(SearchError::BadSetting {
            what: "target-ms",
            why: format!(
                "{} tables need {} latency targets, one each, in order; got {}",
                tables.len(),
                tables.len(),
                config.more_targets.len() + 1
            ),
        });
    }
    let table = tables.first().copied();
    let targets: Vec<f64> = std::iter::once(config.target)
        .chain(config.more_targets.iter().copied())
        .collect();
    let costs_of = |arch: &Architecture| -> Result<Vec<f64>, SearchError> {
        if tables.len() <= 1 {
            return Ok(vec![cost_of(space, table, config.resource, arch)?]);
        }
        tables
            .iter()
            .map(|t| Ok(t.estimate_us(space, arch)? / 1000.0))
            .collect()
    };
    if data.train.len() < config.batch || data.validation.len() < config.validation_batch {
        return Err(SearchError::BadSetting {
            what: "batch",
            why: format!(
                "{} training and {} validation images are fewer than the batch sizes {} / {}",
                data.train.len(),
                data.validation.len(),
                config.batch,
                config.validation_batch
            ),
        });
    }
    let files = RunFiles {
        dir: dir.to_path_buf(),
    };
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut net = Supernet::new(space, config.seed);
    let (mut controller, mut history, start) = if files.checkpoint().exists() {
        let text =
            std::fs::read_to_string(files.checkpoint()).map_err(io_err(&files.checkpoint()))?;
        let cp: Checkpoint = serde_json::from_str(&text).map_err(|e| SearchError::Io {
            path: files.checkpoint().display().to_string(),
            message: format!("not a checkpoint: {e}"),
        })?;
        load_store(&files.checkpoint_weights(), &mut net.store)?;
        eprintln!("resuming {} at step {}", dir.display(), cp.next_step);
        (cp.controller, cp.history, cp.next_step)
    } else {
        (Controller::new(space), Vec::new(), 0)
    };
    // The log keeps exactly the rows of the steps before `start`.
    let log_path = files.log();
    let mut log = open_log(&log_path, start)?;

    let warmup = config.warmup_steps();
    let schedule = WarmupCosine {
        base_lr: config.weight_learning_rate,
        warmup_steps: (config.steps as f64 * 0.025).round() as usize,
        total_steps: config.steps,
    };
    let optimizer = Optimizer::Sgd(Sgd {
        momentum: 0.9,
        weight_decay: config.weight_decay,
        nesterov: true,
    });
    let mut progress = tunas_shared::progress::Progress::new(
        "search",
        config.steps as u64,
        "steps",
        opts.progress,
    );
    progress.resume_at(start as u64);
    let started = Instant::now();
    let mut batch_counter = start * config.samples_per_step;
    for step in start..config.steps {
        let in_warmup = step < warmup;
        let frac = if warmup == 0 {
            1.0
        } else {
            step as f64 / warmup as f64
        };
        let p = if in_warmup { 1.0 - frac } else { 0.0 };
        let q = p;
        let rl_lr = rl_learning_rate(config.rl_learning_rate, step, warmup, config.steps);
        let lr = schedule.lr(step);
        let mut rng = step_rng(config.seed, step, 1);
        let mut samples = Vec::with_capacity(config.samples_per_step);
        let mut last = None;
        for _ in 0..config.samples_per_step {
            let sampled = if in_warmup {
                Architecture::sample_uniform(space, &mut rng)
            } else {
                controller.sample(&mut rng)
            };
            let plan = warmup_plan(space, &sampled, p, q, config.rematerialize, &mut rng);
            let idx = batch_indices(data.train.len(), config.batch, config.seed, batch_counter);
            let vidx = batch_indices(
                data.validation.len(),
                config.validation_batch,
                config.seed ^ 0x7a1,
                batch_counter,
            );
            batch_counter += 1;
            let (x, y) = data.maker.batch(&data.train, &idx, &mut rng);
            let (loss, _) = train_step(
                &mut net,
                x,
                &y,
                &plan,
                &optimizer,
                lr,
                config.label_smoothing,
                false,
            );
            let (vx, vy) = data.maker.batch(&data.validation, &vidx, &mut rng);
            let quality = evaluate(
                &mut net,
                vx,
                &vy,
                &PathPlan::single(sampled.clone()),
                BnMode::Batch,
            ) as f64;
            let costs = costs_of(&sampled)?;
            let cost = costs[0];
            let reward = device_reward(
                config.reward,
                config.multi,
                quality,
                &costs,
                &targets,
                config.beta,
            );
            let active = sampled.active_decisions(space);
            let entropy = controller.entropy(&active);
            last = Some((sampled.to_compact(), loss, quality, cost, reward, entropy));
            samples.push((sampled, active, reward));
        }
        let updates = controller.reinforce(&samples, rl_lr as f32);
        let (arch, loss, quality, cost, reward, entropy) = last.expect("at least one sample");
        let record = StepRecord {
            step,
            phase: if in_warmup { "warmup" } else { "search" },
            weight_lr: lr,
            rl_lr,
            op_warmup_p: p,
            filter_warmup_q: q,
            arch,
            train_loss: loss,
            quality,
            cost,
            reward,
            baseline: updates.last().map(|u| u.baseline).unwrap_or(0.0),
            entropy,
        };
        writeln!(log, "{}", record.csv()).map_err(io_err(&log_path))?;
        log.flush().map_err(io_err(&log_path))?;
        if step % config.record_every == 0 || step + 1 == config.steps {
            history.push((step, controller.probabilities()));
        }
        progress.set_message(if in_warmup { "warm-up" } else { "search" });
        progress.inc(1);
        let done = step + 1;
        if done == warmup {
            // What weight sharing learned from uniform sampling alone (the
            // benchmark's rank correlation at the end of the warm-up).
            let meta = WeightsMeta::for_supernet(&net, None, serde_json::json!({ "step": done }));
            save_store(&files.warmup_weights(), &net.store, &meta)?;
        }
        if done % config.checkpoint_every == 0 || done == config.steps {
            write_checkpoint(&files, &net, &controller, &history, config, done)?;
        }
        if opts.stop_after == Some(done) {
            progress.finish();
            return Ok(None);
        }
    }
    progress.finish();

    let arch = controller.argmax();
    let mut vq = 0.0;
    let chunks = (data.validation.len() / config.validation_batch).clamp(1, 20);
    let mut rng = step_rng(config.seed, config.steps, 3);
    for c in 0..chunks {
        let idx: Vec<usize> =
            (c * config.validation_batch..(c + 1) * config.validation_batch).collect();
        let (vx, vy) = data.maker.batch(&data.validation, &idx, &mut rng);
        vq += evaluate(
            &mut net,
            vx,
            &vy,
            &PathPlan::single(arch.clone()),
            BnMode::Batch,
        ) as f64;
    }
    vq /= chunks as f64;
    let costs = costs_of(&arch)?;
    let devices = tables
        .iter()
        .zip(&targets)
        .map(|(t, &target_ms)| {
            let est = t.estimate_us(space, &arch)? / 1000.0;
            Ok(DeviceEstimate {
                device: t.provenance.device.clone(),
                cpu: t.provenance.cpu.clone(),
                est_latency_ms: est,
                target_ms,
                miss_pct: (est / target_ms - 1.0) * 100.0,
            })
        })
        .collect::<Result<Vec<_>, SearchError>>()?;
    let est_latency_ms = match table {
        Some(t) => Some(t.estimate_us(space, &arch)? / 1000.0),
        None => None,
    };
    let result = SearchResult {
        space: space.name.clone(),
        space_hash: space.content_hash(),
        arch: arch.to_compact(),
        readable: arch.describe(space),
        est_latency_ms,
        target: config.target,
        target_ms: (config.resource == Resource::Latency).then_some(config.target),
        resource: config.resource,
        flops: architecture_flops(space, &arch),
        params: architecture_params(space, &arch),
        validation_accuracy: vq,
        final_reward: device_reward(
            config.reward,
            config.multi,
            vq,
            &costs,
            &targets,
            config.beta,
        ),
        seed: config.seed,
        steps: config.steps,
        seconds: started.elapsed().as_secs_f64(),
        table_provenance: table
            .map(|t| {
                t.provenance_text()
                    .lines()
                    .map(|l| l.trim_start_matches("# ").to_string())
                    .collect()
            })
            .unwrap_or_default(),
        devices,
        config: config.clone(),
    };
    let meta = WeightsMeta::for_supernet(
        &net,
        Some(&arch),
        serde_json::json!({
            "normalization": {"mean": data.maker.mean, "std": data.maker.std},
        }),
    );
    save_store(&files.weights(), &net.store, &meta)?;
    let json = serde_json::to_string_pretty(&result).expect("result serialises");
    tunas_shared::write_atomic(&files.result(), json.as_bytes())
        .map_err(io_err(&files.result()))?;
    write_plots(space, &files, &history, &log_path, config);
    Ok(Some(result))
}

fn open_log(path: &Path, keep_steps: usize) -> Result<File, SearchError> {
    if keep_steps == 0 || !path.exists() {
        let mut f = File::create(path).map_err(io_err(path))?;
        writeln!(f, "{LOG_HEADER}").map_err(io_err(path))?;
        return Ok(f);
    }
    // Keep the header and the rows of steps < keep_steps (a kill may have
    // logged steps after the last checkpoint).
    let reader = BufReader::new(File::open(path).map_err(io_err(path))?);
    let mut kept = String::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io_err(path))?;
        if i == 0 {
            kept.push_str(&line);
            kept.push('\n');
            continue;
        }
        let step: Option<usize> = line.split(',').next().and_then(|s| s.parse().ok());
        if step.is_some_and(|s| s < keep_steps) {
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    tunas_shared::write_atomic(path, kept.as_bytes()).map_err(io_err(path))?;
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_err(path))
}

fn write_checkpoint(
    files: &RunFiles,
    net: &Supernet,
    controller: &Controller,
    history: &[(usize, Vec<Vec<f32>>)],
    config: &SearchConfig,
    next_step: usize,
) -> Result<(), SearchError> {
    // Weights first: a checkpoint.json always points at weights at least as new.
    let meta = WeightsMeta::for_supernet(net, None, serde_json::json!({ "next_step": next_step }));
    save_store(&files.checkpoint_weights(), &net.store, &meta)?;
    let cp = Checkpoint {
        next_step,
        config: config.clone(),
        controller: controller.clone(),
        history: history.to_vec(),
    };
    let json = serde_json::to_vec(&cp).expect("checkpoint serialises");
    tunas_shared::write_atomic(&files.checkpoint(), &json).map_err(io_err(&files.checkpoint()))
}

/// Controller probabilities per decision over time, and reward / accuracy /
/// cost curves. A chart that cannot be drawn (no font) is reported and
/// skipped: the data is in the CSV log and the checkpoint.
fn write_plots(
    space: &SearchSpace,
    files: &RunFiles,
    history: &[(usize, Vec<Vec<f32>>)],
    log_path: &Path,
    config: &SearchConfig,
) {
    use tunas_shared::plot::{Panel, Series, small_multiples};
    let panels: Vec<Panel> = space
        .decisions
        .iter()
        .enumerate()
        .map(|(d, dec)| Panel {
            title: dec.name.clone(),
            series: dec
                .values
                .iter()
                .enumerate()
                .map(|(v, value)| Series {
                    name: value.to_string(),
                    points: history
                        .iter()
                        .map(|(s, p)| (*s as f64, p[d][v] as f64))
                        .collect(),
                })
                .collect(),
            y_range: Some((0.0, 1.0)),
        })
        .collect();
    let path = files.dir.join("probabilities.svg");
    if let Err(e) = small_multiples(
        &path,
        "controller probabilities per decision",
        "step",
        &panels,
        6,
    ) {
        eprintln!("warning: {e}");
    }
    let Ok(text) = std::fs::read_to_string(log_path) else {
        return;
    };
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            let f = |i: usize| c.get(i).and_then(|v| v.parse::<f64>().ok());
            Some(vec![f(0)?, f(8)?, f(9)?, f(10)?, f(11)?])
        })
        .collect();
    let window = (rows.len() / 100).max(1);
    let smooth = |col: usize| -> Vec<(f64, f64)> {
        rows.chunks(window)
            .map(|c| {
                (
                    c[0][0],
                    c.iter().map(|r| r[col]).sum::<f64>() / c.len() as f64,
                )
            })
            .collect()
    };
    let unit = match config.resource {
        Resource::Latency => "estimated latency (ms)",
        Resource::Flops => "M multiply-adds",
        Resource::Params => "M parameters",
    };
    let target: Vec<(f64, f64)> = vec![(0.0, config.target), (config.steps as f64, config.target)];
    let panels = vec![
        Panel {
            title: "reward (and baseline)".into(),
            series: vec![
                Series {
                    name: "reward".into(),
                    points: smooth(3),
                },
                Series {
                    name: "baseline".into(),
                    points: smooth(4),
                },
            ],
            y_range: None,
        },
        Panel {
            title: "validation accuracy of the sample (Q)".into(),
            series: vec![Series {
                name: "Q".into(),
                points: smooth(1),
            }],
            y_range: None,
        },
        Panel {
            title: unit.into(),
            series: vec![
                Series {
                    name: "sampled".into(),
                    points: smooth(2),
                },
                Series {
                    name: "target".into(),
                    points: target,
                },
            ],
            y_range: None,
        },
    ];
    let path = files.dir.join("curves.svg");
    if let Err(e) = small_multiples(&path, "search curves (moving averages)", "step", &panels, 3) {
        eprintln!("warning: {e}");
    }
}

/// Estimated latencies (ms, sorted) of `samples` uniform architectures
/// drawn with `seed`: where latency targets are chosen from.
pub fn latency_samples(
    space: &SearchSpace,
    table: &LatencyTable,
    samples: usize,
    seed: u64,
) -> Result<Vec<f64>, TableError> {
    table.check_space(space)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ms = Vec::with_capacity(samples);
    for _ in 0..samples {
        let arch = Architecture::sample_uniform(space, &mut rng);
        ms.push(table.estimate_us(space, &arch)? / 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

#[allow(clippy::too_many_arguments)]
/// TuNAS's random-search baseline: uniform samples whose cost is within
/// `band` (relative) of the target.
pub fn random_within_band(
    space: &SearchSpace,
    table: Option<&LatencyTable>,
    resource: Resource,
    target: f64,
    band: f64,
    n: usize,
    seed: u64,
    max_draws: usize,
) -> Result<Vec<(Architecture, f64)>, SearchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut kept = Vec::new();
    for _ in 0..max_draws {
        if kept.len() == n {
            break;
        }
        let arch = Architecture::sample_uniform(space, &mut rng);
        let cost = cost_of(space, table, resource, &arch)?;
        if (cost / target - 1.0).abs() <= band {
            kept.push((arch, cost));
        }
    }
    Ok(kept)
}
