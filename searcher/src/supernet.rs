//! The weight-sharing supernet of a search space (docs/design.md,
//! "Supernet").
//!
//! Every layer keeps its widest weights; an architecture uses the first k
//! channels of each (computing only the active channels gives the same
//! result as masking the others to zero). The 1×1 expand and project convs
//! are shared across kernel and expansion choices; each depthwise kernel
//! size has its own weights and BN; squeeze-excite weights belong to the
//! layer; a skipped layer is the identity.
//!
//! A forward pass follows a [`PathPlan`]: one architecture, plus the
//! kernel / squeeze-excite / skip decisions that run *all* their values and
//! average them (op warm-up). With rematerialization such a decision keeps
//! only its input for the backward pass and recomputes its branches there.
//!
//! ```
//! use tunas_searcher::supernet::{BnMode, PathPlan, Supernet};
//! use tunas_shared::{Architecture, builtin_space};
//!
//! let space = builtin_space("tiny28").unwrap();
//! let mut net = Supernet::new(&space, 1);
//! let plan = PathPlan::single(Architecture::largest(&space));
//! let x = ndarray::Array4::<f32>::zeros((2, 1, 28, 28));
//! let (logits, _) = net.forward(x, &plan, BnMode::Batch, false);
//! assert_eq!(logits.dim(), (2, 10));
//! ```

use ndarray::{
    Array, Array1, Array2, Array4, ArrayD, ArrayView, ArrayView1, ArrayView2, ArrayView4,
    Dimension, Ix1, SliceInfoElem, s,
};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tunas_shared::space::{LayerOp, Param, round_to_8};
use tunas_shared::{Architecture, SearchSpace};

use crate::layers::activation::Activation as Act;
use crate::layers::batch_norm::{
    BatchNormCache, BatchNormParams, batch_norm_backward, batch_norm_inference, batch_norm_train,
    batch_norm_update_running,
};
use crate::layers::conv::{Conv2dParams, conv2d, conv2d_backward_input, conv2d_backward_weight};
use crate::layers::linear::{
    LinearParams, linear, linear_backward_bias, linear_backward_input, linear_backward_weight,
};
use crate::layers::pool::{global_avg_pool, global_avg_pool_backward};
use crate::layers::residual::residual_add_assign;
use crate::layers::squeeze_excite::{
    SqueezeExciteCache, SqueezeExciteParams, squeeze_excite, squeeze_excite_backward,
};
use crate::layers::{copy4, scaled4};
use crate::optim::{Optimizer, ParamState};

/// One named tensor of the supernet with its gradient and optimiser state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParamTensor {
    /// Unique name, e.g. `stage2/layer1/dw7/weight`.
    pub name: String,
    /// The values (widest shape).
    pub value: ArrayD<f32>,
    /// Accumulated gradient, same shape.
    #[serde(skip)]
    pub grad: Option<ArrayD<f32>>,
    /// Whether an optimiser updates it (BN running statistics are not).
    pub trainable: bool,
    /// Whether weight decay applies (conv and linear weights).
    pub decay: bool,
    /// Optimiser state.
    pub state: ParamState,
}

/// All tensors of a supernet, addressed by index.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ParamStore {
    /// The tensors, in creation order.
    pub tensors: Vec<ParamTensor>,
}

/// How a new tensor is initialised.
#[derive(Clone, Copy, Debug)]
enum Init {
    /// He normal with this fan-in.
    He(usize),
    /// Uniform ±1/sqrt(fan_in).
    Uniform(usize),
    /// A constant.
    Const(f32),
}

impl ParamStore {
    fn add(
        &mut self,
        rng: &mut ChaCha8Rng,
        name: String,
        shape: &[usize],
        init: Init,
        trainable: bool,
        decay: bool,
    ) -> usize {
        let len: usize = shape.iter().product();
        let data: Vec<f32> = match init {
            Init::Const(c) => vec![c; len],
            Init::He(fan_in) => {
                let std = (2.0 / fan_in.max(1) as f64).sqrt();
                (0..len).map(|_| (normal(rng) * std) as f32).collect()
            }
            Init::Uniform(fan_in) => {
                let a = 1.0 / (fan_in.max(1) as f32).sqrt();
                (0..len).map(|_| rng.random_range(-a..a)).collect()
            }
        };
        self.tensors.push(ParamTensor {
            name,
            value: ArrayD::from_shape_vec(shape, data).expect("shape matches length"),
            grad: None,
            trainable,
            decay,
            state: ParamState::default(),
        });
        self.tensors.len() - 1
    }

    /// Tensor `i` as a `D`-dimensional view.
    fn view<D: Dimension>(&self, i: usize) -> ArrayView<'_, f32, D> {
        let t = &self.tensors[i];
        t.value
            .view()
            .into_dimensionality::<D>()
            .unwrap_or_else(|_| panic!("tensor '{}' has shape {:?}", t.name, t.value.shape()))
    }

    fn v4(&self, i: usize) -> ArrayView4<'_, f32> {
        self.view(i)
    }

    fn v2(&self, i: usize) -> ArrayView2<'_, f32> {
        self.view(i)
    }

    fn v1(&self, i: usize) -> ArrayView1<'_, f32> {
        self.view(i)
    }

    /// Adds `g` to the gradient of tensor `i`, over its leading region of
    /// `g`'s shape (a narrower path uses the first channels).
    fn add_grad<D: Dimension>(&mut self, i: usize, g: &Array<f32, D>) {
        let region: Vec<SliceInfoElem> = g
            .shape()
            .iter()
            .map(|&n| SliceInfoElem::Slice {
                start: 0,
                end: Some(n as isize),
                step: 1,
            })
            .collect();
        let t = &mut self.tensors[i];
        let grad = t
            .grad
            .get_or_insert_with(|| ArrayD::zeros(t.value.raw_dim()));
        let mut target = grad.slice_mut(region.as_slice());
        target += &g.view().into_dyn();
    }

    /// Drops every gradient.
    pub fn zero_grads(&mut self) {
        for t in &mut self.tensors {
            if let Some(g) = &mut t.grad {
                g.fill(0.0);
            }
        }
    }

    /// Applies one optimiser step to every trainable tensor that has a
    /// gradient or optimiser state. Weight decay applies only to tensors
    /// marked for it.
    pub fn step(&mut self, optimizer: &Optimizer, lr: f32) {
        for t in &mut self.tensors {
            if !t.trainable {
                continue;
            }
            let opt = if t.decay {
                *optimizer
            } else {
                without_decay(optimizer)
            };
            match &t.grad {
                Some(grad) => opt.step(lr, t.value.view_mut(), grad.view(), &mut t.state),
                // A tensor the current path does not use still moves with its
                // momentum and decay once it has optimiser state, so a run
                // resumed from a checkpoint (where no gradient buffer exists
                // yet) steps exactly like an uninterrupted one.
                None if !t.state.first.is_empty() => {
                    let zeros = ArrayD::zeros(t.value.raw_dim());
                    opt.step(lr, t.value.view_mut(), zeros.view(), &mut t.state);
                }
                None => {}
            }
        }
    }

    /// Total number of values of trainable tensors.
    pub fn trainable_values(&self) -> usize {
        self.tensors
            .iter()
            .filter(|t| t.trainable)
            .map(|t| t.value.len())
            .sum()
    }

    /// Index of a tensor by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.tensors.iter().position(|t| t.name == name)
    }
}

fn without_decay(o: &Optimizer) -> Optimizer {
    match *o {
        Optimizer::Sgd(mut s) => {
            s.weight_decay = 0.0;
            Optimizer::Sgd(s)
        }
        Optimizer::RmsProp(mut r) => {
            r.weight_decay = 0.0;
            Optimizer::RmsProp(r)
        }
    }
}

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Indices of a conv + BN unit's tensors.
#[derive(Clone, Debug)]
pub struct ConvBn {
    /// Conv weight `[cout_max, cin_max/groups, k, k]`.
    pub conv: usize,
    /// BN scale.
    pub gamma: usize,
    /// BN shift.
    pub beta: usize,
    /// BN running mean.
    pub mean: usize,
    /// BN running variance.
    pub var: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Depthwise (groups = channels) or dense.
    pub depthwise: bool,
}

/// Squeeze-excite tensors of a layer.
#[derive(Clone, Debug)]
pub struct SeWeights {
    /// Reduce conv `[s_max, mid_max, 1, 1]`.
    pub w_reduce: usize,
    /// Reduce bias `[s_max]`.
    pub b_reduce: usize,
    /// Expand conv `[mid_max, s_max, 1, 1]`.
    pub w_expand: usize,
    /// Expand bias `[mid_max]`.
    pub b_expand: usize,
}

/// Decision indices that steer one layer.
#[derive(Clone, Debug, Default)]
pub struct LayerDecisions {
    /// Kernel decision, if searched.
    pub kernel: Option<usize>,
    /// Squeeze-excite decision, if searched.
    pub se: Option<usize>,
    /// Skip decision, if searched.
    pub skip: Option<usize>,
}

/// Tensors of one searchable layer.
#[derive(Clone, Debug)]
pub struct LayerWeights {
    /// Bottleneck expand conv (shared by every kernel and expansion).
    pub expand: Option<ConvBn>,
    /// Depthwise conv per kernel value (bottleneck: at mid width; separable:
    /// at input width), in the order of the kernel decision's values.
    pub depthwise: Vec<ConvBn>,
    /// Squeeze-excite (bottleneck only).
    pub se: Option<SeWeights>,
    /// Project conv (bottleneck) or pointwise conv (separable).
    pub project: ConvBn,
    /// Which decisions steer the layer.
    pub decisions: LayerDecisions,
}

/// Tensors of the head.
#[derive(Clone, Debug)]
pub struct HeadWeights {
    /// 1×1 conv + BN before pooling.
    pub conv: ConvBn,
    /// Post-pool fully connected layer `(weight [out, in], bias)`.
    pub fc: Option<(usize, usize)>,
    /// Classifier `(weight [classes, in], bias)`.
    pub classifier: (usize, usize),
}

/// How BN normalises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnMode {
    /// Batch statistics (training and search, also on validation batches).
    Batch,
    /// Batch statistics, and the running statistics are updated.
    BatchUpdateRunning,
    /// Running statistics (stand-alone evaluation).
    Running,
}

/// One architecture plus the decisions that run all their values.
#[derive(Clone, Debug, PartialEq)]
pub struct PathPlan {
    /// The architecture (filters/expansion already set for filter warm-up).
    pub arch: Architecture,
    /// Per decision: run every value and average (kernel, SE, skip only).
    pub all_values: Vec<bool>,
    /// Keep only each all-values decision's input and recompute its
    /// branches in backward.
    pub rematerialize: bool,
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

/// A space whose supernet this engine cannot build yet.
#[derive(Debug, thiserror::Error)]
#[error(
    "space '{space}': decision '{decision}' searches which op a layer runs; the supernet does not train searched op choices yet (only kernel, expansion, width, squeeze-excite and skip), so a search would silently train bottleneck weights for every op: fix the layer's op in the space"
)]
pub struct UnsupportedSpace {
    /// The space.
    pub space: String,
    /// The op decision.
    pub decision: String,
}

/// Checks that every layer of `space` is one the supernet trains for real
/// (no searched op choice yet).
pub fn check_supported(space: &SearchSpace) -> Result<(), UnsupportedSpace> {
    for stage in &space.stages {
        for layer in &stage.layers {
            if let Param::Decision(name) = &layer.op {
                return Err(UnsupportedSpace {
                    space: space.name.clone(),
                    decision: name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The weight-sharing network of a space.
#[derive(Clone, Debug)]
pub struct Supernet {
    /// The space it was built for.
    pub space: SearchSpace,
    /// Every tensor.
    pub store: ParamStore,
    /// Stem conv + BN per kernel value.
    pub stem: Vec<ConvBn>,
    /// Stem kernel decision, if searched.
    pub stem_kernel_decision: Option<usize>,
    /// Every layer of the skeleton.
    pub layers: Vec<LayerWeights>,
    /// Head and classifier.
    pub head: HeadWeights,
    /// Overrides the BN momentum of running-statistics updates (weight of
    /// the old value); BN recalibration sets `k/(k+1)` for a plain average.
    pub bn_momentum: Option<f32>,
}

fn decision_of<T>(space: &SearchSpace, p: &Param<T>) -> Option<usize> {
    p.decision()
        .map(|n| space.decision_index(n).expect("validated"))
}

fn max_of(v: &[u32]) -> usize {
    *v.iter().max().expect("non-empty values") as usize
}

struct Builder<'a> {
    store: &'a mut ParamStore,
    rng: ChaCha8Rng,
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
            format!("{name}/weight"),
            &[cout, per_group, k, k],
            Init::He(fan_in),
            true,
            true,
        );
        let mut vec = |what: &str, init: f32, trainable: bool| {
            self.store.add(
                &mut self.rng,
                format!("{name}/bn/{what}"),
                &[cout],
                Init::Const(init),
                trainable,
                false,
            )
        };
        ConvBn {
            conv,
            gamma: vec("gamma", 1.0, true),
            beta: vec("beta", 0.0, true),
            mean: vec("running_mean", 0.0, false),
            var: vec("running_var", 1.0, false),
            kernel: k,
            depthwise,
        }
    }

    fn dense(&mut self, name: &str, out: usize, inp: usize) -> (usize, usize) {
        let w = self.store.add(
            &mut self.rng,
            format!("{name}/weight"),
            &[out, inp],
            Init::Uniform(inp),
            true,
            true,
        );
        let b = self.store.add(
            &mut self.rng,
            format!("{name}/bias"),
            &[out],
            Init::Const(0.0),
            true,
            false,
        );
        (w, b)
    }
}

impl Supernet {
    /// Builds the supernet of `space` with seeded initial weights.
    pub fn new(space: &SearchSpace, seed: u64) -> Self {
        let mut store = ParamStore::default();
        let mut b = Builder {
            store: &mut store,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        let cin0 = space.input.channels as usize;
        let stem_widths = space.int_values(&space.stem.filters);
        let stem = space
            .int_values(&space.stem.kernel)
            .iter()
            .map(|&k| {
                b.conv_bn(
                    &format!("stem/k{k}"),
                    max_of(&stem_widths),
                    cin0,
                    k as usize,
                    false,
                )
            })
            .collect();
        let mut layers = Vec::new();
        for (pos, layer) in space.layers() {
            let stage = &space.stages[pos.stage];
            let input = if pos.layer == 0 {
                space.stage_input_filters(pos.stage)
            } else {
                &stage.filters
            };
            let cins = space.int_values(input);
            let couts = space.int_values(&stage.filters);
            let (cin_max, cout_max) = (max_of(&cins), max_of(&couts));
            let name = format!("stage{}/layer{}", pos.stage + 1, pos.layer + 1);
            let kernels = space.int_values(&layer.kernel);
            let op = match &layer.op {
                Param::Fixed(op) => *op,
                Param::Decision(name) => panic!(
                    "layer searches its op ({name}): refused by check_supported before training"
                ),
            };
            let decisions = LayerDecisions {
                kernel: decision_of(space, &layer.kernel),
                se: decision_of(space, &layer.squeeze_excite),
                skip: decision_of(space, &layer.skip),
            };
            let weights = match op {
                LayerOp::Bottleneck => {
                    let mid_max = cins
                        .iter()
                        .flat_map(|&c| {
                            space
                                .int_values(&layer.expansion)
                                .into_iter()
                                .map(move |e| round_to_8(c as f64 * e as f64))
                        })
                        .max()
                        .expect("values") as usize;
                    let expand = b.conv_bn(&format!("{name}/expand"), mid_max, cin_max, 1, false);
                    let depthwise = kernels
                        .iter()
                        .map(|&k| {
                            b.conv_bn(&format!("{name}/dw{k}"), mid_max, mid_max, k as usize, true)
                        })
                        .collect();
                    let has_se = layer.squeeze_excite != Param::Fixed(false);
                    let se = has_se.then(|| {
                        let s_max = round_to_8(mid_max as f64 / 4.0) as usize;
                        let (w_reduce, b_reduce) =
                            b.dense(&format!("{name}/se/reduce"), s_max, mid_max);
                        let (w_expand, b_expand) =
                            b.dense(&format!("{name}/se/expand"), mid_max, s_max);
                        SeWeights {
                            w_reduce,
                            b_reduce,
                            w_expand,
                            b_expand,
                        }
                    });
                    let project =
                        b.conv_bn(&format!("{name}/project"), cout_max, mid_max, 1, false);
                    LayerWeights {
                        expand: Some(expand),
                        depthwise,
                        se,
                        project,
                        decisions,
                    }
                }
                LayerOp::Separable => {
                    let depthwise = kernels
                        .iter()
                        .map(|&k| {
                            b.conv_bn(&format!("{name}/dw{k}"), cin_max, cin_max, k as usize, true)
                        })
                        .collect();
                    let project =
                        b.conv_bn(&format!("{name}/pointwise"), cout_max, cin_max, 1, false);
                    LayerWeights {
                        expand: None,
                        depthwise,
                        se: None,
                        project,
                        decisions,
                    }
                }
            };
            layers.push(weights);
        }
        let head_in = max_of(&space.int_values(space.head_input_filters()));
        let head_max = max_of(&space.int_values(&space.head.filters));
        let conv = b.conv_bn("head/conv", head_max, head_in, 1, false);
        let mut features = head_max;
        let fc = space.head.post_pool_filters.as_ref().map(|p| {
            let out = max_of(&space.int_values(p));
            let fc = b.dense("head/fc", out, head_max);
            features = out;
            fc
        });
        let classifier = b.dense("classifier", space.input.classes as usize, features);
        // SE reduce/expand are stored as 2-d dense weights; reshape them to
        // the [out, in, 1, 1] conv layout the SE kernel expects.
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
        Supernet {
            space: space.clone(),
            store,
            stem,
            stem_kernel_decision: decision_of(space, &space.stem.kernel),
            layers,
            head: HeadWeights {
                conv,
                fc,
                classifier,
            },
            bn_momentum: None,
        }
    }
}

/// What a conv + BN + activation unit keeps for backward: its input, the
/// conv output (BN input), the BN cache and the BN output (activation input).
#[derive(Debug)]
pub struct UnitTape {
    params: Conv2dParams,
    act: Act,
    x: Array4<f32>,
    conv_out: Array4<f32>,
    bn: BatchNormCache,
    bn_out: Option<Array4<f32>>,
}

/// What an all-values (or single) choice over depthwise kernels keeps.
#[derive(Debug)]
enum KernelTape {
    One(usize, Box<UnitTape>),
    AllKept(Vec<UnitTape>),
    AllRemat(Array4<f32>),
}

/// What squeeze-excite keeps: its input and cache (or only the input under
/// rematerialization).
#[derive(Debug)]
enum SeTape {
    Off,
    On(Array4<f32>, SqueezeExciteCache),
    AllKept(Array4<f32>, SqueezeExciteCache),
    AllRemat(Array4<f32>),
}

/// What one non-skipped layer keeps.
#[derive(Debug)]
struct BodyTape {
    expand: Option<UnitTape>,
    kernel: KernelTape,
    se: SeTape,
    project: UnitTape,
    residual: bool,
}

/// What a layer keeps, by skip mode.
#[derive(Debug)]
enum LayerTape {
    Skipped,
    Body(Box<BodyTape>),
    AllKept(Box<BodyTape>),
    AllRemat(Array4<f32>),
}

/// What the head keeps.
#[derive(Debug)]
struct HeadTape {
    conv: UnitTape,
    hw: (usize, usize),
    fc: Option<(Array2<f32>, Array2<f32>)>,
    features: Array2<f32>,
}

/// Everything a forward pass keeps for backward.
#[derive(Debug)]
pub struct NetTape {
    stem: KernelTape,
    layers: Vec<LayerTape>,
    head: HeadTape,
}

/// Resolved widths of one layer for a plan.
#[derive(Clone, Copy, Debug)]
struct LayerDims {
    cin: usize,
    cout: usize,
    mid: usize,
    stride: usize,
    kernel_index: usize,
    se: bool,
    skipped: bool,
    residual: bool,
    act: Act,
    se_all: bool,
    kernel_all: bool,
    skip_all: bool,
}

fn act_of(a: tunas_shared::Activation) -> Act {
    match a {
        tunas_shared::Activation::Relu => Act::Relu,
        tunas_shared::Activation::Swish6 => Act::Swish6,
    }
}

impl Supernet {
    fn unit_forward(
        &mut self,
        u: &ConvBn,
        x: Array4<f32>,
        cout: usize,
        stride: usize,
        act: Act,
        mode: BnMode,
    ) -> (Array4<f32>, UnitTape) {
        let (_, cin, h, w) = x.dim();
        let params = Conv2dParams {
            cin,
            cout,
            kernel: u.kernel,
            stride,
            padding: u.kernel / 2,
            groups: if u.depthwise { cin } else { 1 },
            in_h: h,
            in_w: w,
        }
        .checked()
        .unwrap_or_else(|e| panic!("supernet built an impossible conv: {e}"));
        let per_group = if u.depthwise { 1 } else { cin };
        let conv_out = {
            let wt = self.store.v4(u.conv);
            let wt = wt.slice(s![..cout, ..per_group, .., ..]);
            conv2d(&params, x.view(), wt, None)
        };
        let bnp = BatchNormParams::new(cout).expect("positive channels");
        let gamma = self.store.v1(u.gamma).slice(s![..cout]).to_owned();
        let beta = self.store.v1(u.beta).slice(s![..cout]).to_owned();
        let (mut y, cache) = match mode {
            BnMode::Running => {
                let mean = self.store.v1(u.mean).slice(s![..cout]).to_owned();
                let var = self.store.v1(u.var).slice(s![..cout]).to_owned();
                let y = batch_norm_inference(
                    &bnp,
                    conv_out.view(),
                    gamma.view(),
                    beta.view(),
                    mean.view(),
                    var.view(),
                );
                // Eval passes keep no tape worth using; an empty cache marks it.
                let empty = BatchNormCache {
                    mean: Array1::zeros(0),
                    var: Array1::zeros(0),
                    inv_std: Array1::zeros(0),
                    count: 0,
                };
                (y, empty)
            }
            BnMode::Batch | BnMode::BatchUpdateRunning => {
                let (y, cache) = batch_norm_train(&bnp, conv_out.view(), gamma.view(), beta.view());
                if mode == BnMode::BatchUpdateRunning {
                    self.update_running(u, &bnp, cout, &cache);
                }
                (y, cache)
            }
        };
        let bn_out = if act == Act::Identity {
            None
        } else {
            let pre = copy4(y.view());
            act.forward_in_place(y.view_mut());
            Some(pre)
        };
        (
            y,
            UnitTape {
                params,
                act,
                x,
                conv_out,
                bn: cache,
                bn_out,
            },
        )
    }

    fn update_running(
        &mut self,
        u: &ConvBn,
        bnp: &BatchNormParams,
        c: usize,
        cache: &BatchNormCache,
    ) {
        let mut bnp = *bnp;
        if let Some(m) = self.bn_momentum {
            bnp.momentum = m;
        }
        let bnp = &bnp;
        let mut mean = self.store.tensors[u.mean]
            .value
            .view()
            .into_dimensionality::<Ix1>()
            .expect("1-d")
            .slice(s![..c])
            .to_owned();
        let mut var = self.store.tensors[u.var]
            .value
            .view()
            .into_dimensionality::<Ix1>()
            .expect("1-d")
            .slice(s![..c])
            .to_owned();
        batch_norm_update_running(bnp, mean.view_mut(), var.view_mut(), cache);
        let mut m = self.store.tensors[u.mean]
            .value
            .view_mut()
            .into_dimensionality::<Ix1>()
            .expect("1-d");
        m.slice_mut(s![..c]).assign(&mean);
        let mut v = self.store.tensors[u.var]
            .value
            .view_mut()
            .into_dimensionality::<Ix1>()
            .expect("1-d");
        v.slice_mut(s![..c]).assign(&var);
    }

    fn unit_backward(&mut self, u: &ConvBn, tape: UnitTape, dy: Array4<f32>) -> Array4<f32> {
        let UnitTape {
            params,
            act,
            x,
            conv_out,
            bn,
            bn_out,
        } = tape;
        let d_bn = match &bn_out {
            Some(pre) => act.backward(pre.view(), dy.view()),
            None => dy,
        };
        let cout = params.cout;
        let bnp = BatchNormParams::new(cout).expect("positive channels");
        let gamma = self.store.v1(u.gamma).slice(s![..cout]).to_owned();
        let g = batch_norm_backward(&bnp, conv_out.view(), d_bn.view(), gamma.view(), &bn);
        drop(conv_out);
        self.store.add_grad(u.gamma, &g.dgamma);
        self.store.add_grad(u.beta, &g.dbeta);
        let dw = conv2d_backward_weight(&params, x.view(), g.dx.view());
        self.store.add_grad(u.conv, &dw);
        let per_group = if u.depthwise { 1 } else { params.cin };
        let wt = self.store.v4(u.conv);
        let wt = wt.slice(s![..cout, ..per_group, .., ..]);
        conv2d_backward_input(&params, g.dx.view(), wt)
    }

    /// Runs the depthwise choice: one kernel, or every kernel averaged.
    #[allow(clippy::too_many_arguments)]
    fn kernel_forward(
        &mut self,
        units: &[ConvBn],
        x: Array4<f32>,
        cout: usize,
        stride: usize,
        act: Act,
        mode: BnMode,
        chosen: usize,
        all: bool,
        remat: bool,
    ) -> (Array4<f32>, KernelTape) {
        if !all || units.len() == 1 {
            let (y, t) = self.unit_forward(&units[chosen], x, cout, stride, act, mode);
            return (y, KernelTape::One(chosen, Box::new(t)));
        }
        let n = units.len() as f32;
        let mut sum: Option<Array4<f32>> = None;
        let mut tapes = Vec::new();
        for u in units {
            let (y, t) = self.unit_forward(u, copy4(x.view()), cout, stride, act, mode);
            match &mut sum {
                None => sum = Some(y),
                Some(s) => residual_add_assign(s.view_mut(), y.view()),
            }
            if !remat {
                tapes.push(t);
            }
        }
        let y = scaled4(sum.expect("at least one kernel").view(), 1.0 / n);
        let tape = if remat {
            KernelTape::AllRemat(x)
        } else {
            KernelTape::AllKept(tapes)
        };
        (y, tape)
    }

    #[allow(clippy::too_many_arguments)]
    fn kernel_backward(
        &mut self,
        units: &[ConvBn],
        tape: KernelTape,
        dy: Array4<f32>,
        cout: usize,
        stride: usize,
        act: Act,
    ) -> Array4<f32> {
        match tape {
            KernelTape::One(i, t) => self.unit_backward(&units[i], *t, dy),
            KernelTape::AllKept(tapes) => {
                let scaled = scaled4(dy.view(), 1.0 / tapes.len() as f32);
                let mut dx: Option<Array4<f32>> = None;
                for (u, t) in units.iter().zip(tapes) {
                    let d = self.unit_backward(u, t, copy4(scaled.view()));
                    match &mut dx {
                        None => dx = Some(d),
                        Some(s) => residual_add_assign(s.view_mut(), d.view()),
                    }
                }
                dx.expect("at least one kernel")
            }
            KernelTape::AllRemat(x) => {
                let scaled = scaled4(dy.view(), 1.0 / units.len() as f32);
                let mut dx: Option<Array4<f32>> = None;
                for u in units {
                    // Recompute this branch with its caches, then free them.
                    let (_, t) =
                        self.unit_forward(u, copy4(x.view()), cout, stride, act, BnMode::Batch);
                    let d = self.unit_backward(u, t, copy4(scaled.view()));
                    match &mut dx {
                        None => dx = Some(d),
                        Some(s) => residual_add_assign(s.view_mut(), d.view()),
                    }
                }
                dx.expect("at least one kernel")
            }
        }
    }

    fn se_params(
        &self,
        se: &SeWeights,
        mid: usize,
    ) -> (
        SqueezeExciteParams,
        Array4<f32>,
        Array1<f32>,
        Array4<f32>,
        Array1<f32>,
    ) {
        let s_width = round_to_8(mid as f64 / 4.0) as usize;
        let p = SqueezeExciteParams::new(mid, s_width).expect("positive widths");
        let wr = self
            .store
            .v4(se.w_reduce)
            .slice(s![..s_width, ..mid, .., ..])
            .to_owned();
        let br = self.store.v1(se.b_reduce).slice(s![..s_width]).to_owned();
        let we = self
            .store
            .v4(se.w_expand)
            .slice(s![..mid, ..s_width, .., ..])
            .to_owned();
        let be = self.store.v1(se.b_expand).slice(s![..mid]).to_owned();
        (p, wr, br, we, be)
    }

    fn se_forward(
        &self,
        se: &SeWeights,
        x: Array4<f32>,
        on: bool,
        all: bool,
        remat: bool,
    ) -> (Array4<f32>, SeTape) {
        if !on && !all {
            return (x, SeTape::Off);
        }
        let mid = x.dim().1;
        let (p, wr, br, we, be) = self.se_params(se, mid);
        let (y, cache) = squeeze_excite(&p, x.view(), wr.view(), br.view(), we.view(), be.view());
        if !all {
            return (y, SeTape::On(x, cache));
        }
        let mut avg = y;
        avg += &x;
        avg.mapv_inplace(|v| v * 0.5);
        let tape = if remat {
            SeTape::AllRemat(x)
        } else {
            SeTape::AllKept(x, cache)
        };
        (avg, tape)
    }

    fn se_backward(&mut self, se: &SeWeights, tape: SeTape, dy: Array4<f32>) -> Array4<f32> {
        let (x, cache, half) = match tape {
            SeTape::Off => return dy,
            SeTape::On(x, c) => (x, c, false),
            SeTape::AllKept(x, c) => (x, c, true),
            SeTape::AllRemat(x) => {
                let mid = x.dim().1;
                let (p, wr, br, we, be) = self.se_params(se, mid);
                let (_, c) =
                    squeeze_excite(&p, x.view(), wr.view(), br.view(), we.view(), be.view());
                (x, c, true)
            }
        };
        let mid = x.dim().1;
        let (p, wr, _, we, _) = self.se_params(se, mid);
        let d_se = if half { dy.mapv(|v| v * 0.5) } else { dy };
        let g = squeeze_excite_backward(&p, x.view(), d_se.view(), wr.view(), we.view(), &cache);
        self.store.add_grad(se.w_reduce, &g.dw_reduce);
        self.store.add_grad(se.b_reduce, &g.db_reduce);
        self.store.add_grad(se.w_expand, &g.dw_expand);
        self.store.add_grad(se.b_expand, &g.db_expand);
        let mut dx = g.dx;
        if half {
            // The identity half of the average.
            dx.scaled_add(1.0, &d_se);
        }
        dx
    }

    fn body_forward(
        &mut self,
        li: usize,
        x: Array4<f32>,
        d: &LayerDims,
        mode: BnMode,
        remat: bool,
    ) -> (Array4<f32>, BodyTape) {
        let lw = self.layers[li].clone();
        let input_for_residual = if d.residual {
            Some(copy4(x.view()))
        } else {
            None
        };
        let (h, expand) = match &lw.expand {
            Some(e) => {
                let (h, t) = self.unit_forward(e, x, d.mid, 1, d.act, mode);
                (h, Some(t))
            }
            None => (x, None),
        };
        let dw_width = if lw.expand.is_some() { d.mid } else { d.cin };
        let (h, kernel) = self.kernel_forward(
            &lw.depthwise,
            h,
            dw_width,
            d.stride,
            d.act,
            mode,
            d.kernel_index,
            d.kernel_all,
            remat,
        );
        let (h, se) = match &lw.se {
            Some(se) => self.se_forward(se, h, d.se, d.se_all, remat),
            None => (h, SeTape::Off),
        };
        let (mut y, project) = self.unit_forward(&lw.project, h, d.cout, 1, Act::Identity, mode);
        if let Some(r) = input_for_residual {
            residual_add_assign(y.view_mut(), r.view());
        }
        (
            y,
            BodyTape {
                expand,
                kernel,
                se,
                project,
                residual: d.residual,
            },
        )
    }

    fn body_backward(
        &mut self,
        li: usize,
        tape: BodyTape,
        dy: Array4<f32>,
        d: &LayerDims,
    ) -> Array4<f32> {
        let lw = self.layers[li].clone();
        let residual_grad = if tape.residual {
            Some(copy4(dy.view()))
        } else {
            None
        };
        let dh = self.unit_backward(&lw.project, tape.project, dy);
        let dh = match &lw.se {
            Some(se) => self.se_backward(se, tape.se, dh),
            None => dh,
        };
        let dw_width = if lw.expand.is_some() { d.mid } else { d.cin };
        let dh = self.kernel_backward(&lw.depthwise, tape.kernel, dh, dw_width, d.stride, d.act);
        let mut dx = match (&lw.expand, tape.expand) {
            (Some(e), Some(t)) => self.unit_backward(e, t, dh),
            _ => dh,
        };
        if let Some(r) = residual_grad {
            residual_add_assign(dx.view_mut(), r.view());
        }
        dx
    }

    fn layer_forward(
        &mut self,
        li: usize,
        x: Array4<f32>,
        d: &LayerDims,
        mode: BnMode,
        remat: bool,
    ) -> (Array4<f32>, LayerTape) {
        if d.skip_all {
            let (y, body) = self.body_forward(li, x.clone(), d, mode, remat);
            let mut avg = y;
            avg += &x;
            avg.mapv_inplace(|v| v * 0.5);
            let tape = if remat {
                LayerTape::AllRemat(x)
            } else {
                LayerTape::AllKept(Box::new(body))
            };
            return (avg, tape);
        }
        if d.skipped {
            return (x, LayerTape::Skipped);
        }
        let (y, body) = self.body_forward(li, x, d, mode, remat);
        (y, LayerTape::Body(Box::new(body)))
    }

    fn layer_backward(
        &mut self,
        li: usize,
        tape: LayerTape,
        dy: Array4<f32>,
        d: &LayerDims,
    ) -> Array4<f32> {
        match tape {
            LayerTape::Skipped => dy,
            LayerTape::Body(b) => self.body_backward(li, *b, dy, d),
            LayerTape::AllKept(b) => {
                let half = dy.mapv(|v| v * 0.5);
                let mut dx = self.body_backward(li, *b, half.clone(), d);
                dx += &half;
                dx
            }
            LayerTape::AllRemat(x) => {
                let half = dy.mapv(|v| v * 0.5);
                // Recompute this one layer keeping every branch's tape (no
                // nested rematerialization): recomputing the kernel and SE
                // branches a second time inside would triple their cost,
                // and only this layer's tapes are alive at once.
                let (_, b) = self.body_forward(li, x, d, BnMode::Batch, false);
                let mut dx = self.body_backward(li, b, half.clone(), d);
                dx += &half;
                dx
            }
        }
    }

    fn plan_dims(&self, plan: &PathPlan) -> (usize, Vec<LayerDims>, usize, usize, Option<usize>) {
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
        (
            net.stem_filters as usize,
            layers,
            net.head_cin as usize,
            net.head_filters as usize,
            net.post_pool_filters.map(|v| v as usize),
        )
    }

    /// Forward pass of `plan` on an NCHW batch. With `keep_tape` the result
    /// carries what [`Supernet::backward`] needs.
    ///
    /// # Shapes
    /// `x: [n, channels, height, width]` of the space's input → logits `[n, classes]`.
    pub fn forward(
        &mut self,
        x: Array4<f32>,
        plan: &PathPlan,
        mode: BnMode,
        keep_tape: bool,
    ) -> (Array2<f32>, Option<NetTape>) {
        let (stem_filters, dims, _, head_filters, post) = self.plan_dims(plan);
        let stem_units = self.stem.clone();
        let stem_index = self
            .stem_kernel_decision
            .map_or(0, |i| plan.arch.indices[i]);
        let stem_all = self
            .stem_kernel_decision
            .is_some_and(|i| plan.all_values[i]);
        let stem_act = act_of(self.space.stem.activation);
        let (mut h, stem) = self.kernel_forward(
            &stem_units,
            x,
            stem_filters,
            self.space.stem.stride as usize,
            stem_act,
            mode,
            stem_index,
            stem_all,
            plan.rematerialize,
        );
        let mut layer_tapes = Vec::with_capacity(dims.len());
        for (li, d) in dims.iter().enumerate() {
            let (y, t) = self.layer_forward(li, h, d, mode, plan.rematerialize);
            h = y;
            if keep_tape {
                layer_tapes.push(t);
            }
        }
        let head = self.head.clone();
        let head_act = act_of(self.space.head.activation);
        let (hc, conv_tape) = self.unit_forward(&head.conv, h, head_filters, 1, head_act, mode);
        let hw = (hc.dim().2, hc.dim().3);
        let pooled = global_avg_pool(hc.view());
        drop(hc);
        let (features, fc) = match (head.fc, post) {
            (Some((w, b)), Some(out)) => {
                let lp = LinearParams::new(head_filters, out).expect("positive");
                let wv = self.store.v2(w).slice(s![..out, ..head_filters]).to_owned();
                let bv = self.store.v1(b).slice(s![..out]).to_owned();
                let z = linear(&lp, pooled.view(), wv.view(), Some(bv.view()));
                let act = act_of(
                    self.space
                        .head
                        .post_pool_activation
                        .unwrap_or(tunas_shared::Activation::Relu),
                );
                let f = act.forward(z.view());
                (f, Some((pooled, z)))
            }
            _ => (pooled, None),
        };
        let (cw, cb) = head.classifier;
        let classes = self.space.input.classes as usize;
        let nf = features.dim().1;
        let lp = LinearParams::new(nf, classes).expect("positive");
        let wv = self.store.v2(cw).slice(s![..classes, ..nf]).to_owned();
        let logits = linear(&lp, features.view(), wv.view(), Some(self.store.v1(cb)));
        let tape = keep_tape.then(|| NetTape {
            stem,
            layers: layer_tapes,
            head: HeadTape {
                conv: conv_tape,
                hw,
                fc,
                features,
            },
        });
        (logits, tape)
    }

    /// Backward pass: accumulates every parameter gradient of the path from
    /// the logits' gradient.
    ///
    /// # Shapes
    /// `dlogits: [n, classes]`.
    pub fn backward(&mut self, tape: NetTape, plan: &PathPlan, dlogits: Array2<f32>) {
        let (stem_filters, dims, _, head_filters, post) = self.plan_dims(plan);
        let head = self.head.clone();
        let NetTape {
            stem,
            layers,
            head: ht,
        } = tape;
        let (cw, cb) = head.classifier;
        let classes = self.space.input.classes as usize;
        let nf = ht.features.dim().1;
        let lp = LinearParams::new(nf, classes).expect("positive");
        let wv = self.store.v2(cw).slice(s![..classes, ..nf]).to_owned();
        self.store.add_grad(
            cw,
            &linear_backward_weight(&lp, ht.features.view(), dlogits.view()),
        );
        self.store
            .add_grad(cb, &linear_backward_bias(dlogits.view()));
        let mut dfeat = linear_backward_input(&lp, dlogits.view(), wv.view());
        if let (Some((w, b)), Some(out), Some((pooled, z))) = (head.fc, post, ht.fc) {
            let act = act_of(
                self.space
                    .head
                    .post_pool_activation
                    .unwrap_or(tunas_shared::Activation::Relu),
            );
            let dz = act.backward(z.view(), dfeat.view());
            let lp = LinearParams::new(head_filters, out).expect("positive");
            let wv = self.store.v2(w).slice(s![..out, ..head_filters]).to_owned();
            self.store
                .add_grad(w, &linear_backward_weight(&lp, pooled.view(), dz.view()));
            self.store.add_grad(b, &linear_backward_bias(dz.view()));
            dfeat = linear_backward_input(&lp, dz.view(), wv.view());
        }
        let dhc = global_avg_pool_backward(dfeat.view(), ht.hw.0, ht.hw.1);
        let mut dh = self.unit_backward(&head.conv, ht.conv, dhc);
        for (li, t) in layers.into_iter().enumerate().rev() {
            dh = self.layer_backward(li, t, dh, &dims[li]);
        }
        let stem_units = self.stem.clone();
        let stem_act = act_of(self.space.stem.activation);
        let _ = self.kernel_backward(
            &stem_units,
            stem,
            dh,
            stem_filters,
            self.space.stem.stride as usize,
            stem_act,
        );
    }
}

/// Loss and accuracy of one batch after a forward and backward pass; the
/// gradients are left in the store (zeroed first).
pub fn loss_and_gradients(
    net: &mut Supernet,
    x: Array4<f32>,
    labels: &[usize],
    plan: &PathPlan,
    label_smoothing: f32,
) -> (f32, f32) {
    net.store.zero_grads();
    let (logits, tape) = net.forward(x, plan, BnMode::Batch, true);
    let (loss, dlogits) =
        crate::layers::loss::softmax_cross_entropy(logits.view(), labels, label_smoothing);
    let acc = crate::layers::loss::accuracy(logits.view(), labels);
    net.backward(tape.expect("tape was kept"), plan, dlogits);
    (loss, acc)
}

/// One training step: forward, backward, optimiser update.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    net: &mut Supernet,
    x: Array4<f32>,
    labels: &[usize],
    plan: &PathPlan,
    optimizer: &Optimizer,
    lr: f32,
    label_smoothing: f32,
    update_running: bool,
) -> (f32, f32) {
    net.store.zero_grads();
    let mode = if update_running {
        BnMode::BatchUpdateRunning
    } else {
        BnMode::Batch
    };
    let (logits, tape) = net.forward(x, plan, mode, true);
    let (loss, dlogits) =
        crate::layers::loss::softmax_cross_entropy(logits.view(), labels, label_smoothing);
    let acc = crate::layers::loss::accuracy(logits.view(), labels);
    net.backward(tape.expect("tape was kept"), plan, dlogits);
    net.store.step(optimizer, lr);
    (loss, acc)
}

/// Accuracy of a path on a batch (no gradients).
pub fn evaluate(
    net: &mut Supernet,
    x: Array4<f32>,
    labels: &[usize],
    plan: &PathPlan,
    mode: BnMode,
) -> f32 {
    let (logits, _) = net.forward(x, plan, mode, false);
    crate::layers::loss::accuracy(logits.view(), labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunas_shared::builtin_space;

    fn batch(n: usize, seed: u64) -> (Array4<f32>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = Array4::from_shape_fn((n, 1, 28, 28), |_| rng.random_range(-1.0f32..1.0));
        let labels = (0..n).map(|i| i % 10).collect();
        (x, labels)
    }

    fn loss_only(net: &mut Supernet, x: &Array4<f32>, labels: &[usize], plan: &PathPlan) -> f64 {
        let (logits, _) = net.forward(x.clone(), plan, BnMode::Batch, false);
        crate::layers::loss::softmax_cross_entropy(logits.view(), labels, 0.1).0 as f64
    }

    /// Directional finite differences per tensor: the derivative of the
    /// loss along a random unit direction v restricted to one tensor,
    /// by central differences with Richardson extrapolation (h and h/2, so
    /// the O(h²) curvature term cancels), against ⟨∇L, v⟩.
    fn check_gradients(plan: &PathPlan, seed: u64) {
        let space = builtin_space("tiny28").unwrap();
        let mut net = Supernet::new(&space, seed);
        let (x, labels) = batch(8, seed);
        loss_and_gradients(&mut net, x.clone(), &labels, plan, 0.1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
        let mut checked = 0;
        let mut failures = Vec::new();
        let used: Vec<usize> = (0..net.store.tensors.len())
            .filter(|&i| {
                let t = &net.store.tensors[i];
                t.trainable && t.grad.as_ref().is_some_and(|g| g.iter().any(|v| *v != 0.0))
            })
            .collect();
        // About 30 tensors spread over the network, the stem and the
        // classifier always among them, keep the test quick.
        let stride = used.len().div_ceil(30).max(1);
        let picked: Vec<usize> = used
            .iter()
            .enumerate()
            .filter(|(k, _)| k % stride == 0 || *k == used.len() - 1)
            .map(|(_, &i)| i)
            .collect();
        for i in picked {
            let grad = net.store.tensors[i]
                .grad
                .clone()
                .expect("picked tensors have grads");
            // Only the entries the path uses (non-zero gradient) move.
            let mut v: ArrayD<f32> = grad.mapv(|g| {
                if g != 0.0 {
                    rng.random_range(-1.0f32..1.0)
                } else {
                    0.0
                }
            });
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.mapv_inplace(|x| x / norm);
            let analytic: f64 = grad
                .iter()
                .zip(v.iter())
                .map(|(g, v)| (*g as f64) * (*v as f64))
                .sum();
            let original = net.store.tensors[i].value.clone();
            let mut central = |h: f32| {
                net.store.tensors[i].value = &original + &(&v * h);
                let plus = loss_only(&mut net, &x, &labels, plan);
                net.store.tensors[i].value = &original - &(&v * h);
                let minus = loss_only(&mut net, &x, &labels, plan);
                (plus - minus) / (2.0 * h as f64)
            };
            let h = 4e-3;
            let numeric = (4.0 * central(h / 2.0) - central(h)) / 3.0;
            net.store.tensors[i].value = original;
            let tolerance = 0.05 * analytic.abs().max(numeric.abs()) + 1e-3;
            if (analytic - numeric).abs() > tolerance {
                failures.push(format!(
                    "{}: analytic {analytic:.6} vs numeric {numeric:.6}",
                    net.store.tensors[i].name
                ));
            }
            checked += 1;
        }
        assert!(
            failures.is_empty(),
            "{} of {checked} tensors disagree:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(checked >= 25, "only {checked} tensors checked");
    }

    #[test]
    fn running_statistics_from_one_batch_reproduce_batch_mode() {
        // With momentum 0 the running statistics become the batch's own
        // (variance Bessel-corrected), so Running mode on that batch gives
        // Batch mode's logits up to that correction.
        let space = builtin_space("tiny28").unwrap();
        for spec in ["largest", "random:3"] {
            let arch = Architecture::parse_spec(&space, spec).unwrap();
            let mut net = Supernet::new(&space, 1);
            let (x, _) = batch(16, 2);
            let plan = PathPlan::single(arch);
            net.bn_momentum = Some(0.0);
            let _ = net.forward(x.clone(), &plan, BnMode::BatchUpdateRunning, false);
            net.bn_momentum = None;
            let (batch_logits, _) = net.forward(x.clone(), &plan, BnMode::Batch, false);
            let (running_logits, _) = net.forward(x, &plan, BnMode::Running, false);
            let scale = batch_logits.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let diff = (&batch_logits - &running_logits)
                .iter()
                .fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(
                diff < 0.05 * scale,
                "{spec}: max diff {diff} vs scale {scale}"
            );
        }
    }

    #[test]
    fn largest_path_gradients_match_finite_differences() {
        let space = builtin_space("tiny28").unwrap();
        check_gradients(&PathPlan::single(Architecture::largest(&space)), 5);
    }

    #[test]
    fn single_path_gradients_match_finite_differences() {
        let space = builtin_space("tiny28").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut arch = Architecture::sample_uniform(&space, &mut rng);
        // No skipped layers, mixed widths, SE somewhere.
        for (i, d) in space.decisions.iter().enumerate() {
            if d.kind == tunas_shared::DecisionKind::Skip {
                arch.indices[i] = 0;
            }
        }
        check_gradients(&PathPlan::single(arch), 5);
    }

    #[test]
    fn all_values_gradients_match_finite_differences_and_remat_changes_nothing() {
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let all: Vec<bool> = space
            .decisions
            .iter()
            .map(|d| {
                matches!(
                    d.kind,
                    tunas_shared::DecisionKind::Kernel
                        | tunas_shared::DecisionKind::SqueezeExcite
                        | tunas_shared::DecisionKind::Skip
                )
            })
            .collect();
        let remat = PathPlan {
            arch: arch.clone(),
            all_values: all.clone(),
            rematerialize: true,
        };
        check_gradients(&remat, 9);
        let kept = PathPlan {
            rematerialize: false,
            ..remat.clone()
        };
        let grads = |plan: &PathPlan| {
            let mut net = Supernet::new(&space, 3);
            let (x, labels) = batch(4, 3);
            let loss = loss_and_gradients(&mut net, x, &labels, plan, 0.1).0;
            let g: Vec<Option<ArrayD<f32>>> =
                net.store.tensors.iter().map(|t| t.grad.clone()).collect();
            (loss, g)
        };
        assert_eq!(grads(&remat), grads(&kept));
    }
}
