//! Search spaces: a fixed network skeleton plus a list of categorical
//! decisions (docs/design.md, "Search spaces").
//!
//! A skeleton field is a [`Param`]: either a fixed value or a reference
//! `"@decision-name"` to one of the space's [`Decision`]s. A decision may be
//! referenced by several fields (a stage's width is shared by all its layers),
//! which is how weight-sharing spaces tie choices together.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::SpaceError;

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
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Swish6 => "swish6",
        }
    }

    /// Parses a canonical name.
    pub fn from_name(name: &str) -> Option<Self> {
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
}

impl LayerOp {
    /// Canonical name (`separable`, `bottleneck`).
    pub fn name(self) -> &'static str {
        match self {
            LayerOp::Separable => "separable",
            LayerOp::Bottleneck => "bottleneck",
        }
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
    /// Which op a layer runs (`separable` or `bottleneck`).
    Op,
}

impl DecisionKind {
    /// Canonical name as written in TOML.
    pub fn name(self) -> &'static str {
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

/// A scalar as TOML gives it, before it is known to fit its field: the
/// error can then name the field and say what it needs instead of serde's
/// "data did not match any variant of untagged enum".
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq)]
pub enum RawScalar {
    /// An integer.
    Int(i64),
    /// A number with a fraction (or an integer too large for `i64`).
    Float(f64),
    /// `true` or `false`.
    Flag(bool),
    /// A string.
    Text(String),
}

impl fmt::Display for RawScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawScalar::Int(v) => write!(f, "{v}"),
            RawScalar::Float(v) => write!(f, "{v}"),
            RawScalar::Flag(v) => write!(f, "{v}"),
            RawScalar::Text(v) => write!(f, "\"{v}\""),
        }
    }
}

impl<'de> Deserialize<'de> for RawScalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawScalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, true/false or a string")
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawScalar, E> {
                Ok(RawScalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawScalar, E> {
                Ok(i64::try_from(v).map_or(RawScalar::Float(v as f64), RawScalar::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawScalar, E> {
                Ok(RawScalar::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawScalar, E> {
                Ok(RawScalar::Flag(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawScalar, E> {
                Ok(RawScalar::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A value a space field can hold, read from a [`RawScalar`].
pub trait ParamValue: Sized {
    /// What the field needs, for error messages.
    const EXPECTED: &'static str;
    /// The value, if `raw` is one.
    #[doc(hidden)]
    fn from_raw(raw: &RawScalar) -> Option<Self>;
}

impl ParamValue for u32 {
    const EXPECTED: &'static str = "a positive integer";
    fn from_raw(raw: &RawScalar) -> Option<Self> {
        match raw {
            RawScalar::Int(v) => u32::try_from(*v).ok(),
            _ => None,
        }
    }
}

impl ParamValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_raw(raw: &RawScalar) -> Option<Self> {
        match raw {
            RawScalar::Flag(v) => Some(*v),
            _ => None,
        }
    }
}

impl ParamValue for LayerOp {
    const EXPECTED: &'static str = "an op name ('separable' or 'bottleneck')";
    fn from_raw(raw: &RawScalar) -> Option<Self> {
        match raw {
            RawScalar::Text(t) if t == "separable" => Some(LayerOp::Separable),
            RawScalar::Text(t) if t == "bottleneck" => Some(LayerOp::Bottleneck),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecision {
    name: String,
    kind: DecisionKind,
    values: Vec<RawScalar>,
}

impl TryFrom<RawDecision> for Decision {
    type Error = String;

    fn try_from(raw: RawDecision) -> Result<Self, String> {
        let values = raw
            .values
            .iter()
            .map(|v| {
                let choice = match raw.kind {
                    DecisionKind::Kernel | DecisionKind::Expansion | DecisionKind::Filters => {
                        u32::from_raw(v).filter(|n| *n > 0).map(Choice::Int)
                    }
                    DecisionKind::SqueezeExcite | DecisionKind::Skip => {
                        bool::from_raw(v).map(Choice::Flag)
                    }
                    DecisionKind::Op => LayerOp::from_raw(v).map(Choice::Op),
                };
                choice.ok_or_else(|| {
                    let expected = match raw.kind {
                        DecisionKind::SqueezeExcite | DecisionKind::Skip => bool::EXPECTED,
                        DecisionKind::Op => LayerOp::EXPECTED,
                        _ => u32::EXPECTED,
                    };
                    format!(
                        "decision '{}' (kind {}): the value {v} must be {expected}",
                        raw.name,
                        raw.kind.name()
                    )
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Decision {
            name: raw.name,
            kind: raw.kind,
            values,
        })
    }
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

#[derive(Serialize)]
#[serde(untagged)]
enum RawParam<T> {
    Fixed(T),
    Reference(String),
}

impl<T: Serialize + Clone> Serialize for Param<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Param::Fixed(v) => RawParam::Fixed(v.clone()).serialize(serializer),
            Param::Decision(name) => {
                RawParam::<T>::Reference(format!("@{name}")).serialize(serializer)
            }
        }
    }
}

impl<'de, T: ParamValue> Deserialize<'de> for Param<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawScalar::deserialize(deserializer)?;
        if let RawScalar::Text(s) = &raw
            && let Some(name) = s.strip_prefix('@')
            && !name.is_empty()
        {
            return Ok(Param::Decision(name.to_string()));
        }
        T::from_raw(&raw).map(Param::Fixed).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected {} or a decision reference like \"@stage1/filters\", found {raw}",
                T::EXPECTED
            ))
        })
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
    pub residual: Option<bool>,
}

/// A stage: layers that share an output width and an activation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Output width of every layer of the stage.
    pub filters: Param<u32>,
    /// Activation of every layer of the stage.
    pub activation: Activation,
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
pub fn conv_out(n: u32, stride: u32) -> u32 {
    n.div_ceil(stride)
}

impl Layer {
    /// Whether the layer adds its input, given its index within the stage.
    pub fn is_residual(&self, index_in_stage: usize) -> bool {
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
        let text = std::fs::read_to_string(path).map_err(|e| SpaceError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
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
    pub fn flag_values(&self, p: &Param<bool>) -> Vec<bool> {
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
    pub fn stage_input_sizes(&self) -> Vec<(u32, u32)> {
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

    /// Checks every invariant that the rest of the crate relies on.
    pub fn validate(&self) -> Result<(), SpaceError> {
        let invalid = |what: String| SpaceError::Invalid {
            space: self.name.clone(),
            what,
        };
        if self.name.trim().is_empty() {
            return Err(invalid("the space has no name".into()));
        }
        let i = &self.input;
        if i.height == 0 || i.width == 0 || i.channels == 0 || i.classes == 0 {
            return Err(invalid(
                "input height, width, channels and classes must all be at least 1".into(),
            ));
        }
        for (field, value, max) in [
            ("input.height", i.height, limits::INPUT_PX),
            ("input.width", i.width, limits::INPUT_PX),
            ("input.channels", i.channels, limits::INPUT_CHANNELS),
            ("input.classes", i.classes, limits::CLASSES),
        ] {
            limits::check(field, value, max).map_err(invalid)?;
        }
        for d in &self.decisions {
            let max = match d.kind {
                DecisionKind::Filters => limits::WIDTH,
                DecisionKind::Expansion => limits::EXPANSION,
                DecisionKind::Kernel => limits::KERNEL,
                _ => continue,
            };
            for v in &d.values {
                if let Choice::Int(v) = v {
                    limits::check(&format!("decision '{}'", d.name), *v, max).map_err(invalid)?;
                }
            }
        }
        let mut fixed: Vec<(String, &Param<u32>, u32)> = vec![
            ("stem.kernel".into(), &self.stem.kernel, limits::KERNEL),
            ("stem.filters".into(), &self.stem.filters, limits::WIDTH),
            ("head.filters".into(), &self.head.filters, limits::WIDTH),
        ];
        if let Some(p) = &self.head.post_pool_filters {
            fixed.push(("head.post_pool_filters".into(), p, limits::WIDTH));
        }
        for (s, stage) in self.stages.iter().enumerate() {
            fixed.push((
                format!("stages[{s}].filters"),
                &stage.filters,
                limits::WIDTH,
            ));
            for (l, layer) in stage.layers.iter().enumerate() {
                let at = format!("stages[{s}].layers[{l}]");
                fixed.push((format!("{at}.kernel"), &layer.kernel, limits::KERNEL));
                fixed.push((
                    format!("{at}.expansion"),
                    &layer.expansion,
                    limits::EXPANSION,
                ));
            }
        }
        for (field, param, max) in fixed {
            if let Param::Fixed(v) = param {
                limits::check(&field, *v, max).map_err(invalid)?;
            }
        }
        let mut names = BTreeSet::new();
        for d in &self.decisions {
            if !names.insert(d.name.as_str()) {
                return Err(invalid(format!("decision '{}' is defined twice", d.name)));
            }
            if d.values.is_empty() {
                return Err(invalid(format!("decision '{}' has no values", d.name)));
            }
            if d.values.len() > 36 {
                return Err(invalid(format!(
                    "decision '{}' has {} values; at most 36 are supported",
                    d.name,
                    d.values.len()
                )));
            }
            let distinct: BTreeSet<_> = d.values.iter().collect();
            if distinct.len() != d.values.len() {
                return Err(invalid(format!(
                    "decision '{}' lists a value twice: [{}]",
                    d.name,
                    d.values_text()
                )));
            }
            for v in &d.values {
                let ok = match (d.kind, v) {
                    (DecisionKind::Kernel, Choice::Int(k)) => k % 2 == 1,
                    (DecisionKind::Expansion | DecisionKind::Filters, Choice::Int(v)) => *v >= 1,
                    (DecisionKind::SqueezeExcite | DecisionKind::Skip, Choice::Flag(_)) => true,
                    (DecisionKind::Op, Choice::Op(_)) => true,
                    _ => false,
                };
                if !ok {
                    return Err(invalid(format!(
                        "decision '{}' of kind {} cannot take the value {v} (kernels are odd integers, expansions and filters positive integers, squeeze-excite and skip true/false, op 'separable' or 'bottleneck')",
                        d.name,
                        d.kind.name()
                    )));
                }
            }
        }

        let mut used = BTreeMap::<&str, usize>::new();
        let mut check_ref = |field: &str, name: Option<&str>, kind: DecisionKind| {
            let Some(name) = name else { return Ok(()) };
            let Some(d) = self.decisions.iter().find(|d| d.name == name) else {
                return Err(invalid(format!(
                    "{field} refers to decision '@{name}', which is not defined"
                )));
            };
            if d.kind != kind {
                return Err(invalid(format!(
                    "{field} refers to decision '{name}' of kind {}, but needs kind {}",
                    d.kind.name(),
                    kind.name()
                )));
            }
            *used.entry(d.name.as_str()).or_default() += 1;
            Ok(())
        };
        check_ref(
            "stem.kernel",
            self.stem.kernel.decision(),
            DecisionKind::Kernel,
        )?;
        check_ref(
            "stem.filters",
            self.stem.filters.decision(),
            DecisionKind::Filters,
        )?;
        for (s, stage) in self.stages.iter().enumerate() {
            check_ref(
                &format!("stages[{s}].filters"),
                stage.filters.decision(),
                DecisionKind::Filters,
            )?;
            for (l, layer) in stage.layers.iter().enumerate() {
                let at = format!("stages[{s}].layers[{l}]");
                check_ref(&format!("{at}.op"), layer.op.decision(), DecisionKind::Op)?;
                check_ref(
                    &format!("{at}.kernel"),
                    layer.kernel.decision(),
                    DecisionKind::Kernel,
                )?;
                check_ref(
                    &format!("{at}.expansion"),
                    layer.expansion.decision(),
                    DecisionKind::Expansion,
                )?;
                check_ref(
                    &format!("{at}.squeeze_excite"),
                    layer.squeeze_excite.decision(),
                    DecisionKind::SqueezeExcite,
                )?;
                check_ref(
                    &format!("{at}.skip"),
                    layer.skip.decision(),
                    DecisionKind::Skip,
                )?;
            }
        }
        check_ref(
            "head.filters",
            self.head.filters.decision(),
            DecisionKind::Filters,
        )?;
        if let Some(p) = &self.head.post_pool_filters {
            check_ref(
                "head.post_pool_filters",
                p.decision(),
                DecisionKind::Filters,
            )?;
        }
        let unused = self
            .decisions
            .iter()
            .find(|d| !used.contains_key(d.name.as_str()))
            .map(|d| d.name.clone());
        if self.head.post_pool_filters.is_some() != self.head.post_pool_activation.is_some() {
            return Err(invalid(
                "head.post_pool_filters and head.post_pool_activation go together".into(),
            ));
        }

        // Fixed values must be sensible too.
        if let Param::Fixed(k) = self.stem.kernel
            && k % 2 == 0
        {
            return Err(invalid(format!("stem.kernel = {k}: kernels must be odd")));
        }
        if self.stem.stride == 0 {
            return Err(invalid("stem.stride must be at least 1".into()));
        }
        if self.stages.is_empty() {
            return Err(invalid("a space needs at least one stage".into()));
        }
        for (s, stage) in self.stages.iter().enumerate() {
            if stage.layers.is_empty() {
                return Err(invalid(format!("stages[{s}] has no layers")));
            }
            for (l, layer) in stage.layers.iter().enumerate() {
                let at = format!("stages[{s}].layers[{l}]");
                if layer.stride == 0 {
                    return Err(invalid(format!("{at}.stride must be at least 1")));
                }
                if let Param::Fixed(k) = layer.kernel
                    && k % 2 == 0
                {
                    return Err(invalid(format!("{at}.kernel = {k}: kernels must be odd")));
                }
                if let Param::Fixed(0) = layer.expansion {
                    return Err(invalid(format!("{at}.expansion must be at least 1")));
                }
                // The input of a residual or skippable layer must have the
                // output's width and size, whatever the architecture.
                let input_width = if l == 0 {
                    self.stage_input_filters(s)
                } else {
                    &stage.filters
                };
                let same_width = *input_width == stage.filters;
                let skippable = layer.skip != Param::Fixed(false);
                if layer.is_residual(l) || skippable {
                    let why = if skippable { "skippable" } else { "residual" };
                    if layer.stride != 1 {
                        return Err(invalid(format!(
                            "{at} is {why} but has stride {}: the identity needs stride 1",
                            layer.stride
                        )));
                    }
                    if !same_width {
                        return Err(invalid(format!(
                            "{at} is {why} but its input width ({}) is not tied to its output width ({}); use the same decision or value",
                            param_text(input_width),
                            param_text(&stage.filters)
                        )));
                    }
                }
            }
        }
        if let Some(name) = unused {
            return Err(invalid(format!(
                "decision '{name}' is not referenced by any field"
            )));
        }
        // Each field within its limit can still add up to more weights than
        // a device holds: the widest network is the measure.
        let params =
            crate::opkey::architecture_params(self, &crate::arch::Architecture::largest(self));
        if params > limits::PARAMS {
            return Err(invalid(format!(
                "its largest network has {params} parameters; at most {} are supported (narrow the widest filters or expansions)",
                limits::PARAMS
            )));
        }
        Ok(())
    }
}

/// Sizes a space may ask for: generous for real mobile and edge networks
/// (the built-in spaces stay far below), and small enough that a typo such
/// as a width of 10^9 is an error here rather than a failed allocation
/// later.
pub mod limits {
    /// Input height and width (pixels).
    pub const INPUT_PX: u32 = 1024;
    /// Input channels.
    pub const INPUT_CHANNELS: u32 = 64;
    /// Classes of the classifier.
    pub const CLASSES: u32 = 100_000;
    /// Width (channels) of any layer, fixed or chosen.
    pub const WIDTH: u32 = 8192;
    /// Expansion ratio of a bottleneck.
    pub const EXPANSION: u32 = 32;
    /// Kernel size.
    pub const KERNEL: u32 = 31;
    /// Trainable parameters of the space's largest network (2 GB as f32).
    pub const PARAMS: u64 = 500_000_000;

    pub(crate) fn check(field: &str, value: u32, max: u32) -> Result<(), String> {
        if value > max {
            Err(format!(
                "{field} = {value} is too large: at most {max} is supported"
            ))
        } else {
            Ok(())
        }
    }
}

fn param_text<T: fmt::Display>(p: &Param<T>) -> String {
    match p {
        Param::Fixed(v) => v.to_string(),
        Param::Decision(name) => format!("@{name}"),
    }
}
