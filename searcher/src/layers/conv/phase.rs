//! The phase-split layout of the depthwise kernel.
//!
//! Each plane is zero-padded and split into `s × s` phases (`s` = stride):
//! phase `(ry, rx)` holds padded pixels `(qy·s + ry, qx·s + rx)` as a
//! `[ph, pw]` block. Output `(oy, ox)` with tap `(i, j)` reads padded pixel
//! `(oy·s + i, ox·s + j)`, which is element `(oy + i/s, ox + j/s)` of phase
//! `(i % s, j % s)`. The output is computed "wide", `[out_h, pw]`, so that
//! every tap is one long contiguous multiply-add over the whole plane; the
//! columns past `out_w` are discarded (forward) or kept zero (backward).

use super::Conv2dParams;
use crate::layers::simd::BLOCK;

/// Geometry of the phase-split planes of one depthwise convolution.
pub(super) struct PhaseGeometry {
    pub(super) s: usize,
    pub(super) k: usize,
    pad: usize,
    in_w: usize,
    pub(super) out_h: usize,
    pub(super) out_w: usize,
    /// Phase height and width.
    ph: usize,
    pub(super) pw: usize,
    /// Planes side by side in one row of the buffer (see [`slots_for`]).
    pub(super) slots: usize,
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
    pub(super) fn new(p: &Conv2dParams, slots: usize) -> Self {
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
    pub(super) fn wide_len(&self) -> usize {
        self.out_h * self.pw
    }

    pub(super) fn phase_len(&self) -> usize {
        self.ph * self.pw
    }

    /// Floats of a phase buffer: all phases plus slack for the reads of
    /// [`correlate`](crate::layers::simd::correlate) past the last one.
    pub(super) fn phases_len(&self) -> usize {
        self.s * self.s * self.phase_len() + self.k + BLOCK
    }

    /// Offset of tap `(i, j)` relative to the start of its phase.
    pub(super) fn tap_shift(&self, i: usize, j: usize) -> usize {
        (i / self.s) * self.pw + j / self.s
    }

    /// Start of phase `(ry, rx)`.
    fn phase_start(&self, ry: usize, rx: usize) -> usize {
        (ry * self.s + rx) * self.phase_len()
    }

    /// Writes `plane` (`[in_h, in_w]`, row-major) into the interior of the
    /// phases; the padding is left as it is (zero).
    pub(super) fn load(&self, phases: &mut [f32], plane: &[f32], slot: usize) {
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
    pub(super) fn store(&self, phases: &[f32], plane: &mut [f32]) {
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
    pub(super) fn wide_to_plane(&self, wide: &[f32], plane: &mut [f32], slot: usize) {
        let shift = slot * self.slot_shift;
        for (row, src) in plane.chunks_exact_mut(self.out_w).zip(wide.chunks(self.pw)) {
            row.copy_from_slice(&src[shift..shift + self.out_w]);
        }
    }

    /// Copies a `[out_h, out_w]` plane into the wide layout; the columns past
    /// `out_w` are not touched.
    pub(super) fn plane_to_wide(&self, plane: &[f32], wide: &mut [f32], slot: usize) {
        let shift = slot * self.slot_shift;
        for (row, dst) in plane.chunks_exact(self.out_w).zip(wide.chunks_mut(self.pw)) {
            dst[shift..shift + self.out_w].copy_from_slice(row);
        }
    }

    /// Offset of every tap `(i, j)` (row-major) in the phase buffer.
    pub(super) fn tap_offsets(&self) -> Vec<usize> {
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
pub(super) fn slots_for(p: &Conv2dParams) -> usize {
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
