//! Fully connected layer `y = x · Wᵀ + b`.
//!
//! Weight layout `[outputs, inputs]`. Backward keeps nothing: the input grad
//! needs `dy` and the weight, the weight grad needs the forward input `x`
//! (held by the caller) and `dy`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, linalg::general_mat_mul};
use serde::{Deserialize, Serialize};

use super::LayerError;

/// Geometry of a fully connected layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LinearParams {
    /// Input features.
    pub(crate) inputs: usize,
    /// Output features.
    pub(crate) outputs: usize,
}

impl LinearParams {
    /// Checks that both sizes are positive.
    pub(crate) fn new(inputs: usize, outputs: usize) -> Result<Self, LayerError> {
        for (what, v) in [("inputs", inputs), ("outputs", outputs)] {
            if v == 0 {
                return Err(LayerError::Zero {
                    layer: "linear",
                    what,
                });
            }
        }
        Ok(Self { inputs, outputs })
    }

    fn assert_weight(&self, what: &str, w: &ArrayView2<'_, f32>) {
        assert!(
            w.dim() == (self.outputs, self.inputs),
            "linear {what}: weight {:?} vs params {self:?} (expected [outputs, inputs])",
            w.shape()
        );
    }
}

/// Forward pass.
///
/// # Shapes
/// `x: [n, inputs]`, `w: [outputs, inputs]`, `b: [outputs]` → `[n, outputs]`.
pub(crate) fn linear(
    p: &LinearParams,
    x: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    b: Option<ArrayView1<'_, f32>>,
) -> Array2<f32> {
    p.assert_weight("forward", &w);
    assert_eq!(
        x.len_of(Axis(1)),
        p.inputs,
        "linear forward: input {:?} vs {} inputs",
        x.shape(),
        p.inputs
    );
    let mut y = match b {
        Some(b) => {
            assert_eq!(b.len(), p.outputs, "linear forward: bias length");
            b.broadcast((x.nrows(), p.outputs))
                .expect("bias broadcasts over the batch")
                .to_owned()
        }
        None => Array2::zeros((x.nrows(), p.outputs)),
    };
    general_mat_mul(1.0, &x, &w.t(), 1.0, &mut y);
    y
}

/// Input grad `dy · W`.
///
/// # Shapes
/// `dy: [n, outputs]`, `w: [outputs, inputs]` → `[n, inputs]`.
pub(crate) fn linear_backward_input(
    p: &LinearParams,
    dy: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
) -> Array2<f32> {
    p.assert_weight("backward_input", &w);
    assert_eq!(dy.ncols(), p.outputs, "linear backward_input: dy columns");
    dy.dot(&w)
}

/// Weight grad `dyᵀ · x`, summed over the batch.
///
/// # Shapes
/// `x: [n, inputs]`, `dy: [n, outputs]` → `[outputs, inputs]`.
pub(crate) fn linear_backward_weight(
    p: &LinearParams,
    x: ArrayView2<'_, f32>,
    dy: ArrayView2<'_, f32>,
) -> Array2<f32> {
    assert!(
        x.dim() == (dy.nrows(), p.inputs) && dy.ncols() == p.outputs,
        "linear backward_weight: x {:?} and dy {:?} vs params {p:?}",
        x.shape(),
        dy.shape()
    );
    dy.t().dot(&x)
}

/// Bias grad: `dy` summed over the batch.
///
/// # Shapes
/// `dy: [n, outputs]` → `[outputs]`.
pub(crate) fn linear_backward_bias(dy: ArrayView2<'_, f32>) -> Array1<f32> {
    dy.sum_axis(Axis(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_grad, dot64, rng, uniform};
    use ndarray::array;

    #[test]
    fn exact_values() {
        let p = LinearParams::new(2, 3).unwrap();
        let x = array![[1.0f32, 2.0], [3.0, 4.0]];
        let w = array![[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]];
        let b = array![0.5f32, -0.5, 0.0];
        let y = linear(&p, x.view(), w.view(), Some(b.view()));
        assert_eq!(y, array![[1.5, 1.5, 3.0], [3.5, 3.5, 7.0]]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut r = rng(31);
        let p = LinearParams::new(5, 3).unwrap();
        let x = uniform(&mut r, (4, 5), -1.0, 1.0);
        let w = uniform(&mut r, (3, 5), -1.0, 1.0);
        let b = uniform(&mut r, 3, -1.0, 1.0);
        let dy = uniform(&mut r, (4, 3), -1.0, 1.0);
        let f = |x: ArrayView2<'_, f32>, w: ArrayView2<'_, f32>, b: ArrayView1<'_, f32>| {
            dot64(&linear(&p, x, w, Some(b)), &dy)
        };
        let dx = linear_backward_input(&p, dy.view(), w.view());
        let dw = linear_backward_weight(&p, x.view(), dy.view());
        let db = linear_backward_bias(dy.view());
        let (tol_r, tol_a) = (1e-3, 1e-4);
        let mut xs = x.clone();
        check_grad(
            "linear dx",
            xs.as_slice_mut().unwrap(),
            dx.as_slice().unwrap(),
            1e-2,
            tol_r,
            tol_a,
            |v| {
                f(
                    ArrayView2::from_shape((4, 5), v).unwrap(),
                    w.view(),
                    b.view(),
                )
            },
        );
        let mut ws = w.clone();
        check_grad(
            "linear dw",
            ws.as_slice_mut().unwrap(),
            dw.as_slice().unwrap(),
            1e-2,
            tol_r,
            tol_a,
            |v| {
                f(
                    x.view(),
                    ArrayView2::from_shape((3, 5), v).unwrap(),
                    b.view(),
                )
            },
        );
        let mut bs = b.clone();
        check_grad(
            "linear db",
            bs.as_slice_mut().unwrap(),
            db.as_slice().unwrap(),
            1e-2,
            tol_r,
            tol_a,
            |v| f(x.view(), w.view(), ArrayView1::from(v)),
        );
    }
}
