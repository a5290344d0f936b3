//! Element-wise activations: ReLU, swish6 (hard swish), sigmoid.
//!
//! Each works on arrays of any dimension. What backward needs:
//!
//! - ReLU: the forward input *or* output (`x > 0` ⇔ `relu(x) > 0`);
//! - swish6: the forward input;
//! - sigmoid: the forward output.
//!
//! Nothing else is kept. At the kinks (ReLU at 0, swish6 at ±3) the
//! gradient is that of the right-hand piece for ReLU (0 at exactly 0) and of
//! the middle piece for swish6.

use ndarray::{Array, ArrayView, ArrayViewMut, Dimension, Zip};
use serde::{Deserialize, Serialize};

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

    /// Returns the activation of `x`.
    pub fn forward<D: Dimension>(self, x: ArrayView<'_, f32, D>) -> Array<f32, D> {
        let mut y = x.to_owned();
        self.forward_in_place(y.view_mut());
        y
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

    /// Like [`Activation::backward`], overwriting `dy` with the input grad.
    pub fn backward_in_place<D: Dimension>(
        self,
        x: ArrayView<'_, f32, D>,
        dy: ArrayViewMut<'_, f32, D>,
    ) {
        match self {
            Activation::Identity => {}
            Activation::Relu => zip_in_place(dy, x, |g, v| if v > 0.0 { g } else { 0.0 }),
            Activation::Swish6 => zip_in_place(dy, x, |g, v| g * swish6_grad_scalar(v)),
        }
    }
}

#[inline(always)]
fn relu_scalar(v: f32) -> f32 {
    v.max(0.0)
}

#[inline(always)]
fn swish6_scalar(v: f32) -> f32 {
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

#[inline(always)]
fn sigmoid_scalar(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

fn map_in_place<D: Dimension>(mut x: ArrayViewMut<'_, f32, D>, f: impl Fn(f32) -> f32 + Sync) {
    if is_serial() || x.len() < PAR_MIN_ELEMENTS {
        x.mapv_inplace(f);
    } else {
        Zip::from(&mut x).par_for_each(|v| *v = f(*v));
    }
}

fn zip_map<D: Dimension>(
    a: ArrayView<'_, f32, D>,
    b: ArrayView<'_, f32, D>,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Array<f32, D> {
    assert_eq!(a.shape(), b.shape(), "activation backward: shapes differ");
    let zip = Zip::from(&a).and(&b);
    if is_serial() || a.len() < PAR_MIN_ELEMENTS {
        zip.map_collect(|&u, &v| f(u, v))
    } else {
        zip.par_map_collect(|&u, &v| f(u, v))
    }
}

fn zip_in_place<D: Dimension>(
    mut out: ArrayViewMut<'_, f32, D>,
    b: ArrayView<'_, f32, D>,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) {
    assert_eq!(out.shape(), b.shape(), "activation backward: shapes differ");
    let zip = Zip::from(&mut out).and(&b);
    if is_serial() || b.len() < PAR_MIN_ELEMENTS {
        zip.for_each(|o, &v| *o = f(*o, v));
    } else {
        zip.par_for_each(|o, &v| *o = f(*o, v));
    }
}

/// `max(x, 0)`.
///
/// # Shapes
/// Any; the output has the input's shape.
pub fn relu<D: Dimension>(x: ArrayView<'_, f32, D>) -> Array<f32, D> {
    Activation::Relu.forward(x)
}

/// ReLU input grad from the forward input or output `x` and the output
/// grad `dy`: `dy` where `x > 0`, else 0.
///
/// # Shapes
/// `x`, `dy` and the result share one shape.
pub fn relu_backward<D: Dimension>(
    x: ArrayView<'_, f32, D>,
    dy: ArrayView<'_, f32, D>,
) -> Array<f32, D> {
    zip_map(x, dy, |v, g| if v > 0.0 { g } else { 0.0 })
}

/// Hard swish, `x · relu6(x + 3) / 6`.
///
/// # Shapes
/// Any; the output has the input's shape.
pub fn swish6<D: Dimension>(x: ArrayView<'_, f32, D>) -> Array<f32, D> {
    Activation::Swish6.forward(x)
}

/// Hard-swish input grad from the forward input `x` and the output grad
/// `dy`: `dy · (0 if x < -3, 1 if x > 3, (2x + 3)/6 otherwise)`.
///
/// # Shapes
/// `x`, `dy` and the result share one shape.
pub fn swish6_backward<D: Dimension>(
    x: ArrayView<'_, f32, D>,
    dy: ArrayView<'_, f32, D>,
) -> Array<f32, D> {
    zip_map(x, dy, |v, g| g * swish6_grad_scalar(v))
}

/// Logistic sigmoid `1 / (1 + e^-x)`.
///
/// # Shapes
/// Any; the output has the input's shape.
pub fn sigmoid<D: Dimension>(x: ArrayView<'_, f32, D>) -> Array<f32, D> {
    let mut y = x.to_owned();
    map_in_place(y.view_mut(), sigmoid_scalar);
    y
}

/// Sigmoid input grad from the forward *output* `y` and the output grad
/// `dy`: `dy · y · (1 − y)`.
///
/// # Shapes
/// `y`, `dy` and the result share one shape.
pub fn sigmoid_backward<D: Dimension>(
    y: ArrayView<'_, f32, D>,
    dy: ArrayView<'_, f32, D>,
) -> Array<f32, D> {
    zip_map(y, dy, |s, g| g * s * (1.0 - s))
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
        assert_eq!(relu(x.view()), array![[0.0, 0.0, 0.0, 0.0, 1.0, 3.0, 4.0]]);
        let s = swish6(x.view());
        let expect = [0.0, 0.0, -1.0 / 3.0, 0.0, 2.0 / 3.0, 3.0, 4.0];
        for (a, b) in s.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{s}");
        }
        let sg = sigmoid(array![[0.0f32]].view());
        assert_eq!(sg[[0, 0]], 0.5);
    }

    #[test]
    fn relu_gradient() {
        let x = away_from(uniform(&mut rng(1), (4, 9), -2.0, 2.0), &[0.0], 0.05);
        grad_check("relu", x, relu, relu_backward);
        // The output works as well as the input to decide the mask.
        let x = away_from(uniform(&mut rng(2), (3, 5), -2.0, 2.0), &[0.0], 0.05);
        let dy = uniform(&mut rng(3), (3, 5), -1.0, 1.0);
        assert_eq!(
            relu_backward(x.view(), dy.view()),
            relu_backward(relu(x.view()).view(), dy.view())
        );
    }

    #[test]
    fn swish6_gradient() {
        let x = away_from(uniform(&mut rng(4), (5, 9), -5.0, 5.0), &[-3.0, 3.0], 0.05);
        grad_check("swish6", x, swish6, swish6_backward);
    }

    #[test]
    fn sigmoid_gradient() {
        let x = uniform(&mut rng(5), (5, 9), -4.0, 4.0);
        grad_check("sigmoid", x, sigmoid, |x, dy| {
            sigmoid_backward(sigmoid(x).view(), dy)
        });
    }

    #[test]
    fn enum_matches_functions_and_in_place() {
        let x = uniform(&mut rng(6), (2, 3, 4), -5.0, 5.0);
        let dy = uniform(&mut rng(7), (2, 3, 4), -1.0, 1.0);
        for act in [Activation::Identity, Activation::Relu, Activation::Swish6] {
            let mut g = dy.clone();
            act.backward_in_place(x.view(), g.view_mut());
            assert_eq!(g, act.backward(x.view(), dy.view()), "{act:?}");
        }
        assert_eq!(Activation::Relu.forward(x.view()), relu(x.view()));
        assert_eq!(Activation::Swish6.forward(x.view()), swish6(x.view()));
        assert_eq!(
            Activation::Swish6.backward(x.view(), dy.view()),
            swish6_backward(x.view(), dy.view())
        );
    }

    #[test]
    fn parallel_matches_serial() {
        let x = uniform(&mut rng(8), (4, 8, 32, 32), -5.0, 5.0);
        let par = swish6(x.view());
        crate::layers::set_serial(true);
        let ser = swish6(x.view());
        crate::layers::set_serial(false);
        assert_eq!(par, ser);
    }
}
