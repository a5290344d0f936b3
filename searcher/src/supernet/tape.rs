//! What a forward pass keeps for backward, one type per level: a conv +
//! BN unit, a choice over kernels, squeeze-excite, a layer, the head, the
//! whole net.

use std::sync::Arc;

use ndarray::{Array2, Array4};

use crate::layers::activation::Activation as Act;
use crate::layers::batch_norm::BatchNormCache;
use crate::layers::conv::Conv2dParams;
use crate::layers::squeeze_excite::SqueezeExciteCache;

/// What a conv + BN + activation unit keeps for backward: its input, the
/// conv output (BN input), the BN cache and the BN output (activation input).
/// The input may be shared with the other branches of an all-values choice.
#[derive(Debug)]
pub(crate) struct UnitTape {
    pub(super) params: Conv2dParams,
    pub(super) act: Act,
    pub(super) x: Arc<Array4<f32>>,
    pub(super) conv_out: Array4<f32>,
    pub(super) bn: BatchNormCache,
    pub(super) bn_out: Option<Array4<f32>>,
}

/// What an all-values (or single) choice over depthwise kernels keeps.
#[derive(Debug)]
pub(super) enum KernelTape {
    One(usize, Box<UnitTape>),
    AllKept(Vec<UnitTape>),
    AllRemat(Array4<f32>),
}

/// What squeeze-excite keeps: its input and cache (or only the input under
/// rematerialization).
#[derive(Debug)]
pub(super) enum SeTape {
    Off,
    On(Array4<f32>, SqueezeExciteCache),
    AllKept(Array4<f32>, SqueezeExciteCache),
    AllRemat(Array4<f32>),
}

/// What one op of a non-skipped layer keeps.
#[derive(Debug)]
pub(super) struct BodyTape {
    pub(super) expand: Option<UnitTape>,
    pub(super) kernel: KernelTape,
    pub(super) se: SeTape,
    pub(super) project: UnitTape,
    pub(super) residual: bool,
}

/// What a layer's op choice keeps: one op, or every op averaged (their
/// tapes, or only the input under rematerialization).
#[derive(Debug)]
pub(super) enum OpsTape {
    One(usize, Box<BodyTape>),
    AllKept(Vec<BodyTape>),
    AllRemat(Array4<f32>),
}

/// What a layer keeps, by skip mode.
#[derive(Debug)]
pub(super) enum LayerTape {
    Skipped,
    Body(Box<OpsTape>),
    AllKept(Box<OpsTape>),
    AllRemat(Array4<f32>),
}

/// What the head keeps.
#[derive(Debug)]
pub(super) struct HeadTape {
    pub(super) conv: UnitTape,
    pub(super) hw: (usize, usize),
    pub(super) fc: Option<(Array2<f32>, Array2<f32>)>,
    pub(super) features: Array2<f32>,
}

/// Everything a forward pass keeps for backward.
#[derive(Debug)]
pub struct NetTape {
    pub(super) stem: KernelTape,
    pub(super) layers: Vec<LayerTape>,
    pub(super) head: HeadTape,
}
