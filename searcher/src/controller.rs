//! The REINFORCE controller of TuNAS (docs/design.md, "Controller"): one
//! logits vector per decision, sampled independently; log-probability and
//! entropy count only the decisions that are active for the sampled
//! architecture.

use rand::Rng;
use serde::{Deserialize, Serialize};
use tunas_shared::{Architecture, SearchSpace};

/// Which reward turns (quality, cost) into a scalar.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewardKind {
    /// TuNAS absolute reward `Q + β·|T/T0 − 1|`.
    Abs,
    /// MnasNet soft reward `Q·(T/T0)^β`.
    Mnas,
    /// MnasNet hard reward `Q·min((T/T0)^β, 1)`.
    MnasHard,
}

impl RewardKind {
    /// The reward of quality `q` at cost `t` for target `t0` and `beta < 0`.
    pub fn reward(self, q: f64, t: f64, t0: f64, beta: f64) -> f64 {
        let ratio = t / t0;
        match self {
            RewardKind::Abs => q + beta * (ratio - 1.0).abs(),
            RewardKind::Mnas => q * ratio.powf(beta),
            RewardKind::MnasHard => q * ratio.powf(beta).min(1.0),
        }
    }
}

/// Numerically stable softmax.
pub(crate) fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// Adam with β1 = 0 as TuNAS uses it (RMS-normalised steps).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AdamState {
    /// First moment per logit.
    pub(crate) m: Vec<Vec<f32>>,
    /// Second moment per logit.
    pub(crate) v: Vec<Vec<f32>>,
    /// Steps taken.
    pub(crate) t: u64,
}

/// Adam hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AdamConfig {
    /// First-moment decay (TuNAS: 0).
    pub(crate) beta1: f32,
    /// Second-moment decay (0.999).
    pub(crate) beta2: f32,
    /// Denominator epsilon (1e-8).
    pub(crate) epsilon: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            beta1: 0.0,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// One logits vector per decision, with its optimiser state and the reward
/// baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Controller {
    /// `logits[d][v]` for decision `d`, value `v`.
    pub(crate) logits: Vec<Vec<f32>>,
    /// Adam state.
    pub(crate) adam: AdamState,
    /// Adam hyperparameters.
    pub(crate) adam_config: AdamConfig,
    /// Exponential moving average of rewards; `None` before the first.
    pub(crate) baseline: Option<f64>,
    /// Baseline momentum (0.95).
    pub(crate) baseline_momentum: f64,
}

/// What one REINFORCE update saw and did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ControllerUpdate {
    /// Baseline after it was updated with this reward.
    pub(crate) baseline: f64,
    /// `reward − baseline`.
    pub(crate) advantage: f64,
    /// Log-probability of the architecture before the update.
    pub(crate) log_prob: f64,
}

impl Controller {
    /// Uniform controller (zero logits) for a space.
    pub(crate) fn new(space: &SearchSpace) -> Self {
        let logits: Vec<Vec<f32>> = space
            .decisions
            .iter()
            .map(|d| vec![0.0; d.values.len()])
            .collect();
        Controller {
            adam: AdamState {
                m: logits.clone(),
                v: logits.clone(),
                t: 0,
            },
            logits,
            adam_config: AdamConfig::default(),
            baseline: None,
            baseline_momentum: 0.95,
        }
    }

    /// Probabilities per decision.
    pub(crate) fn probabilities(&self) -> Vec<Vec<f32>> {
        self.logits.iter().map(|l| softmax(l)).collect()
    }

    /// Samples every decision independently from its softmax.
    pub(crate) fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Architecture {
        let indices = self
            .probabilities()
            .iter()
            .map(|p| {
                let u: f32 = rng.random();
                let mut acc = 0.0;
                for (i, pi) in p.iter().enumerate() {
                    acc += pi;
                    if u < acc {
                        return i;
                    }
                }
                p.len() - 1
            })
            .collect();
        Architecture { indices }
    }

    /// The most likely value of every decision.
    pub(crate) fn argmax(&self) -> Architecture {
        let indices = self
            .logits
            .iter()
            .map(|l| {
                l.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                        if v > best.1 { (i, v) } else { best }
                    })
                    .0
            })
            .collect();
        Architecture { indices }
    }

    /// Log-probability of `arch` over the decisions marked active.
    pub(crate) fn log_prob(&self, arch: &Architecture, active: &[bool]) -> f64 {
        self.probabilities()
            .iter()
            .zip(&arch.indices)
            .zip(active)
            .filter(|(_, a)| **a)
            .map(|((p, &i), _)| (p[i] as f64).ln())
            .sum()
    }

    /// Entropy (nats) of the active decisions' distributions.
    pub(crate) fn entropy(&self, active: &[bool]) -> f64 {
        self.probabilities()
            .iter()
            .zip(active)
            .filter(|(_, a)| **a)
            .map(|(p, _)| {
                p.iter()
                    .filter(|&&x| x > 0.0)
                    .map(|&x| -(x as f64) * (x as f64).ln())
                    .sum::<f64>()
            })
            .sum()
    }

    /// Gradient of `log π(arch)` w.r.t. the logits: `onehot − softmax` for
    /// active decisions, zero for the others.
    pub(crate) fn log_prob_gradient(&self, arch: &Architecture, active: &[bool]) -> Vec<Vec<f32>> {
        self.probabilities()
            .into_iter()
            .zip(&arch.indices)
            .zip(active)
            .map(|((p, &i), &a)| {
                p.iter()
                    .enumerate()
                    .map(|(j, &pj)| {
                        if a {
                            f32::from(u8::from(j == i)) - pj
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Updates the baseline with `reward` (before it is used) and returns
    /// `(baseline, advantage)`. The first reward initialises the baseline.
    pub(crate) fn update_baseline(&mut self, reward: f64) -> (f64, f64) {
        let b = match self.baseline {
            None => reward,
            Some(b) => self.baseline_momentum * b + (1.0 - self.baseline_momentum) * reward,
        };
        self.baseline = Some(b);
        (b, reward - b)
    }

    /// One REINFORCE step on the loss `−(r − b)·log π(α)`, averaged over
    /// several samples, with Adam at learning rate `lr`. The baseline is
    /// updated with each reward before it is used.
    pub(crate) fn reinforce(
        &mut self,
        samples: &[(Architecture, Vec<bool>, f64)],
        lr: f32,
    ) -> Vec<ControllerUpdate> {
        let mut grad: Vec<Vec<f32>> = self.logits.iter().map(|l| vec![0.0; l.len()]).collect();
        let mut updates = Vec::with_capacity(samples.len());
        for (arch, active, reward) in samples {
            let log_prob = self.log_prob(arch, active);
            let (baseline, advantage) = self.update_baseline(*reward);
            let g = self.log_prob_gradient(arch, active);
            for (gd, sd) in grad.iter_mut().zip(&g) {
                for (x, s) in gd.iter_mut().zip(sd) {
                    // d loss / d logits = −advantage · d log π / d logits.
                    *x -= (advantage as f32) * s / samples.len() as f32;
                }
            }
            updates.push(ControllerUpdate {
                baseline,
                advantage,
                log_prob,
            });
        }
        self.adam_step(&grad, lr);
        updates
    }

    /// One Adam step (descending `grad`).
    pub(crate) fn adam_step(&mut self, grad: &[Vec<f32>], lr: f32) {
        let c = self.adam_config;
        self.adam.t += 1;
        let t = self.adam.t as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        let AdamState { m, v, .. } = &mut self.adam;
        for (((logits, g), m), v) in self.logits.iter_mut().zip(grad).zip(m).zip(v) {
            for (((l, &g), m), v) in logits.iter_mut().zip(g).zip(m).zip(v) {
                *m = c.beta1 * *m + (1.0 - c.beta1) * g;
                *v = c.beta2 * *v + (1.0 - c.beta2) * g * g;
                let m_hat = *m / bias1;
                let v_hat = *v / bias2;
                *l -= lr * m_hat / (v_hat.sqrt() + c.epsilon);
            }
        }
    }
}

/// The RL learning rate: 0 during the warm-up (first `warmup_steps`), then
/// growing ×10 exponentially to the end: `lr0 · 10^((t − D)/(T − D))`.
pub(crate) fn rl_learning_rate(
    lr0: f64,
    step: usize,
    warmup_steps: usize,
    total_steps: usize,
) -> f64 {
    if step < warmup_steps || total_steps <= warmup_steps {
        return 0.0;
    }
    let frac = (step - warmup_steps) as f64 / (total_steps - warmup_steps) as f64;
    lr0 * 10f64.powf(frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunas_shared::builtin_space;

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn log_prob_gradient_matches_finite_differences() {
        let space = builtin_space("tiny28").unwrap();
        let mut c = Controller::new(&space);
        let mut rng = rand::rng();
        for l in c.logits.iter_mut().flatten() {
            *l = rng.random_range(-1.0..1.0);
        }
        let arch = c.sample(&mut rng);
        let mut active = arch.active_decisions(&space);
        active[0] = false;
        let g = c.log_prob_gradient(&arch, &active);
        let eps = 1e-2f32;
        for d in 0..c.logits.len() {
            for j in 0..c.logits[d].len() {
                let mut plus = c.clone();
                plus.logits[d][j] += eps;
                let mut minus = c.clone();
                minus.logits[d][j] -= eps;
                let fd = (plus.log_prob(&arch, &active) - minus.log_prob(&arch, &active))
                    / (2.0 * eps as f64);
                assert!(
                    (fd - g[d][j] as f64).abs() < 1e-3,
                    "decision {d} value {j}: fd {fd} vs {}",
                    g[d][j]
                );
            }
        }
        assert!(g[0].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn positive_advantage_makes_the_sample_more_likely() {
        let space = builtin_space("tiny28").unwrap();
        let mut c = Controller::new(&space);
        let arch = Architecture::largest(&space);
        let active = vec![true; space.decisions.len()];
        let before = c.log_prob(&arch, &active);
        c.update_baseline(0.0);
        c.reinforce(&[(arch.clone(), active.clone(), 1.0)], 0.1);
        assert!(c.log_prob(&arch, &active) > before);
        assert_eq!(c.argmax(), arch);
    }

    #[test]
    fn uniform_entropy_and_rewards() {
        let space = builtin_space("tiny28").unwrap();
        let c = Controller::new(&space);
        let all = vec![true; space.decisions.len()];
        let expected: f64 = space
            .decisions
            .iter()
            .map(|d| (d.values.len() as f64).ln())
            .sum();
        assert!((c.entropy(&all) - expected).abs() < 1e-5);
        assert_eq!(
            RewardKind::Abs.reward(0.9, 11.0, 10.0, -0.1),
            0.9 - 0.1 * 0.1
        );
        assert!(
            (RewardKind::Mnas.reward(0.9, 20.0, 10.0, -0.1) - 0.9 * 2f64.powf(-0.1)).abs() < 1e-12
        );
        assert_eq!(RewardKind::MnasHard.reward(0.9, 5.0, 10.0, -0.1), 0.9);
        assert_eq!(rl_learning_rate(1.0, 10, 25, 100), 0.0);
        assert!((rl_learning_rate(1.0, 100, 25, 100) - 10.0).abs() < 1e-9);
    }
}
