//! Optimisers for the shared weights and the learning-rate schedule.
//!
//! State is kept per parameter tensor as plain `Vec<f32>` in the tensor's
//! logical (row-major) order, so it serialises with serde and can be
//! checkpointed next to the weights. A fresh state is empty and is sized on
//! the first step.
//!
//! Weight decay is **L2, coupled**: `wd · p` is added to the gradient before
//! the update, which is the gradient of `wd · ‖p‖² / 2` (TuNAS adds
//! `wd · tf.nn.l2_loss(p)` to the loss).
//!
//! ```
//! use ndarray::array;
//! use tunas_searcher::optim::{Optimizer, ParamState, Sgd};
//!
//! let opt = Optimizer::Sgd(Sgd { momentum: 0.9, weight_decay: 0.0, nesterov: false });
//! let mut w = array![1.0f32, -1.0];
//! let mut state = ParamState::default();
//! opt.step(0.1, w.view_mut(), array![1.0f32, 1.0].view(), &mut state);
//! assert_eq!(w, array![0.9, -1.1]);
//! ```

use ndarray::{ArrayView, ArrayViewMut, Dimension, Zip};
use serde::{Deserialize, Serialize};

/// SGD with momentum: `v = momentum · v + g`; `p -= lr · v`
/// (Nesterov: `p -= lr · (g + momentum · v)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sgd {
    /// Momentum coefficient (0 for plain SGD).
    pub momentum: f32,
    /// L2 weight decay, added to the gradient as `wd · p`.
    pub weight_decay: f32,
    /// Use Nesterov momentum.
    pub nesterov: bool,
}

/// RMSProp with TensorFlow semantics, as TuNAS uses it:
/// `ms = decay · ms + (1 − decay) · g²`;
/// `mom = momentum · mom + lr · g / sqrt(ms + epsilon)`; `p -= mom`.
///
/// `ms` starts at 1, like `tf.compat.v1.train.RMSPropOptimizer`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RmsProp {
    /// Decay of the mean square (0.9).
    pub decay: f32,
    /// Momentum (0.9).
    pub momentum: f32,
    /// Added to the mean square under the root (1.0).
    pub epsilon: f32,
    /// L2 weight decay, added to the gradient as `wd · p` (TuNAS: 4e-5).
    pub weight_decay: f32,
}

impl RmsProp {
    /// TuNAS's settings: decay 0.9, momentum 0.9, epsilon 1.0, weight decay
    /// 4e-5.
    pub fn tunas() -> Self {
        Self {
            decay: 0.9,
            momentum: 0.9,
            epsilon: 1.0,
            weight_decay: 4e-5,
        }
    }
}

/// Either optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// SGD with momentum.
    Sgd(Sgd),
    /// TensorFlow-style RMSProp.
    RmsProp(RmsProp),
}

/// Optimiser state of one parameter tensor.
///
/// SGD uses `first` as its velocity; RMSProp uses `first` as the mean square
/// `ms` and `second` as the momentum `mom`. Empty until the first step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParamState {
    /// SGD velocity, or RMSProp mean square.
    pub first: Vec<f32>,
    /// RMSProp momentum (unused by SGD).
    pub second: Vec<f32>,
}

impl Optimizer {
    /// Updates `param` in place from `grad`, with learning rate `lr`.
    ///
    /// # Shapes
    /// `param` and `grad` share one shape; `state` is empty or holds
    /// `param.len()` values per buffer.
    pub fn step<D: Dimension>(
        &self,
        lr: f32,
        mut param: ArrayViewMut<'_, f32, D>,
        grad: ArrayView<'_, f32, D>,
        state: &mut ParamState,
    ) {
        assert_eq!(
            param.shape(),
            grad.shape(),
            "optimizer step: param and grad shapes differ"
        );
        let len = param.len();
        let dim = param.raw_dim();
        let init = |buf: &mut Vec<f32>, v: f32| {
            if buf.is_empty() {
                *buf = vec![v; len];
            }
            assert_eq!(
                buf.len(),
                len,
                "optimizer step: state holds {} values for a tensor of {len}",
                buf.len()
            );
        };
        match *self {
            Optimizer::Sgd(o) => {
                init(&mut state.first, 0.0);
                let v = ArrayViewMut::from_shape(dim, &mut state.first)
                    .expect("state has the tensor's length");
                Zip::from(&mut param)
                    .and(&grad)
                    .and(v)
                    .for_each(|p, &g, v| {
                        let g = g + o.weight_decay * *p;
                        *v = o.momentum * *v + g;
                        let d = if o.nesterov { g + o.momentum * *v } else { *v };
                        *p -= lr * d;
                    });
            }
            Optimizer::RmsProp(o) => {
                init(&mut state.first, 1.0);
                init(&mut state.second, 0.0);
                let ms = ArrayViewMut::from_shape(dim.clone(), &mut state.first)
                    .expect("state has the tensor's length");
                let mom = ArrayViewMut::from_shape(dim, &mut state.second)
                    .expect("state has the tensor's length");
                Zip::from(&mut param)
                    .and(&grad)
                    .and(ms)
                    .and(mom)
                    .for_each(|p, &g, ms, mom| {
                        let g = g + o.weight_decay * *p;
                        *ms = o.decay * *ms + (1.0 - o.decay) * g * g;
                        *mom = o.momentum * *mom + lr * g / (*ms + o.epsilon).sqrt();
                        *p -= *mom;
                    });
            }
        }
    }
}

/// Linear warm-up from 0 to `base_lr` over `warmup_steps`, then cosine decay
/// to 0 at `total_steps`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WarmupCosine {
    /// Peak learning rate.
    pub base_lr: f32,
    /// Steps of linear warm-up (TuNAS: 2.5% of the total).
    pub warmup_steps: usize,
    /// Steps in the whole run.
    pub total_steps: usize,
}

impl WarmupCosine {
    /// Learning rate for step `step` (0-based): `base_lr · (step + 1) /
    /// warmup_steps` during warm-up, then
    /// `base_lr · (1 + cos(π · t)) / 2` with `t` going from 0 to 1 over the
    /// remaining steps; 0 from `total_steps` on.
    pub fn lr(&self, step: usize) -> f32 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f32 / self.warmup_steps as f32;
        }
        if step >= self.total_steps {
            return 0.0;
        }
        let decay_steps = (self.total_steps - self.warmup_steps) as f64;
        let t = (step - self.warmup_steps) as f64 / decay_steps;
        (f64::from(self.base_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    #[test]
    fn sgd_momentum_by_hand() {
        let opt = Optimizer::Sgd(Sgd {
            momentum: 0.5,
            weight_decay: 0.1,
            nesterov: false,
        });
        let mut p = array![2.0f32];
        let mut st = ParamState::default();
        // g' = 1 + 0.1·2 = 1.2; v = 1.2; p = 2 − 0.1·1.2 = 1.88.
        opt.step(0.1, p.view_mut(), array![1.0f32].view(), &mut st);
        assert!((p[0] - 1.88).abs() < 1e-6);
        // g' = 1 + 0.188 = 1.188; v = 0.6 + 1.188 = 1.788; p = 1.88 − 0.1788.
        opt.step(0.1, p.view_mut(), array![1.0f32].view(), &mut st);
        assert!((p[0] - (1.88 - 0.1788)).abs() < 1e-6, "{}", p[0]);
        assert!((st.first[0] - 1.788).abs() < 1e-6);
    }

    #[test]
    fn rmsprop_tf_semantics_by_hand() {
        let opt = Optimizer::RmsProp(RmsProp {
            decay: 0.9,
            momentum: 0.9,
            epsilon: 1.0,
            weight_decay: 0.0,
        });
        let mut p = array![1.0f32];
        let mut st = ParamState::default();
        // ms = 0.9·1 + 0.1·4 = 1.3; mom = 0.1·2/sqrt(2.3); p = 1 − mom.
        opt.step(0.1, p.view_mut(), array![2.0f32].view(), &mut st);
        let mom1 = 0.1 * 2.0 / 2.3f32.sqrt();
        assert!((p[0] - (1.0 - mom1)).abs() < 1e-6);
        // ms = 0.9·1.3 + 0.1·4 = 1.57; mom = 0.9·mom1 + 0.1·2/sqrt(2.57).
        opt.step(0.1, p.view_mut(), array![2.0f32].view(), &mut st);
        let mom2 = 0.9 * mom1 + 0.1 * 2.0 / 2.57f32.sqrt();
        assert!((p[0] - (1.0 - mom1 - mom2)).abs() < 1e-6);
        assert!((st.first[0] - 1.57).abs() < 1e-6);
        assert!((st.second[0] - mom2).abs() < 1e-6);
    }

    #[test]
    fn state_roundtrips_through_serde() {
        let opt = Optimizer::RmsProp(RmsProp::tunas());
        let mut p = Array2::<f32>::ones((2, 3));
        let mut st = ParamState::default();
        opt.step(
            0.1,
            p.view_mut(),
            Array2::from_elem((2, 3), 0.5).view(),
            &mut st,
        );
        let json = serde_json::to_string(&st).unwrap();
        let back: ParamState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, st);
        let mut p2 = p.clone();
        let mut st2 = back;
        let g = Array2::from_elem((2, 3), -0.25);
        opt.step(0.1, p.view_mut(), g.view(), &mut st);
        opt.step(0.1, p2.view_mut(), g.view(), &mut st2);
        assert_eq!(p, p2);
    }

    #[test]
    fn warmup_then_cosine() {
        let s = WarmupCosine {
            base_lr: 1.0,
            warmup_steps: 4,
            total_steps: 14,
        };
        assert_eq!(s.lr(0), 0.25);
        assert_eq!(s.lr(3), 1.0);
        assert_eq!(s.lr(4), 1.0);
        assert!((s.lr(9) - 0.5).abs() < 1e-6);
        assert!(s.lr(13) > 0.0 && s.lr(13) < 0.05);
        assert_eq!(s.lr(14), 0.0);
        for t in 4..13 {
            assert!(s.lr(t + 1) < s.lr(t));
        }
    }
}
