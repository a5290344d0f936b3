//! The depthwise kernel (`groups == cin == cout`): each plane padded and
//! split into `stride × stride` phases (see [`super::phase`]) so that every
//! tap is one contiguous, vectorised multiply-add over the whole plane;
//! parallel over images (forward, input grad) or channels (weight grad,
//! summed in batch order).

use ndarray::{Array2, Array4, ArrayView4, Axis};

use super::phase::{PhaseGeometry, slots_for};
use super::{Conv2dParams, to_matrix};
use crate::layers::for_each_outer;
use crate::layers::simd::{BLOCK, correlate, dot_many};

/// Depthwise weights as a standard-layout `[c, k*k]` matrix.
fn depthwise_taps(w: &ArrayView4<'_, f32>) -> Array2<f32> {
    let (c, _, k, _) = w.dim();
    to_matrix(w, c, k * k)
}

/// A standard-layout copy of `a` unless it already is one, as one slice.
fn contiguous<'a>(a: &'a ArrayView4<'_, f32>) -> ndarray::CowArray<'a, f32, ndarray::Ix4> {
    a.as_standard_layout()
}

pub(super) fn depthwise_forward(
    p: &Conv2dParams,
    x: &ArrayView4<'_, f32>,
    w: &ArrayView4<'_, f32>,
    y: &mut Array4<f32>,
) {
    let slots = slots_for(p);
    if slots == 1 {
        return depthwise_forward_per_image(p, x, w, y);
    }
    let g = PhaseGeometry::new(p, slots);
    let weights = depthwise_taps(w);
    let offsets = g.tap_offsets();
    let x = contiguous(x);
    let x = x.as_slice().expect("standard layout");
    let in_plane = p.in_h * p.in_w;
    let (n, c) = (x.len() / (p.cin * in_plane), p.cin);
    // Parallel over channels; `slots` images of the channel at a time.
    for_each_outer(
        y.view_mut().permuted_axes([1, 0, 2, 3]),
        || (vec![0.0f32; g.phases_len()], vec![0.0f32; g.wide_len()]),
        |(phases, wide), ch, mut yc| {
            let wrow = weights.row(ch);
            let wrow = wrow.as_slice().expect("standard layout");
            for first in (0..n).step_by(g.slots) {
                let images = first..(first + g.slots).min(n);
                for (slot, b) in images.clone().enumerate() {
                    let start = (b * c + ch) * in_plane;
                    g.load(phases, &x[start..start + in_plane], slot);
                }
                correlate(wide, phases, &offsets, wrow);
                for (slot, b) in images.enumerate() {
                    let mut plane = yc.index_axis_mut(Axis(0), b);
                    let plane = plane.as_slice_mut().expect("output planes are contiguous");
                    g.wide_to_plane(wide, plane, slot);
                }
            }
        },
    );
}

/// [`depthwise_forward`] one plane at a time, parallel over images.
fn depthwise_forward_per_image(
    p: &Conv2dParams,
    x: &ArrayView4<'_, f32>,
    w: &ArrayView4<'_, f32>,
    y: &mut Array4<f32>,
) {
    let g = PhaseGeometry::new(p, 1);
    let weights = depthwise_taps(w);
    let offsets = g.tap_offsets();
    let x = contiguous(x);
    let x = x.as_slice().expect("standard layout");
    let (in_plane, out_plane) = (p.in_h * p.in_w, g.out_h * g.out_w);
    let c = p.cin;
    for_each_outer(
        y.view_mut(),
        || (vec![0.0f32; g.phases_len()], vec![0.0f32; g.wide_len()]),
        |(phases, wide), b, mut yb| {
            let yb = yb.as_slice_mut().expect("output is standard layout");
            let xb = &x[b * c * in_plane..(b + 1) * c * in_plane];
            for (ch, (yc, xc)) in yb
                .chunks_exact_mut(out_plane)
                .zip(xb.chunks_exact(in_plane))
                .enumerate()
            {
                g.load(phases, xc, 0);
                let wrow = weights.row(ch);
                let wrow = wrow.as_slice().expect("standard layout");
                correlate(wide, phases, &offsets, wrow);
                g.wide_to_plane(wide, yc, 0);
            }
        },
    );
}

/// The taps of one phase in the depthwise input grad.
struct PhaseTaps {
    /// Range of the phase buffer computed (rows holding input pixels).
    rows: std::ops::Range<usize>,
    /// Offsets into the wide `dy` buffer.
    offsets: Vec<usize>,
    /// Index of each tap in the `k·k` kernel.
    kernel_index: Vec<usize>,
}

pub(super) fn depthwise_backward_input(
    p: &Conv2dParams,
    dy: &ArrayView4<'_, f32>,
    w: &ArrayView4<'_, f32>,
    dx: &mut Array4<f32>,
) {
    if p.stride == 1 && p.padding < p.kernel {
        return depthwise_backward_input_as_forward(p, dy, w, dx);
    }
    let g = PhaseGeometry::new(p, 1);
    let weights = depthwise_taps(w);
    let dy = contiguous(dy);
    let dy = dy.as_slice().expect("standard layout");
    let (in_plane, out_plane) = (p.in_h * p.in_w, g.out_h * g.out_w);
    let c = p.cin;
    // The input grad gathers: phase element q of (ry, rx) receives
    // w[i, j] · dy_wide[q − shift(i, j)] from every tap of that phase. `dy`
    // is stored wide after `front` zeros so that the index stays positive;
    // its columns past `out_w` stay zero.
    let front = g.tap_shift(g.k - 1, g.k - 1);
    let dy_len = front + g.wide_len().max(g.phase_len()) + BLOCK;
    // Taps of each phase: (offsets into the wide dy, indices into the kernel).
    // Only the phase rows that hold input pixels (not padding) are computed:
    // rows `lo..hi` of each phase, and each offset is shifted by `lo` rows.
    let (pad, in_h, s) = (p.padding, p.in_h, g.s);
    let phase_taps: Vec<PhaseTaps> = (0..s * s)
        .map(|r| {
            let (ry, rx) = (r / s, r % s);
            let lo = pad.saturating_sub(ry).div_ceil(s);
            let hi = (pad + in_h).saturating_sub(ry).div_ceil(s).max(lo);
            let (mut offsets, mut kernel_index) = (Vec::new(), Vec::new());
            for i in (ry..g.k).step_by(s) {
                for j in (rx..g.k).step_by(s) {
                    offsets.push(front - g.tap_shift(i, j) + lo * g.pw);
                    kernel_index.push(i * g.k + j);
                }
            }
            let start = r * g.phase_len();
            PhaseTaps {
                rows: start + lo * g.pw..start + hi * g.pw,
                offsets,
                kernel_index,
            }
        })
        .collect();
    for_each_outer(
        dx.view_mut(),
        || {
            (
                vec![0.0f32; g.phases_len()],
                vec![0.0f32; dy_len],
                Vec::with_capacity(g.k * g.k),
            )
        },
        |(phases, wide, taps), b, mut dxb| {
            let dxb = dxb.as_slice_mut().expect("output is standard layout");
            let dyb = &dy[b * c * out_plane..(b + 1) * c * out_plane];
            for (ch, (dxc, dyc)) in dxb
                .chunks_exact_mut(in_plane)
                .zip(dyb.chunks_exact(out_plane))
                .enumerate()
            {
                g.plane_to_wide(dyc, &mut wide[front..], 0);
                let wrow = weights.row(ch);
                for pt in &phase_taps {
                    taps.clear();
                    taps.extend(pt.kernel_index.iter().map(|&t| wrow[t]));
                    correlate(&mut phases[pt.rows.clone()], wide, &pt.offsets, taps);
                }
                g.store(phases, dxc);
            }
        },
    );
}

/// At stride 1 the input grad is a forward correlation: `dy` padded by
/// `k − 1 − padding` against the kernel turned by 180°,
/// `dx[y, x] = Σ w[i, j] · dy[y + padding − i, x + padding − j]`. Run as
/// [`depthwise_forward`], small planes sit side by side (see
/// [`slots_for`]) instead of each paying for its own padding.
fn depthwise_backward_input_as_forward(
    p: &Conv2dParams,
    dy: &ArrayView4<'_, f32>,
    w: &ArrayView4<'_, f32>,
    dx: &mut Array4<f32>,
) {
    let k = p.kernel;
    let turned = Array4::from_shape_fn(w.dim(), |(c, g, i, j)| w[[c, g, k - 1 - i, k - 1 - j]]);
    let as_forward = Conv2dParams {
        in_h: p.out_h(),
        in_w: p.out_w(),
        padding: k - 1 - p.padding,
        ..*p
    };
    debug_assert_eq!((as_forward.out_h(), as_forward.out_w()), (p.in_h, p.in_w));
    depthwise_forward(&as_forward, dy, &turned.view(), dx);
}

pub(super) fn depthwise_backward_weight(
    p: &Conv2dParams,
    x: &ArrayView4<'_, f32>,
    dy: &ArrayView4<'_, f32>,
) -> Array4<f32> {
    let g = PhaseGeometry::new(p, slots_for(p));
    let n = x.len_of(Axis(0));
    let offsets = g.tap_offsets();
    let x = contiguous(x);
    let x = x.as_slice().expect("standard layout");
    let dy = contiguous(dy);
    let dy = dy.as_slice().expect("standard layout");
    let (in_plane, out_plane) = (p.in_h * p.in_w, g.out_h * g.out_w);
    let c = p.cin;
    let mut dw = Array2::<f32>::zeros((p.cout, g.k * g.k));
    // Parallel over channels: each channel's taps are summed over the whole
    // batch by one task, `slots` images at a time in batch order, so no
    // cross-thread reduction. The wide dy is zero outside the valid output
    // columns of the images in the group, so stale planes in unused slots
    // add nothing.
    let wide_len = g.wide_len().next_multiple_of(BLOCK);
    for_each_outer(
        dw.view_mut(),
        || (vec![0.0f32; g.phases_len()], vec![0.0f32; wide_len]),
        |(phases, wide), ch, mut dwc| {
            let dwc = dwc.as_slice_mut().expect("dw rows are contiguous");
            if g.slots == 1 {
                for b in 0..n {
                    let plane = b * c + ch;
                    g.load(phases, &x[plane * in_plane..(plane + 1) * in_plane], 0);
                    let dyc = &dy[plane * out_plane..(plane + 1) * out_plane];
                    g.plane_to_wide(dyc, wide, 0);
                    dot_many(dwc, wide, phases, &offsets);
                }
                return;
            }
            for first in (0..n).step_by(g.slots) {
                let images = first..(first + g.slots).min(n);
                if images.len() < g.slots {
                    wide.fill(0.0);
                }
                for (slot, b) in images.enumerate() {
                    let plane = b * c + ch;
                    g.load(phases, &x[plane * in_plane..(plane + 1) * in_plane], slot);
                    let dyc = &dy[plane * out_plane..(plane + 1) * out_plane];
                    g.plane_to_wide(dyc, wide, slot);
                }
                dot_many(dwc, wide, phases, &offsets);
            }
        },
    );
    dw.into_shape_with_order(p.weight_shape())
        .expect("[c, k*k] reshapes to [c, 1, k, k]")
}
