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
use std::path::Path;
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

use crate::controller::{Controller, rl_learning_rate};
use crate::data::{Augmentation, BatchMaker, Dataset};
use crate::optim::{Optimizer, Sgd, WarmupCosine};
use crate::supernet::{BnMode, PathPlan, StepSettings, Supernet, evaluate, score_path, train_step};
use crate::train::Normalization;
use crate::weights::{WeightsError, WeightsMeta, load_store, save_store};

mod baseline;
mod config;
mod files;
mod phases;
mod plots;
mod run;

pub use baseline::{BandDraw, latency_samples, random_within_band};
pub use config::{
    DEFAULT_BETA, DEFAULT_WEIGHT_LEARNING_RATE, MultiDevice, QualityMeasure, Resource,
    SearchConfig, SkipWarmup, default_rl_learning_rate, device_reward,
};
pub use files::{DeviceEstimate, RunFiles, RunInputs, SearchResult};
pub use phases::{PhaseTime, PhaseTimes};
use plots::write_plots;
pub use run::search;
/// A search could not run or resume.
#[derive(Debug, Error)]
pub enum SearchError {
    /// The table could not be used.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A file of the run folder could not be read or written. (The
    /// cause is the error's source, not part of its text: a report that
    /// walks the chain, as the binary's does, prints it once.)
    #[error("{}", path.display())]
    Io {
        /// Path.
        path: std::path::PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file of the run folder does not hold what it should.
    #[error("{}: not {what}", path.display())]
    BadJson {
        /// Path.
        path: std::path::PathBuf,
        /// What the file should hold (`a checkpoint`, `a run's inputs`).
        what: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
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

pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SearchError + '_ {
    move |source| SearchError::Io {
        path: path.to_path_buf(),
        source,
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
    pub(crate) maker: BatchMaker,
    /// Class names in label order, for the result (empty: not known).
    pub classes: Vec<String>,
}

/// Mixed into the search seed for the holdout split, so that the split does
/// not follow the batches' or the controller's random stream.
const HOLDOUT_SEED_SALT: u64 = 0xda7a;

impl SearchData {
    /// Held-out images for the reward when none are asked for: 10,000 of a
    /// full 60,000-image training set, else a sixth.
    pub(crate) fn default_holdout(train_images: usize) -> usize {
        if train_images >= 60_000 {
            10_000
        } else {
            train_images / 6
        }
    }

    /// The search's data from a training set: its first `limit` images (all
    /// without a limit), split into shared-weight training images and
    /// `holdout` (default `SearchData::default_holdout`) held-out images.
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
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ HOLDOUT_SEED_SALT);
        let (train, validation) = all.split(holdout, &mut rng);
        let maker = BatchMaker::plain(&train);
        SearchData {
            train,
            validation,
            maker,
            classes: Vec::new(),
        }
    }
}

/// One row of the per-step log.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct StepRecord {
    /// Step (0-based).
    pub(crate) step: usize,
    /// `warmup` or `search`.
    pub(crate) phase: &'static str,
    /// Learning rate of the shared weights.
    pub(crate) weight_lr: f32,
    /// RL learning rate.
    pub(crate) rl_lr: f64,
    /// Op warm-up probability.
    pub(crate) op_warmup_p: f64,
    /// Filter warm-up probability.
    pub(crate) filter_warmup_q: f64,
    /// Sampled architecture.
    pub(crate) arch: String,
    /// Training loss.
    pub(crate) train_loss: f32,
    /// Validation accuracy of the sampled architecture (Q).
    pub(crate) quality: f64,
    /// Cost T.
    pub(crate) cost: f64,
    /// Reward.
    pub(crate) reward: f64,
    /// Baseline after the update.
    pub(crate) baseline: f64,
    /// Controller entropy over the sample's active decisions.
    pub(crate) entropy: f64,
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
    pub(crate) next_step: usize,
    /// The config the run started with.
    pub config: SearchConfig,
    /// Controller with its optimiser state and baseline.
    pub(crate) controller: Controller,
    /// Recorded controller probabilities: (step, per decision, per value).
    pub(crate) history: Vec<(usize, Vec<Vec<f32>>)>,
    /// Time per phase of the steps before `next_step` (absent in
    /// checkpoints written before it was kept).
    #[serde(default)]
    pub(crate) phase_times: PhaseTimes,
}

/// The cost of an architecture in the resource's unit.
pub(crate) fn cost_of(
    space: &SearchSpace,
    table: Option<&LatencyTable>,
    resource: Resource,
    arch: &Architecture,
) -> Result<f64, SearchError> {
    Ok(match resource {
        Resource::Latency => {
            let table = table.ok_or(SearchError::BadSetting {
                what: "table",
                why: "a latency table is needed when the resource is latency".into(),
            })?;
            table.estimate_us(space, arch)? / 1000.0
        }
        Resource::Flops => architecture_flops(space, arch) as f64 / 1e6,
        Resource::Params => architecture_params(space, arch) as f64 / 1e6,
    })
}

pub(crate) fn step_rng(seed: u64, step: usize, stream: u64) -> ChaCha8Rng {
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
    (p, q): (f64, f64),
    config: &SearchConfig,
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
            DecisionKind::Skip if config.skip_warmup == SkipWarmup::Sampled => {}
            DecisionKind::Skip if config.skip_warmup == SkipWarmup::Present => {
                // The same draw as `AllValues`, so the rest of the run's
                // random stream is unchanged.
                if p > 0.0 && rng.random_bool(p.min(1.0)) {
                    arch.indices[i] = largest.indices[i];
                }
            }
            DecisionKind::Op
            | DecisionKind::Kernel
            | DecisionKind::SqueezeExcite
            | DecisionKind::Skip => {
                all_values[i] = p > 0.0 && rng.random_bool(p.min(1.0));
            }
        }
    }
    PathPlan {
        arch,
        all_values,
        rematerialize: config.rematerialize,
    }
}

/// Work running beside other work: since when, and (a search) its steps
/// done so far, kept up to date through [`RunOptions::steps_done`].
#[derive(Clone, Debug)]
pub struct Running {
    /// When it started.
    pub since: std::time::Instant,
    /// Steps done (0 until the first; stays 0 for work that is no search).
    pub steps: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Running {
    /// Starts now, at step 0.
    pub fn now() -> Self {
        Running {
            since: std::time::Instant::now(),
            steps: Default::default(),
        }
    }
}

/// Options that do not define the search itself.
#[derive(Default)]
pub struct RunOptions {
    /// Progress bar on stderr.
    pub progress: bool,
    /// Stop after this step (as if killed), for tests.
    pub stop_after: Option<usize>,
    /// Steps done so far, kept up to date for a caller that reports on
    /// several searches at once (`sweep`, `benchmark`).
    pub steps_done: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
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
    phase_times: &PhaseTimes,
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
        phase_times: phase_times.clone(),
    };
    let json = serde_json::to_vec(&cp).expect("checkpoint serialises");
    tunas_shared::write_atomic(&files.checkpoint(), &json).map_err(io_err(&files.checkpoint()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunas_shared::builtin_space;

    /// One warm-up plan at p = 1, q = 0 of tiny28, and the sample it began
    /// from.
    fn plan_at_p1(skip_warmup: SkipWarmup) -> (SearchSpace, Architecture, PathPlan) {
        let space = builtin_space("tiny28").unwrap();
        let mut config = SearchConfig::defaults(100, 1.0);
        config.skip_warmup = skip_warmup;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let sampled = Architecture::sample_uniform(&space, &mut rng);
        let plan = warmup_plan(&space, &sampled, (1.0, 0.0), &config, &mut rng);
        (space, sampled, plan)
    }

    /// Which decisions of one warm-up plan at p = 1 run all their values.
    fn all_values_kinds(skip_warmup: SkipWarmup) -> Vec<(DecisionKind, bool)> {
        let (space, sampled, plan) = plan_at_p1(skip_warmup);
        assert_eq!(plan.arch, sampled, "q = 0 keeps every width");
        space
            .decisions
            .iter()
            .zip(plan.all_values)
            .map(|(d, all)| (d.kind, all))
            .collect()
    }

    #[test]
    fn a_sampled_skip_warmup_runs_all_values_of_every_decision_but_skips() {
        let kinds = all_values_kinds(SkipWarmup::AllValues);
        assert!(kinds.iter().any(|(k, _)| *k == DecisionKind::Skip));
        for (kind, all) in kinds {
            let expected = !matches!(kind, DecisionKind::Filters | DecisionKind::Expansion);
            assert_eq!(all, expected, "{kind:?} with the skips' op warm-up");
        }
        for (kind, all) in all_values_kinds(SkipWarmup::Sampled) {
            let expected = !matches!(
                kind,
                DecisionKind::Filters | DecisionKind::Expansion | DecisionKind::Skip
            );
            assert_eq!(all, expected, "{kind:?} with sampled skips");
        }
    }

    #[test]
    fn a_present_skip_warmup_turns_every_optional_layer_on_at_p1() {
        let (space, sampled, plan) = plan_at_p1(SkipWarmup::Present);
        let largest = Architecture::largest(&space);
        let mut skips = 0;
        for (i, d) in space.decisions.iter().enumerate() {
            let is_skip = d.kind == DecisionKind::Skip;
            let expected = if is_skip {
                largest.indices[i]
            } else {
                sampled.indices[i]
            };
            assert_eq!(plan.arch.indices[i], expected, "{}", d.name);
            assert_eq!(
                plan.all_values[i],
                !is_skip && d.kind != DecisionKind::Filters && d.kind != DecisionKind::Expansion,
                "{}",
                d.name
            );
            skips += usize::from(is_skip && sampled.indices[i] != largest.indices[i]);
        }
        assert!(
            skips > 0,
            "the sample skipped some layer, so the test can fail"
        );
        let resolved = plan.arch.resolve(&space);
        assert!(
            resolved.layers.iter().all(|l| !l.skipped),
            "every layer runs"
        );
    }
}
