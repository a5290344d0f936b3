//! Op keys: everything that changes an op's cost (docs/design.md,
//! "Architectures and op keys").
//!
//! The ops of an architecture, summed, are the whole network: stem, every
//! layer that is not skipped, head conv (with its global average pool), the
//! optional post-pool conv, and the classifier.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::arch::Architecture;
use crate::error::OpKeyError;
use crate::space::{Activation, LayerOp, Param, SearchSpace, conv_out, round_to_8};

/// The kind of an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// Stem conv k×k + BN + act.
    Stem,
    /// Separable conv (depthwise + BN + act, 1×1 + BN), optional residual.
    Separable,
    /// Inverted bottleneck, optional SE and residual.
    Bottleneck,
    /// Fused inverted bottleneck (k×k expand conv + BN + act, 1×1 project +
    /// BN), optional residual.
    Fused,
    /// Head 1×1 conv + BN + act, then global average pool.
    HeadConv,
    /// Post-pool 1×1 conv with bias + act.
    HeadFc,
    /// Linear classifier.
    Classifier,
}

impl OpKind {
    /// Every kind, in network order.
    pub(crate) const ALL: [OpKind; 7] = [
        OpKind::Stem,
        OpKind::Separable,
        OpKind::Bottleneck,
        OpKind::Fused,
        OpKind::HeadConv,
        OpKind::HeadFc,
        OpKind::Classifier,
    ];

    /// Canonical name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OpKind::Stem => "stem",
            OpKind::Separable => "separable",
            OpKind::Bottleneck => "bottleneck",
            OpKind::Fused => "fused",
            OpKind::HeadConv => "head_conv",
            OpKind::HeadFc => "head_fc",
            OpKind::Classifier => "classifier",
        }
    }

    /// Parses a canonical name.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        OpKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl From<LayerOp> for OpKind {
    fn from(op: LayerOp) -> Self {
        match op {
            LayerOp::Separable => OpKind::Separable,
            LayerOp::Bottleneck => OpKind::Bottleneck,
            LayerOp::Fused => OpKind::Fused,
        }
    }
}

/// Everything that changes an op's cost. Fields that do not apply to a kind
/// hold neutral values (`mid = cin`, `kernel = 1`, `stride = 1`, ...), so two
/// equal ops always have equal keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpKey {
    /// What the op is.
    pub op: OpKind,
    /// Input height.
    pub in_h: u32,
    /// Input width.
    pub in_w: u32,
    /// Input channels.
    pub cin: u32,
    /// Output channels.
    pub cout: u32,
    /// Expanded channels of a bottleneck (else `cin`).
    pub mid: u32,
    /// Kernel size (1 for 1×1 and linear ops).
    pub kernel: u32,
    /// Stride.
    pub stride: u32,
    /// Squeeze-excite.
    pub se: bool,
    /// Activation (the classifier has none and records `relu`... see
    /// `OpKey::classifier`).
    pub act: Activation,
    /// Residual add.
    pub residual: bool,
    /// Batch size.
    pub batch: u32,
}

/// The column names of an op key, in table order.
pub const KEY_COLUMNS: [&str; 12] = [
    "op", "input_h", "input_w", "cin", "cout", "mid", "kernel", "stride", "se", "act", "residual",
    "batch",
];

impl OpKey {
    /// The classifier op. It has no activation; `act` is fixed to `relu` so
    /// that keys stay canonical.
    pub(crate) fn classifier(cin: u32, classes: u32, batch: u32) -> Self {
        OpKey {
            op: OpKind::Classifier,
            in_h: 1,
            in_w: 1,
            cin,
            cout: classes,
            mid: cin,
            kernel: 1,
            stride: 1,
            se: false,
            act: Activation::Relu,
            residual: false,
            batch,
        }
    }

    /// Output spatial size.
    pub fn out_hw(&self) -> (u32, u32) {
        match self.op {
            OpKind::HeadConv | OpKind::HeadFc | OpKind::Classifier => (1, 1),
            _ => (
                conv_out(self.in_h, self.stride),
                conv_out(self.in_w, self.stride),
            ),
        }
    }

    /// Width of the squeeze-excite bottleneck.
    pub(crate) fn se_width(&self) -> u32 {
        round_to_8(self.mid as f64 / 4.0)
    }

    /// The key's values as table cells, in [`KEY_COLUMNS`] order.
    pub fn cells(&self) -> [String; 12] {
        [
            self.op.name().to_string(),
            self.in_h.to_string(),
            self.in_w.to_string(),
            self.cin.to_string(),
            self.cout.to_string(),
            self.mid.to_string(),
            self.kernel.to_string(),
            self.stride.to_string(),
            u8::from(self.se).to_string(),
            self.act.name().to_string(),
            u8::from(self.residual).to_string(),
            self.batch.to_string(),
        ]
    }

    /// Builds a key from table cells in [`KEY_COLUMNS`] order; the error names
    /// the column.
    pub(crate) fn from_cells(cells: &[&str; 12]) -> Result<Self, OpKeyError> {
        let int = |i: usize| -> Result<u32, OpKeyError> {
            cells[i].trim().parse().map_err(|_| OpKeyError::BadField {
                field: KEY_COLUMNS[i],
                value: cells[i].to_string(),
                expected: "a non-negative integer",
            })
        };
        let flag = |i: usize| -> Result<bool, OpKeyError> {
            match cells[i].trim() {
                "0" | "false" => Ok(false),
                "1" | "true" => Ok(true),
                other => Err(OpKeyError::BadField {
                    field: KEY_COLUMNS[i],
                    value: other.to_string(),
                    expected: "0 or 1",
                }),
            }
        };
        let op = OpKind::from_name(cells[0].trim()).ok_or_else(|| OpKeyError::BadField {
            field: "op",
            value: cells[0].to_string(),
            expected: "stem, separable, bottleneck, head_conv, head_fc or classifier",
        })?;
        let act = Activation::from_name(cells[9].trim()).ok_or_else(|| OpKeyError::BadField {
            field: "act",
            value: cells[9].to_string(),
            expected: "relu or swish6",
        })?;
        let key = OpKey {
            op,
            in_h: int(1)?,
            in_w: int(2)?,
            cin: int(3)?,
            cout: int(4)?,
            mid: int(5)?,
            kernel: int(6)?,
            stride: int(7)?,
            se: flag(8)?,
            act,
            residual: flag(10)?,
            batch: int(11)?,
        };
        if key.in_h == 0
            || key.in_w == 0
            || key.cin == 0
            || key.cout == 0
            || key.mid == 0
            || key.kernel == 0
            || key.stride == 0
            || key.batch == 0
        {
            return Err(OpKeyError::BadField {
                field: "input_h/input_w/cin/cout/mid/kernel/stride/batch",
                value: key.to_string(),
                expected: "sizes of at least 1",
            });
        }
        Ok(key)
    }

    /// Multiply-adds of the op for its whole batch.
    pub fn flops(&self) -> u64 {
        let (oh, ow) = self.out_hw();
        let out_px = oh as u64 * ow as u64;
        let in_px = self.in_h as u64 * self.in_w as u64;
        let (cin, cout, mid, k) = (
            self.cin as u64,
            self.cout as u64,
            self.mid as u64,
            self.kernel as u64,
        );
        let per_image = match self.op {
            OpKind::Stem => k * k * cin * cout * out_px,
            OpKind::Separable => k * k * cin * out_px + cin * cout * out_px,
            OpKind::Bottleneck => {
                let se = if self.se {
                    2 * mid * self.se_width() as u64
                } else {
                    0
                };
                cin * mid * in_px + k * k * mid * out_px + se + mid * cout * out_px
            }
            OpKind::Fused => k * k * cin * mid * out_px + mid * cout * out_px,
            OpKind::HeadConv => cin * cout * in_px,
            OpKind::HeadFc | OpKind::Classifier => cin * cout,
        };
        per_image * self.batch as u64
    }

    /// Trainable parameters (conv weights, BN scale and shift, biases).
    pub fn params(&self) -> u64 {
        let (cin, cout, mid, k) = (
            self.cin as u64,
            self.cout as u64,
            self.mid as u64,
            self.kernel as u64,
        );
        match self.op {
            OpKind::Stem => k * k * cin * cout + 2 * cout,
            OpKind::Separable => k * k * cin + 2 * cin + cin * cout + 2 * cout,
            OpKind::Bottleneck => {
                let se = if self.se {
                    let s = self.se_width() as u64;
                    mid * s + s + s * mid + mid
                } else {
                    0
                };
                cin * mid + 2 * mid + k * k * mid + 2 * mid + se + mid * cout + 2 * cout
            }
            OpKind::Fused => k * k * cin * mid + 2 * mid + mid * cout + 2 * cout,
            OpKind::HeadConv => cin * cout + 2 * cout,
            OpKind::HeadFc | OpKind::Classifier => cin * cout + cout,
        }
    }
}

impl fmt::Display for OpKey {
    /// Canonical text, e.g. `bottleneck-14x14x16-o24-m48-k5-s2-se1-swish6-r0-b1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}x{}x{}-o{}-m{}-k{}-s{}-se{}-{}-r{}-b{}",
            self.op.name(),
            self.in_h,
            self.in_w,
            self.cin,
            self.cout,
            self.mid,
            self.kernel,
            self.stride,
            u8::from(self.se),
            self.act.name(),
            u8::from(self.residual),
            self.batch
        )
    }
}

impl FromStr for OpKey {
    type Err = OpKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || OpKeyError::BadText {
            text: s.to_string(),
        };
        let parts: Vec<&str> = s.split('-').collect();
        let [op, hwc, o, m, k, st, se, act, r, b] = parts.as_slice() else {
            return Err(bad());
        };
        let hwc: Vec<&str> = hwc.split('x').collect();
        let [h, w, c] = hwc.as_slice() else {
            return Err(bad());
        };
        fn strip<'a>(v: &'a str, prefix: &str, text: &str) -> Result<&'a str, OpKeyError> {
            v.strip_prefix(prefix).ok_or_else(|| OpKeyError::BadText {
                text: text.to_string(),
            })
        }
        let cells: [&str; 12] = [
            op,
            h,
            w,
            c,
            strip(o, "o", s)?,
            strip(m, "m", s)?,
            strip(k, "k", s)?,
            strip(st, "s", s)?,
            strip(se, "se", s)?,
            act,
            strip(r, "r", s)?,
            strip(b, "b", s)?,
        ];
        OpKey::from_cells(&cells)
    }
}

/// The ops an architecture executes, in order.
pub fn architecture_ops(space: &SearchSpace, arch: &Architecture, batch: u32) -> Vec<OpKey> {
    let net = arch.resolve(space);
    let mut ops = Vec::with_capacity(net.layers.len() + 3);
    ops.push(stem_key(space, net.stem_kernel, net.stem_filters, batch));
    for l in net.layers.iter().filter(|l| !l.skipped) {
        let params = LayerParams {
            op: l.op,
            in_hw: (l.in_h, l.in_w),
            cin: l.cin,
            cout: l.cout,
            expansion: l.expansion,
            kernel: l.kernel,
            stride: l.stride,
            se: l.squeeze_excite,
            act: l.activation,
            residual: l.residual,
        };
        ops.push(params.key(batch));
    }
    ops.extend(head_keys(
        space,
        net.head_in,
        net.head_cin,
        net.head_filters,
        net.post_pool_filters,
        batch,
    ));
    ops
}

fn stem_key(space: &SearchSpace, kernel: u32, filters: u32, batch: u32) -> OpKey {
    OpKey {
        op: OpKind::Stem,
        in_h: space.input.height,
        in_w: space.input.width,
        cin: space.input.channels,
        cout: filters,
        mid: space.input.channels,
        kernel,
        stride: space.stem.stride,
        se: false,
        act: space.stem.activation,
        residual: false,
        batch,
    }
}

/// One searchable layer's op and shape, what its op key is made of besides
/// the batch: read off a resolved layer by [`architecture_ops`], enumerated
/// over the skeleton by [`space_op_keys`].
struct LayerParams {
    op: LayerOp,
    /// Input height and width.
    in_hw: (u32, u32),
    cin: u32,
    cout: u32,
    /// Expansion ratio (a bottleneck's; a separable layer has none).
    expansion: u32,
    /// Depthwise kernel size.
    kernel: u32,
    stride: u32,
    /// Squeeze-excite on (a bottleneck's; a separable layer has none).
    se: bool,
    act: Activation,
    residual: bool,
}

impl LayerParams {
    /// The layer's op key at `batch`.
    fn key(&self, batch: u32) -> OpKey {
        let (mid, se) = match self.op {
            LayerOp::Bottleneck => (round_to_8(self.cin as f64 * self.expansion as f64), self.se),
            LayerOp::Fused => (round_to_8(self.cin as f64 * self.expansion as f64), false),
            LayerOp::Separable => (self.cin, false),
        };
        OpKey {
            op: self.op.into(),
            in_h: self.in_hw.0,
            in_w: self.in_hw.1,
            cin: self.cin,
            cout: self.cout,
            mid,
            kernel: self.kernel,
            stride: self.stride,
            se,
            act: self.act,
            residual: self.residual,
            batch,
        }
    }
}

fn head_keys(
    space: &SearchSpace,
    (h, w): (u32, u32),
    cin: u32,
    filters: u32,
    post_pool: Option<u32>,
    batch: u32,
) -> Vec<OpKey> {
    let mut keys = vec![OpKey {
        op: OpKind::HeadConv,
        in_h: h,
        in_w: w,
        cin,
        cout: filters,
        mid: cin,
        kernel: 1,
        stride: 1,
        se: false,
        act: space.head.activation,
        residual: false,
        batch,
    }];
    let mut features = filters;
    if let (Some(f), Some(act)) = (post_pool, space.head.post_pool_activation) {
        keys.push(OpKey {
            op: OpKind::HeadFc,
            in_h: 1,
            in_w: 1,
            cin: filters,
            cout: f,
            mid: filters,
            kernel: 1,
            stride: 1,
            se: false,
            act,
            residual: false,
            batch,
        });
        features = f;
    }
    keys.push(OpKey::classifier(features, space.input.classes, batch));
    keys
}

/// Every (input width, output width) pair that can occur for two width
/// params: equal params move together, different ones independently.
fn width_pairs(space: &SearchSpace, input: &Param<u32>, output: &Param<u32>) -> Vec<(u32, u32)> {
    if input == output {
        space
            .int_values(input)
            .into_iter()
            .map(|v| (v, v))
            .collect()
    } else {
        let outs = space.int_values(output);
        space
            .int_values(input)
            .into_iter()
            .flat_map(|i| outs.iter().map(move |&o| (i, o)))
            .collect()
    }
}

/// Every op key any architecture of the space can execute, computed from the
/// skeleton without enumerating architectures.
///
/// The tensor entering stage `s` always has the width of stage `s − 1` (or
/// of the stem): a skippable layer is validated to keep its input's width.
pub fn space_op_keys(space: &SearchSpace, batch: u32) -> BTreeSet<OpKey> {
    let mut keys = BTreeSet::new();
    for kernel in space.int_values(&space.stem.kernel) {
        for filters in space.int_values(&space.stem.filters) {
            keys.insert(stem_key(space, kernel, filters, batch));
        }
    }
    let sizes = space.stage_input_sizes();
    for (s, stage) in space.stages.iter().enumerate() {
        let (mut h, mut w) = sizes[s];
        for (l, layer) in stage.layers.iter().enumerate() {
            let input = if l == 0 {
                space.stage_input_filters(s)
            } else {
                &stage.filters
            };
            for (cin, cout) in width_pairs(space, input, &stage.filters) {
                for op in space.op_values(&layer.op) {
                    for kernel in space.int_values(&layer.kernel) {
                        for e in space.int_values(&layer.expansion) {
                            for se in space.flag_values(&layer.squeeze_excite) {
                                let params = LayerParams {
                                    op,
                                    in_hw: (h, w),
                                    cin,
                                    cout,
                                    expansion: e,
                                    kernel,
                                    stride: layer.stride,
                                    se,
                                    act: stage.activation,
                                    residual: layer.is_residual(l),
                                };
                                keys.insert(params.key(batch));
                            }
                        }
                    }
                }
            }
            h = conv_out(h, layer.stride);
            w = conv_out(w, layer.stride);
        }
    }
    let head_in = *sizes.last().expect("at least the stem size");
    let head_pairs = width_pairs(space, space.head_input_filters(), &space.head.filters);
    let post_pool: Vec<Option<u32>> = match &space.head.post_pool_filters {
        None => vec![None],
        Some(p) => space.int_values(p).into_iter().map(Some).collect(),
    };
    for (cin, filters) in head_pairs {
        for &post in &post_pool {
            keys.extend(head_keys(space, head_in, cin, filters, post, batch));
        }
    }
    keys
}

/// Multiply-adds of an architecture (per image).
pub fn architecture_flops(space: &SearchSpace, arch: &Architecture) -> u64 {
    architecture_ops(space, arch, 1)
        .iter()
        .map(OpKey::flops)
        .sum()
}

/// Trainable parameters of an architecture.
pub fn architecture_params(space: &SearchSpace, arch: &Architecture) -> u64 {
    architecture_ops(space, arch, 1)
        .iter()
        .map(OpKey::params)
        .sum()
}
