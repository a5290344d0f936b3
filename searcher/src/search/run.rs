//! The search loop: a run folder's supernet and controller, stepped one
//! step at a time (docs/design.md, "One step").

use super::phases::{Phase, PoolClock};
use super::*;

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
    let count = |done: usize| {
        if let Some(c) = &opts.steps_done {
            c.store(done, std::sync::atomic::Ordering::Relaxed);
        }
    };
    count(run.start);
    let started = Instant::now();
    for step in run.start..config.steps {
        let in_warmup = run.step(step)?;
        progress.set_message(if in_warmup { "warm-up" } else { "search" });
        progress.inc(1);
        count(step + 1);
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
    /// Time per phase so far (from the checkpoint on a resume).
    times: PhaseTimes,
    /// CPU time of the threads this run's steps use.
    clock: PoolClock,
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
        let (controller, history, start, times) = if files.checkpoint().exists() {
            let cp = read_checkpoint(&files, &mut net)?;
            eprintln!("resuming {} at step {}", dir.display(), cp.next_step);
            (cp.controller, cp.history, cp.next_step, cp.phase_times)
        } else {
            (Controller::new(space), Vec::new(), 0, PhaseTimes::default())
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
                warmup_steps: (config.steps as f64 * config.lr_warmup_fraction).round() as usize,
                total_steps: config.steps,
            },
            optimizer: Optimizer::Sgd(Sgd {
                momentum: config.weight_momentum,
                weight_decay: config.weight_decay,
                nesterov: true,
            }),
            train_maker: config.augment.on(&data.maker),
            batch_counter: start * config.samples_per_step,
            times,
            clock: PoolClock::of_current_pool(),
        })
    }

    /// Every device's cost of `arch` (one entry without several tables).
    fn costs_of(&self, arch: &Architecture) -> Result<Vec<f64>, SearchError> {
        device_costs(self.space, self.tables, self.config.resource, arch)
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
            let (sampled, plan) = self.times.time(&self.clock, Phase::Controller, || {
                let sampled = if in_warmup {
                    Architecture::sample_uniform(self.space, &mut rng)
                } else {
                    self.controller.sample(&mut rng)
                };
                let plan = warmup_plan(self.space, &sampled, (p, q), config, &mut rng);
                (sampled, plan)
            });
            let outcome = self.train_and_score(&sampled, &plan, lr, in_warmup, &mut rng)?;
            let active = sampled.active_decisions(self.space);
            samples.push((sampled, active, outcome.reward));
            last = Some(outcome);
        }
        let controller = &mut self.controller;
        let updates = self.times.time(&self.clock, Phase::Controller, || {
            controller.reinforce(&samples, rl_lr as f32)
        });
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
        let log = &mut self.log;
        self.times
            .time(&self.clock, Phase::Saving, || {
                writeln!(log, "{}", record.csv())?;
                log.flush()
            })
            .map_err(io_err(&log_path))?;
        self.times.count_step(in_warmup);
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
        in_warmup: bool,
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
        let train_maker = &self.train_maker;
        let (x, y) = self.times.time(&self.clock, Phase::Batches, || {
            train_maker.batch(&data.train, &idx, rng)
        });
        let step = StepSettings {
            optimizer: &self.optimizer,
            lr,
            label_smoothing: config.label_smoothing,
            bn: BnMode::Batch,
        };
        let training = if in_warmup {
            Phase::WarmupTraining
        } else {
            Phase::SearchTraining
        };
        let net = &mut self.net;
        let (loss, _) = self.times.time(&self.clock, training, || {
            train_step(net, x, &y, plan, &step)
        });
        let (vx, vy) = self.times.time(&self.clock, Phase::Batches, || {
            data.maker.batch(&data.validation, &vidx, rng)
        });
        let net = &mut self.net;
        let quality = self.times.time(&self.clock, Phase::Validation, || {
            score_path(
                net,
                vx,
                &vy,
                &PathPlan::single(sampled.clone()),
                BnMode::Batch,
                config.quality.score(),
            )
        }) as f64;
        let (space, tables) = (self.space, self.tables);
        let costs = self.times.time(&self.clock, Phase::Controller, || {
            device_costs(space, tables, config.resource, sampled)
        })?;
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
    fn save_after(&mut self, done: usize) -> Result<(), SearchError> {
        let start = (Instant::now(), self.clock.cpu_ns());
        let saved = self.save_due(done);
        self.times.add_since(&self.clock, Phase::Saving, start);
        saved
    }

    fn save_due(&self, done: usize) -> Result<(), SearchError> {
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
                &self.times,
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
            phase_times: self.times.clone(),
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

/// Every device's cost of `arch` in table order (one entry, in the
/// resource's unit, without several tables).
fn device_costs(
    space: &SearchSpace,
    tables: &[&LatencyTable],
    resource: Resource,
    arch: &Architecture,
) -> Result<Vec<f64>, SearchError> {
    if tables.len() <= 1 {
        return Ok(vec![cost_of(
            space,
            tables.first().copied(),
            resource,
            arch,
        )?]);
    }
    tables
        .iter()
        .map(|t| Ok(t.estimate_us(space, arch)? / 1000.0))
        .collect()
}

/// The checkpoint of a killed run, with its weights loaded into `net`.
fn read_checkpoint(files: &RunFiles, net: &mut Supernet) -> Result<Checkpoint, SearchError> {
    let path = files.checkpoint();
    let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    let cp: Checkpoint = serde_json::from_str(&text).map_err(|source| SearchError::BadJson {
        path: path.clone(),
        what: "a checkpoint",
        source,
    })?;
    load_store(&files.checkpoint_weights(), &mut net.store)?;
    Ok(cp)
}
