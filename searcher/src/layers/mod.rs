//! Hand-written neural-network layers on `ndarray` + `rayon`, `f32`, NCHW.
//!
//! Every layer is a set of plain functions: a forward pass that returns its
//! output (and, where backward needs more than the caller already holds, a
//! small cache), and explicit backward pieces (input grad, weight grad, bias
//! grad). Geometry is checked once, when a params struct such as
//! [`conv::Conv2dParams`] is built; after that a shape that does not match
//! the params is a broken invariant and panics with the values.
//!
//! # Parallelism and determinism
//!
//! Work is split over independent output slices (images, channels) with
//! rayon. Reductions over the batch (weight gradients) are computed over a
//! fixed partition of the batch that does not depend on the thread count, and
//! the partial sums are added in partition order. Results are therefore
//! bit-identical whatever the number of threads, and identical to the serial
//! path selected by [`set_serial`]. (They are not bit-identical across
//! machines: the GEMMs and depthwise kernels pick AVX2 or AVX-512 at run
//! time, and vector width changes the order of some sums.)
//!
//! # Speed
//!
//! The 1×1 and im2col convolutions run on faer's GEMM (one product per
//! image); depthwise convolutions run on padded, stride-phase-split planes
//! with `pulp`-vectorised inner loops; batch norm, squeeze-excite and
//! pooling work on contiguous planes. `benches/kernels.rs` holds the
//! numbers.
//!
//! ```
//! use ndarray::Array4;
//! use tunas_searcher::layers::conv::{conv2d, conv2d_backward_input, Conv2dParams};
//!
//! let p = Conv2dParams::pointwise(4, 8, 7, 7).unwrap();
//! let x = Array4::<f32>::ones((2, 4, 7, 7));
//! let w = Array4::<f32>::from_elem(p.weight_shape(), 0.5);
//! let y = conv2d(&p, x.view(), w.view(), None);
//! assert_eq!(y.dim(), (2, 8, 7, 7));
//! assert!(y.iter().all(|&v| v == 2.0));
//! // Backward pieces are separate calls: here the input grad.
//! let dx = conv2d_backward_input(&p, y.view(), w.view());
//! assert_eq!(dx.dim(), x.dim());
//! ```

pub mod activation;
pub mod batch_norm;
pub mod conv;
mod gemm;
pub(crate) mod linear;
pub(crate) mod loss;
pub(crate) mod pool;
pub(crate) mod residual;
mod simd;
pub mod squeeze_excite;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array4, ArrayView4, ArrayViewMut, Axis, Dimension, Ix4, RemoveAxis, Zip};
use rayon::prelude::*;

/// A layer's geometry that cannot work, found when its params are built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayerError {
    /// A size that must be positive is zero.
    #[error("{layer}: {what} must be positive, got 0")]
    Zero {
        /// Layer kind, e.g. `conv2d`.
        layer: &'static str,
        /// The field that is zero.
        what: &'static str,
    },
    /// `groups` does not divide the channel counts.
    #[error("conv2d: groups {groups} must divide cin {cin} and cout {cout}")]
    Groups {
        /// Number of groups.
        groups: usize,
        /// Input channels.
        cin: usize,
        /// Output channels.
        cout: usize,
    },
    /// The padded input is smaller than the kernel.
    #[error("conv2d: kernel {kernel} does not fit the input {in_h}x{in_w} with padding {padding}")]
    KernelTooLarge {
        /// Kernel size.
        kernel: usize,
        /// Input height.
        in_h: usize,
        /// Input width.
        in_w: usize,
        /// Padding on each side.
        padding: usize,
    },
    /// A hyper-parameter is outside its valid range.
    #[error("{layer}: {what} = {value} is outside {range}")]
    OutOfRange {
        /// Layer kind.
        layer: &'static str,
        /// The hyper-parameter.
        what: &'static str,
        /// Its value.
        value: f32,
        /// The valid range, in words.
        range: &'static str,
    },
}

static SERIAL: AtomicBool = AtomicBool::new(false);

/// Runs every layer serially (`true`) or on the rayon pool (`false`, the
/// default).
///
/// Results are the same either way (see the module docs); the switch exists
/// for tests that want to prove it and for profiling a single thread.
pub fn set_serial(serial: bool) {
    SERIAL.store(serial, Ordering::Relaxed);
}

/// Whether layers currently run serially (see [`set_serial`]).
pub(crate) fn is_serial() -> bool {
    SERIAL.load(Ordering::Relaxed)
}

/// Element count below which element-wise kernels stay on one thread: below
/// it the rayon hand-off costs more than the work.
pub(crate) const PAR_MIN_ELEMENTS: usize = 1 << 14;

/// Calls `f(i, slice_i)` for every index along axis 0 of `out`, in parallel
/// unless [`is_serial`]. `init` makes per-task scratch that `f` may reuse.
pub(crate) fn for_each_outer<A, D, T, I, F>(mut out: ArrayViewMut<'_, A, D>, init: I, f: F)
where
    A: Send + Sync,
    D: RemoveAxis,
    I: Fn() -> T + Sync + Send,
    F: Fn(&mut T, usize, ArrayViewMut<'_, A, D::Smaller>) + Sync + Send,
{
    if is_serial() || out.len_of(Axis(0)) <= 1 {
        let mut scratch = init();
        for (i, slice) in out.axis_iter_mut(Axis(0)).enumerate() {
            f(&mut scratch, i, slice);
        }
    } else {
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each_init(init, |scratch, (i, slice)| f(scratch, i, slice));
    }
}

/// A zero-filled `[n, c, h, w]` array, filled on the rayon pool when large.
///
/// `Array4::zeros` zeroes on the calling thread; for the activation-sized
/// buffers of a training step that serial `memset` was a visible share of a
/// 2-thread step (perf: about 5% of samples, all on one thread).
pub(crate) fn zeros4(dim: impl ndarray::IntoDimension<Dim = Ix4>) -> Array4<f32> {
    let dim = dim.into_dimension();
    let len = dim.size();
    if is_serial() || len < PAR_MIN_ELEMENTS {
        return Array4::zeros(dim);
    }
    let data: Vec<f32> = rayon::iter::repeat_n(0.0f32, len).collect();
    Array4::from_shape_vec(dim, data).expect("length matches the shape")
}

/// An owned, standard-layout copy of `a`, copied on the rayon pool when
/// large (see [`zeros4`]).
pub(crate) fn standard_copy4(a: ArrayView4<'_, f32>) -> Array4<f32> {
    if is_serial() || a.len() < PAR_MIN_ELEMENTS || !a.is_standard_layout() {
        return a.as_standard_layout().into_owned();
    }
    let copy = Zip::from(&a).par_map_collect(|&v| v);
    debug_assert!(copy.is_standard_layout());
    copy
}

/// `a · k` as a new array, computed on the rayon pool when large.
pub(crate) fn scaled4(a: ArrayView4<'_, f32>, k: f32) -> Array4<f32> {
    if is_serial() || a.len() < PAR_MIN_ELEMENTS {
        return a.mapv(|v| v * k);
    }
    Zip::from(&a).par_map_collect(|&v| v * k)
}

/// `Σ a[i]` with 8 independent partial sums (so that it vectorises), added
/// in a fixed order.
#[inline]
pub(crate) fn sum_f32(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = a.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.iter().sum::<f32>() + tail
}

/// `Σ a[i] · b[i]` with 8 independent partial sums, added in a fixed order.
#[inline]
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot_f32: lengths differ");
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Number of parts a batch reduction is split into. Fixed (not the thread
/// count) so that the summation order, and hence the result, never depends on
/// how many threads run it.
const REDUCE_PARTS: usize = 8;

/// Splits `0..n` into at most [`REDUCE_PARTS`] contiguous ranges whose bounds
/// depend only on `n`.
pub(crate) fn batch_parts(n: usize) -> Vec<Range<usize>> {
    let parts = n.clamp(1, REDUCE_PARTS);
    (0..parts)
        .map(|k| (k * n / parts)..((k + 1) * n / parts))
        .filter(|r| !r.is_empty())
        .collect()
}

/// Computes `part(range)` for each range of [`batch_parts`]`(n)` (in parallel
/// unless [`is_serial`]) and adds the results in range order.
pub(crate) fn reduce_over_batch<T, P, S>(n: usize, part: P, mut add: S) -> Option<T>
where
    T: Send,
    P: Fn(Range<usize>) -> T + Sync + Send,
    S: FnMut(&mut T, T),
{
    let ranges = batch_parts(n);
    let partials: Vec<T> = if is_serial() {
        ranges.into_iter().map(&part).collect()
    } else {
        ranges.into_par_iter().map(&part).collect()
    };
    let mut iter = partials.into_iter();
    let mut total = iter.next()?;
    for p in iter {
        add(&mut total, p);
    }
    Some(total)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the layer tests: seeded random arrays and a central
    //! finite-difference gradient check.

    use ndarray::{Array, Dimension, ShapeBuilder};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Seeded RNG so every test is reproducible.
    pub(crate) fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    /// Array of uniform values in `[lo, hi)`.
    pub(crate) fn uniform<Sh, D>(rng: &mut ChaCha8Rng, shape: Sh, lo: f32, hi: f32) -> Array<f32, D>
    where
        Sh: ShapeBuilder<Dim = D>,
        D: Dimension,
    {
        Array::from_shape_simple_fn(shape, || rng.random_range(lo..hi))
    }

    /// `sum(y * r)` in f64: a scalar loss whose gradient w.r.t. `y` is `r`.
    pub(crate) fn dot64<D: Dimension>(y: &Array<f32, D>, r: &Array<f32, D>) -> f64 {
        assert_eq!(y.shape(), r.shape());
        y.iter()
            .zip(r.iter())
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum()
    }

    /// Checks `analytic` against central differences of `loss` w.r.t. every
    /// element of `param` (given in memory order), with step `eps`.
    ///
    /// Passes when `|num - ana| <= rtol * max(|num|, |ana|) + atol` for every
    /// element. Also requires the gradient to be non-trivial, so a check on
    /// an all-zero gradient cannot pass vacuously.
    pub(crate) fn check_grad(
        name: &str,
        param: &mut [f32],
        analytic: &[f32],
        eps: f32,
        rtol: f64,
        atol: f64,
        mut loss: impl FnMut(&[f32]) -> f64,
    ) {
        assert_eq!(param.len(), analytic.len(), "{name}: length mismatch");
        let mut max_abs = 0.0f64;
        for i in 0..param.len() {
            let orig = param[i];
            param[i] = orig + eps;
            let plus = loss(param);
            param[i] = orig - eps;
            let minus = loss(param);
            param[i] = orig;
            let num = (plus - minus) / (2.0 * f64::from(eps));
            let ana = f64::from(analytic[i]);
            max_abs = max_abs.max(num.abs());
            let tol = rtol * num.abs().max(ana.abs()) + atol;
            assert!(
                (num - ana).abs() <= tol,
                "{name}[{i}]: numerical {num:.6} vs analytic {ana:.6} (tol {tol:.2e})"
            );
        }
        assert!(
            max_abs > 10.0 * atol,
            "{name}: gradient is ~0 everywhere ({max_abs:e}); the check would be vacuous"
        );
    }
}
