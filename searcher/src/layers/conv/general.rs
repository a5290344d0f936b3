//! The general kernel (anything not pointwise or depthwise, e.g. the
//! stem): im2col + a GEMM per group.

use ndarray::{Array2, Array4, ArrayView3, ArrayView4, ArrayViewMut3, Axis};

use super::{Conv2dParams, to_matrix};
use crate::layers::gemm::{gemm, mat, mat_mut};
use crate::layers::{for_each_outer, reduce_over_batch};

/// Rows of the im2col matrix: `cin * k * k`, ordered `(ci, i, j)`.
fn im2col_rows(p: &Conv2dParams) -> usize {
    p.cin * p.kernel * p.kernel
}

/// Fills `cols` (`[cin*k*k, out_h*out_w]`) from one image `[cin, h, w]`.
fn im2col(p: &Conv2dParams, img: ArrayView3<'_, f32>, cols: &mut Array2<f32>) {
    let (k, s, pad) = (p.kernel, p.stride, p.padding as isize);
    let (oh, ow) = (p.out_h(), p.out_w());
    for ci in 0..p.cin {
        let plane = img.index_axis(Axis(0), ci);
        for i in 0..k {
            for j in 0..k {
                let mut row = cols.row_mut((ci * k + i) * k + j);
                for oy in 0..oh {
                    let iy = (oy * s + i) as isize - pad;
                    for ox in 0..ow {
                        let ix = (ox * s + j) as isize - pad;
                        row[oy * ow + ox] = if iy >= 0
                            && ix >= 0
                            && (iy as usize) < p.in_h
                            && (ix as usize) < p.in_w
                        {
                            plane[[iy as usize, ix as usize]]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// Adds `cols` (`[cin*k*k, out_h*out_w]`) back into one image's grad.
fn col2im(p: &Conv2dParams, cols: &Array2<f32>, mut img: ArrayViewMut3<'_, f32>) {
    let (k, s, pad) = (p.kernel, p.stride, p.padding as isize);
    let (oh, ow) = (p.out_h(), p.out_w());
    for ci in 0..p.cin {
        let mut plane = img.index_axis_mut(Axis(0), ci);
        for i in 0..k {
            for j in 0..k {
                let row = cols.row((ci * k + i) * k + j);
                for oy in 0..oh {
                    let iy = (oy * s + i) as isize - pad;
                    if iy < 0 || iy as usize >= p.in_h {
                        continue;
                    }
                    for ox in 0..ow {
                        let ix = (ox * s + j) as isize - pad;
                        if ix >= 0 && (ix as usize) < p.in_w {
                            plane[[iy as usize, ix as usize]] += row[oy * ow + ox];
                        }
                    }
                }
            }
        }
    }
}

/// The weight as `[cout, cin/groups * k * k]`, standard layout.
fn general_weight(p: &Conv2dParams, w: &ArrayView4<'_, f32>) -> Array2<f32> {
    let (cout, cin_g, k, _) = p.weight_shape();
    to_matrix(w, cout, cin_g * k * k)
}

/// Per group: rows of the im2col matrix and rows of the output (and of the
/// weight matrix).
fn group_rows(p: &Conv2dParams, g: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let kk = p.kernel * p.kernel;
    let (cin_g, cout_g) = (p.cin / p.groups, p.cout / p.groups);
    (
        g * cin_g * kk..(g + 1) * cin_g * kk,
        g * cout_g..(g + 1) * cout_g,
    )
}

pub(super) fn general_forward(
    p: &Conv2dParams,
    x: &ArrayView4<'_, f32>,
    w: &ArrayView4<'_, f32>,
    y: &mut Array4<f32>,
) {
    let wm = general_weight(p, w);
    let wm = wm.as_slice().expect("standard layout");
    let kg = wm.len() / p.cout;
    let ohw = p.out_h() * p.out_w();
    let cols_shape = (im2col_rows(p), ohw);
    for_each_outer(
        y.view_mut(),
        || Array2::<f32>::zeros(cols_shape),
        |cols, b, mut yb| {
            im2col(p, x.index_axis(Axis(0), b), cols);
            let cols = cols.as_slice().expect("standard layout");
            let yb = yb.as_slice_mut().expect("output is standard layout");
            for g in 0..p.groups {
                let (k, o) = group_rows(p, g);
                gemm(
                    mat_mut(&mut yb[o.start * ohw..], o.len(), ohw),
                    false,
                    mat(&wm[o.start * kg..], o.len(), kg),
                    mat(&cols[k.start * ohw..], k.len(), ohw),
                );
            }
        },
    );
}

pub(super) fn general_backward_input(
    p: &Conv2dParams,
    dy: &ArrayView4<'_, f32>,
    w: &ArrayView4<'_, f32>,
    dx: &mut Array4<f32>,
) {
    let wm = general_weight(p, w);
    let wm = wm.as_slice().expect("standard layout");
    let kg = wm.len() / p.cout;
    let ohw = p.out_h() * p.out_w();
    let dy = dy.as_standard_layout();
    let dy = dy.as_slice().expect("standard layout");
    let cols_shape = (im2col_rows(p), ohw);
    for_each_outer(
        dx.view_mut(),
        || Array2::<f32>::zeros(cols_shape),
        |cols, b, dxb| {
            let dyb = &dy[b * p.cout * ohw..(b + 1) * p.cout * ohw];
            let cs = cols.as_slice_mut().expect("standard layout");
            for g in 0..p.groups {
                let (k, o) = group_rows(p, g);
                gemm(
                    mat_mut(&mut cs[k.start * ohw..], k.len(), ohw),
                    false,
                    mat(&wm[o.start * kg..], o.len(), kg).transpose(),
                    mat(&dyb[o.start * ohw..], o.len(), ohw),
                );
            }
            col2im(p, cols, dxb);
        },
    );
}

pub(super) fn general_backward_weight(
    p: &Conv2dParams,
    x: &ArrayView4<'_, f32>,
    dy: &ArrayView4<'_, f32>,
) -> Array4<f32> {
    let (cout, cin_g, kk, _) = p.weight_shape();
    let kg = cin_g * kk * kk;
    let ohw = p.out_h() * p.out_w();
    let dy = dy.as_standard_layout();
    let dy = dy.as_slice().expect("standard layout");
    let cols_shape = (im2col_rows(p), ohw);
    let dw = reduce_over_batch(
        x.len_of(Axis(0)),
        |range| {
            let mut acc = vec![0.0f32; cout * kg];
            let mut cols = Array2::<f32>::zeros(cols_shape);
            for b in range {
                im2col(p, x.index_axis(Axis(0), b), &mut cols);
                let cs = cols.as_slice().expect("standard layout");
                let dyb = &dy[b * cout * ohw..(b + 1) * cout * ohw];
                for g in 0..p.groups {
                    let (k, o) = group_rows(p, g);
                    gemm(
                        mat_mut(&mut acc[o.start * kg..], o.len(), kg),
                        true,
                        mat(&dyb[o.start * ohw..], o.len(), ohw),
                        mat(&cs[k.start * ohw..], k.len(), ohw).transpose(),
                    );
                }
            }
            acc
        },
        |a, b| a.iter_mut().zip(&b).for_each(|(u, v)| *u += v),
    )
    .unwrap_or_else(|| vec![0.0; cout * kg]);
    Array4::from_shape_vec(p.weight_shape(), dw).expect("weight-sized gradient")
}
