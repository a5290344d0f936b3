//! What one forward pass runs: the path, and the widths it resolves to.

use tunas_shared::Architecture;

use super::{Supernet, act_of};
use crate::layers::activation::Activation as Act;

/// One architecture plus the decisions that run all their values.
#[derive(Clone, Debug, PartialEq)]
pub struct PathPlan {
    /// The architecture (filters/expansion already set for filter warm-up).
    pub(crate) arch: Architecture,
    /// Per decision: run every value and average (kernel, SE, skip only).
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
    pub(super) mid: usize,
    pub(super) stride: usize,
    pub(super) kernel_index: usize,
    pub(super) se: bool,
    pub(super) skipped: bool,
    pub(super) residual: bool,
    pub(super) act: Act,
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
            .map(|(l, w)| {
                let all = |d: Option<usize>| d.is_some_and(|i| plan.all_values[i]);
                let kernel_index = match w.decisions.kernel {
                    Some(i) => plan.arch.indices[i],
                    None => 0,
                };
                LayerDims {
                    cin: l.cin as usize,
                    cout: l.cout as usize,
                    mid: l.mid as usize,
                    stride: l.stride as usize,
                    kernel_index,
                    se: l.squeeze_excite,
                    skipped: l.skipped,
                    residual: l.residual,
                    act: act_of(l.activation),
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
}
