//! Search spaces: a fixed network skeleton plus a list of categorical
//! decisions (docs/design.md, "Search spaces").
//!
//! A skeleton field is a [`Param`]: either a fixed value or a reference
//! `"@decision-name"` to one of the space's [`Decision`]s. A decision may be
//! referenced by several fields (a stage's width is shared by all its layers),
//! which is how weight-sharing spaces tie choices together.

mod raw;
mod validate;

pub(crate) mod limits;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::SpaceError;

use raw::RawDecision;

/// Activation function used after a conv + BN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// Hard swish, `x · relu6(x + 3) / 6`.
    Swish6,
}

impl Activation {
    /// Canonical lower-case name (`relu`, `swish6`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Swish6 => "swish6",
        }
    }

    /// Parses a canonical name.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "relu" => Some(Activation::Relu),
            "swish6" => Some(Activation::Swish6),
            _ => None,
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a searchable layer computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerOp {
    /// Depthwise k×k + BN + act, then 1×1 + BN.
    Separable,
    /// MobileNetV2 inverted bottleneck: 1×1 expand + BN + act, depthwise k×k +
    /// BN + act, optional squeeze-excite, 1×1 project + BN.
    Bottleneck,
    /// Fused inverted bottleneck (EfficientNetV2's fused-MBConv): a full k×k
    /// expand conv + BN + act at the layer's stride, then 1×1 project + BN.
    /// No squeeze-excite.
    Fused,
}

impl LayerOp {
    /// Canonical name (`separable`, `bottleneck`, `fused`).
    pub fn name(self) -> &'static str {
        match self {
            LayerOp::Separable => "separable",
            LayerOp::Bottleneck => "bottleneck",
            LayerOp::Fused => "fused",
        }
    }

    /// Whether the op widens its input by an expansion ratio (its `mid`).
    pub fn expands(self) -> bool {
        matches!(self, LayerOp::Bottleneck | LayerOp::Fused)
    }
}

/// The kind of a categorical decision, which fixes the type of its values
/// and the skeleton fields that may reference it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    /// Depthwise kernel size (odd integers).
    Kernel,
    /// Expansion ratio of a bottleneck (integers, relative to the input width).
    Expansion,
    /// Output width of the stem, a stage or the head (integers).
    Filters,
    /// Squeeze-excite off/on (booleans).
    SqueezeExcite,
    /// Whether a layer is skipped (booleans; `true` = the layer is the identity).
    Skip,
    /// Which op a layer runs (`separable`, `bottleneck` or `fused`).
    Op,
}

impl DecisionKind {
    /// Canonical name as written in TOML.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DecisionKind::Kernel => "kernel",
            DecisionKind::Expansion => "expansion",
            DecisionKind::Filters => "filters",
            DecisionKind::SqueezeExcite => "squeeze-excite",
            DecisionKind::Skip => "skip",
            DecisionKind::Op => "op",
        }
    }
}

/// One value a decision can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Choice {
    /// Kernel size, expansion ratio or width.
    Int(u32),
    /// Squeeze-excite on, or layer skipped.
    Flag(bool),
    /// A layer op.
    Op(LayerOp),
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Int(v) => write!(f, "{v}"),
            Choice::Flag(v) => write!(f, "{v}"),
            Choice::Op(op) => f.write_str(op.name()),
        }
    }
}

/// A categorical decision: a name, a kind and the list of values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawDecision")]
pub struct Decision {
    /// Unique name, e.g. `stage2/layer1/kernel`.
    pub name: String,
    /// What the decision chooses.
    pub kind: DecisionKind,
    /// The values, in the order that architecture indices refer to.
    pub values: Vec<Choice>,
}

impl Decision {
    /// The values as a readable list, for error messages.
    pub fn values_text(&self) -> String {
        let parts: Vec<String> = self.values.iter().map(|v| v.to_string()).collect();
        parts.join(", ")
    }
}

/// A skeleton field: fixed, or a reference to a decision (written `"@name"`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Param<T> {
    /// Always this value.
    Fixed(T),
    /// Chosen by the named decision.
    Decision(String),
}

impl<T> Param<T> {
    /// The referenced decision's name, if any.
    pub fn decision(&self) -> Option<&str> {
        match self {
            Param::Fixed(_) => None,
            Param::Decision(name) => Some(name),
        }
    }
}

/// The network's input and output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Image height.
    pub height: u32,
    /// Image width.
    pub width: u32,
    /// Image channels (1 for grey, 3 for RGB).
    pub channels: u32,
    /// Number of classes of the classifier.
    pub classes: u32,
}

/// The stem: conv k×k stride s + BN + activation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stem {
    /// Kernel size.
    pub kernel: Param<u32>,
    /// Stride.
    pub stride: u32,
    /// Output width.
    pub filters: Param<u32>,
    /// Activation.
    pub activation: Activation,
}

fn fixed_one() -> Param<u32> {
    Param::Fixed(1)
}
fn fixed_false() -> Param<bool> {
    Param::Fixed(false)
}
fn is_fixed_one(p: &Param<u32>) -> bool {
    *p == Param::Fixed(1)
}
fn is_fixed_false(p: &Param<bool>) -> bool {
    *p == Param::Fixed(false)
}

/// One searchable layer of a stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// The op (fixed, or an `op` decision).
    pub op: Param<LayerOp>,
    /// Stride of the depthwise conv.
    pub stride: u32,
    /// Depthwise kernel size.
    pub kernel: Param<u32>,
    /// Expansion ratio (bottleneck only).
    #[serde(default = "fixed_one", skip_serializing_if = "is_fixed_one")]
    pub expansion: Param<u32>,
    /// Squeeze-excite (bottleneck only).
    #[serde(default = "fixed_false", skip_serializing_if = "is_fixed_false")]
    pub squeeze_excite: Param<bool>,
    /// Whether the layer is skipped (identity).
    #[serde(default = "fixed_false", skip_serializing_if = "is_fixed_false")]
    pub skip: Param<bool>,
    /// Whether the input is added to the output. Defaults to "not the first
    /// layer of its stage".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) residual: Option<bool>,
}

/// A stage: layers that share an output width and an activation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Output width of every layer of the stage.
    pub filters: Param<u32>,
    /// Activation of every layer of the stage.
    pub(crate) activation: Activation,
    /// The layers, in order.
    pub layers: Vec<Layer>,
}

/// The head: 1×1 conv + BN + act, global average pool, an optional 1×1 conv
/// with bias + act on the pooled features, then the linear classifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Width of the 1×1 conv before pooling.
    pub filters: Param<u32>,
    /// Its activation.
    pub activation: Activation,
    /// Width of the optional 1×1 conv (bias, no BN) after pooling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_pool_filters: Option<Param<u32>>,
    /// Activation of the post-pool conv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_pool_activation: Option<Activation>,
}

/// A search space: skeleton plus decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpace {
    /// Short name, e.g. `tiny28`.
    pub name: String,
    /// One sentence for people.
    #[serde(default)]
    pub description: String,
    /// Input image and class count.
    pub input: InputSpec,
    /// Every decision, in architecture order.
    pub decisions: Vec<Decision>,
    /// The stem conv.
    pub stem: Stem,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// The head and classifier.
    pub head: Head,
}

/// Location of a layer: stage index and layer index within the stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerPosition {
    /// Stage index (0-based).
    pub stage: usize,
    /// Layer index within the stage (0-based).
    pub layer: usize,
}

/// Rounds `v` half-up to a multiple of 8, at least 8.
pub fn round_to_8(v: f64) -> u32 {
    let m = (v / 8.0 + 0.5).floor() as u32 * 8;
    m.max(8)
}

/// Output size of a "same"-padded conv: `ceil(n / stride)`.
pub(crate) fn conv_out(n: u32, stride: u32) -> u32 {
    n.div_ceil(stride)
}

impl Layer {
    /// Whether the layer adds its input, given its index within the stage.
    pub(crate) fn is_residual(&self, index_in_stage: usize) -> bool {
        self.residual.unwrap_or(index_in_stage > 0)
    }
}

impl SearchSpace {
    /// Reads a space from TOML text; `origin` names the file in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, SpaceError> {
        let space: SearchSpace = toml::from_str(text).map_err(|e| SpaceError::Toml {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        space.validate()?;
        Ok(space)
    }

    /// Reads a space from a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self, SpaceError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpaceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Writes the space as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a search space always serialises to TOML")
    }

    /// A stable content hash (hex, 16 digits) of everything but the name and
    /// description: two spaces with the same hash need the same op keys.
    pub fn content_hash(&self) -> String {
        let mut anonymous = self.clone();
        anonymous.name.clear();
        anonymous.description.clear();
        let canonical =
            serde_json::to_vec(&anonymous).expect("a search space always serialises to JSON");
        crate::content_digest(&canonical)
    }

    /// The values a param can take (one for a fixed value), using
    /// `extract` to read a decision's choices.
    fn param_values<T: Clone>(&self, p: &Param<T>, extract: fn(&Choice) -> Option<T>) -> Vec<T> {
        match p {
            Param::Fixed(v) => vec![v.clone()],
            Param::Decision(name) => self
                .decision_index(name)
                .map(|i| {
                    self.decisions[i]
                        .values
                        .iter()
                        .filter_map(extract)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The values an integer param (kernel, expansion, filters) can take.
    pub fn int_values(&self, p: &Param<u32>) -> Vec<u32> {
        self.param_values(p, |c| match c {
            Choice::Int(v) => Some(*v),
            _ => None,
        })
    }

    /// The values a flag param (squeeze-excite, skip) can take.
    pub(crate) fn flag_values(&self, p: &Param<bool>) -> Vec<bool> {
        self.param_values(p, |c| match c {
            Choice::Flag(v) => Some(*v),
            _ => None,
        })
    }

    /// The values an op param can take.
    pub fn op_values(&self, p: &Param<LayerOp>) -> Vec<LayerOp> {
        self.param_values(p, |c| match c {
            Choice::Op(v) => Some(*v),
            _ => None,
        })
    }

    /// Index of a decision by name.
    pub fn decision_index(&self, name: &str) -> Option<usize> {
        self.decisions.iter().position(|d| d.name == name)
    }

    /// Every layer with its position.
    pub fn layers(&self) -> impl Iterator<Item = (LayerPosition, &Layer)> {
        self.stages.iter().enumerate().flat_map(|(s, stage)| {
            stage
                .layers
                .iter()
                .enumerate()
                .map(move |(l, layer)| (LayerPosition { stage: s, layer: l }, layer))
        })
    }

    /// The width param of the tensor entering stage `stage`.
    pub fn stage_input_filters(&self, stage: usize) -> &Param<u32> {
        if stage == 0 {
            &self.stem.filters
        } else {
            &self.stages[stage - 1].filters
        }
    }

    /// The width param of the tensor entering the head.
    pub fn head_input_filters(&self) -> &Param<u32> {
        self.stages
            .last()
            .map(|s| &s.filters)
            .unwrap_or(&self.stem.filters)
    }

    /// Spatial size (h, w) of the tensor entering each stage, and after the
    /// last stage.
    pub(crate) fn stage_input_sizes(&self) -> Vec<(u32, u32)> {
        let mut h = conv_out(self.input.height, self.stem.stride);
        let mut w = conv_out(self.input.width, self.stem.stride);
        let mut sizes = vec![(h, w)];
        for stage in &self.stages {
            for layer in &stage.layers {
                h = conv_out(h, layer.stride);
                w = conv_out(w, layer.stride);
            }
            sizes.push((h, w));
        }
        sizes
    }
}
