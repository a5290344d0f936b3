//! ONNX model writer: one-op models for every [`OpKey`], short chains of ops
//! ("context" models) and whole networks, with batch norm folded into the
//! convolutions as a deployed network has it.
//!
//! Every model is built by the same per-op emitter,
//! [`network::emit_op`]: a network is the chain of its ops, so a table
//! measured on one-op models and a network exported by the searcher contain
//! the very same nodes.
//!
//! ```
//! use tunas_shared::onnx::{ModelProto, RandomWeights, network_model, op_model};
//! use tunas_shared::{Architecture, architecture_ops, builtin_space};
//! use prost::Message;
//!
//! let space = builtin_space("tiny28").unwrap();
//! let arch = Architecture::largest(&space);
//! let mut weights = RandomWeights::new(7);
//! let bytes = network_model(&space, &arch, &mut weights, 1).unwrap();
//! let model = ModelProto::decode(bytes.as_slice()).unwrap();
//! assert_eq!(model.graph.unwrap().output.len(), 1);
//!
//! let key = architecture_ops(&space, &arch, 1)[1];
//! let one = op_model(&key, &mut weights).unwrap();
//! assert!(!one.is_empty());
//! ```
//!
//! # Weight tensors
//!
//! Each op asks its [`WeightSource`] for folded float32 tensors by scope and
//! name (see [`WeightRequest`]). Convolution weights are OIHW. With
//! `k = key.kernel`, `s = key.se_width()`:
//!
//! | op | tensor | shape |
//! |---|---|---|
//! | stem | `conv.weight`, `conv.bias` | `[cout, cin, k, k]`, `[cout]` |
//! | separable | `dw.weight`, `dw.bias` | `[cin, 1, k, k]`, `[cin]` |
//! | | `pw.weight`, `pw.bias` | `[cout, cin, 1, 1]`, `[cout]` |
//! | bottleneck | `expand.weight`, `expand.bias` | `[mid, cin, 1, 1]`, `[mid]` |
//! | | `dw.weight`, `dw.bias` | `[mid, 1, k, k]`, `[mid]` |
//! | (SE on) | `se.reduce.weight`, `se.reduce.bias` | `[s, mid, 1, 1]`, `[s]` |
//! | (SE on) | `se.expand.weight`, `se.expand.bias` | `[mid, s, 1, 1]`, `[mid]` |
//! | | `project.weight`, `project.bias` | `[cout, mid, 1, 1]`, `[cout]` |
//! | head_conv | `conv.weight`, `conv.bias` | `[cout, cin, 1, 1]`, `[cout]` |
//! | head_fc | `conv.weight`, `conv.bias` | `[cout, cin, 1, 1]`, `[cout]` |
//! | classifier | `fc.weight`, `fc.bias` | `[cout, cin]`, `[cout]` |
//!
//! Every `*.bias` except those of the SE convs and `head_fc` / `classifier`
//! is a folded batch-norm shift: `β − μ·γ/σ`, with the weight scaled by
//! `γ/σ` per output channel.

pub(crate) mod builder;
pub mod network;
pub mod proto;

use std::hash::{Hash, Hasher};

use thiserror::Error;

use crate::opkey::OpKey;

pub use builder::GraphBuilder;
pub use network::{
    BATCH_DIM_NAME, BatchDim, InputNormalization, NetworkOptions, OpSite, context_model, emit_op,
    layer_scope, network_model, network_model_with, network_sites, op_model,
};
pub use proto::ModelProto;

/// ONNX IR version written into every model (IR 8, ONNX 1.10+).
pub(crate) const IR_VERSION: i64 = 8;

/// Default-domain operator-set version (17: `HardSwish` exists since 14).
pub(crate) const OPSET_VERSION: i64 = 17;

/// A model could not be built.
#[derive(Debug, Error, PartialEq)]
pub enum OnnxError {
    /// The op key cannot describe a real op.
    #[error("op key {key} cannot be built as an ONNX model: {what}")]
    InvalidKey {
        /// The key, in canonical text.
        key: String,
        /// What is inconsistent.
        what: String,
    },
    /// A chain of ops does not connect.
    #[error(
        "ops {index} and {next_index} do not chain: {previous} produces {produces} but {next} expects {expects}"
    )]
    BrokenChain {
        /// Index of the earlier op.
        index: usize,
        /// Index of the later op.
        next_index: usize,
        /// The earlier key.
        previous: String,
        /// The later key.
        next: String,
        /// Output shape of the earlier op (N×C×H×W).
        produces: String,
        /// Input shape of the later op.
        expects: String,
    },
    /// The input normalisation cannot be applied to this network's input.
    #[error("input normalisation: {what}")]
    InvalidNormalization {
        /// What is wrong, with the values.
        what: String,
    },
    /// Two metadata entries have the same key (the ONNX checker refuses
    /// such a model).
    #[error("metadata key '{key}' is given twice; each key of metadata_props must be unique")]
    DuplicateMetadataKey {
        /// The repeated key.
        key: String,
    },
    /// A model needs at least one op.
    #[error("a model needs at least one op; the list of op keys is empty")]
    EmptyChain,
    /// The weight source failed.
    #[error("weights for {scope}/{tensor}: {message}")]
    Weights {
        /// Op scope, e.g. `stage2/layer1`.
        scope: String,
        /// Tensor name, e.g. `dw.weight`.
        tensor: String,
        /// The source's message.
        message: String,
    },
    /// The weight source returned the wrong number of values.
    #[error(
        "weights for {scope}/{tensor}: expected {expected} values for shape {shape:?}, got {found}"
    )]
    WeightShape {
        /// Op scope.
        scope: String,
        /// Tensor name.
        tensor: String,
        /// The requested shape.
        shape: Vec<usize>,
        /// Product of the shape.
        expected: usize,
        /// Values returned.
        found: usize,
    },
}

/// One tensor an op asks its [`WeightSource`] for.
#[derive(Clone, Copy, Debug)]
pub struct WeightRequest<'a> {
    /// Where the op sits: `stem`, `stage{s}/layer{l}` (1-based, as in the
    /// space's decision names), `head`, `head_fc`, `classifier` in a
    /// network; `op` in a one-op model; `op{i}` in a context chain.
    pub scope: &'a str,
    /// The op's key.
    pub key: &'a OpKey,
    /// Tensor name within the op (see the [module docs](self)).
    pub tensor: &'a str,
    /// Tensor shape (OIHW for conv weights, `[out, in]` for the classifier).
    pub shape: &'a [usize],
    /// Inputs feeding one output value (`cin/group · k · k`); 0 for biases.
    pub(crate) fan_in: usize,
    /// Suggested scale for a random init: std = `gain / sqrt(fan_in)`.
    pub(crate) gain: f32,
}

impl WeightRequest<'_> {
    /// Number of values the source must return.
    pub(crate) fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether this is a bias (folded BN shift or plain bias).
    pub(crate) fn is_bias(&self) -> bool {
        self.tensor.ends_with(".bias")
    }
}

/// Yields the folded float32 values of every weight tensor of an op, in
/// row-major order of [`WeightRequest::shape`].
pub trait WeightSource {
    /// The values of one tensor. Errors are reported with the scope and
    /// tensor name.
    fn tensor(&mut self, request: &WeightRequest<'_>) -> Result<Vec<f32>, String>;
}

/// Seeded random weights: He-style uniform weights with the variance the
/// request suggests, and small uniform biases (±0.05).
///
/// Values depend only on the seed, the scope, the tensor name and the key,
/// not on the order of requests, so an op gets the same weights in a one-op
/// model and in a chain that uses the same scope.
#[derive(Clone, Debug)]
pub struct RandomWeights {
    seed: u64,
}

impl RandomWeights {
    /// A source with this seed.
    pub fn new(seed: u64) -> Self {
        RandomWeights { seed }
    }
}

/// FNV-1a, stable across Rust versions (unlike `DefaultHasher`).
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl WeightSource for RandomWeights {
    fn tensor(&mut self, request: &WeightRequest<'_>) -> Result<Vec<f32>, String> {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        self.seed.hash(&mut h);
        request.scope.hash(&mut h);
        request.tensor.hash(&mut h);
        request.key.to_string().hash(&mut h);
        let mut state = h.finish();
        let limit = if request.is_bias() || request.fan_in == 0 {
            0.05
        } else {
            // A uniform(−a, a) has std a/√3.
            request.gain * (3.0 / request.fan_in as f32).sqrt()
        };
        // SplitMix64: statistically fine for weights and several times faster
        // than a cryptographic generator; whole spaces have ~10⁹ weights.
        Ok((0..request.len())
            .map(|_| {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                // 24 random bits → [0, 1) → [−limit, limit).
                let unit = (z >> 40) as f32 / (1u64 << 24) as f32;
                (2.0 * unit - 1.0) * limit
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opkey::OpKind;
    use crate::space::Activation;

    fn key() -> OpKey {
        OpKey {
            op: OpKind::Stem,
            in_h: 28,
            in_w: 28,
            cin: 1,
            cout: 8,
            mid: 1,
            kernel: 3,
            stride: 1,
            se: false,
            act: Activation::Relu,
            residual: false,
            batch: 1,
        }
    }

    #[test]
    fn random_weights_do_not_depend_on_request_order() {
        let k = key();
        let req = |tensor: &'static str, shape: &'static [usize]| WeightRequest {
            scope: "stem",
            key: &k,
            tensor,
            shape,
            fan_in: 9,
            gain: 2f32.sqrt(),
        };
        let mut a = RandomWeights::new(1);
        let w1 = a.tensor(&req("conv.weight", &[8, 1, 3, 3])).unwrap();
        let _ = a.tensor(&req("conv.bias", &[8])).unwrap();
        let mut b = RandomWeights::new(1);
        let _ = b.tensor(&req("conv.bias", &[8])).unwrap();
        assert_eq!(b.tensor(&req("conv.weight", &[8, 1, 3, 3])).unwrap(), w1);
        let mut c = RandomWeights::new(2);
        assert_ne!(c.tensor(&req("conv.weight", &[8, 1, 3, 3])).unwrap(), w1);
    }

    #[test]
    fn random_weights_have_the_suggested_scale() {
        let k = key();
        let shape = [64, 64, 3, 3];
        let r = WeightRequest {
            scope: "stem",
            key: &k,
            tensor: "conv.weight",
            shape: &shape,
            fan_in: 576,
            gain: 2f32.sqrt(),
        };
        let w = RandomWeights::new(3).tensor(&r).unwrap();
        let var = w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32;
        let expected = 2.0 / 576.0;
        assert!(
            (var / expected - 1.0).abs() < 0.05,
            "var {var} vs {expected}"
        );
    }
}

/// The keys the searcher's `export_app_onnx` writes into `metadata_props`, in order.
///
/// | key | value |
/// |---|---|
/// | `class_names` | JSON array of the class names, index = logit |
/// | `input_layout` | `NCHW` |
/// | `input_shape` | e.g. `[batch, 1, 28, 28]` (`batch` is free) |
/// | `input_range` | `[0,1] pixels, value/255` |
/// | `normalization` | what the graph does with the input first |
/// | `normalization_mean` | JSON array, per channel |
/// | `normalization_std` | JSON array, per channel |
/// | `space` | search-space name |
/// | `space_hash` | its content hash |
/// | `architecture` | the architecture, compact form |
/// | `est_latency_ms` | latency-table estimate (only when known) |
/// | `latency_device` | the table's device (only when known) |
pub mod metadata_keys {
    /// JSON array of class names.
    pub const CLASS_NAMES: &str = "class_names";
    /// Memory layout of the input.
    pub const INPUT_LAYOUT: &str = "input_layout";
    /// Input shape with the symbolic batch.
    pub const INPUT_SHAPE: &str = "input_shape";
    /// What the input values are.
    pub const INPUT_RANGE: &str = "input_range";
    /// The normalisation done inside the graph, in words.
    pub const NORMALIZATION: &str = "normalization";
    /// Per-channel mean of that normalisation (JSON array).
    pub const NORMALIZATION_MEAN: &str = "normalization_mean";
    /// Per-channel standard deviation of that normalisation (JSON array).
    pub const NORMALIZATION_STD: &str = "normalization_std";
    /// Search-space name.
    pub const SPACE: &str = "space";
    /// Search-space content hash.
    pub const SPACE_HASH: &str = "space_hash";
    /// Compact architecture.
    pub const ARCHITECTURE: &str = "architecture";
    /// Estimated latency (ms) from the latency table.
    pub const EST_LATENCY_MS: &str = "est_latency_ms";
    /// The latency table's device.
    pub const LATENCY_DEVICE: &str = "latency_device";
}

/// The `metadata_props` of an ONNX model as a map (empty when it has none).
pub fn read_metadata(
    model: &[u8],
) -> Result<std::collections::BTreeMap<String, String>, prost::DecodeError> {
    use prost::Message;
    let m = proto::ModelProto::decode(model)?;
    Ok(m.metadata_props
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect())
}
