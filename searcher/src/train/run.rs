//! Stand-alone training of one architecture, one epoch at a time.

use super::*;

/// Trains `arch` from the current weights of `net` (normally fresh from
/// [`Supernet::new`]) on `data.train`, evaluating on `data.test` with
/// running BN statistics after every epoch (or at the end). A progress bar
/// with ETA and one line per epoch go to stderr unless `quiet`.
pub fn train_architecture(
    net: &mut Supernet,
    arch: &Architecture,
    data: &TrainTest,
    cfg: &TrainConfig,
    quiet: bool,
) -> Result<TrainReport, TrainError> {
    cfg.check()?;
    check_data(&net.space, &data.train)?;
    check_data(&net.space, &data.test)?;
    let started = Instant::now();
    let mut training = Training::new(net, arch, data, cfg, quiet)?;
    training.announce();
    let mut history = Vec::with_capacity(cfg.epochs);
    for epoch in 1..=cfg.epochs {
        let report = training.epoch(epoch);
        training.log_epoch(&report);
        history.push(report);
    }
    training.bar.finish();
    let last = history.last().expect("at least one epoch");
    let total = training.steps_per_epoch * cfg.epochs;
    let train_seconds: f64 = history.iter().map(|e| e.train_seconds).sum();
    Ok(TrainReport {
        space: training.net.space.name.clone(),
        space_hash: training.net.space.content_hash(),
        arch: arch.to_compact(),
        epochs: cfg.epochs,
        steps: total,
        train_images: training.train.len(),
        test_images: data.test.len(),
        test_accuracy: last.test_accuracy.expect("the last epoch is evaluated"),
        final_train_loss: last.train_loss,
        seconds: started.elapsed().as_secs_f64(),
        train_seconds,
        images_per_s: (total * cfg.batch) as f64 / train_seconds.max(1e-9),
        threads: rayon::current_num_threads(),
        serial: crate::layers::is_serial(),
        normalization: training.normalization,
        config: cfg.clone(),
        history,
    })
}

/// A stand-alone training in progress: the network, its batches and
/// schedule, one epoch at a time.
struct Training<'a> {
    net: &'a mut Supernet,
    arch: &'a Architecture,
    cfg: &'a TrainConfig,
    /// The training images (all, or `limit_train` of them).
    train: Dataset,
    test: &'a Dataset,
    normalization: Normalization,
    /// Training batches (augmented).
    maker: BatchMaker,
    /// Evaluation and BN-recalibration batches (plain).
    eval_maker: BatchMaker,
    plan: PathPlan,
    rng: ChaCha8Rng,
    stream: BatchStream,
    steps_per_epoch: usize,
    schedule: WarmupCosine,
    optimizer: Optimizer,
    /// Steps taken so far.
    step: usize,
    bar: tunas_shared::progress::Progress,
}

impl<'a> Training<'a> {
    fn new(
        net: &'a mut Supernet,
        arch: &'a Architecture,
        data: &'a TrainTest,
        cfg: &'a TrainConfig,
        quiet: bool,
    ) -> Result<Self, TrainError> {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x7472_6169_6e00);
        let train = match cfg.limit_train {
            Some(n) if n < data.train.len() => data.train.split(data.train.len() - n, &mut rng).0,
            _ => data.train.clone(),
        };
        if train.len() < cfg.batch {
            return Err(TrainError::TooFewImages {
                images: train.len(),
                batch: cfg.batch,
            });
        }
        let normalization = Normalization::of(&train);
        let mut maker = normalization.maker();
        maker.pad_crop = cfg.pad_crop;
        maker.flip = cfg.flip;
        let eval_maker = normalization.maker();
        let stream = BatchStream::new(train.len(), cfg.batch, &mut rng);
        let steps_per_epoch = stream.batches_per_epoch();
        let total = steps_per_epoch * cfg.epochs;
        Ok(Training {
            net,
            arch,
            cfg,
            train,
            test: &data.test,
            normalization,
            maker,
            eval_maker,
            plan: PathPlan::single(arch.clone()),
            rng,
            stream,
            steps_per_epoch,
            schedule: WarmupCosine {
                base_lr: cfg.lr,
                warmup_steps: ((total as f64 * cfg.warmup_fraction).round() as usize).max(1),
                total_steps: total,
            },
            optimizer: cfg.optimizer(),
            step: 0,
            bar: tunas_shared::progress::Progress::new("training", total as u64, "steps", !quiet),
        })
    }

    /// The line that opens the training on stderr.
    fn announce(&self) {
        self.bar.println(&format!(
            "training {} on {} images ({} steps of {} per epoch, {} epochs), {} threads",
            self.arch.to_compact(),
            self.train.len(),
            self.steps_per_epoch,
            self.cfg.batch,
            self.cfg.epochs,
            rayon::current_num_threads()
        ));
    }

    /// Trains one epoch, then evaluates if this epoch is due.
    fn epoch(&mut self, epoch: usize) -> EpochReport {
        let cfg = self.cfg;
        let epoch_note = format!("epoch {epoch}/{}", cfg.epochs);
        self.bar.set_message(epoch_note.clone());
        let t0 = Instant::now();
        let (mut loss_sum, mut acc_sum) = (0.0f64, 0.0f64);
        let mut lr = 0.0;
        for k in 0..self.steps_per_epoch {
            let indices = self.stream.next_indices(&mut self.rng);
            let (x, labels) = self.maker.batch(&self.train, &indices, &mut self.rng);
            lr = self.schedule.lr(self.step);
            let step = StepSettings {
                optimizer: &self.optimizer,
                lr,
                label_smoothing: cfg.label_smoothing,
                bn: BnMode::BatchUpdateRunning,
            };
            let (loss, acc) = train_step(self.net, x, &labels, &self.plan, &step);
            loss_sum += f64::from(loss);
            acc_sum += f64::from(acc);
            self.step += 1;
            self.bar.inc(1);
            if k % 10 == 9 || k + 1 == self.steps_per_epoch {
                self.bar.set_message(format!(
                    "{epoch_note}, loss {:.3} acc {:.3}",
                    loss_sum / (k + 1) as f64,
                    acc_sum / (k + 1) as f64
                ));
            }
        }
        let train_seconds = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let test_accuracy = (cfg.eval_every_epoch || epoch == cfg.epochs).then(|| self.evaluate());
        EpochReport {
            epoch,
            train_loss: (loss_sum / self.steps_per_epoch as f64) as f32,
            train_accuracy: (acc_sum / self.steps_per_epoch as f64) as f32,
            test_accuracy,
            lr,
            train_seconds,
            eval_seconds: t1.elapsed().as_secs_f64(),
        }
    }

    /// Test accuracy with running BN statistics (recalibrated first when
    /// asked for).
    fn evaluate(&mut self) -> f32 {
        let cfg = self.cfg;
        if cfg.bn_recalibration_batches > 0 {
            crate::export::recalibrate_bn(
                self.net,
                self.arch,
                &self.train,
                &self.eval_maker,
                cfg.bn_recalibration_batches,
                cfg.batch,
            );
        }
        evaluate_dataset(
            self.net,
            &self.plan,
            self.test,
            &self.eval_maker,
            cfg.eval_batch,
        )
    }

    /// The epoch's line on stderr.
    fn log_epoch(&self, report: &EpochReport) {
        self.bar.println(&format!(
            "epoch {}/{}: train loss {:.4}, train acc {:.4}, test acc {}, lr {:.4}, {:.1} s train ({:.0} images/s), {:.1} s eval",
            report.epoch,
            self.cfg.epochs,
            report.train_loss,
            report.train_accuracy,
            report.test_accuracy.map_or("-".into(), |a| format!("{a:.4}")),
            report.lr,
            report.train_seconds,
            (self.steps_per_epoch * self.cfg.batch) as f64 / report.train_seconds,
            report.eval_seconds
        ));
    }
}
