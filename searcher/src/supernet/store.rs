//! The supernet's tensors: values, gradients and optimiser state, by index.

use ndarray::{
    Array, ArrayD, ArrayView, ArrayView1, ArrayView2, ArrayView4, ArrayViewMut1, Dimension,
    SliceInfoElem,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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
    pub(crate) grad: Option<ArrayD<f32>>,
    /// Whether an optimiser updates it (BN running statistics are not).
    pub(crate) trainable: bool,
    /// Whether weight decay applies (conv and linear weights).
    pub(crate) decay: bool,
    /// Optimiser state.
    pub(crate) state: ParamState,
}

/// All tensors of a supernet, addressed by index.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ParamStore {
    /// The tensors, in creation order.
    pub tensors: Vec<ParamTensor>,
}

/// How a new tensor is initialised.
#[derive(Clone, Copy, Debug)]
pub(super) enum Init {
    /// He normal with this fan-in.
    He(usize),
    /// Uniform ±1/sqrt(fan_in).
    Uniform(usize),
    /// A constant.
    Const(f32),
}

impl ParamStore {
    pub(super) fn add(
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

    /// The region of tensor `i` a path of `widths` uses: the first
    /// `widths[a]` entries along each leading axis `a`, the later axes whole
    /// (a conv's kernel axes).
    fn region_of(&self, i: usize, widths: &[usize]) -> Vec<SliceInfoElem> {
        let mut shape = self.tensors[i].value.shape().to_vec();
        shape[..widths.len()].copy_from_slice(widths);
        leading_region(&shape)
    }

    /// Tensor `i`'s region for `widths` as a `D`-dimensional view.
    fn view<D: Dimension>(&self, i: usize, widths: &[usize]) -> ArrayView<'_, f32, D> {
        let region = self.region_of(i, widths);
        let t = &self.tensors[i];
        t.value
            .slice(region.as_slice())
            .into_dimensionality::<D>()
            .unwrap_or_else(|_| panic!("tensor '{}' has shape {:?}", t.name, t.value.shape()))
    }

    /// The first `cout` output and `cin` input channels of conv weight `i`.
    pub(super) fn v4(&self, i: usize, cout: usize, cin: usize) -> ArrayView4<'_, f32> {
        self.view(i, &[cout, cin])
    }

    /// The first `rows` rows and `cols` columns of matrix `i`.
    pub(super) fn v2(&self, i: usize, rows: usize, cols: usize) -> ArrayView2<'_, f32> {
        self.view(i, &[rows, cols])
    }

    /// The first `n` values of vector `i`.
    pub(super) fn v1(&self, i: usize, n: usize) -> ArrayView1<'_, f32> {
        self.view(i, &[n])
    }

    /// The first `n` values of vector `i`, for writing.
    pub(super) fn v1_mut(&mut self, i: usize, n: usize) -> ArrayViewMut1<'_, f32> {
        let region = self.region_of(i, &[n]);
        let t = &mut self.tensors[i];
        let shape = t.value.shape().to_vec();
        t.value
            .slice_mut(region.as_slice())
            .into_dimensionality()
            .unwrap_or_else(|_| panic!("tensor '{}' has shape {shape:?}, not 1-d", t.name))
    }

    /// Adds `g` to the gradient of tensor `i`, over its leading region of
    /// `g`'s shape (a narrower path uses the first channels).
    pub(super) fn add_grad<D: Dimension>(&mut self, i: usize, g: &Array<f32, D>) {
        let region = leading_region(g.shape());
        let t = &mut self.tensors[i];
        let grad = t
            .grad
            .get_or_insert_with(|| ArrayD::zeros(t.value.raw_dim()));
        let mut target = grad.slice_mut(region.as_slice());
        target += &g.view().into_dyn();
    }

    /// Drops every gradient.
    pub(crate) fn zero_grads(&mut self) {
        for t in &mut self.tensors {
            if let Some(g) = &mut t.grad {
                g.fill(0.0);
            }
        }
    }

    /// Applies one optimiser step to every trainable tensor that has a
    /// gradient or optimiser state. Weight decay applies only to tensors
    /// marked for it.
    pub(crate) fn step(&mut self, optimizer: &Optimizer, lr: f32) {
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

/// The slice of a tensor's leading `shape` region (first channels of every
/// axis): how a narrower path, or the exporter, takes its part of a
/// widest-shape tensor.
pub(crate) fn leading_region(shape: &[usize]) -> Vec<SliceInfoElem> {
    shape
        .iter()
        .map(|&n| SliceInfoElem::Slice {
            start: 0,
            end: Some(n as isize),
            step: 1,
        })
        .collect()
}
