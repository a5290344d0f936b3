//! Global average pooling over the spatial axes.
//!
//! Backward keeps nothing but the input's spatial size, which the caller
//! passes in.

use ndarray::{Array2, Array4, ArrayView2, ArrayView4};

use super::{for_each_outer, sum_f32};

/// Mean over height and width.
///
/// # Shapes
/// `x: [n, c, h, w]` → `[n, c]`.
pub(crate) fn global_avg_pool(x: ArrayView4<'_, f32>) -> Array2<f32> {
    let (n, c, h, w) = x.dim();
    assert!(h * w > 0, "global_avg_pool: empty input {:?}", x.shape());
    let hw = h * w;
    let inv = 1.0 / hw as f32;
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let mut y = Array2::<f32>::zeros((n, c));
    for_each_outer(
        y.view_mut(),
        || (),
        |_, b, mut yb| {
            let planes = xs[b * c * hw..(b + 1) * c * hw].chunks_exact(hw);
            for (o, plane) in yb.iter_mut().zip(planes) {
                *o = sum_f32(plane) * inv;
            }
        },
    );
    y
}

/// Spreads each output grad evenly over the `h`×`w` positions it averaged.
///
/// # Shapes
/// `dy: [n, c]` → `[n, c, h, w]`.
pub(crate) fn global_avg_pool_backward(dy: ArrayView2<'_, f32>, h: usize, w: usize) -> Array4<f32> {
    assert!(
        h * w > 0,
        "global_avg_pool_backward: empty spatial size {h}x{w}"
    );
    let (n, c) = dy.dim();
    let inv = 1.0 / (h * w) as f32;
    let mut dx = super::zeros4((n, c, h, w));
    for_each_outer(
        dx.view_mut(),
        || (),
        |_, b, mut dxb| {
            for (mut plane, &g) in dxb.outer_iter_mut().zip(dy.row(b)) {
                plane.fill(g * inv);
            }
        },
    );
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_grad, dot64, rng, uniform};
    use ndarray::{Array, array};

    #[test]
    fn arange_exact() {
        // Image b, channel c holds 4 consecutive integers starting at 4(2b+c).
        let x = Array::from_shape_vec((2, 2, 2, 2), (0..16).map(|v| v as f32).collect()).unwrap();
        let y = global_avg_pool(x.view());
        assert_eq!(y, array![[1.5, 5.5], [9.5, 13.5]]);
        let dx = global_avg_pool_backward(array![[4.0, 8.0], [-4.0, 0.0]].view(), 2, 2);
        let expect = Array::from_shape_vec(
            (2, 2, 2, 2),
            [
                1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, -1.0, -1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 0.0,
            ]
            .to_vec(),
        )
        .unwrap();
        assert_eq!(dx, expect);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut r = rng(21);
        let x = uniform(&mut r, (2, 3, 3, 2), -1.0, 1.0);
        let dy = uniform(&mut r, (2, 3), -1.0, 1.0);
        let dx = global_avg_pool_backward(dy.view(), 3, 2);
        let mut xs = x.clone();
        check_grad(
            "pool dx",
            xs.as_slice_mut().unwrap(),
            dx.as_slice().unwrap(),
            1e-2,
            1e-3,
            1e-4,
            |v| {
                let xv = ArrayView4::from_shape((2, 3, 3, 2), v).unwrap();
                dot64(&global_avg_pool(xv), &dy)
            },
        );
    }
}
