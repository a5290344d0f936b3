//! Building a supernet: which tensors each unit, layer and the head own,
//! and their seeded initial values.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tunas_shared::SearchSpace;
use tunas_shared::space::{Layer, LayerOp, LayerPosition, Param, round_to_8};

use super::Supernet;
use super::names::{self, BnPart};
use super::store::{Init, ParamStore};

/// Indices of a conv + BN unit's tensors.
#[derive(Clone, Debug)]
pub(crate) struct ConvBn {
    /// Conv weight `[cout_max, cin_max/groups, k, k]`.
    pub(crate) conv: usize,
    /// BN scale.
    pub(crate) gamma: usize,
    /// BN shift.
    pub(crate) beta: usize,
    /// BN running mean.
    pub(crate) mean: usize,
    /// BN running variance.
    pub(crate) var: usize,
    /// Kernel size.
    pub(crate) kernel: usize,
    /// Depthwise (groups = channels) or dense.
    pub(crate) depthwise: bool,
}

/// Squeeze-excite tensors of a layer.
#[derive(Clone, Debug)]
pub(crate) struct SeWeights {
    /// Reduce conv `[s_max, mid_max, 1, 1]`.
    pub(crate) w_reduce: usize,
    /// Reduce bias `[s_max]`.
    pub(crate) b_reduce: usize,
    /// Expand conv `[mid_max, s_max, 1, 1]`.
    pub(crate) w_expand: usize,
    /// Expand bias `[mid_max]`.
    pub(crate) b_expand: usize,
}

/// Decision indices that steer one layer.
#[derive(Clone, Debug, Default)]
pub(crate) struct LayerDecisions {
    /// Op decision, if searched.
    pub(crate) op: Option<usize>,
    /// Kernel decision, if searched.
    pub(crate) kernel: Option<usize>,
    /// Squeeze-excite decision, if searched.
    pub(crate) se: Option<usize>,
    /// Skip decision, if searched.
    pub(crate) skip: Option<usize>,
}

/// Tensors of one op a layer can run.
#[derive(Clone, Debug)]
pub(crate) struct OpWeights {
    /// Which op.
    pub(crate) op: LayerOp,
    /// Bottleneck 1×1 expand conv (shared by every kernel and expansion).
    pub(crate) expand: Option<ConvBn>,
    /// The k×k conv per kernel value, in the order of the kernel decision's
    /// values: depthwise at mid width (bottleneck) or at input width
    /// (separable); the dense expand conv from input to mid width (fused).
    pub(crate) spatial: Vec<ConvBn>,
    /// Squeeze-excite (bottleneck only).
    pub(crate) se: Option<SeWeights>,
    /// Project conv (bottleneck, fused) or pointwise conv (separable).
    pub(crate) project: ConvBn,
}

/// Tensors of one searchable layer.
#[derive(Clone, Debug)]
pub(crate) struct LayerWeights {
    /// One per op value, in the order of the op decision's values (one for
    /// a fixed op). Ops share no tensors: their shapes differ.
    pub(crate) ops: Vec<OpWeights>,
    /// Which decisions steer the layer.
    pub(crate) decisions: LayerDecisions,
}

/// Tensors of the head.
#[derive(Clone, Debug)]
pub(crate) struct HeadWeights {
    /// 1×1 conv + BN before pooling.
    pub(crate) conv: ConvBn,
    /// Post-pool fully connected layer `(weight [out, in], bias)`.
    pub(crate) fc: Option<(usize, usize)>,
    /// Classifier `(weight [classes, in], bias)`.
    pub(crate) classifier: (usize, usize),
}

fn decision_of<T>(space: &SearchSpace, p: &Param<T>) -> Option<usize> {
    p.decision()
        .map(|n| space.decision_index(n).expect("validated"))
}

fn max_of(v: &[u32]) -> usize {
    *v.iter().max().expect("non-empty values") as usize
}

impl Supernet {
    /// Builds the supernet of `space` with seeded initial weights.
    pub fn new(space: &SearchSpace, seed: u64) -> Self {
        let mut b = Builder {
            space,
            store: ParamStore::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        // The order of these calls is the order tensors are created and
        // drawn from the generator: it fixes every initial value.
        let stem = b.stem();
        let layers = space
            .layers()
            .map(|(pos, layer)| b.layer(pos, layer))
            .collect();
        let head = b.head();
        let mut store = b.store;
        reshape_se_weights(&mut store);
        Supernet {
            space: space.clone(),
            store,
            stem,
            stem_kernel_decision: decision_of(space, &space.stem.kernel),
            layers,
            head,
            bn_momentum: None,
        }
    }
}

/// SE reduce/expand are stored as 2-d dense weights; reshape them to the
/// `[out, in, 1, 1]` conv layout the SE kernel expects.
fn reshape_se_weights(store: &mut ParamStore) {
    for t in &mut store.tensors {
        if t.name.contains("/se/") && t.name.ends_with("/weight") {
            let (o, i) = (t.value.shape()[0], t.value.shape()[1]);
            t.value = t
                .value
                .clone()
                .into_shape_with_order(vec![o, i, 1, 1])
                .expect("reshape");
        }
    }
}

/// Adds the tensors of a space's supernet to a store, drawing initial
/// values from one seeded generator.
struct Builder<'a> {
    space: &'a SearchSpace,
    store: ParamStore,
    rng: ChaCha8Rng,
}

/// The widths and scope one op of a searchable layer is built from.
struct LayerShape {
    /// The op's tensor scope (`names::op_scope`).
    name: String,
    /// Input widths the layer can see.
    cins: Vec<u32>,
    cin_max: usize,
    cout_max: usize,
    /// Depthwise kernel values, in the order of the kernel decision.
    kernels: Vec<u32>,
}

impl Builder<'_> {
    fn conv_bn(
        &mut self,
        name: &str,
        cout: usize,
        cin: usize,
        k: usize,
        depthwise: bool,
    ) -> ConvBn {
        let per_group = if depthwise { 1 } else { cin };
        let fan_in = per_group * k * k;
        let conv = self.store.add(
            &mut self.rng,
            names::weight(name),
            &[cout, per_group, k, k],
            Init::He(fan_in),
            true,
            true,
        );
        let mut vec = |part: BnPart, init: f32, trainable: bool| {
            self.store.add(
                &mut self.rng,
                names::bn(name, part),
                &[cout],
                Init::Const(init),
                trainable,
                false,
            )
        };
        ConvBn {
            conv,
            gamma: vec(BnPart::Gamma, 1.0, true),
            beta: vec(BnPart::Beta, 0.0, true),
            mean: vec(BnPart::RunningMean, 0.0, false),
            var: vec(BnPart::RunningVar, 1.0, false),
            kernel: k,
            depthwise,
        }
    }

    fn dense(&mut self, name: &str, out: usize, inp: usize) -> (usize, usize) {
        let w = self.store.add(
            &mut self.rng,
            names::weight(name),
            &[out, inp],
            Init::Uniform(inp),
            true,
            true,
        );
        let b = self.store.add(
            &mut self.rng,
            names::bias(name),
            &[out],
            Init::Const(0.0),
            true,
            false,
        );
        (w, b)
    }

    /// Stem conv + BN per kernel value.
    fn stem(&mut self) -> Vec<ConvBn> {
        let space = self.space;
        let cin0 = space.input.channels as usize;
        let stem_widths = space.int_values(&space.stem.filters);
        space
            .int_values(&space.stem.kernel)
            .iter()
            .map(|&k| {
                self.conv_bn(
                    &names::stem(k),
                    max_of(&stem_widths),
                    cin0,
                    k as usize,
                    false,
                )
            })
            .collect()
    }

    /// The tensors of one layer of the skeleton: one set per op value.
    fn layer(&mut self, pos: LayerPosition, layer: &Layer) -> LayerWeights {
        let space = self.space;
        let stage = &space.stages[pos.stage];
        let input = if pos.layer == 0 {
            space.stage_input_filters(pos.stage)
        } else {
            &stage.filters
        };
        let cins = space.int_values(input);
        let couts = space.int_values(&stage.filters);
        let layer_name = names::layer(pos);
        let searched = layer.op.decision().is_some();
        let ops = space
            .op_values(&layer.op)
            .into_iter()
            .map(|op| {
                let shape = LayerShape {
                    name: names::op_scope(&layer_name, op, searched),
                    cin_max: max_of(&cins),
                    cout_max: max_of(&couts),
                    cins: cins.clone(),
                    kernels: space.int_values(&layer.kernel),
                };
                match op {
                    LayerOp::Bottleneck => self.bottleneck(&shape, layer),
                    LayerOp::Separable => self.separable(&shape),
                    LayerOp::Fused => self.fused(&shape, layer),
                }
            })
            .collect();
        let decisions = LayerDecisions {
            op: decision_of(space, &layer.op),
            kernel: decision_of(space, &layer.kernel),
            se: decision_of(space, &layer.squeeze_excite),
            skip: decision_of(space, &layer.skip),
        };
        LayerWeights { ops, decisions }
    }

    /// The widest expanded width of a layer: every input width it can see
    /// times every expansion value.
    fn mid_max(&self, l: &LayerShape, layer: &Layer) -> usize {
        let expansions = self.space.int_values(&layer.expansion);
        l.cins
            .iter()
            .flat_map(|&c| {
                expansions
                    .iter()
                    .map(move |&e| round_to_8(c as f64 * e as f64))
            })
            .max()
            .expect("values") as usize
    }

    /// Expand, one depthwise conv per kernel, squeeze-excite, project.
    fn bottleneck(&mut self, l: &LayerShape, layer: &Layer) -> OpWeights {
        let name = &l.name;
        let mid_max = self.mid_max(l, layer);
        let expand = self.conv_bn(&names::expand(name), mid_max, l.cin_max, 1, false);
        let spatial = self.depthwise(name, &l.kernels, mid_max);
        let has_se = layer.squeeze_excite != Param::Fixed(false);
        let se = has_se.then(|| self.squeeze_excite(name, mid_max));
        let project = self.conv_bn(&names::project(name), l.cout_max, mid_max, 1, false);
        OpWeights {
            op: LayerOp::Bottleneck,
            expand: Some(expand),
            spatial,
            se,
            project,
        }
    }

    /// One depthwise conv per kernel, then the pointwise conv.
    fn separable(&mut self, l: &LayerShape) -> OpWeights {
        let spatial = self.depthwise(&l.name, &l.kernels, l.cin_max);
        let project = self.conv_bn(&names::pointwise(&l.name), l.cout_max, l.cin_max, 1, false);
        OpWeights {
            op: LayerOp::Separable,
            expand: None,
            spatial,
            se: None,
            project,
        }
    }

    /// One dense k×k expand conv per kernel, then the project conv.
    fn fused(&mut self, l: &LayerShape, layer: &Layer) -> OpWeights {
        let name = &l.name;
        let mid_max = self.mid_max(l, layer);
        let spatial = l
            .kernels
            .iter()
            .map(|&k| {
                let unit = names::fused_expand(name, k);
                self.conv_bn(&unit, mid_max, l.cin_max, k as usize, false)
            })
            .collect();
        let project = self.conv_bn(&names::project(name), l.cout_max, mid_max, 1, false);
        OpWeights {
            op: LayerOp::Fused,
            expand: None,
            spatial,
            se: None,
            project,
        }
    }

    /// A depthwise conv + BN of `width` channels per kernel value.
    fn depthwise(&mut self, name: &str, kernels: &[u32], width: usize) -> Vec<ConvBn> {
        kernels
            .iter()
            .map(|&k| self.conv_bn(&names::depthwise(name, k), width, width, k as usize, true))
            .collect()
    }

    /// Reduce and expand of a layer's squeeze-excite at `mid_max` channels.
    fn squeeze_excite(&mut self, name: &str, mid_max: usize) -> SeWeights {
        let s_max = round_to_8(mid_max as f64 / 4.0) as usize;
        let (w_reduce, b_reduce) = self.dense(&names::se_reduce(name), s_max, mid_max);
        let (w_expand, b_expand) = self.dense(&names::se_expand(name), mid_max, s_max);
        SeWeights {
            w_reduce,
            b_reduce,
            w_expand,
            b_expand,
        }
    }

    /// Head conv, the optional post-pool fully connected layer, classifier.
    fn head(&mut self) -> HeadWeights {
        let space = self.space;
        let head_in = max_of(&space.int_values(space.head_input_filters()));
        let head_max = max_of(&space.int_values(&space.head.filters));
        let conv = self.conv_bn(names::HEAD_CONV, head_max, head_in, 1, false);
        let mut features = head_max;
        let fc = space.head.post_pool_filters.as_ref().map(|p| {
            let out = max_of(&space.int_values(p));
            let fc = self.dense(names::HEAD_FC, out, head_max);
            features = out;
            fc
        });
        let classifier = self.dense(names::CLASSIFIER, space.input.classes as usize, features);
        HeadWeights {
            conv,
            fc,
            classifier,
        }
    }
}
