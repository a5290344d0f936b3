//! What defines a search: the config with its defaults and checks, the
//! resource, and the reward over one or several devices.

use super::*;

use serde::{Deserialize, Serialize};

use crate::controller::RewardKind;

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
    /// What Q measures on the validation batch (runs stored before it
    /// existed used the accuracy).
    #[serde(default)]
    pub quality: QualityMeasure,
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
    pub(crate) weight_decay: f32,
    /// Nesterov momentum of the shared weights' SGD (runs stored before it
    /// was recorded used 0.9).
    #[serde(default = "default_weight_momentum")]
    pub(crate) weight_momentum: f32,
    /// Fraction of the steps over which the shared weights' learning rate
    /// warms up linearly before its cosine decay (stored runs: 0.025).
    #[serde(default = "default_lr_warmup_fraction")]
    pub(crate) lr_warmup_fraction: f64,
    /// Label smoothing.
    pub(crate) label_smoothing: f32,
    /// Keep only decision inputs for all-values decisions.
    pub(crate) rematerialize: bool,
    /// Whether the op warm-up also runs skip decisions over both values
    /// (runs stored before it existed did).
    #[serde(default)]
    pub skip_warmup: SkipWarmup,
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
    /// Augmentation of the shared weights' training batches (runs stored
    /// before it existed had none).
    #[serde(default)]
    pub augment: Augmentation,
}

/// What the reward's Q measures on a validation batch with the shared
/// weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QualityMeasure {
    /// The fraction classified correctly (TuNAS's Q).
    #[default]
    Accuracy,
    /// The mean softmax probability of the true class: in [0, 1] like the
    /// accuracy, so β keeps its meaning, but it moves with every image's
    /// confidence instead of only with the images whose argmax flips, so
    /// one batch's Q is less noisy.
    Probability,
}

impl QualityMeasure {
    /// What scores a batch's logits against its labels.
    pub(crate) fn score(self) -> fn(ndarray::ArrayView2<'_, f32>, &[usize]) -> f32 {
        match self {
            QualityMeasure::Accuracy => crate::layers::loss::accuracy,
            QualityMeasure::Probability => crate::layers::loss::mean_true_class_probability,
        }
    }
}

/// What the op warm-up does with a layer's skip decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipWarmup {
    /// With probability p the layer runs on and off and the two outputs
    /// are averaged, as every other op decision (TuNAS's op warm-up). A
    /// residual layer's body then adds half its output in the warm-up and
    /// all of it afterwards.
    #[default]
    AllValues,
    /// Skip decisions keep their uniform sample: the warm-up trains the
    /// shared weights at the depths paths really have, and about half the
    /// optional layers are off in each warm-up step. Measured at rgb32's
    /// p25 it neither ranked nor searched better (docs/measurements.md).
    Sampled,
    /// With probability p the layer is on (not skipped), else it keeps its
    /// sample: optional layers train about as often as the mandatory ones
    /// early on, as a network trained alone trains all of its layers.
    /// Shared weights rate deep paths no better than shallow ones while
    /// stand-alone accuracy rises with depth, and training the optional
    /// layers less (`Sampled`) made that worse.
    Present,
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
/// −1.4%, −1.4% and +0.1% off, with validation accuracy as high
/// (docs/measurements.md, "Latency targeting").
pub const DEFAULT_BETA: f64 = -0.5;

/// Peak learning rate of the shared weights (SGD Nesterov, warm-up then
/// cosine): per image the stand-alone recipe's 0.1 at batch 128.
pub const DEFAULT_WEIGHT_LEARNING_RATE: f32 = 0.05;

/// Default RL learning rate at the end of the warm-up for a search phase of
/// `search_steps` steps: `40 / search_steps`.
///
/// Adam with β1 = 0 moves a logit by about the learning rate per step, so the
/// total movement the schedule allows (×10 growth: about 3.9 × lr × steps) is
/// the same for any search length. Measured on tiny28 (docs/measurements.md,
/// "Latency targeting"): with 1.5 / steps the controller ended near uniform
/// (entropy 12–15 nats) and the argmax architecture missed a 25th-percentile
/// target by +27%; with 40 / steps it ends at 1–3 nats.
pub fn default_rl_learning_rate(search_steps: usize) -> f64 {
    40.0 / search_steps.max(1) as f64
}

fn default_weight_momentum() -> f32 {
    0.9
}

fn default_lr_warmup_fraction() -> f64 {
    0.025
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
            quality: QualityMeasure::Accuracy,
            beta: DEFAULT_BETA,
            target,
            resource: Resource::Latency,
            rl_learning_rate: default_rl_learning_rate(steps - warmup),
            weight_learning_rate: DEFAULT_WEIGHT_LEARNING_RATE,
            weight_decay: 4e-5,
            weight_momentum: default_weight_momentum(),
            lr_warmup_fraction: default_lr_warmup_fraction(),
            label_smoothing: 0.1,
            rematerialize: true,
            skip_warmup: SkipWarmup::AllValues,
            seed: 1,
            checkpoint_every: 250,
            record_every: 10,
            more_targets: Vec::new(),
            multi: MultiDevice::Sum,
            augment: Augmentation::NONE,
        }
    }

    /// Checks every setting's range; the error names the setting (as the
    /// command-line flags do, without dashes).
    pub fn check(&self) -> Result<(), SearchError> {
        self.check_counts()?;
        self.check_reward()?;
        self.check_training()?;
        if self.steps - self.warmup_steps() < 1 {
            return bad("warmup", "leaves no search steps after the warm-up".into());
        }
        Ok(())
    }

    /// Steps, batch sizes and intervals.
    fn check_counts(&self) -> Result<(), SearchError> {
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
        Ok(())
    }

    /// β, the targets and the devices they belong to.
    fn check_reward(&self) -> Result<(), SearchError> {
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
                "several devices need the latency resource and the abs reward".into(),
            );
        }
        Ok(())
    }

    /// Learning rates, regularisation and augmentation.
    fn check_training(&self) -> Result<(), SearchError> {
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
        if !(0.0..1.0).contains(&self.weight_momentum) {
            return bad(
                "weight-momentum",
                format!("{}: momentum must lie in [0, 1)", self.weight_momentum),
            );
        }
        if !(0.0..1.0).contains(&self.lr_warmup_fraction) {
            return bad(
                "lr-warmup",
                format!(
                    "{}: the learning-rate warm-up fraction must lie in [0, 1)",
                    self.lr_warmup_fraction
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
        if self.augment.pad_crop > 64 {
            return bad(
                "pad-crop",
                format!("{} pixels: must be at most 64", self.augment.pad_crop),
            );
        }
        Ok(())
    }

    /// Steps in the warm-up.
    pub fn warmup_steps(&self) -> usize {
        (self.steps as f64 * self.warmup_fraction).round() as usize
    }
}

/// A setting out of range.
fn bad(what: &'static str, why: String) -> Result<(), SearchError> {
    Err(SearchError::BadSetting { what, why })
}

/// A finite number above zero.
fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}
