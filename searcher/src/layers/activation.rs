//! Element-wise activations: ReLU and swish6 (hard swish).
//!
//! Each works on arrays of any dimension. What backward needs:
//!
//! - ReLU: the forward input *or* output (`x > 0` ⇔ `relu(x) > 0`);
//! - swish6: the forward input.
//!
//! Nothing else is kept. At the kinks (ReLU at 0, swish6 at ±3) the
//! gradient is that of the right-hand piece for ReLU (0 at exactly 0) and of
//! the middle piece for swish6.

use ndarray::{Array, ArrayView, ArrayViewMut, Dimension, Zip};
use serde::{Deserialize, Serialize};

use rayon::prelude::*;

use super::{PAR_MIN_ELEMENTS, is_serial};

/// An activation chosen at run time (one per stage in the search spaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    /// `x`, for layers without an activation (e.g. a bottleneck's projection).
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// Hard swish, `x · relu6(x + 3) / 6`.
    Swish6,
}

impl Activation {
    /// Applies the activation in place.
    pub fn forward_in_place<D: Dimension>(self, x: ArrayViewMut<'_, f32, D>) {
        match self {
            Activation::Identity => {}
            Activation::Relu => map_in_place(x, relu_scalar),
            Activation::Swish6 => map_in_place(x, swish6_scalar),
        }
    }

    /// Returns the activation of `x`, written once into a new array (the
    /// same values as [`Self::forward_in_place`] on a copy, without the
    /// copy's extra pass).
    pub fn forward<D: Dimension>(self, x: ArrayView<'_, f32, D>) -> Array<f32, D> {
        match self {
            Activation::Identity => x.to_owned(),
            Activation::Relu => map_collect(x, relu_scalar),
            Activation::Swish6 => map_collect(x, swish6_scalar),
        }
    }

    /// [`Self::backward`] written over `dy`: the same values, without a new
    /// buffer.
    pub fn backward_in_place<D: Dimension>(
        self,
        x: ArrayView<'_, f32, D>,
        dy: ArrayViewMut<'_, f32, D>,
    ) {
        match self {
            Activation::Identity => {}
            Activation::Relu => zip_in_place(x, dy, relu_grad),
            Activation::Swish6 => zip_in_place(x, dy, swish6_grad),
        }
    }

    /// Gradient w.r.t. the input, from the forward *input* `x` and the output
    /// grad `dy`.
    ///
    /// # Shapes
    /// `x` and `dy` have the same shape, which the result has too.
    pub fn backward<D: Dimension>(
        self,
        x: ArrayView<'_, f32, D>,
        dy: ArrayView<'_, f32, D>,
    ) -> Array<f32, D> {
        match self {
            Activation::Identity => dy.to_owned(),
            Activation::Relu => relu_backward(x, dy),
            Activation::Swish6 => swish6_backward(x, dy),
        }
    }
}

#[inline(always)]
pub(crate) fn relu_scalar(v: f32) -> f32 {
    v.max(0.0)
}

#[inline(always)]
pub(crate) fn swish6_scalar(v: f32) -> f32 {
    v * (v + 3.0).clamp(0.0, 6.0) * (1.0 / 6.0)
}

#[inline(always)]
fn swish6_grad_scalar(v: f32) -> f32 {
    if v < -3.0 {
        0.0
    } else if v > 3.0 {
        1.0
    } else {
        (2.0 * v + 3.0) * (1.0 / 6.0)
    }
}

/// Elements per task of the parallel element-wise passes.
const CHUNK: usize = PAR_MIN_ELEMENTS / 4;

/// Whether an element-wise pass over `len` elements stays on this thread.
fn serial_for(len: usize) -> bool {
    is_serial() || len < PAR_MIN_ELEMENTS
}

// Contiguous arrays run as one slice (vectorised, CHUNK elements a task);
// ndarray's Zip walks the innermost axis (7–28 floats here) and was 2–2.5×
// slower on these shapes (`benches/kernels.rs`, `activation`).

fn map_in_place<D: Dimension>(mut x: ArrayViewMut<'_, f32, D>, f: impl Fn(f32) -> f32 + Sync) {
    let serial = serial_for(x.len());
    if let Some(xs) = x.as_slice_mut() {
        if serial {
            xs.iter_mut().for_each(|v| *v = f(*v));
        } else {
            xs.par_chunks_mut(CHUNK)
                .for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
        }
    } else if serial {
        x.mapv_inplace(f);
    } else {
        Zip::from(&mut x).par_for_each(|v| *v = f(*v));
    }
}

fn map_collect<D: Dimension>(
    x: ArrayView<'_, f32, D>,
    f: impl Fn(f32) -> f32 + Sync + Send,
) -> Array<f32, D> {
    let serial = serial_for(x.len());
    if let Some(xs) = x.as_slice() {
        let data: Vec<f32> = if serial {
            xs.iter().map(|&v| f(v)).collect()
        } else {
            xs.par_iter().with_min_len(CHUNK).map(|&v| f(v)).collect()
        };
        return Array::from_shape_vec(x.raw_dim(), data).expect("same length as the input");
    }
    let zip = Zip::from(&x);
    if serial {
        zip.map_collect(|&v| f(v))
    } else {
        zip.par_map_collect(|&v| f(v))
    }
}

fn zip_in_place<D: Dimension>(
    x: ArrayView<'_, f32, D>,
    mut dy: ArrayViewMut<'_, f32, D>,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) {
    assert_eq!(x.shape(), dy.shape(), "activation backward: shapes differ");
    let serial = serial_for(x.len());
    if let (Some(xs), Some(gs)) = (x.as_slice(), dy.as_slice_mut()) {
        if serial {
            gs.iter_mut().zip(xs).for_each(|(g, &u)| *g = f(u, *g));
        } else {
            gs.par_chunks_mut(CHUNK)
                .zip(xs.par_chunks(CHUNK))
                .for_each(|(gc, xc)| gc.iter_mut().zip(xc).for_each(|(g, &u)| *g = f(u, *g)));
        }
        return;
    }
    let zip = Zip::from(&x).and(&mut dy);
    if serial {
        zip.for_each(|&u, g| *g = f(u, *g));
    } else {
        zip.par_for_each(|&u, g| *g = f(u, *g));
    }
}

fn zip_map<D: Dimension>(
    a: ArrayView<'_, f32, D>,
    b: ArrayView<'_, f32, D>,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Array<f32, D> {
    assert_eq!(a.shape(), b.shape(), "activation backward: shapes differ");
    let serial = serial_for(a.len());
    if let (Some(xs), Some(ys)) = (a.as_slice(), b.as_slice()) {
        let data: Vec<f32> = if serial {
            xs.iter().zip(ys).map(|(&u, &v)| f(u, v)).collect()
        } else {
            xs.par_iter()
                .zip(ys.par_iter())
                .with_min_len(CHUNK)
                .map(|(&u, &v)| f(u, v))
                .collect()
        };
        return Array::from_shape_vec(a.raw_dim(), data).expect("same length as the inputs");
    }
    let zip = Zip::from(&a).and(&b);
    if serial {
        zip.map_collect(|&u, &v| f(u, v))
    } else {
        zip.par_map_collect(|&u, &v| f(u, v))
    }
}

/// ReLU input grad from the forward input or output `x` and the output
/// grad `dy`: `dy` where `x > 0`, else 0.
///
/// # Shapes
/// `x`, `dy` and the result share one shape.
pub(crate) fn relu_backward<D: Dimension>(
    x: ArrayView<'_, f32, D>,
    dy: ArrayView<'_, f32, D>,
) -> Array<f32, D> {
    zip_map(x, dy, relu_grad)
}

/// One element of [`relu_backward`].
#[inline(always)]
fn relu_grad(v: f32, g: f32) -> f32 {
    if v > 0.0 { g } else { 0.0 }
}

/// One element of [`swish6_backward`].
#[inline(always)]
fn swish6_grad(v: f32, g: f32) -> f32 {
    g * swish6_grad_scalar(v)
}

/// Hard-swish input grad from the forward input `x` and the output grad
/// `dy`: `dy · (0 if x < -3, 1 if x > 3, (2x + 3)/6 otherwise)`.
///
/// # Shapes
/// `x`, `dy` and the result share one shape.
pub(crate) fn swish6_backward<D: Dimension>(
    x: ArrayView<'_, f32, D>,
    dy: ArrayView<'_, f32, D>,
) -> Array<f32, D> {
    zip_map(x, dy, swish6_grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_grad, dot64, rng, uniform};
    use ndarray::{Array2, ArrayView2, array};

    /// Inputs kept `margin` away from the kinks so that central differences
    /// with a smaller step never straddle one.
    fn away_from(mut x: Array2<f32>, kinks: &[f32], margin: f32) -> Array2<f32> {
        x.mapv_inplace(|v| {
            let mut v = v;
            for &k in kinks {
                if (v - k).abs() < margin {
                    v = k + margin.copysign(v - k);
                }
            }
            v
        });
        x
    }

    fn grad_check(
        name: &str,
        x: Array2<f32>,
        f: impl Fn(ArrayView2<'_, f32>) -> Array2<f32>,
        df: impl Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>) -> Array2<f32>,
    ) {
        let mut r = rng(7);
        let dy = uniform(&mut r, x.dim(), -1.0, 1.0);
        let ana = df(x.view(), dy.view());
        let mut xs = x.clone();
        let shape = x.dim();
        check_grad(
            name,
            xs.as_slice_mut().unwrap(),
            ana.as_slice().unwrap(),
            1e-2,
            1e-3,
            1e-4,
            |p| dot64(&f(ArrayView2::from_shape(shape, p).unwrap()), &dy),
        );
    }

    #[test]
    fn exact_values() {
        let x = array![[-4.0f32, -3.0, -1.0, 0.0, 1.0, 3.0, 4.0]];
        assert_eq!(
            Activation::Relu.forward(x.view()),
            array![[0.0, 0.0, 0.0, 0.0, 1.0, 3.0, 4.0]]
        );
        let s = Activation::Swish6.forward(x.view());
        let expect = [0.0, 0.0, -1.0 / 3.0, 0.0, 2.0 / 3.0, 3.0, 4.0];
        for (a, b) in s.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{s}");
        }
    }

    #[test]
    fn relu_gradient() {
        let x = away_from(uniform(&mut rng(1), (4, 9), -2.0, 2.0), &[0.0], 0.05);
        grad_check("relu", x, |x| Activation::Relu.forward(x), relu_backward);
        // The output works as well as the input to decide the mask.
        let x = away_from(uniform(&mut rng(2), (3, 5), -2.0, 2.0), &[0.0], 0.05);
        let dy = uniform(&mut rng(3), (3, 5), -1.0, 1.0);
        assert_eq!(
            relu_backward(x.view(), dy.view()),
            relu_backward(Activation::Relu.forward(x.view()).view(), dy.view())
        );
    }

    #[test]
    fn swish6_gradient() {
        let x = away_from(uniform(&mut rng(4), (5, 9), -5.0, 5.0), &[-3.0, 3.0], 0.05);
        grad_check(
            "swish6",
            x,
            |x| Activation::Swish6.forward(x),
            swish6_backward,
        );
    }

    #[test]
    fn parallel_matches_serial() {
        let x = uniform(&mut rng(8), (4, 8, 32, 32), -5.0, 5.0);
        let par = Activation::Swish6.forward(x.view());
        crate::layers::set_serial(true);
        let ser = Activation::Swish6.forward(x.view());
        crate::layers::set_serial(false);
        assert_eq!(par, ser);
    }
}
