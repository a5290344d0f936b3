//! 2-D convolution: forward, input grad, weight grad.
//!
//! Weight layout is `[cout, cin / groups, k, k]`; activations are NCHW.
//! Three kernels, chosen from the params (`ConvKind`):
//!
//! - **pointwise** (1×1, stride 1, no padding, one group): a faer GEMM per
//!   image, `Y_n[cout, HW] = W[cout, cin] · X_n[cin, HW]`; parallel over
//!   images, weight grad summed over a fixed partition of the batch;
//! - **depthwise** (`groups == cin == cout`): each plane padded and split
//!   into `stride × stride` phases so that every tap is one contiguous,
//!   vectorised multiply-add over the whole plane; parallel over images
//!   (forward, input grad) or channels (weight grad, summed in batch order);
//! - **general** (anything else, e.g. the stem): im2col + a GEMM per group.
//!
//! Weights and inputs may be non-contiguous views (the supernet slices the
//! first channels of a wider weight); they are read through strides or
//! copied to standard layout where a kernel needs it.
//!
//! Backward keeps nothing: the input grad needs only `dy` and the weight,
//! the weight grad needs the forward input `x` (which the caller holds) and
//! `dy`.

mod depthwise;
mod general;
mod params;
mod phase;
mod pointwise;

use ndarray::{Array2, Array4, ArrayView1, ArrayView4, Axis};

use depthwise::{depthwise_backward_input, depthwise_backward_weight, depthwise_forward};
use general::{general_backward_input, general_backward_weight, general_forward};
pub use params::Conv2dParams;
pub(crate) use params::ConvKind;
use pointwise::{pointwise_backward_input, pointwise_backward_weight, pointwise_forward};

// The tests below reach it through `use super::*`.
#[cfg(test)]
use phase::slots_for;

/// Convolution forward pass.
///
/// # Shapes
/// `x: [n, cin, in_h, in_w]`, `w: [cout, cin/groups, k, k]`,
/// `bias: [cout]` → `[n, cout, out_h, out_w]`.
pub fn conv2d(
    p: &Conv2dParams,
    x: ArrayView4<'_, f32>,
    w: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
) -> Array4<f32> {
    p.assert_input("forward", &x);
    p.assert_weight("forward", &w);
    if let Some(b) = &bias {
        assert!(
            b.len() == p.cout,
            "conv2d forward: bias length {} != cout {}",
            b.len(),
            p.cout
        );
    }
    let n = x.len_of(Axis(0));
    let mut y = super::zeros4((n, p.cout, p.out_h(), p.out_w()));
    match p.kind() {
        ConvKind::Pointwise => pointwise_forward(p, &x, &w, &mut y),
        ConvKind::Depthwise => depthwise_forward(p, &x, &w, &mut y),
        ConvKind::General => general_forward(p, &x, &w, &mut y),
    }
    if let Some(b) = bias {
        add_bias(&mut y, b);
    }
    y
}

/// Gradient of the loss w.r.t. the convolution input.
///
/// # Shapes
/// `dy: [n, cout, out_h, out_w]`, `w: [cout, cin/groups, k, k]` →
/// `[n, cin, in_h, in_w]`.
pub fn conv2d_backward_input(
    p: &Conv2dParams,
    dy: ArrayView4<'_, f32>,
    w: ArrayView4<'_, f32>,
) -> Array4<f32> {
    p.assert_output("backward_input", &dy);
    p.assert_weight("backward_input", &w);
    let n = dy.len_of(Axis(0));
    let mut dx = super::zeros4((n, p.cin, p.in_h, p.in_w));
    match p.kind() {
        ConvKind::Pointwise => pointwise_backward_input(p, &dy, &w, &mut dx),
        ConvKind::Depthwise => depthwise_backward_input(p, &dy, &w, &mut dx),
        ConvKind::General => general_backward_input(p, &dy, &w, &mut dx),
    }
    dx
}

/// Gradient of the loss w.r.t. the weight, summed over the batch.
///
/// # Shapes
/// `x: [n, cin, in_h, in_w]`, `dy: [n, cout, out_h, out_w]` →
/// `[cout, cin/groups, k, k]`.
pub fn conv2d_backward_weight(
    p: &Conv2dParams,
    x: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
) -> Array4<f32> {
    p.assert_input("backward_weight", &x);
    p.assert_output("backward_weight", &dy);
    assert_eq!(
        x.len_of(Axis(0)),
        dy.len_of(Axis(0)),
        "conv2d backward_weight: batch of x and dy differ"
    );
    match p.kind() {
        ConvKind::Pointwise => pointwise_backward_weight(p, &x, &dy),
        ConvKind::Depthwise => depthwise_backward_weight(p, &x, &dy),
        ConvKind::General => general_backward_weight(p, &x, &dy),
    }
}

fn add_bias(y: &mut Array4<f32>, b: ArrayView1<'_, f32>) {
    for mut img in y.outer_iter_mut() {
        for (mut plane, &bv) in img.outer_iter_mut().zip(b.iter()) {
            plane += bv;
        }
    }
}

/// A standard-layout `[rows, cols]` copy of `w` (any strides), in logical
/// order.
fn to_matrix(w: &ArrayView4<'_, f32>, rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_vec((rows, cols), w.iter().copied().collect())
        .expect("element count matches the matrix shape")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_grad, dot64, rng, uniform};
    use ndarray::{Array, array, s};
    use proptest::prelude::*;

    /// Calls `f(y, w, x)` with the indices of the output, the weight and the
    /// input of every tap of the convolution that falls inside the input:
    /// the naive 7 loops the references share, in one fixed order.
    fn for_each_tap(
        p: &Conv2dParams,
        n: usize,
        mut f: impl FnMut([usize; 4], [usize; 4], [usize; 4]),
    ) {
        let (cin_g, cout_g, k) = (p.cin / p.groups, p.cout / p.groups, p.kernel);
        for b in 0..n {
            for co in 0..p.cout {
                let g = co / cout_g;
                for oy in 0..p.out_h() {
                    for ox in 0..p.out_w() {
                        for ci in 0..cin_g {
                            for i in 0..k {
                                for j in 0..k {
                                    let iy = (oy * p.stride + i) as isize - p.padding as isize;
                                    let ix = (ox * p.stride + j) as isize - p.padding as isize;
                                    if iy >= 0
                                        && ix >= 0
                                        && (iy as usize) < p.in_h
                                        && (ix as usize) < p.in_w
                                    {
                                        f(
                                            [b, co, oy, ox],
                                            [co, ci, i, j],
                                            [b, g * cin_g + ci, iy as usize, ix as usize],
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Naive convolution, the reference the fast kernels are tested
    /// against. Slow.
    ///
    /// # Shapes
    /// As [`conv2d`].
    fn conv2d_reference(
        p: &Conv2dParams,
        x: ArrayView4<'_, f32>,
        w: ArrayView4<'_, f32>,
        bias: Option<ArrayView1<'_, f32>>,
    ) -> Array4<f32> {
        p.assert_input("reference", &x);
        p.assert_weight("reference", &w);
        let n = x.len_of(Axis(0));
        let mut y = Array4::<f32>::zeros((n, p.cout, p.out_h(), p.out_w()));
        if let Some(bias) = bias {
            for (co, &bv) in bias.iter().enumerate() {
                y.index_axis_mut(Axis(1), co).fill(bv);
            }
        }
        for_each_tap(p, n, |yi, wi, xi| y[yi] += w[wi] * x[xi]);
        y
    }

    /// Naive input and weight grads, the taps of [`conv2d_reference`] with
    /// the accumulation reversed.
    fn reference_backward(
        p: &Conv2dParams,
        x: ArrayView4<'_, f32>,
        w: ArrayView4<'_, f32>,
        dy: ArrayView4<'_, f32>,
    ) -> (Array4<f32>, Array4<f32>) {
        let mut dx = Array4::<f32>::zeros(x.raw_dim());
        let mut dw = Array4::<f32>::zeros(w.raw_dim());
        for_each_tap(p, x.len_of(Axis(0)), |yi, wi, xi| {
            let d = dy[yi];
            dx[xi] += w[wi] * d;
            dw[wi] += x[xi] * d;
        });
        (dx, dw)
    }

    fn assert_close(what: &str, a: &Array4<f32>, b: &Array4<f32>, tol: f32) {
        assert_eq!(a.shape(), b.shape(), "{what}: shapes");
        for ((idx, &u), &v) in a.indexed_iter().zip(b.iter()) {
            assert!(
                (u - v).abs() <= tol * (1.0 + v.abs()),
                "{what}{idx:?}: {u} vs reference {v}"
            );
        }
    }

    /// Runs every kernel of `p` against the naive references.
    fn check_against_reference(p: &Conv2dParams, n: usize, seed: u64) {
        let mut r = rng(seed);
        let x = uniform(&mut r, (n, p.cin, p.in_h, p.in_w), -1.0, 1.0);
        let w = uniform(&mut r, p.weight_shape(), -1.0, 1.0);
        let b = uniform(&mut r, p.cout, -1.0, 1.0);
        let dy = uniform(&mut r, (n, p.cout, p.out_h(), p.out_w()), -1.0, 1.0);
        let y = conv2d(p, x.view(), w.view(), Some(b.view()));
        let y_ref = conv2d_reference(p, x.view(), w.view(), Some(b.view()));
        assert_close("forward", &y, &y_ref, 1e-5);
        let (dx_ref, dw_ref) = reference_backward(p, x.view(), w.view(), dy.view());
        let dx = conv2d_backward_input(p, dy.view(), w.view());
        assert_close("backward_input", &dx, &dx_ref, 1e-5);
        let dw = conv2d_backward_weight(p, x.view(), dy.view());
        assert_close("backward_weight", &dw, &dw_ref, 1e-5);
    }

    fn params(
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        groups: usize,
        hw: (usize, usize),
    ) -> Option<Conv2dParams> {
        Conv2dParams {
            cin,
            cout,
            kernel,
            stride,
            padding,
            groups,
            in_h: hw.0,
            in_w: hw.1,
        }
        .checked()
        .ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        #[test]
        fn pointwise_matches_reference(
            cin in 1usize..7, cout in 1usize..7, h in 1usize..7, w in 1usize..7,
            n in 1usize..4, seed in any::<u64>(),
        ) {
            let p = Conv2dParams::pointwise(cin, cout, h, w).unwrap();
            prop_assert_eq!(p.kind(), ConvKind::Pointwise);
            check_against_reference(&p, n, seed);
        }

        #[test]
        fn depthwise_matches_reference(
            c in 1usize..5, k in prop::sample::select(vec![3usize, 5, 7]),
            stride in 1usize..3, pad_less in 0usize..2, h in 1usize..10, w in 1usize..10,
            n in 1usize..3, seed in any::<u64>(),
        ) {
            let padding = (k / 2).saturating_sub(pad_less);
            let p = params(c, c, k, stride, padding, c, (h, w));
            prop_assume!(p.is_some());
            let p = p.unwrap();
            prop_assert_eq!(p.kind(), ConvKind::Depthwise);
            check_against_reference(&p, n, seed);
        }

        #[test]
        fn general_matches_reference(
            groups in 1usize..4, cin_g in 1usize..4, cout_g in 1usize..4,
            k in 1usize..5, stride in 1usize..4, padding in 0usize..3,
            h in 1usize..8, w in 1usize..8, n in 1usize..3, seed in any::<u64>(),
        ) {
            let p = params(groups * cin_g, groups * cout_g, k, stride, padding, groups, (h, w));
            prop_assume!(p.is_some());
            check_against_reference(&p.unwrap(), n, seed);
        }
    }

    #[test]
    fn every_depthwise_kernel_and_stride_matches_reference() {
        for k in [3, 5, 7] {
            for stride in [1, 2] {
                for (h, w) in [(7, 7), (8, 6), (14, 14)] {
                    let p = Conv2dParams::depthwise(3, k, stride, h, w).unwrap();
                    check_against_reference(&p, 2, (k * 10 + stride) as u64);
                }
            }
        }
    }

    #[test]
    fn depthwise_side_by_side_groups_match_reference() {
        // Several full groups of images side by side plus a partial last
        // group, whose unused slots hold the previous group's planes.
        for (k, stride, hw) in [(7, 1, 7), (5, 1, 7), (7, 2, 14)] {
            let p = Conv2dParams::depthwise(3, k, stride, hw, hw).unwrap();
            let slots = slots_for(&p);
            assert!(slots > 1, "{p:?} should run side by side");
            check_against_reference(&p, 2 * slots + 3, 90 + k as u64);
        }
    }

    #[test]
    fn grouped_not_depthwise_uses_general() {
        let p = params(4, 8, 3, 1, 1, 4, (5, 5)).unwrap();
        assert_eq!(p.kind(), ConvKind::General);
        check_against_reference(&p, 2, 3);
    }

    #[test]
    fn pointwise_arange_exact() {
        // x[0, c, h, w] = 4c + 2h + w; w = [[1, 2], [0, -1], [3, 0]].
        let p = Conv2dParams::pointwise(2, 3, 2, 2).unwrap();
        let x = Array::from_shape_vec((1, 2, 2, 2), (0..8).map(|v| v as f32).collect()).unwrap();
        let w = array![[1.0f32, 2.0], [0.0, -1.0], [3.0, 0.0]]
            .into_shape_with_order((3, 2, 1, 1))
            .unwrap();
        let y = conv2d(
            &p,
            x.view(),
            w.view(),
            Some(array![0.0f32, 1.0, -1.0].view()),
        );
        let expect = array![[
            [[8.0f32, 11.0], [14.0, 17.0]],
            [[-3.0, -4.0], [-5.0, -6.0]],
            [[-1.0, 2.0], [5.0, 8.0]]
        ]];
        assert_eq!(y, expect);
        // dy = 1 everywhere: dx[c] = sum_o w[o, c]; dw[o, c] = sum_hw x[c].
        let dy = Array4::<f32>::ones((1, 3, 2, 2));
        let dx = conv2d_backward_input(&p, dy.view(), w.view());
        assert!(dx.index_axis(Axis(1), 0).iter().all(|&v| v == 4.0));
        assert!(dx.index_axis(Axis(1), 1).iter().all(|&v| v == 1.0));
        let dw = conv2d_backward_weight(&p, x.view(), dy.view());
        let expect_dw = array![[6.0f32, 22.0], [6.0, 22.0], [6.0, 22.0]]
            .into_shape_with_order((3, 2, 1, 1))
            .unwrap();
        assert_eq!(dw, expect_dw);
    }

    #[test]
    fn depthwise_arange_exact() {
        // One 3x3 plane 0..9, kernel of ones, padding 1: each output is the
        // sum of its 3x3 neighbourhood.
        let p = Conv2dParams::depthwise(1, 3, 1, 3, 3).unwrap();
        let x = Array::from_shape_vec((1, 1, 3, 3), (0..9).map(|v| v as f32).collect()).unwrap();
        let w = Array4::<f32>::ones((1, 1, 3, 3));
        let y = conv2d(&p, x.view(), w.view(), None);
        let expect = array![[[[8.0f32, 15.0, 12.0], [21.0, 36.0, 27.0], [20.0, 33.0, 24.0]]]];
        assert_eq!(y, expect);
        let p2 = Conv2dParams::depthwise(1, 3, 2, 3, 3).unwrap();
        let y2 = conv2d(&p2, x.view(), w.view(), None);
        assert_eq!(y2, array![[[[8.0f32, 12.0], [20.0, 24.0]]]]);
    }

    /// Finite differences on the loss `sum(conv(x, w, b) * r)`, for the
    /// input and weight grads of one geometry.
    fn finite_difference_check(name: &str, p: &Conv2dParams) {
        let mut r = rng(61);
        let n = 2;
        let x = uniform(&mut r, (n, p.cin, p.in_h, p.in_w), -1.0, 1.0);
        let w = uniform(&mut r, p.weight_shape(), -1.0, 1.0);
        let b = uniform(&mut r, p.cout, -1.0, 1.0);
        let dy = uniform(&mut r, (n, p.cout, p.out_h(), p.out_w()), -1.0, 1.0);
        let loss = |x: ArrayView4<'_, f32>, w: ArrayView4<'_, f32>, b: ArrayView1<'_, f32>| {
            dot64(&conv2d(p, x, w, Some(b)), &dy)
        };
        let dx = conv2d_backward_input(p, dy.view(), w.view());
        let dw = conv2d_backward_weight(p, x.view(), dy.view());
        let (eps, rtol, atol) = (1e-2, 1e-2, 1e-3);
        let (xs, ws) = (x.raw_dim(), w.raw_dim());
        let mut xm = x.clone();
        check_grad(
            &format!("{name} dx"),
            xm.as_slice_mut().unwrap(),
            dx.as_slice().unwrap(),
            eps,
            rtol,
            atol,
            |v| loss(ArrayView4::from_shape(xs, v).unwrap(), w.view(), b.view()),
        );
        let mut wm = w.clone();
        check_grad(
            &format!("{name} dw"),
            wm.as_slice_mut().unwrap(),
            dw.as_slice().unwrap(),
            eps,
            rtol,
            atol,
            |v| loss(x.view(), ArrayView4::from_shape(ws, v).unwrap(), b.view()),
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        finite_difference_check("pointwise", &Conv2dParams::pointwise(3, 4, 3, 2).unwrap());
        finite_difference_check(
            "depthwise k3 s1",
            &Conv2dParams::depthwise(2, 3, 1, 4, 5).unwrap(),
        );
        finite_difference_check(
            "depthwise k5 s2",
            &Conv2dParams::depthwise(2, 5, 2, 5, 6).unwrap(),
        );
        finite_difference_check(
            "general groups 2",
            &params(4, 2, 3, 2, 1, 2, (5, 4)).unwrap(),
        );
        finite_difference_check("stem", &params(1, 3, 3, 1, 1, 1, (4, 4)).unwrap());
    }

    #[test]
    fn sliced_weights_and_inputs_match_owned_copies() {
        let mut r = rng(71);
        // The supernet takes the first channels of wider tensors.
        let wide_w = uniform(&mut r, (12, 10, 1, 1), -1.0, 1.0);
        let wide_x = uniform(&mut r, (3, 10, 5, 5), -1.0, 1.0);
        let p = Conv2dParams::pointwise(6, 8, 5, 5).unwrap();
        let w = wide_w.slice(s![..8, ..6, .., ..]);
        let x = wide_x.slice(s![.., ..6, .., ..]);
        let dy = uniform(&mut r, (3, 8, 5, 5), -1.0, 1.0);
        assert_eq!(
            conv2d(&p, x, w, None),
            conv2d(&p, x.to_owned().view(), w.to_owned().view(), None)
        );
        assert_eq!(
            conv2d_backward_input(&p, dy.view(), w),
            conv2d_backward_input(&p, dy.view(), w.to_owned().view())
        );
        assert_eq!(
            conv2d_backward_weight(&p, x, dy.view()),
            conv2d_backward_weight(&p, x.to_owned().view(), dy.view())
        );
        for (k, pd) in [
            (3, Conv2dParams::depthwise(6, 3, 2, 5, 5).unwrap()),
            (1, params(6, 4, 1, 2, 0, 2, (5, 5)).unwrap()),
        ] {
            let wide = uniform(&mut r, (9, 9, k, k), -1.0, 1.0);
            let (cout, cin_g, _, _) = pd.weight_shape();
            let w = wide.slice(s![..cout, ..cin_g, .., ..]);
            let y_ref = conv2d_reference(&pd, x, w, None);
            assert_close("sliced", &conv2d(&pd, x, w, None), &y_ref, 1e-5);
            let dy = uniform(&mut r, y_ref.raw_dim(), -1.0, 1.0);
            let (dx_ref, dw_ref) = reference_backward(&pd, x, w, dy.view());
            assert_close(
                "sliced dx",
                &conv2d_backward_input(&pd, dy.view(), w),
                &dx_ref,
                1e-5,
            );
            assert_close(
                "sliced dw",
                &conv2d_backward_weight(&pd, x, dy.view()),
                &dw_ref,
                1e-5,
            );
        }
    }

    #[test]
    fn parallel_matches_serial_bit_for_bit() {
        let mut r = rng(81);
        for p in [
            Conv2dParams::pointwise(16, 24, 7, 7).unwrap(),
            Conv2dParams::depthwise(8, 5, 2, 9, 9).unwrap(),
            params(3, 8, 3, 1, 1, 1, (9, 9)).unwrap(),
        ] {
            let n = 11;
            let x = uniform(&mut r, (n, p.cin, p.in_h, p.in_w), -1.0, 1.0);
            let w = uniform(&mut r, p.weight_shape(), -1.0, 1.0);
            let dy = uniform(&mut r, (n, p.cout, p.out_h(), p.out_w()), -1.0, 1.0);
            let run = || {
                (
                    conv2d(&p, x.view(), w.view(), None),
                    conv2d_backward_input(&p, dy.view(), w.view()),
                    conv2d_backward_weight(&p, x.view(), dy.view()),
                )
            };
            let par = run();
            crate::layers::set_serial(true);
            let ser = run();
            crate::layers::set_serial(false);
            assert_eq!(par, ser, "{p:?}");
        }
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(params(3, 4, 3, 1, 1, 2, (5, 5)).is_none());
        assert!(params(4, 4, 7, 1, 0, 1, (5, 5)).is_none());
        assert!(params(4, 4, 3, 0, 1, 1, (5, 5)).is_none());
        let p = Conv2dParams::depthwise(8, 7, 2, 14, 14).unwrap();
        assert_eq!((p.out_h(), p.out_w()), (7, 7));
    }

    #[test]
    #[should_panic(expected = "does not match params")]
    fn wrong_input_shape_panics_with_values() {
        let p = Conv2dParams::pointwise(3, 4, 5, 5).unwrap();
        let _ = conv2d(
            &p,
            Array4::zeros((1, 2, 5, 5)).view(),
            Array4::zeros((4, 3, 1, 1)).view(),
            None,
        );
    }
}
