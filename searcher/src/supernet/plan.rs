//! What one forward pass runs: the path, and the widths it resolves to.

use tunas_shared::space::{Layer, Param, round_to_8};
use tunas_shared::{Architecture, Choice};

use super::{Supernet, act_of};
use crate::layers::activation::Activation as Act;

/// One architecture plus the decisions that run all their values.
#[derive(Clone, Debug, PartialEq)]
pub struct PathPlan {
    /// The architecture (filters/expansion already set for filter warm-up).
    pub(crate) arch: Architecture,
    /// Per decision: run every value and average (op, kernel, SE, skip only).
    pub(crate) all_values: Vec<bool>,
    /// Keep only each all-values decision's input and recompute its
    /// branches in backward.
    pub(crate) rematerialize: bool,
}

impl PathPlan {
    /// A single path.
    pub fn single(arch: Architecture) -> Self {
        let n = arch.indices.len();
        PathPlan {
            arch,
            all_values: vec![false; n],
            rematerialize: true,
        }
    }
}

/// Resolved widths of one layer for a plan.
#[derive(Clone, Copy, Debug)]
pub(super) struct LayerDims {
    pub(super) cin: usize,
    pub(super) cout: usize,
    /// The expanded width `round_to_8(cin × expansion)` of the ops that
    /// expand (bottleneck, fused), whichever op the path runs.
    pub(super) expanded: usize,
    pub(super) stride: usize,
    /// Which op of the layer's op values runs (0 for a fixed op).
    pub(super) op_index: usize,
    pub(super) kernel_index: usize,
    /// The squeeze-excite value of the path; only a bottleneck has one.
    pub(super) se: bool,
    pub(super) skipped: bool,
    pub(super) residual: bool,
    pub(super) act: Act,
    pub(super) op_all: bool,
    pub(super) se_all: bool,
    pub(super) kernel_all: bool,
    pub(super) skip_all: bool,
}

/// The widths of the stem, every layer and the head for one plan.
#[derive(Clone, Debug)]
pub(super) struct PlanDims {
    pub(super) stem_filters: usize,
    pub(super) layers: Vec<LayerDims>,
    pub(super) head_filters: usize,
    pub(super) post_pool_filters: Option<usize>,
}

impl Supernet {
    /// The widths `plan` resolves to, and which of its decisions run all
    /// their values.
    pub(super) fn plan_dims(&self, plan: &PathPlan) -> PlanDims {
        let net = plan.arch.resolve(&self.space);
        let layers = net
            .layers
            .iter()
            .zip(&self.layers)
            .zip(self.space.layers())
            .map(|((l, w), (_, layer))| {
                let all = |d: Option<usize>| d.is_some_and(|i| plan.all_values[i]);
                let index = |d: Option<usize>| d.map_or(0, |i| plan.arch.indices[i]);
                LayerDims {
                    cin: l.cin as usize,
                    cout: l.cout as usize,
                    expanded: round_to_8(l.cin as f64 * l.expansion as f64) as usize,
                    stride: l.stride as usize,
                    op_index: index(w.decisions.op),
                    kernel_index: index(w.decisions.kernel),
                    se: self.se_value(plan, layer, w.decisions.se),
                    skipped: l.skipped,
                    residual: l.residual,
                    act: act_of(l.activation),
                    op_all: all(w.decisions.op),
                    se_all: all(w.decisions.se),
                    kernel_all: all(w.decisions.kernel),
                    skip_all: all(w.decisions.skip),
                }
            })
            .collect();
        PlanDims {
            stem_filters: net.stem_filters as usize,
            layers,
            head_filters: net.head_filters as usize,
            post_pool_filters: net.post_pool_filters.map(|v| v as usize),
        }
    }

    /// A layer's squeeze-excite value on `plan`, whatever op the path
    /// chose (the resolved network has it off unless the op is a
    /// bottleneck; an op warm-up also runs the bottleneck).
    fn se_value(&self, plan: &PathPlan, layer: &Layer, decision: Option<usize>) -> bool {
        match (&layer.squeeze_excite, decision) {
            (Param::Fixed(on), _) => *on,
            (Param::Decision(_), Some(i)) => {
                self.space.decisions[i].values[plan.arch.indices[i]] == Choice::Flag(true)
            }
            (Param::Decision(name), None) => unreachable!("decision '{name}' was resolved"),
        }
    }
}
