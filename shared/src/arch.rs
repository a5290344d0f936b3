//! Architectures: one value per decision of a space.
//!
//! The compact text form is one base-36 digit per decision (the index of the
//! chosen value), so `tiny28` architectures are 30 characters long and safe
//! in file names and CLI flags. `-` and `_` may be used freely as separators.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rand::Rng;

use crate::error::ArchError;
use crate::space::{Activation, conv_out};
use crate::space::{Choice, DecisionKind, LayerOp, LayerPosition, Param, SearchSpace, round_to_8};

/// One value (by index) for every decision of a space.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Architecture {
    /// `indices[i]` is the index of the value chosen for decision `i`.
    pub indices: Vec<usize>,
}

const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A layer of an architecture with every value resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedLayer {
    /// Where the layer sits in the skeleton.
    pub(crate) position: LayerPosition,
    /// Whether the architecture skips the layer (it is then the identity).
    pub skipped: bool,
    /// The op it runs.
    pub(crate) op: LayerOp,
    /// Input height and width.
    pub in_h: u32,
    /// Input width (spatial).
    pub in_w: u32,
    /// Input channels.
    pub cin: u32,
    /// Output channels.
    pub cout: u32,
    /// Expanded channels (bottleneck), else `cin`.
    pub mid: u32,
    /// Expansion ratio.
    pub expansion: u32,
    /// Depthwise kernel size.
    pub kernel: u32,
    /// Stride.
    pub stride: u32,
    /// Squeeze-excite on.
    pub squeeze_excite: bool,
    /// Activation.
    pub activation: Activation,
    /// Whether the input is added to the output.
    pub residual: bool,
}

/// Stem, layers and head of an architecture with every value resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedNetwork {
    /// Stem kernel size.
    pub(crate) stem_kernel: u32,
    /// Stem output width.
    pub stem_filters: u32,
    /// Every layer of the skeleton, skipped ones included.
    pub layers: Vec<ResolvedLayer>,
    /// Spatial size entering the head.
    pub(crate) head_in: (u32, u32),
    /// Channels entering the head.
    pub(crate) head_cin: u32,
    /// Head conv width.
    pub head_filters: u32,
    /// Post-pool conv width, if the space has one.
    pub post_pool_filters: Option<u32>,
}

impl Architecture {
    /// The compact text form.
    pub fn to_compact(&self) -> String {
        self.indices
            .iter()
            .map(|&i| DIGITS[i] as char)
            .collect::<String>()
    }

    /// Parses the compact text form for `space`.
    pub fn parse(space: &SearchSpace, text: &str) -> Result<Self, ArchError> {
        let digits: Vec<(usize, char)> = text
            .trim()
            .chars()
            .enumerate()
            .filter(|(_, c)| *c != '-' && *c != '_')
            .collect();
        if digits.len() != space.decisions.len() {
            return Err(ArchError::WrongLength {
                space: space.name.clone(),
                expected: space.decisions.len(),
                found: digits.len(),
                text: text.to_string(),
            });
        }
        let mut indices = Vec::with_capacity(digits.len());
        for ((column, c), decision) in digits.into_iter().zip(&space.decisions) {
            let index = c.to_digit(36).map(|v| v as usize);
            match index {
                Some(i) if i < decision.values.len() => indices.push(i),
                _ => {
                    return Err(ArchError::BadValue {
                        decision: decision.name.clone(),
                        column: column + 1,
                        found: c.to_string(),
                        allowed: (0..decision.values.len())
                            .map(|i| format!("{}={}", DIGITS[i] as char, decision.values[i]))
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        Ok(Architecture { indices })
    }

    /// Parses `largest`, `random:SEED`, or the compact form.
    pub fn parse_spec(space: &SearchSpace, spec: &str) -> Result<Self, ArchError> {
        if spec == "largest" {
            return Ok(Self::largest(space));
        }
        if let Some(seed) = spec.strip_prefix("random:") {
            let seed: u64 = seed.parse().map_err(|_| ArchError::BadSeed {
                text: spec.to_string(),
            })?;
            use rand::SeedableRng;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            return Ok(Self::sample_uniform(space, &mut rng));
        }
        Self::parse(space, spec)
    }

    /// Samples every decision independently and uniformly.
    pub fn sample_uniform<R: Rng + ?Sized>(space: &SearchSpace, rng: &mut R) -> Self {
        Architecture {
            indices: space
                .decisions
                .iter()
                .map(|d| rng.random_range(0..d.values.len()))
                .collect(),
        }
    }

    /// The largest path: largest kernel, expansion and width, SE on, nothing
    /// skipped, bottleneck over separable.
    pub fn largest(space: &SearchSpace) -> Self {
        let indices = space
            .decisions
            .iter()
            .map(|d| {
                let keyed = d.values.iter().enumerate().map(|(i, v)| {
                    let rank = match (d.kind, v) {
                        (DecisionKind::Skip, Choice::Flag(skipped)) => u32::from(!skipped),
                        (_, Choice::Int(v)) => *v,
                        (_, Choice::Flag(b)) => u32::from(*b),
                        (_, Choice::Op(LayerOp::Fused)) => 2,
                        (_, Choice::Op(LayerOp::Bottleneck)) => 1,
                        (_, Choice::Op(LayerOp::Separable)) => 0,
                    };
                    (rank, i)
                });
                keyed.max().map(|(_, i)| i).unwrap_or(0)
            })
            .collect();
        Architecture { indices }
    }

    fn value(&self, space: &SearchSpace, name: &str) -> Choice {
        let i = space
            .decision_index(name)
            .unwrap_or_else(|| panic!("space '{}' has no decision '{name}'", space.name));
        space.decisions[i].values[self.indices[i]]
    }

    fn int(&self, space: &SearchSpace, p: &Param<u32>) -> u32 {
        match p {
            Param::Fixed(v) => *v,
            Param::Decision(name) => match self.value(space, name) {
                Choice::Int(v) => v,
                other => panic!("decision '{name}' gave {other}, expected an integer"),
            },
        }
    }

    fn flag(&self, space: &SearchSpace, p: &Param<bool>) -> bool {
        match p {
            Param::Fixed(v) => *v,
            Param::Decision(name) => match self.value(space, name) {
                Choice::Flag(v) => v,
                other => panic!("decision '{name}' gave {other}, expected true/false"),
            },
        }
    }

    fn op(&self, space: &SearchSpace, p: &Param<LayerOp>) -> LayerOp {
        match p {
            Param::Fixed(v) => *v,
            Param::Decision(name) => match self.value(space, name) {
                Choice::Op(v) => v,
                other => panic!("decision '{name}' gave {other}, expected an op"),
            },
        }
    }

    /// Resolves every skeleton field. Panics if the architecture does not
    /// belong to the space (read outside input with [`Architecture::parse`]).
    pub fn resolve(&self, space: &SearchSpace) -> ResolvedNetwork {
        assert_eq!(
            self.indices.len(),
            space.decisions.len(),
            "architecture does not belong to space '{}'",
            space.name
        );
        let stem_filters = self.int(space, &space.stem.filters);
        let mut h = conv_out(space.input.height, space.stem.stride);
        let mut w = conv_out(space.input.width, space.stem.stride);
        let mut channels = stem_filters;
        let mut layers = Vec::new();
        for (position, layer) in space.layers() {
            let stage = &space.stages[position.stage];
            let cout = self.int(space, &stage.filters);
            let op = self.op(space, &layer.op);
            let expansion = self.int(space, &layer.expansion);
            let mid = if op.expands() {
                round_to_8(channels as f64 * expansion as f64)
            } else {
                channels
            };
            let skipped = self.flag(space, &layer.skip);
            let resolved = ResolvedLayer {
                position,
                skipped,
                op,
                in_h: h,
                in_w: w,
                cin: channels,
                cout,
                mid,
                expansion,
                kernel: self.int(space, &layer.kernel),
                stride: layer.stride,
                squeeze_excite: op == LayerOp::Bottleneck
                    && self.flag(space, &layer.squeeze_excite),
                activation: stage.activation,
                residual: layer.is_residual(position.layer),
            };
            if !skipped {
                h = conv_out(h, layer.stride);
                w = conv_out(w, layer.stride);
                channels = cout;
            }
            layers.push(resolved);
        }
        ResolvedNetwork {
            stem_kernel: self.int(space, &space.stem.kernel),
            stem_filters,
            layers,
            head_in: (h, w),
            head_cin: channels,
            head_filters: self.int(space, &space.head.filters),
            post_pool_filters: space
                .head
                .post_pool_filters
                .as_ref()
                .map(|p| self.int(space, p)),
        }
    }

    /// The decisions that matter for this architecture: a skipped layer's
    /// kernel, expansion, squeeze-excite and op do not.
    pub fn active_decisions(&self, space: &SearchSpace) -> Vec<bool> {
        let mut active = vec![true; space.decisions.len()];
        let owners = decision_owners(space);
        for (position, layer) in space.layers() {
            if self.flag(space, &layer.skip) {
                for name in inner_decisions(layer) {
                    let i = space.decision_index(name).expect("validated reference");
                    if owners[i] == Some(position) {
                        active[i] = false;
                    }
                }
            }
        }
        active
    }

    /// The readable form: one line per layer.
    pub fn describe(&self, space: &SearchSpace) -> String {
        let net = self.resolve(space);
        let mut out = String::new();
        let (h0, w0) = (space.input.height, space.input.width);
        let (sh, sw) = (
            conv_out(h0, space.stem.stride),
            conv_out(w0, space.stem.stride),
        );
        let _ = writeln!(
            out,
            "stem        conv {k}x{k} s{s}      {h0}x{w0}x{c} -> {sh}x{sw}x{f} {act}",
            k = net.stem_kernel,
            s = space.stem.stride,
            c = space.input.channels,
            f = net.stem_filters,
            act = space.stem.activation
        );
        for l in &net.layers {
            let name = format!("stage{}.{}", l.position.stage + 1, l.position.layer + 1);
            if l.skipped {
                let _ = writeln!(out, "{name:<11} skipped");
                continue;
            }
            let (oh, ow) = (conv_out(l.in_h, l.stride), conv_out(l.in_w, l.stride));
            let what = match l.op {
                LayerOp::Separable => format!("separable k{} s{}", l.kernel, l.stride),
                LayerOp::Fused => format!("fused k{} e{} s{}", l.kernel, l.expansion, l.stride),
                LayerOp::Bottleneck => format!(
                    "bottleneck k{} e{} s{}{}",
                    l.kernel,
                    l.expansion,
                    l.stride,
                    if l.squeeze_excite { " se" } else { "" }
                ),
            };
            let _ = writeln!(
                out,
                "{name:<11} {what:<22} {}x{}x{} -> {oh}x{ow}x{}{} {}{}",
                l.in_h,
                l.in_w,
                l.cin,
                l.cout,
                if l.op.expands() {
                    format!(" (mid {})", l.mid)
                } else {
                    String::new()
                },
                l.activation,
                if l.residual { " +residual" } else { "" }
            );
        }
        let _ = writeln!(
            out,
            "head        conv 1x1 + avg pool  {}x{}x{} -> {} {}",
            net.head_in.0, net.head_in.1, net.head_cin, net.head_filters, space.head.activation
        );
        let mut features = net.head_filters;
        if let (Some(f), Some(act)) = (net.post_pool_filters, space.head.post_pool_activation) {
            let _ = writeln!(
                out,
                "head-fc     conv 1x1 + bias      {features} -> {f} {act}"
            );
            features = f;
        }
        let _ = writeln!(
            out,
            "classifier  linear               {features} -> {}",
            space.input.classes
        );
        out
    }
}

/// Names of the decisions a layer references, other than its skip decision.
fn inner_decisions(layer: &crate::space::Layer) -> impl Iterator<Item = &str> {
    [
        layer.op.decision(),
        layer.kernel.decision(),
        layer.expansion.decision(),
        layer.squeeze_excite.decision(),
    ]
    .into_iter()
    .flatten()
}

/// For each decision, the layer that is its only user, if exactly one layer
/// (and no stage, stem or head field) references it.
fn decision_owners(space: &SearchSpace) -> Vec<Option<LayerPosition>> {
    let mut users: BTreeMap<String, Vec<Option<LayerPosition>>> = BTreeMap::new();
    let mut note = |name: Option<&str>, who: Option<LayerPosition>| {
        if let Some(name) = name {
            users.entry(name.to_string()).or_default().push(who);
        }
    };
    note(space.stem.kernel.decision(), None);
    note(space.stem.filters.decision(), None);
    note(space.head.filters.decision(), None);
    if let Some(p) = &space.head.post_pool_filters {
        note(p.decision(), None);
    }
    for stage in &space.stages {
        note(stage.filters.decision(), None);
    }
    for (position, layer) in space.layers() {
        for name in inner_decisions(layer) {
            note(Some(name), Some(position));
        }
        note(layer.skip.decision(), Some(position));
    }
    space
        .decisions
        .iter()
        .map(|d| match users.get(&d.name).map(Vec::as_slice) {
            Some([Some(p)]) => Some(*p),
            _ => None,
        })
        .collect()
}

/// The number of distinct networks of a space: a skipped layer's own
/// decisions do not make distinct networks. Decisions shared between layers
/// are counted once, as independent choices.
pub fn count_distinct_networks(space: &SearchSpace) -> f64 {
    let owners = decision_owners(space);
    let mut counted = vec![false; space.decisions.len()];
    let mut total = 1.0f64;
    for (position, layer) in space.layers() {
        let Some(skip_name) = layer.skip.decision() else {
            continue;
        };
        let skip_index = space
            .decision_index(skip_name)
            .expect("validated reference");
        if owners[skip_index] != Some(position) {
            continue;
        }
        let mut inner = 1.0;
        for name in inner_decisions(layer) {
            let i = space.decision_index(name).expect("validated reference");
            if owners[i] == Some(position) && !counted[i] {
                inner *= space.decisions[i].values.len() as f64;
                counted[i] = true;
            }
        }
        let skip = &space.decisions[skip_index];
        let skipped = skip
            .values
            .iter()
            .filter(|v| **v == Choice::Flag(true))
            .count() as f64;
        let kept = skip.values.len() as f64 - skipped;
        total *= kept * inner + skipped;
        counted[skip_index] = true;
    }
    for (i, d) in space.decisions.iter().enumerate() {
        if !counted[i] {
            total *= d.values.len() as f64;
        }
    }
    total
}
