//! The built-in search spaces (docs/design.md, "Built-in spaces").

use crate::error::SpaceError;
use crate::space::{
    Activation, Choice, Decision, DecisionKind, Head, InputSpec, Layer, LayerOp, Param,
    SearchSpace, Stage, Stem, round_to_8,
};

/// Names of the built-in spaces, default first.
pub const BUILTIN_SPACES: [&str; 8] = [
    "tiny28",
    "tiny28-ops",
    "proxylessnas",
    "proxylessnas-enlarged",
    "mobilenet-v3-like",
    "rgb32",
    "rgb32-deep",
    "rgb96",
];

/// The width multipliers of the enlarged spaces.
pub(crate) const WIDTH_MULTIPLIERS: [f64; 7] = [0.5, 0.625, 0.75, 1.0, 1.25, 1.5, 2.0];

/// A built-in space by name.
pub fn builtin_space(name: &str) -> Result<SearchSpace, SpaceError> {
    let space = match name {
        "tiny28" => tiny28(&[]),
        "tiny28-ops" => tiny28(&[LayerOp::Bottleneck, LayerOp::Fused, LayerOp::Separable]),
        "proxylessnas" => proxylessnas(false),
        "proxylessnas-enlarged" => proxylessnas(true),
        "mobilenet-v3-like" => mobilenet_v3_like(),
        "rgb32" => rgb32(),
        "rgb32-deep" => rgb32_deep(),
        "rgb96" => rgb96(),
        _ => {
            return Err(SpaceError::Unknown {
                name: name.to_string(),
                known: BUILTIN_SPACES.join(", "),
            });
        }
    };
    debug_assert!(space.validate().is_ok(), "{:?}", space.validate());
    Ok(space)
}

/// Every built-in space.
pub fn builtin_spaces() -> Vec<SearchSpace> {
    BUILTIN_SPACES
        .iter()
        .map(|n| builtin_space(n).expect("built-in names are known"))
        .collect()
}

/// Widths `round8(base · m)` for the 7 multipliers, without duplicates.
pub(crate) fn multiplied_widths(base: u32) -> Vec<u32> {
    let mut widths: Vec<u32> = WIDTH_MULTIPLIERS
        .iter()
        .map(|m| round_to_8(base as f64 * m))
        .collect();
    widths.dedup();
    widths
}

/// Collects decisions while a skeleton is written.
struct Decisions(Vec<Decision>);

impl Decisions {
    fn add<T>(&mut self, name: String, kind: DecisionKind, values: Vec<Choice>) -> Param<T> {
        self.0.push(Decision {
            name: name.clone(),
            kind,
            values,
        });
        Param::Decision(name)
    }
    fn ints<T>(&mut self, name: String, kind: DecisionKind, values: &[u32]) -> Param<T> {
        self.add(name, kind, values.iter().map(|&v| Choice::Int(v)).collect())
    }
    fn flags(&mut self, name: String, kind: DecisionKind) -> Param<bool> {
        self.add(name, kind, vec![Choice::Flag(false), Choice::Flag(true)])
    }
    /// A filters param: a decision when `values` has more than one entry.
    fn width(&mut self, name: String, values: &[u32]) -> Param<u32> {
        if values.len() == 1 {
            Param::Fixed(values[0])
        } else {
            self.ints(name, DecisionKind::Filters, values)
        }
    }
}

/// How the bottlenecks of a stage are searched.
struct BottleneckChoices<'a> {
    /// Searched op values of every layer (empty: every layer a bottleneck).
    ops: &'a [LayerOp],
    kernels: &'a [u32],
    expansions: &'a [u32],
    squeeze_excite: bool,
}

/// A stage of `count` bottlenecks, the first with `stride`, the rest skippable.
fn bottleneck_stage(
    d: &mut Decisions,
    stage_name: &str,
    filters: Param<u32>,
    activation: Activation,
    stride: u32,
    count: usize,
    choices: &BottleneckChoices<'_>,
) -> Stage {
    let layers = (0..count)
        .map(|l| {
            let at = format!("{stage_name}/layer{}", l + 1);
            let op = if choices.ops.is_empty() {
                Param::Fixed(LayerOp::Bottleneck)
            } else {
                let values = choices.ops.iter().map(|&o| Choice::Op(o)).collect();
                d.add(format!("{at}/op"), DecisionKind::Op, values)
            };
            let kernel = d.ints(
                format!("{at}/kernel"),
                DecisionKind::Kernel,
                choices.kernels,
            );
            let expansion = d.ints(
                format!("{at}/expansion"),
                DecisionKind::Expansion,
                choices.expansions,
            );
            let squeeze_excite = if choices.squeeze_excite {
                d.flags(format!("{at}/squeeze-excite"), DecisionKind::SqueezeExcite)
            } else {
                Param::Fixed(false)
            };
            let skip = if l > 0 {
                d.flags(format!("{at}/skip"), DecisionKind::Skip)
            } else {
                Param::Fixed(false)
            };
            Layer {
                op,
                stride: if l == 0 { stride } else { 1 },
                kernel,
                expansion,
                squeeze_excite,
                skip,
                residual: None,
            }
        })
        .collect();
    Stage {
        filters,
        activation,
        layers,
    }
}

fn imagenet_input() -> InputSpec {
    InputSpec {
        height: 224,
        width: 224,
        channels: 3,
        classes: 1000,
    }
}

/// `proxylessnas` (fixed widths) or `proxylessnas-enlarged` (every width
/// searched over the 7 multipliers).
fn proxylessnas(enlarged: bool) -> SearchSpace {
    let widths = ProxylessWidths { enlarged };
    let mut d = Decisions(Vec::new());
    let stem = Stem {
        kernel: Param::Fixed(3),
        stride: 2,
        filters: d.width("stem/filters".into(), &widths.of(0)),
        activation: Activation::Relu,
    };
    let mut stages = vec![proxylessnas_separable_stage(&mut d, &widths)];
    stages.extend(proxylessnas_bottleneck_stages(&mut d, &widths));
    let head = Head {
        filters: d.width("head/filters".into(), &widths.of(8)),
        activation: Activation::Relu,
        post_pool_filters: None,
        post_pool_activation: None,
    };
    SearchSpace {
        name: if enlarged {
            "proxylessnas-enlarged"
        } else {
            "proxylessnas"
        }
        .into(),
        description: if enlarged {
            "ProxylessNAS mobile space (ImageNet 224x224) with every width searched over 7 multipliers"
        } else {
            "ProxylessNAS mobile space (ImageNet 224x224): kernels 3/5/7, expansions 3/6, skippable layers"
        }
        .into(),
        input: imagenet_input(),
        decisions: d.0,
        stem,
        stages,
        head,
    }
}

/// The widths of the ProxylessNAS spaces: stem, 7 stages, head.
struct ProxylessWidths {
    enlarged: bool,
}

impl ProxylessWidths {
    /// The choices of width `i` (0: stem, 1-7: stages, 8: head): the
    /// published width, or the 7 multiples of the enlarged base.
    fn of(&self, i: usize) -> Vec<u32> {
        const PUBLISHED: [u32; 9] = [32, 16, 32, 40, 80, 96, 192, 320, 1280];
        const ENLARGED_BASE: [u32; 9] = [16, 16, 16, 32, 64, 128, 256, 512, 1024];
        if self.enlarged {
            multiplied_widths(ENLARGED_BASE[i])
        } else {
            vec![PUBLISHED[i]]
        }
    }
}

/// Stage 1: one separable conv with a searched kernel.
fn proxylessnas_separable_stage(d: &mut Decisions, widths: &ProxylessWidths) -> Stage {
    let filters = d.width("stage1/filters".into(), &widths.of(1));
    let kernel = d.ints(
        "stage1/layer1/kernel".into(),
        DecisionKind::Kernel,
        &[3, 5, 7],
    );
    Stage {
        filters,
        activation: Activation::Relu,
        layers: vec![Layer {
            op: Param::Fixed(LayerOp::Separable),
            stride: 1,
            kernel,
            expansion: Param::Fixed(1),
            squeeze_excite: Param::Fixed(false),
            skip: Param::Fixed(false),
            residual: None,
        }],
    }
}

/// Stages 2-7: bottlenecks searching kernel 3/5/7 and expansion 3/6.
fn proxylessnas_bottleneck_stages(d: &mut Decisions, widths: &ProxylessWidths) -> Vec<Stage> {
    let choices = BottleneckChoices {
        ops: &[],
        kernels: &[3, 5, 7],
        expansions: &[3, 6],
        squeeze_excite: false,
    };
    let strides = [2, 2, 2, 1, 2, 1];
    let counts = [4, 4, 4, 4, 4, 1];
    let mut stages = Vec::new();
    for (i, (&stride, &count)) in strides.iter().zip(&counts).enumerate() {
        let name = format!("stage{}", i + 2);
        let filters = d.width(format!("{name}/filters"), &widths.of(i + 2));
        stages.push(bottleneck_stage(
            d,
            &name,
            filters,
            Activation::Relu,
            stride,
            count,
            &choices,
        ));
    }
    stages
}

/// The MobileNetV3-like space of TuNAS.
fn mobilenet_v3_like() -> SearchSpace {
    let mut d = Decisions(Vec::new());
    let stem_kernel = d.ints("stem/kernel".into(), DecisionKind::Kernel, &[3, 5]);
    let stem_filters = d.width("stem/filters".into(), &multiplied_widths(16));
    let stem = Stem {
        kernel: stem_kernel,
        stride: 2,
        filters: stem_filters.clone(),
        activation: Activation::Swish6,
    };
    let mut stages = Vec::new();
    let sep_kernel = d.ints(
        "stage0/layer1/kernel".into(),
        DecisionKind::Kernel,
        &[3, 5, 7],
    );
    let sep_skip = d.flags("stage0/layer1/skip".into(), DecisionKind::Skip);
    stages.push(Stage {
        filters: stem_filters,
        activation: Activation::Relu,
        layers: vec![Layer {
            op: Param::Fixed(LayerOp::Separable),
            stride: 1,
            kernel: sep_kernel,
            expansion: Param::Fixed(1),
            squeeze_excite: Param::Fixed(false),
            skip: sep_skip,
            residual: Some(true),
        }],
    });
    let choices = BottleneckChoices {
        ops: &[],
        kernels: &[3, 5, 7],
        expansions: &[1, 2, 3, 4, 5, 6],
        squeeze_excite: true,
    };
    let strides = [2, 2, 2, 1, 2];
    let bases = [16, 32, 64, 128, 256];
    let activations = [
        Activation::Relu,
        Activation::Relu,
        Activation::Swish6,
        Activation::Swish6,
        Activation::Swish6,
    ];
    for i in 0..5 {
        let name = format!("stage{}", i + 1);
        let filters = d.width(format!("{name}/filters"), &multiplied_widths(bases[i]));
        stages.push(bottleneck_stage(
            &mut d,
            &name,
            filters,
            activations[i],
            strides[i],
            4,
            &choices,
        ));
    }
    let head = Head {
        filters: d.width("head/filters".into(), &multiplied_widths(512)),
        activation: Activation::Swish6,
        post_pool_filters: Some(d.width("head/post-pool-filters".into(), &multiplied_widths(1024))),
        post_pool_activation: Some(Activation::Swish6),
    };
    SearchSpace {
        name: "mobilenet-v3-like".into(),
        description: "TuNAS MobileNetV3-like space (ImageNet 224x224): kernels, expansions 1-6, squeeze-excite, every width searched".into(),
        input: imagenet_input(),
        decisions: d.0,
        stem,
        stages,
        head,
    }
}

/// The default space, sized so a whole search runs on a 2-core CPU.
/// `tiny28`, or with `ops` `tiny28-ops`: every layer also searches which
/// op it runs.
fn tiny28(ops: &[LayerOp]) -> SearchSpace {
    let mut d = Decisions(Vec::new());
    let stem = Stem {
        kernel: Param::Fixed(3),
        stride: 1,
        filters: d.width("stem/filters".into(), &[8, 16]),
        activation: Activation::Relu,
    };
    let choices = BottleneckChoices {
        ops,
        kernels: &[3, 5, 7],
        expansions: &[1, 3, 6],
        squeeze_excite: true,
    };
    let plan: [(&[u32], Activation, u32, usize); 3] = [
        (&[16, 24, 32], Activation::Relu, 2, 2),
        (&[32, 48, 64], Activation::Swish6, 2, 3),
        (&[48, 64, 96], Activation::Swish6, 1, 2),
    ];
    let stages = plan
        .iter()
        .enumerate()
        .map(|(i, &(widths, act, stride, count))| {
            let name = format!("stage{}", i + 1);
            let filters = d.width(format!("{name}/filters"), widths);
            bottleneck_stage(&mut d, &name, filters, act, stride, count, &choices)
        })
        .collect();
    let head = Head {
        filters: d.width("head/filters".into(), &[96, 128, 192]),
        activation: Activation::Swish6,
        post_pool_filters: None,
        post_pool_activation: None,
    };
    let (name, description) = if ops.is_empty() {
        (
            "tiny28",
            "Fashion-MNIST-sized space (28x28x1, 10 classes) whose whole search runs on a 2-core CPU",
        )
    } else {
        (
            "tiny28-ops",
            "tiny28 where every layer also searches its op: inverted bottleneck, fused bottleneck or separable conv",
        )
    };
    SearchSpace {
        name: name.into(),
        description: description.into(),
        input: InputSpec {
            height: 28,
            width: 28,
            channels: 1,
            classes: 10,
        },
        decisions: d.0,
        stem,
        stages,
        head,
    }
}

/// One stage of a small RGB space: widths, activation, stride, layers.
type StagePlan = (&'static [u32], Activation, u32, usize);

/// A small RGB space in tiny28's style: a searched stem width, bottleneck
/// stages whose layers search kernel, expansion, SE and (after the first)
/// skip, one width per stage, and a searched head width.
fn small_rgb_space(
    name: &str,
    description: &str,
    size: u32,
    stem_stride: u32,
    stem_widths: &[u32],
    plan: &[StagePlan],
    head_widths: &[u32],
) -> SearchSpace {
    let mut d = Decisions(Vec::new());
    let stem = Stem {
        kernel: Param::Fixed(3),
        stride: stem_stride,
        filters: d.width("stem/filters".into(), stem_widths),
        activation: Activation::Relu,
    };
    let choices = BottleneckChoices {
        ops: &[],
        kernels: &[3, 5, 7],
        expansions: &[1, 3, 6],
        squeeze_excite: true,
    };
    let stages = plan
        .iter()
        .enumerate()
        .map(|(i, &(widths, act, stride, count))| {
            let stage = format!("stage{}", i + 1);
            let filters = d.width(format!("{stage}/filters"), widths);
            bottleneck_stage(&mut d, &stage, filters, act, stride, count, &choices)
        })
        .collect();
    let head = Head {
        filters: d.width("head/filters".into(), head_widths),
        activation: Activation::Swish6,
        post_pool_filters: None,
        post_pool_activation: None,
    };
    SearchSpace {
        name: name.into(),
        description: description.into(),
        input: InputSpec {
            height: size,
            width: size,
            channels: 3,
            classes: 10,
        },
        decisions: d.0,
        stem,
        stages,
        head,
    }
}

/// CIFAR-sized (32x32x3, 10 classes): tiny28's plan with a fourth stage,
/// 16x16 after the first stage, 4x4 before the head.
fn rgb32() -> SearchSpace {
    rgb32_with_depths(
        "rgb32",
        "CIFAR-sized RGB space (32x32x3, 10 classes) in tiny28's style, with a fourth stage",
        [2, 3, 3, 2],
    )
}

/// rgb32 with 13 layers instead of 10 (4, 4 and 3 in stages 2–4), every
/// added one skippable. Depth is what stand-alone accuracy follows most among
/// rgb32's equal-latency networks (docs/measurements.md), so here networks of
/// one latency differ more in depth: from 4 to 13 layers instead of 4 to 10.
fn rgb32_deep() -> SearchSpace {
    rgb32_with_depths(
        "rgb32-deep",
        "rgb32 with up to 13 layers (2, 4, 4, 3 per stage) for a wider equal-latency spread",
        [2, 4, 4, 3],
    )
}

/// rgb32's stem, stages and head with `layers` bottlenecks per stage.
fn rgb32_with_depths(name: &str, description: &str, layers: [usize; 4]) -> SearchSpace {
    small_rgb_space(
        name,
        description,
        32,
        1,
        &[16, 24],
        &[
            (&[16, 24, 32], Activation::Relu, 2, layers[0]),
            (&[32, 48, 64], Activation::Swish6, 2, layers[1]),
            (&[48, 64, 96], Activation::Swish6, 2, layers[2]),
            (&[64, 96, 128], Activation::Swish6, 1, layers[3]),
        ],
        &[128, 192, 256],
    )
}

/// Visual-Wake-Words-sized (96x96x3, 10 classes; edit `classes` in TOML for
/// two): a stride-2 stem, then five stages down to 3x3.
fn rgb96() -> SearchSpace {
    small_rgb_space(
        "rgb96",
        "VWW-sized RGB space (96x96x3, 10 classes): stride-2 stem, five stages down to 3x3",
        96,
        2,
        &[16, 24],
        &[
            (&[16, 24], Activation::Relu, 2, 2),
            (&[24, 32, 48], Activation::Relu, 2, 3),
            (&[32, 48, 64], Activation::Swish6, 2, 3),
            (&[64, 96, 128], Activation::Swish6, 2, 3),
            (&[96, 128, 160], Activation::Swish6, 1, 2),
        ],
        &[160, 256, 320],
    )
}
