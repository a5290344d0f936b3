//! Inner loops of the depthwise convolution, vectorised with `pulp`.
//!
//! The crate is built for the baseline x86-64 target (SSE2); `pulp` detects
//! AVX2+FMA or AVX-512 at run time and runs these loops with them, without
//! `unsafe` here. Each output element is accumulated tap by tap in the same
//! order on every instruction set, so [`correlate`] is bit-identical between
//! AVX2 and AVX-512 (both fuse the multiply-add); [`dot_many`] sums lanes in
//! a tree whose shape depends on the vector width.

use std::sync::OnceLock;

use pulp::{Arch, Simd, WithSimd};

/// The detected instruction set, looked up once: detection checks a dozen
/// CPU features, which costs more than a small kernel call.
fn arch() -> Arch {
    static ARCH: OnceLock<Arch> = OnceLock::new();
    *ARCH.get_or_init(Arch::new)
}

/// Floats computed per register block in [`correlate`]; callers must leave
/// this much slack after the last element read.
pub(crate) const BLOCK: usize = 32;

/// `out[e] = Σ_t weights[t] · src[offsets[t] + e]` for every `e`.
///
/// `src` must hold at least `max(offsets) + out.len().next_multiple_of(BLOCK)`
/// floats: whole blocks are read, and only the valid part is stored.
pub(crate) fn correlate(out: &mut [f32], src: &[f32], offsets: &[usize], weights: &[f32]) {
    assert_eq!(
        offsets.len(),
        weights.len(),
        "correlate: one weight per offset"
    );
    let max_off = offsets.iter().copied().max().unwrap_or(0);
    assert!(
        src.len() >= max_off + out.len().next_multiple_of(BLOCK),
        "correlate: source of {} floats is too short for offset {max_off} and {} outputs",
        src.len(),
        out.len()
    );
    arch().dispatch(Correlate {
        out,
        src,
        offsets,
        weights,
    });
}

/// `out[t] += Σ_e a[e] · src[off_t + e]` for every tap `t`.
pub(crate) fn dot_many(out: &mut [f32], a: &[f32], src: &[f32], offsets: &[usize]) {
    assert_eq!(out.len(), offsets.len(), "dot_many: one output per offset");
    arch().dispatch(DotMany {
        out,
        a,
        src,
        offsets,
    });
}

struct Correlate<'a> {
    out: &'a mut [f32],
    src: &'a [f32],
    offsets: &'a [usize],
    weights: &'a [f32],
}

impl WithSimd for Correlate<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            out,
            src,
            offsets,
            weights,
        } = self;
        // N vectors per block times P partial sums over the taps gives eight
        // independent multiply-add chains, enough to hide the latency.
        match S::F32_LANES {
            16 => correlate_n::<S, 2, 4>(simd, out, src, offsets, weights),
            8 => correlate_n::<S, 4, 2>(simd, out, src, offsets, weights),
            4 => correlate_n::<S, 8, 1>(simd, out, src, offsets, weights),
            _ => correlate_scalar(out, src, offsets, weights),
        }
    }
}

/// [`correlate`] with `N` vectors per block (`N · lanes == BLOCK`) and `P`
/// partial sums over the taps (tap `t` goes to partial `t % P`), added in
/// order at the end.
#[inline(always)]
fn correlate_n<S: Simd, const N: usize, const P: usize>(
    simd: S,
    out: &mut [f32],
    src: &[f32],
    offsets: &[usize],
    weights: &[f32],
) {
    debug_assert_eq!(N * S::F32_LANES, BLOCK);
    let full = offsets.len() / P * P;
    let mut start = 0;
    while start < out.len() {
        let mut acc = [[simd.splat_f32s(0.0); N]; P];
        for (offs, ws) in offsets[..full]
            .chunks_exact(P)
            .zip(weights[..full].chunks_exact(P))
        {
            for p in 0..P {
                let wv = simd.splat_f32s(ws[p]);
                let (v, _) = S::as_simd_f32s(&src[offs[p] + start..offs[p] + start + BLOCK]);
                for k in 0..N {
                    acc[p][k] = simd.mul_add_e_f32s(wv, v[k], acc[p][k]);
                }
            }
        }
        for (&off, &w) in offsets[full..].iter().zip(&weights[full..]) {
            let wv = simd.splat_f32s(w);
            let (v, _) = S::as_simd_f32s(&src[off + start..off + start + BLOCK]);
            for k in 0..N {
                acc[0][k] = simd.mul_add_e_f32s(wv, v[k], acc[0][k]);
            }
        }
        let mut sum = acc[0];
        for part in &acc[1..] {
            for k in 0..N {
                sum[k] = simd.add_f32s(sum[k], part[k]);
            }
        }
        let len = BLOCK.min(out.len() - start);
        if len == BLOCK {
            let (o, _) = S::as_mut_simd_f32s(&mut out[start..start + BLOCK]);
            o.copy_from_slice(&sum);
        } else {
            let mut tmp = [0.0f32; BLOCK];
            let (o, _) = S::as_mut_simd_f32s(&mut tmp);
            o.copy_from_slice(&sum);
            out[start..start + len].copy_from_slice(&tmp[..len]);
        }
        start += BLOCK;
    }
}

fn correlate_scalar(out: &mut [f32], src: &[f32], offsets: &[usize], weights: &[f32]) {
    for (e, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for (&off, &w) in offsets.iter().zip(weights) {
            acc = w.mul_add(src[off + e], acc);
        }
        *o = acc;
    }
}

struct DotMany<'a> {
    out: &'a mut [f32],
    a: &'a [f32],
    src: &'a [f32],
    offsets: &'a [usize],
}

impl WithSimd for DotMany<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            out,
            a,
            src,
            offsets,
        } = self;
        let (a_head, a_tail) = S::as_simd_f32s(a);
        let zero = simd.splat_f32s(0.0);
        // Two taps at a time, two accumulators each: four independent chains,
        // and each vector of `a` is loaded once per pair.
        let mut pairs_out = out.chunks_exact_mut(2);
        let mut pairs_off = offsets.chunks_exact(2);
        for (o, off) in (&mut pairs_out).zip(&mut pairs_off) {
            let (b0, b0_tail) = S::as_simd_f32s(&src[off[0]..off[0] + a.len()]);
            let (b1, b1_tail) = S::as_simd_f32s(&src[off[1]..off[1] + a.len()]);
            let (mut p0, mut q0, mut p1, mut q1) = (zero, zero, zero, zero);
            let mut xs = a_head.chunks_exact(2);
            let mut y0s = b0.chunks_exact(2);
            let mut y1s = b1.chunks_exact(2);
            for ((x, y0), y1) in (&mut xs).zip(&mut y0s).zip(&mut y1s) {
                p0 = simd.mul_add_e_f32s(x[0], y0[0], p0);
                q0 = simd.mul_add_e_f32s(x[1], y0[1], q0);
                p1 = simd.mul_add_e_f32s(x[0], y1[0], p1);
                q1 = simd.mul_add_e_f32s(x[1], y1[1], q1);
            }
            for ((x, y0), y1) in xs
                .remainder()
                .iter()
                .zip(y0s.remainder())
                .zip(y1s.remainder())
            {
                p0 = simd.mul_add_e_f32s(*x, *y0, p0);
                p1 = simd.mul_add_e_f32s(*x, *y1, p1);
            }
            let mut s0 = simd.reduce_sum_f32s(simd.add_f32s(p0, q0));
            let mut s1 = simd.reduce_sum_f32s(simd.add_f32s(p1, q1));
            for ((x, y0), y1) in a_tail.iter().zip(b0_tail).zip(b1_tail) {
                s0 += x * y0;
                s1 += x * y1;
            }
            o[0] += s0;
            o[1] += s1;
        }
        for (o, &off) in pairs_out
            .into_remainder()
            .iter_mut()
            .zip(pairs_off.remainder())
        {
            let (b, b_tail) = S::as_simd_f32s(&src[off..off + a.len()]);
            let mut acc = zero;
            for (x, y) in a_head.iter().zip(b) {
                acc = simd.mul_add_e_f32s(*x, *y, acc);
            }
            let mut sum = simd.reduce_sum_f32s(acc);
            for (x, y) in a_tail.iter().zip(b_tail) {
                sum += x * y;
            }
            *o += sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlate_matches_scalar() {
        let src: Vec<f32> = (0..200).map(|v| (v as f32 * 0.37).sin()).collect();
        let offsets = [0, 3, 17, 40, 2, 9, 1];
        let weights = [0.5, -1.25, 2.0, 0.125, 1.0, -0.5, 0.75];
        for len in [1, 31, 32, 33, 91, 100] {
            let mut fast = vec![0.0; len];
            let mut slow = vec![0.0; len];
            correlate(&mut fast, &src, &offsets, &weights);
            correlate_scalar(&mut slow, &src, &offsets, &weights);
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-5, "len {len}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn dot_many_matches_naive() {
        let src: Vec<f32> = (0..300).map(|v| (v as f32 * 0.11).cos()).collect();
        let a: Vec<f32> = (0..91).map(|v| v as f32 / 50.0 - 1.0).collect();
        let offsets = [0, 5, 100, 209, 3];
        let mut out = vec![1.0; 5];
        dot_many(&mut out, &a, &src, &offsets);
        for (o, &off) in out.iter().zip(&offsets) {
            let naive: f32 = 1.0 + a.iter().zip(&src[off..]).map(|(x, y)| x * y).sum::<f32>();
            assert!((o - naive).abs() < 1e-4, "{o} vs {naive}");
        }
    }
}
