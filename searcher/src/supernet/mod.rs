//! The weight-sharing supernet of a search space (docs/design.md,
//! "Supernet").
//!
//! Every layer keeps its widest weights; an architecture uses the first k
//! channels of each (computing only the active channels gives the same
//! result as masking the others to zero). The 1×1 expand and project convs
//! are shared across kernel and expansion choices; each depthwise kernel
//! size has its own weights and BN; squeeze-excite weights belong to the
//! layer; a skipped layer is the identity. A layer whose op is searched
//! has one such set of weights per op (bottleneck, separable, fused:
//! their shapes differ, so they share nothing).
//!
//! A forward pass follows a [`PathPlan`]: one architecture, plus the
//! op / kernel / squeeze-excite / skip decisions that run *all* their values and
//! average them (op warm-up). With rematerialization such a decision keeps
//! only its input for the backward pass and recomputes its branches there.
//!
//! ```
//! use tunas_searcher::supernet::{BnMode, PathPlan, Supernet};
//! use tunas_shared::{Architecture, builtin_space};
//!
//! let space = builtin_space("tiny28").unwrap();
//! let mut net = Supernet::new(&space, 1);
//! let plan = PathPlan::single(Architecture::largest(&space));
//! let x = ndarray::Array4::<f32>::zeros((2, 1, 28, 28));
//! let (logits, _) = net.forward(x, &plan, BnMode::Batch, false);
//! assert_eq!(logits.dim(), (2, 10));
//! ```

// `store` holds the tensors; `build` decides which exist and seeds them;
// `plan` resolves a path's widths; `tape` is what a forward pass keeps;
// `unit`, `layer` and `net` run forward and backward, level by level.
mod build;
mod layer;
pub(crate) mod names;
mod net;
mod plan;
mod store;
mod tape;
mod unit;

use tunas_shared::SearchSpace;

use crate::layers::activation::Activation as Act;

pub(crate) use build::{ConvBn, HeadWeights, LayerWeights};
pub use net::evaluate;
pub(crate) use net::score_path;
pub(crate) use net::{StepSettings, train_step};
pub use plan::PathPlan;
pub(crate) use store::leading_region;
pub use store::{ParamStore, ParamTensor};
pub use tape::NetTape;

// The tests below reach these through `use super::*`.
#[cfg(test)]
use {
    ndarray::{Array4, ArrayD},
    net::loss_and_gradients,
    rand::{Rng, SeedableRng},
    rand_chacha::ChaCha8Rng,
    tunas_shared::Architecture,
};

/// How BN normalises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnMode {
    /// Batch statistics (training and search, also on validation batches).
    Batch,
    /// Batch statistics, and the running statistics are updated.
    BatchUpdateRunning,
    /// Running statistics (stand-alone evaluation).
    Running,
}

/// The weight-sharing network of a space.
#[derive(Clone, Debug)]
pub struct Supernet {
    /// The space it was built for.
    pub space: SearchSpace,
    /// Every tensor.
    pub store: ParamStore,
    /// Stem conv + BN per kernel value.
    pub(crate) stem: Vec<ConvBn>,
    /// Stem kernel decision, if searched.
    pub(crate) stem_kernel_decision: Option<usize>,
    /// Every layer of the skeleton.
    pub(crate) layers: Vec<LayerWeights>,
    /// Head and classifier.
    pub(crate) head: HeadWeights,
    /// Overrides the BN momentum of running-statistics updates (weight of
    /// the old value); BN recalibration sets `k/(k+1)` for a plain average.
    pub(crate) bn_momentum: Option<f32>,
}

/// The layer activation of a space's activation.
fn act_of(a: tunas_shared::Activation) -> Act {
    match a {
        tunas_shared::Activation::Relu => Act::Relu,
        tunas_shared::Activation::Swish6 => Act::Swish6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunas_shared::builtin_space;

    fn batch(n: usize, seed: u64) -> (Array4<f32>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = Array4::from_shape_fn((n, 1, 28, 28), |_| rng.random_range(-1.0f32..1.0));
        let labels = (0..n).map(|i| i % 10).collect();
        (x, labels)
    }

    fn loss_only(net: &mut Supernet, x: &Array4<f32>, labels: &[usize], plan: &PathPlan) -> f64 {
        let (logits, _) = net.forward(x.clone(), plan, BnMode::Batch, false);
        crate::layers::loss::softmax_cross_entropy(logits.view(), labels, 0.1).0 as f64
    }

    /// Directional finite differences per tensor: the derivative of the
    /// loss along a random unit direction v restricted to one tensor,
    /// by central differences with Richardson extrapolation (h and h/2, so
    /// the O(h²) curvature term cancels), against ⟨∇L, v⟩.
    fn check_gradients(plan: &PathPlan, seed: u64) {
        check_gradients_in(&builtin_space("tiny28").unwrap(), plan, seed);
    }

    /// tiny28 with an op choice {bottleneck, separable, fused} on the first
    /// layer of stage 2 (strided, widening) and the second of stage 3
    /// (residual).
    pub(crate) fn op_choice_space() -> SearchSpace {
        use tunas_shared::{Choice, Decision, DecisionKind, LayerOp, Param};
        let mut space = builtin_space("tiny28").unwrap();
        for (stage, layer) in [(1, 0), (2, 1)] {
            let name = format!("stage{}/layer{}/op", stage + 1, layer + 1);
            space.decisions.push(Decision {
                name: name.clone(),
                kind: DecisionKind::Op,
                values: [LayerOp::Bottleneck, LayerOp::Separable, LayerOp::Fused]
                    .map(Choice::Op)
                    .to_vec(),
            });
            space.stages[stage].layers[layer].op = Param::Decision(name);
        }
        space.name = "tiny28-op-choice".into();
        space.validate().unwrap();
        space
    }

    /// The op decisions' indices of `space`.
    fn op_decisions(space: &SearchSpace) -> Vec<usize> {
        (space.decisions.iter().enumerate())
            .filter(|(_, d)| d.kind == tunas_shared::DecisionKind::Op)
            .map(|(i, _)| i)
            .collect()
    }

    fn check_gradients_in(space: &SearchSpace, plan: &PathPlan, seed: u64) {
        let mut net = Supernet::new(space, seed);
        let (x, labels) = batch(8, seed);
        loss_and_gradients(&mut net, x.clone(), &labels, plan, BnMode::Batch, 0.1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
        let mut checked = 0;
        let mut failures = Vec::new();
        let used: Vec<usize> = (0..net.store.tensors.len())
            .filter(|&i| {
                let t = &net.store.tensors[i];
                t.trainable && t.grad.as_ref().is_some_and(|g| g.iter().any(|v| *v != 0.0))
            })
            .collect();
        // About 30 tensors spread over the network, the stem and the
        // classifier always among them, keep the test quick.
        let stride = used.len().div_ceil(30).max(1);
        let picked: Vec<usize> = used
            .iter()
            .enumerate()
            .filter(|(k, _)| k % stride == 0 || *k == used.len() - 1)
            .map(|(_, &i)| i)
            .collect();
        for i in picked {
            let grad = net.store.tensors[i]
                .grad
                .clone()
                .expect("picked tensors have grads");
            // Only the entries the path uses (non-zero gradient) move.
            let mut v: ArrayD<f32> = grad.mapv(|g| {
                if g != 0.0 {
                    rng.random_range(-1.0f32..1.0)
                } else {
                    0.0
                }
            });
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.mapv_inplace(|x| x / norm);
            let analytic: f64 = grad
                .iter()
                .zip(v.iter())
                .map(|(g, v)| (*g as f64) * (*v as f64))
                .sum();
            let original = net.store.tensors[i].value.clone();
            let mut central = |h: f32| {
                net.store.tensors[i].value = &original + &(&v * h);
                let plus = loss_only(&mut net, &x, &labels, plan);
                net.store.tensors[i].value = &original - &(&v * h);
                let minus = loss_only(&mut net, &x, &labels, plan);
                (plus - minus) / (2.0 * h as f64)
            };
            let h = 4e-3;
            let numeric = (4.0 * central(h / 2.0) - central(h)) / 3.0;
            net.store.tensors[i].value = original;
            let tolerance = 0.05 * analytic.abs().max(numeric.abs()) + 1e-3;
            if (analytic - numeric).abs() > tolerance {
                failures.push(format!(
                    "{}: analytic {analytic:.6} vs numeric {numeric:.6}",
                    net.store.tensors[i].name
                ));
            }
            checked += 1;
        }
        assert!(
            failures.is_empty(),
            "{} of {checked} tensors disagree:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(checked >= 25, "only {checked} tensors checked");
    }

    #[test]
    fn running_statistics_from_one_batch_reproduce_batch_mode() {
        // With momentum 0 the running statistics become the batch's own
        // (variance Bessel-corrected), so Running mode on that batch gives
        // Batch mode's logits up to that correction.
        let space = builtin_space("tiny28").unwrap();
        for spec in ["largest", "random:3"] {
            let arch = Architecture::parse_spec(&space, spec).unwrap();
            let mut net = Supernet::new(&space, 1);
            let (x, _) = batch(16, 2);
            let plan = PathPlan::single(arch);
            net.bn_momentum = Some(0.0);
            let _ = net.forward(x.clone(), &plan, BnMode::BatchUpdateRunning, false);
            net.bn_momentum = None;
            let (batch_logits, _) = net.forward(x.clone(), &plan, BnMode::Batch, false);
            let (running_logits, _) = net.forward(x, &plan, BnMode::Running, false);
            let scale = batch_logits.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let diff = (&batch_logits - &running_logits)
                .iter()
                .fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(
                diff < 0.05 * scale,
                "{spec}: max diff {diff} vs scale {scale}"
            );
        }
    }

    #[test]
    fn largest_path_gradients_match_finite_differences() {
        let space = builtin_space("tiny28").unwrap();
        check_gradients(&PathPlan::single(Architecture::largest(&space)), 5);
    }

    #[test]
    fn single_path_gradients_match_finite_differences() {
        let space = builtin_space("tiny28").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut arch = Architecture::sample_uniform(&space, &mut rng);
        // No skipped layers, mixed widths, SE somewhere.
        for (i, d) in space.decisions.iter().enumerate() {
            if d.kind == tunas_shared::DecisionKind::Skip {
                arch.indices[i] = 0;
            }
        }
        check_gradients(&PathPlan::single(arch), 5);
    }

    #[test]
    fn all_values_gradients_match_finite_differences_and_remat_changes_nothing() {
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let all: Vec<bool> = space
            .decisions
            .iter()
            .map(|d| {
                matches!(
                    d.kind,
                    tunas_shared::DecisionKind::Kernel
                        | tunas_shared::DecisionKind::SqueezeExcite
                        | tunas_shared::DecisionKind::Skip
                )
            })
            .collect();
        let remat = PathPlan {
            arch: arch.clone(),
            all_values: all.clone(),
            rematerialize: true,
        };
        check_gradients(&remat, 9);
        let kept = PathPlan {
            rematerialize: false,
            ..remat.clone()
        };
        let grads = |plan: &PathPlan| {
            let mut net = Supernet::new(&space, 3);
            let (x, labels) = batch(4, 3);
            let loss = loss_and_gradients(&mut net, x, &labels, plan, BnMode::Batch, 0.1).0;
            let g: Vec<Option<ArrayD<f32>>> =
                net.store.tensors.iter().map(|t| t.grad.clone()).collect();
            (loss, g)
        };
        assert_eq!(grads(&remat), grads(&kept));
    }

    #[test]
    fn every_op_of_an_op_choice_matches_finite_differences() {
        let space = op_choice_space();
        let ops = op_decisions(&space);
        for value in 0..3 {
            let mut arch = Architecture::largest(&space);
            for &i in &ops {
                arch.indices[i] = value;
            }
            check_gradients_in(&space, &PathPlan::single(arch), 11 + value as u64);
        }
    }

    #[test]
    fn op_warmup_gradients_match_finite_differences_and_remat_changes_nothing() {
        let space = op_choice_space();
        let mut all = vec![false; space.decisions.len()];
        for i in op_decisions(&space) {
            all[i] = true;
        }
        // Kernels too: an op warm-up nests the kernel choice of each op.
        for (i, d) in space.decisions.iter().enumerate() {
            all[i] |= d.kind == tunas_shared::DecisionKind::Kernel;
        }
        let remat = PathPlan {
            arch: Architecture::largest(&space),
            all_values: all,
            rematerialize: true,
        };
        check_gradients_in(&space, &remat, 13);
        let kept = PathPlan {
            rematerialize: false,
            ..remat.clone()
        };
        let grads = |plan: &PathPlan| {
            let mut net = Supernet::new(&space, 3);
            let (x, labels) = batch(4, 3);
            let loss = loss_and_gradients(&mut net, x, &labels, plan, BnMode::Batch, 0.1).0;
            let g: Vec<Option<ArrayD<f32>>> =
                net.store.tensors.iter().map(|t| t.grad.clone()).collect();
            (loss, g)
        };
        let (loss, g) = grads(&remat);
        assert_eq!((loss, g.clone()), grads(&kept));
        // Every op of both layers trained: each has a non-zero gradient.
        let names: Vec<String> = (Supernet::new(&space, 3).store.tensors.iter())
            .map(|t| t.name.clone())
            .collect();
        for scope in ["stage2/layer1", "stage3/layer2"] {
            for op in ["bottleneck", "separable", "fused"] {
                let prefix = format!("{scope}/{op}/");
                let trained = names.iter().zip(&g).any(|(n, g)| {
                    n.starts_with(&prefix)
                        && g.as_ref().is_some_and(|g| g.iter().any(|v| *v != 0.0))
                });
                assert!(trained, "no gradient reached {prefix}");
            }
        }
    }

    #[test]
    fn a_forward_without_tape_computes_the_same_logits_as_one_with() {
        // The tape-free forward borrows inputs and skips the copies a
        // backward pass would need; the logits must not change by a bit.
        let space = op_choice_space();
        let every = vec![true; space.decisions.len()];
        let plans = [
            PathPlan::single(Architecture::largest(&space)),
            PathPlan {
                arch: Architecture::largest(&space),
                all_values: every.clone(),
                rematerialize: true,
            },
            PathPlan {
                arch: Architecture::largest(&space),
                all_values: every,
                rematerialize: false,
            },
        ];
        for plan in &plans {
            for mode in [BnMode::Batch, BnMode::Running] {
                let mut net = Supernet::new(&space, 5);
                let (x, _) = batch(3, 8);
                let (with, tape) = net.forward(x.clone(), plan, mode, true);
                assert!(tape.is_some());
                let (without, tape) = net.forward(x, plan, mode, false);
                assert!(tape.is_none());
                assert_eq!(with, without, "{mode:?}, remat {}", plan.rematerialize);
            }
        }
    }
}
