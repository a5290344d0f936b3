//! The names of the supernet's tensors: the one contract between the
//! builder (which creates them), checkpoints and weight files (which store
//! them by name) and the exporter (which reads them back for the ONNX
//! writer's op scopes). A unit is a conv (or dense layer) with its BN or
//! bias; its tensors are `UNIT/weight`, `UNIT/bias` and `UNIT/bn/PART`.
//! Renaming anything here breaks every stored weight file.

use tunas_shared::space::{LayerOp, LayerPosition};

/// The stem conv of kernel `k`.
pub(crate) fn stem(k: u32) -> String {
    format!("stem/k{k}")
}

/// A layer's name: the ONNX writer's scope of the same layer.
pub(crate) fn layer(pos: LayerPosition) -> String {
    tunas_shared::onnx::layer_scope(pos)
}

/// The scope of one op's tensors in a layer: the layer itself when its op
/// is fixed (so weight files of such spaces keep their names), else
/// `LAYER/OP` for each op value of a searched op choice.
pub(crate) fn op_scope(layer: &str, op: LayerOp, searched: bool) -> String {
    if searched {
        format!("{layer}/{}", op.name())
    } else {
        layer.to_string()
    }
}

/// The k×k expand conv of kernel `k` of a fused bottleneck.
pub(crate) fn fused_expand(scope: &str, k: u32) -> String {
    format!("{scope}/expand{k}")
}

/// The expand 1×1 conv of an inverted bottleneck.
pub(crate) fn expand(layer: &str) -> String {
    format!("{layer}/expand")
}

/// The depthwise conv of kernel `k` of a bottleneck or separable layer.
pub(crate) fn depthwise(layer: &str, k: u32) -> String {
    format!("{layer}/dw{k}")
}

/// The projection 1×1 conv of an inverted bottleneck.
pub(crate) fn project(layer: &str) -> String {
    format!("{layer}/project")
}

/// The pointwise 1×1 conv of a separable layer.
pub(crate) fn pointwise(layer: &str) -> String {
    format!("{layer}/pointwise")
}

/// The squeeze-excite reduce (dense) of a layer.
pub(crate) fn se_reduce(layer: &str) -> String {
    format!("{layer}/se/reduce")
}

/// The squeeze-excite expand (dense) of a layer.
pub(crate) fn se_expand(layer: &str) -> String {
    format!("{layer}/se/expand")
}

/// The head's 1×1 conv.
pub(crate) const HEAD_CONV: &str = "head/conv";
/// The head's post-pool fully connected layer.
pub(crate) const HEAD_FC: &str = "head/fc";
/// The classifier.
pub(crate) const CLASSIFIER: &str = "classifier";

/// A unit's weight.
pub(crate) fn weight(unit: &str) -> String {
    format!("{unit}/weight")
}

/// A dense unit's bias.
pub(crate) fn bias(unit: &str) -> String {
    format!("{unit}/bias")
}

/// One of a conv unit's BN tensors.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BnPart {
    /// Scale (trained).
    Gamma,
    /// Shift (trained).
    Beta,
    /// Running mean (statistics).
    RunningMean,
    /// Running variance (statistics).
    RunningVar,
}

/// A unit's BN tensor.
pub(crate) fn bn(unit: &str, part: BnPart) -> String {
    let part = match part {
        BnPart::Gamma => "gamma",
        BnPart::Beta => "beta",
        BnPart::RunningMean => "running_mean",
        BnPart::RunningVar => "running_var",
    };
    format!("{unit}/bn/{part}")
}
