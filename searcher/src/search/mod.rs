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
use crate::supernet::{BnMode, PathPlan, Supernet, evaluate, train_step};
use crate::train::Normalization;
use crate::weights::{WeightsError, WeightsMeta, load_store, save_store};

mod baseline;
mod config;
mod files;
mod plots;

pub use baseline::{latency_samples, random_within_band};
pub use config::{
    DEFAULT_BETA, MultiDevice, Resource, SearchConfig, default_rl_learning_rate, device_reward,
};
pub use files::{DeviceEstimate, RunFiles, RunInputs, SearchResult};
use plots::write_plots;
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
    /// The space has layers the supernet cannot train.
    #[error(transparent)]
    Unsupported(#[from] crate::supernet::UnsupportedSpace),
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
    /// Class names in label order, for the result (empty: not known).
    pub classes: Vec<String>,
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
            classes: Vec::new(),
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
    check_inputs(space, tables, data, config)?;
    let mut run = SearchRun::open(space, tables, data, config, dir)?;
    let mut progress = tunas_shared::progress::Progress::new(
        "search",
        config.steps as u64,
        "steps",
        opts.progress,
    );
    progress.resume_at(run.start as u64);
    let started = Instant::now();
    for step in run.start..config.steps {
        let in_warmup = run.step(step)?;
        progress.set_message(if in_warmup { "warm-up" } else { "search" });
        progress.inc(1);
        run.save_after(step + 1)?;
        if opts.stop_after == Some(step + 1) {
            progress.finish();
            return Ok(None);
        }
    }
    progress.finish();
    run.finish(started.elapsed().as_secs_f64()).map(Some)
}

/// Everything checked before a search starts.
fn check_inputs(
    space: &SearchSpace,
    tables: &[&LatencyTable],
    data: &SearchData,
    config: &SearchConfig,
) -> Result<(), SearchError> {
    for t in tables {
        t.check_space(space)?;
    }
    config.check()?;
    crate::supernet::check_supported(space)?;
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
    Ok(())
}

/// What one sampled architecture gave in a step.
struct SampleOutcome {
    arch: String,
    loss: f32,
    quality: f64,
    cost: f64,
    reward: f64,
    entropy: f64,
}

/// A search in progress: the supernet, the controller and the run folder's
/// open log, stepped one step at a time.
struct SearchRun<'a> {
    space: &'a SearchSpace,
    tables: &'a [&'a LatencyTable],
    data: &'a SearchData,
    config: &'a SearchConfig,
    files: RunFiles,
    net: Supernet,
    controller: Controller,
    /// (step, controller probabilities) every `record_every` steps.
    history: Vec<(usize, Vec<Vec<f32>>)>,
    /// The first step this process runs (after a resume, the checkpoint's).
    start: usize,
    log: File,
    /// Every device's target, in table order.
    targets: Vec<f64>,
    schedule: WarmupCosine,
    optimizer: Optimizer,
    /// Training batches, augmented; Q is read on plain validation images
    /// (`data.maker`).
    train_maker: BatchMaker,
    batch_counter: usize,
}

impl<'a> SearchRun<'a> {
    /// A new run in `dir`, or the killed one there from its checkpoint.
    fn open(
        space: &'a SearchSpace,
        tables: &'a [&'a LatencyTable],
        data: &'a SearchData,
        config: &'a SearchConfig,
        dir: &Path,
    ) -> Result<Self, SearchError> {
        let files = RunFiles {
            dir: dir.to_path_buf(),
        };
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut net = Supernet::new(space, config.seed);
        let (controller, history, start) = if files.checkpoint().exists() {
            let cp = read_checkpoint(&files, &mut net)?;
            eprintln!("resuming {} at step {}", dir.display(), cp.next_step);
            (cp.controller, cp.history, cp.next_step)
        } else {
            (Controller::new(space), Vec::new(), 0)
        };
        // The log keeps exactly the rows of the steps before `start`.
        let log = open_log(&files.log(), start)?;
        Ok(SearchRun {
            space,
            tables,
            data,
            config,
            files,
            net,
            controller,
            history,
            start,
            log,
            targets: std::iter::once(config.target)
                .chain(config.more_targets.iter().copied())
                .collect(),
            schedule: WarmupCosine {
                base_lr: config.weight_learning_rate,
                warmup_steps: (config.steps as f64 * 0.025).round() as usize,
                total_steps: config.steps,
            },
            optimizer: Optimizer::Sgd(Sgd {
                momentum: 0.9,
                weight_decay: config.weight_decay,
                nesterov: true,
            }),
            train_maker: config.augment.on(&data.maker),
            batch_counter: start * config.samples_per_step,
        })
    }

    /// Every device's cost of `arch` (one entry without several tables).
    fn costs_of(&self, arch: &Architecture) -> Result<Vec<f64>, SearchError> {
        if self.tables.len() <= 1 {
            let table = self.tables.first().copied();
            return Ok(vec![cost_of(
                self.space,
                table,
                self.config.resource,
                arch,
            )?]);
        }
        self.tables
            .iter()
            .map(|t| Ok(t.estimate_us(self.space, arch)? / 1000.0))
            .collect()
    }

    /// Runs step `step`, logs it; returns whether it was a warm-up step.
    fn step(&mut self, step: usize) -> Result<bool, SearchError> {
        let config = self.config;
        let warmup = config.warmup_steps();
        let in_warmup = step < warmup;
        let frac = if warmup == 0 {
            1.0
        } else {
            step as f64 / warmup as f64
        };
        let p = if in_warmup { 1.0 - frac } else { 0.0 };
        let q = p;
        let rl_lr = rl_learning_rate(config.rl_learning_rate, step, warmup, config.steps);
        let lr = self.schedule.lr(step);
        let mut rng = step_rng(config.seed, step, 1);
        let mut samples = Vec::with_capacity(config.samples_per_step);
        let mut last = None;
        for _ in 0..config.samples_per_step {
            let sampled = if in_warmup {
                Architecture::sample_uniform(self.space, &mut rng)
            } else {
                self.controller.sample(&mut rng)
            };
            let plan = warmup_plan(self.space, &sampled, p, q, config.rematerialize, &mut rng);
            let outcome = self.train_and_score(&sampled, &plan, lr, &mut rng)?;
            let active = sampled.active_decisions(self.space);
            samples.push((sampled, active, outcome.reward));
            last = Some(outcome);
        }
        let updates = self.controller.reinforce(&samples, rl_lr as f32);
        let last = last.expect("at least one sample");
        let record = StepRecord {
            step,
            phase: if in_warmup { "warmup" } else { "search" },
            weight_lr: lr,
            rl_lr,
            op_warmup_p: p,
            filter_warmup_q: q,
            arch: last.arch,
            train_loss: last.loss,
            quality: last.quality,
            cost: last.cost,
            reward: last.reward,
            baseline: updates.last().map(|u| u.baseline).unwrap_or(0.0),
            entropy: last.entropy,
        };
        let log_path = self.files.log();
        writeln!(self.log, "{}", record.csv()).map_err(io_err(&log_path))?;
        self.log.flush().map_err(io_err(&log_path))?;
        if step.is_multiple_of(config.record_every) || step + 1 == config.steps {
            self.history.push((step, self.controller.probabilities()));
        }
        Ok(in_warmup)
    }

    /// One training batch on `plan`, then Q, cost and reward of `sampled`
    /// on one validation batch.
    fn train_and_score(
        &mut self,
        sampled: &Architecture,
        plan: &PathPlan,
        lr: f32,
        rng: &mut ChaCha8Rng,
    ) -> Result<SampleOutcome, SearchError> {
        let (config, data) = (self.config, self.data);
        let idx = batch_indices(
            data.train.len(),
            config.batch,
            config.seed,
            self.batch_counter,
        );
        let vidx = batch_indices(
            data.validation.len(),
            config.validation_batch,
            config.seed ^ 0x7a1,
            self.batch_counter,
        );
        self.batch_counter += 1;
        let (x, y) = self.train_maker.batch(&data.train, &idx, rng);
        let (loss, _) = train_step(
            &mut self.net,
            x,
            &y,
            plan,
            &self.optimizer,
            lr,
            config.label_smoothing,
            false,
        );
        let (vx, vy) = data.maker.batch(&data.validation, &vidx, rng);
        let quality = evaluate(
            &mut self.net,
            vx,
            &vy,
            &PathPlan::single(sampled.clone()),
            BnMode::Batch,
        ) as f64;
        let costs = self.costs_of(sampled)?;
        let reward = device_reward(
            config.reward,
            config.multi,
            quality,
            &costs,
            &self.targets,
            config.beta,
        );
        let active = sampled.active_decisions(self.space);
        Ok(SampleOutcome {
            arch: sampled.to_compact(),
            loss,
            quality,
            cost: costs[0],
            reward,
            entropy: self.controller.entropy(&active),
        })
    }

    /// Writes what is due after `done` steps: the end-of-warm-up weights and
    /// checkpoints.
    fn save_after(&self, done: usize) -> Result<(), SearchError> {
        if done == self.config.warmup_steps() {
            // What weight sharing learned from uniform sampling alone (the
            // benchmark's rank correlation at the end of the warm-up).
            let meta =
                WeightsMeta::for_supernet(&self.net, None, serde_json::json!({ "step": done }));
            save_store(&self.files.warmup_weights(), &self.net.store, &meta)?;
        }
        if done.is_multiple_of(self.config.checkpoint_every) || done == self.config.steps {
            write_checkpoint(
                &self.files,
                &self.net,
                &self.controller,
                &self.history,
                self.config,
                done,
            )?;
        }
        Ok(())
    }

    /// Q of the controller's most likely architecture over up to 20
    /// validation batches (shared weights, batch statistics).
    fn final_quality(&mut self, arch: &Architecture) -> f64 {
        let (config, data) = (self.config, self.data);
        let chunks = (data.validation.len() / config.validation_batch).clamp(1, 20);
        let mut rng = step_rng(config.seed, config.steps, 3);
        let mut sum = 0.0;
        for c in 0..chunks {
            let idx: Vec<usize> =
                (c * config.validation_batch..(c + 1) * config.validation_batch).collect();
            let (vx, vy) = data.maker.batch(&data.validation, &idx, &mut rng);
            sum += evaluate(
                &mut self.net,
                vx,
                &vy,
                &PathPlan::single(arch.clone()),
                BnMode::Batch,
            ) as f64;
        }
        sum / chunks as f64
    }

    /// Every table's estimate of `arch` against its target.
    fn device_estimates(&self, arch: &Architecture) -> Result<Vec<DeviceEstimate>, SearchError> {
        self.tables
            .iter()
            .zip(&self.targets)
            .map(|(t, &target_ms)| {
                let est = t.estimate_us(self.space, arch)? / 1000.0;
                Ok(DeviceEstimate {
                    device: t.provenance.device.clone(),
                    cpu: t.provenance.cpu.clone(),
                    est_latency_ms: est,
                    target_ms,
                    miss_pct: (est / target_ms - 1.0) * 100.0,
                })
            })
            .collect()
    }

    /// The result of the finished search, written with the final weights
    /// and the charts.
    fn finish(mut self, seconds: f64) -> Result<SearchResult, SearchError> {
        let (space, config, data) = (self.space, self.config, self.data);
        let arch = self.controller.argmax();
        let vq = self.final_quality(&arch);
        let costs = self.costs_of(&arch)?;
        let table = self.tables.first().copied();
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
                &self.targets,
                config.beta,
            ),
            seed: config.seed,
            steps: config.steps,
            seconds,
            table_provenance: table
                .map(|t| {
                    t.provenance_text()
                        .lines()
                        .map(|l| l.trim_start_matches("# ").to_string())
                        .collect()
                })
                .unwrap_or_default(),
            devices: self.device_estimates(&arch)?,
            normalization: Some(Normalization {
                mean: data.maker.mean.clone(),
                std: data.maker.std.clone(),
            }),
            classes: data.classes.clone(),
            config: config.clone(),
        };
        let meta = WeightsMeta::for_supernet(
            &self.net,
            Some(&arch),
            serde_json::json!({
                "normalization": {"mean": data.maker.mean, "std": data.maker.std},
            }),
        );
        let files = &self.files;
        save_store(&files.weights(), &self.net.store, &meta)?;
        let json = serde_json::to_string_pretty(&result).expect("result serialises");
        tunas_shared::write_atomic(&files.result(), json.as_bytes())
            .map_err(io_err(&files.result()))?;
        write_plots(space, files, &self.history, &files.log(), config);
        Ok(result)
    }
}

/// The checkpoint of a killed run, with its weights loaded into `net`.
fn read_checkpoint(files: &RunFiles, net: &mut Supernet) -> Result<Checkpoint, SearchError> {
    let path = files.checkpoint();
    let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    let cp: Checkpoint = serde_json::from_str(&text).map_err(|e| SearchError::Io {
        path: path.display().to_string(),
        message: format!("not a checkpoint: {e}"),
    })?;
    load_store(&files.checkpoint_weights(), &mut net.store)?;
    Ok(cp)
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
