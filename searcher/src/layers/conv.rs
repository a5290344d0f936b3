//! 2-D convolution: forward, input grad, weight grad, bias grad.
//!
//! Weight layout is `[cout, cin / groups, k, k]`; activations are NCHW.
//! Three kernels, chosen from the params ([`ConvKind`]):
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

use ndarray::{Array1, Array2, Array4, ArrayView1, ArrayView3, ArrayView4, ArrayViewMut3, Axis};
use serde::{Deserialize, Serialize};

use super::gemm::{gemm, mat, mat_mut};
use super::simd::{BLOCK, correlate, dot_many};
use super::{LayerError, for_each_outer, reduce_over_batch};

/// Geometry of a 2-D convolution, checked when built.
///
/// Square kernels, the same stride and zero padding on both axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dParams {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size (k×k).
    pub kernel: usize,
    /// Stride on both axes.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Channel groups; `groups == cin == cout` is depthwise.
    pub groups: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
}

/// Which kernel a convolution runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKind {
    /// 1×1, stride 1, no padding, one group: a GEMM per image.
    Pointwise,
    /// One input and one output channel per group.
    Depthwise,
    /// im2col + GEMM.
    General,
}

impl Conv2dParams {
    /// Checks the geometry: all sizes positive, `groups` divides both channel
    /// counts, the kernel fits the padded input.
    pub fn checked(self) -> Result<Self, LayerError> {
        for (what, v) in [
            ("cin", self.cin),
            ("cout", self.cout),
            ("kernel", self.kernel),
            ("stride", self.stride),
            ("groups", self.groups),
            ("in_h", self.in_h),
            ("in_w", self.in_w),
        ] {
            if v == 0 {
                return Err(LayerError::Zero {
                    layer: "conv2d",
                    what,
                });
            }
        }
        if !self.cin.is_multiple_of(self.groups) || !self.cout.is_multiple_of(self.groups) {
            return Err(LayerError::Groups {
                groups: self.groups,
                cin: self.cin,
                cout: self.cout,
            });
        }
        if self.in_h + 2 * self.padding < self.kernel || self.in_w + 2 * self.padding < self.kernel
        {
            return Err(LayerError::KernelTooLarge {
                kernel: self.kernel,
                in_h: self.in_h,
                in_w: self.in_w,
                padding: self.padding,
            });
        }
        Ok(self)
    }

    /// 1×1 convolution, stride 1, no padding, on an `h`×`w` input.
    pub fn pointwise(cin: usize, cout: usize, h: usize, w: usize) -> Result<Self, LayerError> {
        Self {
            cin,
            cout,
            kernel: 1,
            stride: 1,
            padding: 0,
            groups: 1,
            in_h: h,
            in_w: w,
        }
        .checked()
    }

    /// Depthwise `kernel`×`kernel` convolution with "same" padding
    /// (`kernel / 2`), on an `h`×`w` input.
    pub fn depthwise(
        channels: usize,
        kernel: usize,
        stride: usize,
        h: usize,
        w: usize,
    ) -> Result<Self, LayerError> {
        Self {
            cin: channels,
            cout: channels,
            kernel,
            stride,
            padding: kernel / 2,
            groups: channels,
            in_h: h,
            in_w: w,
        }
        .checked()
    }

    /// Output height.
    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Weight shape `[cout, cin / groups, k, k]`.
    pub fn weight_shape(&self) -> (usize, usize, usize, usize) {
        (self.cout, self.cin / self.groups, self.kernel, self.kernel)
    }

    /// The kernel this geometry runs on.
    pub fn kind(&self) -> ConvKind {
        if self.kernel == 1 && self.stride == 1 && self.padding == 0 && self.groups == 1 {
            ConvKind::Pointwise
        } else if self.groups == self.cin && self.groups == self.cout {
            ConvKind::Depthwise
        } else {
            ConvKind::General
        }
    }

    fn assert_input(&self, what: &str, x: &ArrayView4<'_, f32>) {
        let (_, c, h, w) = x.dim();
        assert!(
            c == self.cin && h == self.in_h && w == self.in_w,
            "conv2d {what}: input shape {:?} does not match params {self:?}",
            x.shape()
        );
    }

    fn assert_output(&self, what: &str, dy: &ArrayView4<'_, f32>) {
        let (_, c, h, w) = dy.dim();
        assert!(
            c == self.cout && h == self.out_h() && w == self.out_w(),
            "conv2d {what}: output grad shape {:?} does not match params {self:?} (expected [_, {}, {}, {}])",
            dy.shape(),
            self.cout,
            self.out_h(),
            self.out_w()
        );
    }

    fn assert_weight(&self, what: &str, w: &ArrayView4<'_, f32>) {
        assert!(
            w.dim() == self.weight_shape(),
            "conv2d {what}: weight shape {:?} does not match params {self:?} (expected {:?})",
            w.shape(),
            self.weight_shape()
        );
    }
}

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

/// Gradient of the loss w.r.t. the bias: `dy` summed over batch and space.
///
/// # Shapes
/// `dy: [n, cout, out_h, out_w]` → `[cout]`.
pub fn conv2d_backward_bias(dy: ArrayView4<'_, f32>) -> Array1<f32> {
    let c = dy.len_of(Axis(1));
    let mut db = Array1::<f32>::zeros(c);
    for img in dy.outer_iter() {
        for (d, plane) in db.iter_mut().zip(img.outer_iter()) {
            *d += plane.sum();
        }
    }
    db
}

/// Naive 7-loop convolution, the reference the fast kernels are tested
/// against. Slow; for tests only.
///
/// # Shapes
/// As [`conv2d`].
pub fn conv2d_reference(
    p: &Conv2dParams,
    x: ArrayView4<'_, f32>,
    w: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
) -> Array4<f32> {
    p.assert_input("reference", &x);
    p.assert_weight("reference", &w);
    let n = x.len_of(Axis(0));
    let (oh, ow, k) = (p.out_h(), p.out_w(), p.kernel);
    let (cin_g, cout_g) = (p.cin / p.groups, p.cout / p.groups);
    let mut y = Array4::<f32>::zeros((n, p.cout, oh, ow));
    for b in 0..n {
        for co in 0..p.cout {
            let g = co / cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.as_ref().map_or(0.0, |b| b[co]);
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
                                    acc += w[[co, ci, i, j]]
                                        * x[[b, g * cin_g + ci, iy as usize, ix as usize]];
                                }
                            }
                        }
                    }
                    y[[b, co, oy, ox]] = acc;
                }
            }
        }
    }
    y
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

// ---------------------------------------------------------------- pointwise

fn pointwise_forward(
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

fn pointwise_backward_input(
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

fn pointwise_backward_weight(
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

// ---------------------------------------------------------------- depthwise
//
// Each plane is zero-padded and split into `s × s` phases (`s` = stride):
// phase `(ry, rx)` holds padded pixels `(qy·s + ry, qx·s + rx)` as a
// `[ph, pw]` block. Output `(oy, ox)` with tap `(i, j)` reads padded pixel
// `(oy·s + i, ox·s + j)`, which is element `(oy + i/s, ox + j/s)` of phase
// `(i % s, j % s)`. The output is computed "wide", `[out_h, pw]`, so that
// every tap is one long contiguous multiply-add over the whole plane; the
// columns past `out_w` are discarded (forward) or kept zero (backward).

/// Geometry of the phase-split planes of one depthwise convolution.
struct PhaseGeometry {
    s: usize,
    k: usize,
    pad: usize,
    in_w: usize,
    out_h: usize,
    out_w: usize,
    /// Phase height and width.
    ph: usize,
    pw: usize,
    /// Planes side by side in one row of the buffer (see [`slots_for`]).
    slots: usize,
    /// Phase columns from one slot to the next.
    slot_shift: usize,
    /// For every input row, `s` runs `(phase_index, first_column, count)`:
    /// input columns `first, first + s, ...` (`count` of them) go to
    /// consecutive phase elements from `phase_index` on. Precomputed so that
    /// loading a plane does no division.
    runs: Vec<(usize, usize, usize)>,
}

impl PhaseGeometry {
    /// Geometry for `slots` planes side by side (1 for a plane alone).
    fn new(p: &Conv2dParams, slots: usize) -> Self {
        let s = p.stride;
        let stride_px = slot_stride(p);
        let total_w = (slots - 1) * stride_px + p.in_w + 2 * p.padding;
        let mut g = Self {
            s,
            k: p.kernel,
            pad: p.padding,
            in_w: p.in_w,
            out_h: p.out_h(),
            out_w: p.out_w(),
            ph: (p.in_h + 2 * p.padding).div_ceil(s),
            pw: total_w.div_ceil(s),
            slots,
            slot_shift: stride_px / s,
            runs: Vec::with_capacity(p.in_h * s),
        };
        for iy in 0..p.in_h {
            let py = iy + g.pad;
            let (ry, qy) = (py % s, py / s);
            for rx in 0..s {
                // First input column whose padded column falls in phase `rx`.
                let ix0 = (rx + s - g.pad % s) % s;
                let count = g.in_w.saturating_sub(ix0).div_ceil(s);
                let dst = g.phase_start(ry, rx) + qy * g.pw + (ix0 + g.pad) / s;
                g.runs.push((dst, ix0, count));
            }
        }
        g
    }

    /// Length of the wide output, `out_h · pw`.
    fn wide_len(&self) -> usize {
        self.out_h * self.pw
    }

    fn phase_len(&self) -> usize {
        self.ph * self.pw
    }

    /// Floats of a phase buffer: all phases plus slack for the reads of
    /// [`correlate`] past the last one.
    fn phases_len(&self) -> usize {
        self.s * self.s * self.phase_len() + self.k + BLOCK
    }

    /// Offset of tap `(i, j)` relative to the start of its phase.
    fn tap_shift(&self, i: usize, j: usize) -> usize {
        (i / self.s) * self.pw + j / self.s
    }

    /// Start of phase `(ry, rx)`.
    fn phase_start(&self, ry: usize, rx: usize) -> usize {
        (ry * self.s + rx) * self.phase_len()
    }

    /// Writes `plane` (`[in_h, in_w]`, row-major) into the interior of the
    /// phases; the padding is left as it is (zero).
    fn load(&self, phases: &mut [f32], plane: &[f32], slot: usize) {
        debug_assert!(slot < self.slots);
        let (w, s) = (self.in_w, self.s);
        let shift = slot * self.slot_shift;
        for (row, runs) in plane.chunks_exact(w).zip(self.runs.chunks_exact(s)) {
            for &(dst, start, count) in runs {
                let dst = dst + shift;
                if s == 1 {
                    phases[dst..dst + count].copy_from_slice(row);
                } else {
                    for (q, d) in phases[dst..dst + count].iter_mut().enumerate() {
                        *d = row[start + q * s];
                    }
                }
            }
        }
    }

    /// Reads the interior of the phases into `plane` (`[in_h, in_w]`).
    fn store(&self, phases: &[f32], plane: &mut [f32]) {
        let (w, s) = (self.in_w, self.s);
        for (row, runs) in plane.chunks_exact_mut(w).zip(self.runs.chunks_exact(s)) {
            for &(src, start, count) in runs {
                if s == 1 {
                    row.copy_from_slice(&phases[src..src + count]);
                } else {
                    for (q, &v) in phases[src..src + count].iter().enumerate() {
                        row[start + q * s] = v;
                    }
                }
            }
        }
    }

    /// Copies the valid columns of the wide `[out_h, pw]` layout into a
    /// `[out_h, out_w]` plane.
    fn wide_to_plane(&self, wide: &[f32], plane: &mut [f32], slot: usize) {
        let shift = slot * self.slot_shift;
        for (row, src) in plane.chunks_exact_mut(self.out_w).zip(wide.chunks(self.pw)) {
            row.copy_from_slice(&src[shift..shift + self.out_w]);
        }
    }

    /// Copies a `[out_h, out_w]` plane into the wide layout; the columns past
    /// `out_w` are not touched.
    fn plane_to_wide(&self, plane: &[f32], wide: &mut [f32], slot: usize) {
        let shift = slot * self.slot_shift;
        for (row, dst) in plane.chunks_exact(self.out_w).zip(wide.chunks_mut(self.pw)) {
            dst[shift..shift + self.out_w].copy_from_slice(row);
        }
    }

    /// Offset of every tap `(i, j)` (row-major) in the phase buffer.
    fn tap_offsets(&self) -> Vec<usize> {
        (0..self.k * self.k)
            .map(|t| {
                let (i, j) = (t / self.k, t % self.k);
                self.phase_start(i % self.s, j % self.s) + self.tap_shift(i, j)
            })
            .collect()
    }
}

/// Padded columns from one plane to the next when planes sit side by side:
/// at least `in_w + padding`, so that one run of `padding` zeros separates
/// them and no output reads its neighbour, rounded up to the stride so that
/// every plane splits into phases the same way.
fn slot_stride(p: &Conv2dParams) -> usize {
    (p.in_w + p.padding).next_multiple_of(p.stride)
}

/// How many images of one channel share a row of the buffer.
///
/// Side by side, small planes waste less of each vector block on padding
/// (a 7×7 plane with a 7×7 kernel is 13 columns wide alone, 10 per plane
/// side by side). Worth it only when that saves at least ~15% of the
/// multiply-adds: otherwise the per-image layout, which streams through
/// memory, is faster (measured on the tiny28 shapes).
fn slots_for(p: &Conv2dParams) -> usize {
    let (s, out_h) = (p.stride, p.out_h());
    let alone = (out_h * (p.in_w + 2 * p.padding).div_ceil(s)).next_multiple_of(BLOCK);
    let slots = (96 * s).div_ceil(slot_stride(p)).clamp(1, 16);
    let row = ((slots - 1) * slot_stride(p) + p.in_w + 2 * p.padding).div_ceil(s);
    let shared = (out_h * row).next_multiple_of(BLOCK) as f64 / slots as f64;
    if shared < 0.86 * alone as f64 {
        slots
    } else {
        1
    }
}

/// Depthwise weights as a standard-layout `[c, k*k]` matrix.
fn depthwise_taps(w: &ArrayView4<'_, f32>) -> Array2<f32> {
    let (c, _, k, _) = w.dim();
    to_matrix(w, c, k * k)
}

/// A standard-layout copy of `a` unless it already is one, as one slice.
fn contiguous<'a>(a: &'a ArrayView4<'_, f32>) -> ndarray::CowArray<'a, f32, ndarray::Ix4> {
    a.as_standard_layout()
}

fn depthwise_forward(
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

fn depthwise_backward_input(
    p: &Conv2dParams,
    dy: &ArrayView4<'_, f32>,
    w: &ArrayView4<'_, f32>,
    dx: &mut Array4<f32>,
) {
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

fn depthwise_backward_weight(
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

// ---------------------------------------------------------------- general

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

fn general_forward(
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

fn general_backward_input(
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

fn general_backward_weight(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_grad, dot64, rng, uniform};
    use ndarray::{Array, array, s};
    use proptest::prelude::*;

    /// Naive input and weight grads, the loops of [`conv2d_reference`] with
    /// the accumulation reversed.
    fn reference_backward(
        p: &Conv2dParams,
        x: ArrayView4<'_, f32>,
        w: ArrayView4<'_, f32>,
        dy: ArrayView4<'_, f32>,
    ) -> (Array4<f32>, Array4<f32>) {
        let n = x.len_of(Axis(0));
        let (cin_g, cout_g, k) = (p.cin / p.groups, p.cout / p.groups, p.kernel);
        let mut dx = Array4::<f32>::zeros(x.raw_dim());
        let mut dw = Array4::<f32>::zeros(w.raw_dim());
        for b in 0..n {
            for co in 0..p.cout {
                let g = co / cout_g;
                for oy in 0..p.out_h() {
                    for ox in 0..p.out_w() {
                        let d = dy[[b, co, oy, ox]];
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
                                        let idx = [b, g * cin_g + ci, iy as usize, ix as usize];
                                        dx[idx] += w[[co, ci, i, j]] * d;
                                        dw[[co, ci, i, j]] += x[idx] * d;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
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
        assert_eq!(conv2d_backward_bias(dy.view()), array![4.0f32, 4.0, 4.0]);
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
    /// input, weight and bias grads of one geometry.
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
        let db = conv2d_backward_bias(dy.view());
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
        let mut bm = b.clone();
        check_grad(
            &format!("{name} db"),
            bm.as_slice_mut().unwrap(),
            db.as_slice().unwrap(),
            eps,
            rtol,
            atol,
            |v| loss(x.view(), w.view(), ArrayView1::from(v)),
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
