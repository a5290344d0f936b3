//! The pointwise kernel (1×1, stride 1, no padding, one group): a faer
//! GEMM per image, `Y_n[cout, HW] = W[cout, cin] · X_n[cin, HW]`; parallel
//! over images, the weight grad summed over a fixed partition of the batch.

use ndarray::{Array4, ArrayView4};

use super::{Conv2dParams, to_matrix};
use crate::layers::gemm::{gemm, mat, mat_mut};
use crate::layers::{for_each_outer, reduce_over_batch};

pub(super) fn pointwise_forward(
    p: &Conv2dParams,
    x: &ArrayView4<'_, f32>,
    w: &ArrayView4<'_, f32>,
    y: &mut Array4<f32>,
) {
    let (cin, cout, hw) = (p.cin, p.cout, p.in_h * p.in_w);
    let x = x.as_standard_layout();
    let x = x.as_slice().expect("standard layout");
    let wm = to_matrix(w, cout, cin);
    let wm = wm.as_slice().expect("standard layout");
    for_each_outer(
        y.view_mut(),
        || (),
        |_, b, mut yb| {
            let yb = yb.as_slice_mut().expect("output is standard layout");
            let xb = &x[b * cin * hw..(b + 1) * cin * hw];
            gemm(
                mat_mut(yb, cout, hw),
                false,
                mat(wm, cout, cin),
                mat(xb, cin, hw),
            );
        },
    );
}

pub(super) fn pointwise_backward_input(
    p: &Conv2dParams,
    dy: &ArrayView4<'_, f32>,
    w: &ArrayView4<'_, f32>,
    dx: &mut Array4<f32>,
) {
    let (cin, cout, hw) = (p.cin, p.cout, p.in_h * p.in_w);
    let dy = dy.as_standard_layout();
    let dy = dy.as_slice().expect("standard layout");
    let wm = to_matrix(w, cout, cin);
    let wm = wm.as_slice().expect("standard layout");
    for_each_outer(
        dx.view_mut(),
        || (),
        |_, b, mut dxb| {
            let dxb = dxb.as_slice_mut().expect("output is standard layout");
            let dyb = &dy[b * cout * hw..(b + 1) * cout * hw];
            let wt = mat(wm, cout, cin).transpose();
            gemm(mat_mut(dxb, cin, hw), false, wt, mat(dyb, cout, hw));
        },
    );
}

pub(super) fn pointwise_backward_weight(
    p: &Conv2dParams,
    x: &ArrayView4<'_, f32>,
    dy: &ArrayView4<'_, f32>,
) -> Array4<f32> {
    let (cin, cout, hw) = (p.cin, p.cout, p.in_h * p.in_w);
    let x = x.as_standard_layout();
    let x = x.as_slice().expect("standard layout");
    let dy = dy.as_standard_layout();
    let dy = dy.as_slice().expect("standard layout");
    let dw = reduce_over_batch(
        x.len() / (cin * hw),
        |range| {
            let mut acc = vec![0.0f32; cout * cin];
            for b in range {
                let xb = &x[b * cin * hw..(b + 1) * cin * hw];
                let dyb = &dy[b * cout * hw..(b + 1) * cout * hw];
                let xt = mat(xb, cin, hw).transpose();
                gemm(mat_mut(&mut acc, cout, cin), true, mat(dyb, cout, hw), xt);
            }
            acc
        },
        |a, b| a.iter_mut().zip(&b).for_each(|(u, v)| *u += v),
    )
    .unwrap_or_else(|| vec![0.0; cout * cin]);
    Array4::from_shape_vec(p.weight_shape(), dw).expect("cout·cin values")
}
