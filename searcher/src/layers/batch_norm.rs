//! 2-D batch normalisation (per channel over batch and space).
//!
//! Training mode normalises with the batch's statistics and returns a
//! [`BatchNormCache`] that keeps **per-channel mean, biased variance and
//! `1/sqrt(var + eps)`** (3·C floats); backward also needs the forward input
//! `x`, which the caller holds (it is the previous layer's output). Inference
//! mode uses running statistics.
//!
//! Running statistics follow the TensorFlow/Keras convention:
//! `running = momentum · running + (1 − momentum) · batch`, with the batch
//! variance Bessel-corrected (`· m / (m − 1)`, `m = n·h·w`).

use ndarray::{
    Array1, Array2, Array4, ArrayView1, ArrayView4, ArrayViewMut1, ArrayViewMut4, Axis, Zip,
};
use serde::{Deserialize, Serialize};

use super::activation::{Activation, relu_scalar, swish6_scalar};
use super::{LayerError, for_each_outer, sum_f32};

/// Hyper-parameters of a batch-norm layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchNormParams {
    /// Channels (axis 1 of the input).
    pub(crate) channels: usize,
    /// Added to the variance before the square root.
    pub(crate) eps: f32,
    /// Weight of the old running value (Keras convention; TuNAS uses 0.99).
    pub(crate) momentum: f32,
}

impl BatchNormParams {
    /// `channels` with TuNAS's defaults: `eps = 1e-3`, `momentum = 0.99`.
    pub fn new(channels: usize) -> Result<Self, LayerError> {
        Self {
            channels,
            eps: 1e-3,
            momentum: 0.99,
        }
        .checked()
    }

    /// Checks `channels > 0`, `eps > 0`, `0 <= momentum <= 1`.
    pub(crate) fn checked(self) -> Result<Self, LayerError> {
        if self.channels == 0 {
            return Err(LayerError::Zero {
                layer: "batch_norm",
                what: "channels",
            });
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(LayerError::OutOfRange {
                layer: "batch_norm",
                what: "eps",
                value: self.eps,
                range: "(0, inf)",
            });
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(LayerError::OutOfRange {
                layer: "batch_norm",
                what: "momentum",
                value: self.momentum,
                range: "[0, 1]",
            });
        }
        Ok(self)
    }

    fn assert_shapes(&self, what: &str, x: &ArrayView4<'_, f32>, gamma: &ArrayView1<'_, f32>) {
        assert!(
            x.len_of(Axis(1)) == self.channels && gamma.len() == self.channels,
            "batch_norm {what}: input {:?} / gamma [{}] do not match {} channels",
            x.shape(),
            gamma.len(),
            self.channels
        );
    }
}

/// What training-mode backward and the running-statistics update need.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormCache {
    /// Per-channel batch mean.
    pub(crate) mean: Array1<f32>,
    /// Per-channel biased batch variance.
    pub(crate) var: Array1<f32>,
    /// Per-channel `1 / sqrt(var + eps)`.
    pub(crate) inv_std: Array1<f32>,
    /// Values per channel, `n · h · w`.
    pub(crate) count: usize,
}

/// Gradients of a batch-norm layer.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormGrads {
    /// Input grad, `[n, c, h, w]`.
    pub(crate) dx: Array4<f32>,
    /// Scale grad, `[c]`.
    pub(crate) dgamma: Array1<f32>,
    /// Shift grad, `[c]`.
    pub(crate) dbeta: Array1<f32>,
}

/// `Σ (x[i] − mean)²`, with 8 partial sums.
#[inline]
fn sq_dev(x: &[f32], mean: f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut cx = x.chunks_exact(8);
    for v in &mut cx {
        for k in 0..8 {
            let d = v[k] - mean;
            acc[k] += d * d;
        }
    }
    let tail: f32 = cx.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
    acc.iter().sum::<f32>() + tail
}

/// `Σ g[i] · (x[i] − mean)`, with 8 partial sums.
#[inline]
fn dot_centred(g: &[f32], x: &[f32], mean: f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut cg = g.chunks_exact(8);
    let mut cx = x.chunks_exact(8);
    for (u, v) in (&mut cg).zip(&mut cx) {
        for k in 0..8 {
            acc[k] += u[k] * (v[k] - mean);
        }
    }
    let tail: f32 = cg
        .remainder()
        .iter()
        .zip(cx.remainder())
        .map(|(u, v)| u * (v - mean))
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Evaluates `f(image, channel)` for every plane (parallel over images) and
/// sums the results over images, in image order, in f64: `[c, K]`. The
/// fixed order keeps the result independent of the thread count, and
/// streaming over whole images is kinder to the cache than visiting one
/// channel's planes across the batch.
fn per_plane<const K: usize>(
    n: usize,
    c: usize,
    f: impl Fn(usize, usize) -> [f32; K] + Sync + Send,
) -> Array2<f64> {
    let mut part = ndarray::Array3::<f32>::zeros((n, c, K));
    for_each_outer(
        part.view_mut(),
        || (),
        |_, b, mut pb| {
            for ch in 0..c {
                let v = f(b, ch);
                for (k, &x) in v.iter().enumerate() {
                    pb[[ch, k]] = x;
                }
            }
        },
    );
    let mut total = Array2::<f64>::zeros((c, K));
    for pb in part.outer_iter() {
        Zip::from(&mut total)
            .and(&pb)
            .for_each(|t, &v| *t += f64::from(v));
    }
    total
}

/// Training-mode forward: normalise with the batch statistics, then scale
/// and shift.
///
/// # Shapes
/// `x: [n, c, h, w]`, `gamma, beta: [c]` → (`[n, c, h, w]`, cache).
pub fn batch_norm_train(
    p: &BatchNormParams,
    x: ArrayView4<'_, f32>,
    gamma: ArrayView1<'_, f32>,
    beta: ArrayView1<'_, f32>,
) -> (Array4<f32>, BatchNormCache) {
    p.assert_shapes("train", &x, &gamma);
    assert_eq!(beta.len(), p.channels, "batch_norm train: beta length");
    let cache = batch_statistics(p, x);
    let (scale, shift) = train_scale_shift(&cache, gamma, beta);
    let y = affine(&x, scale.view(), shift.view());
    (y, cache)
}

/// The batch's per-channel statistics, which training mode normalises with.
fn batch_statistics(p: &BatchNormParams, x: ArrayView4<'_, f32>) -> BatchNormCache {
    let (n, c, h, w) = x.dim();
    assert!(
        n * h * w > 0,
        "batch_norm train: empty batch {:?}",
        x.shape()
    );
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let hw = h * w;
    let plane = |b: usize, ch: usize| &xs[(b * c + ch) * hw..(b * c + ch + 1) * hw];
    let count = (n * hw) as f64;
    // Two passes (sum, then squared deviations) for an accurate variance.
    let sums = per_plane(n, c, |b, ch| [sum_f32(plane(b, ch))]);
    let mean: Array1<f32> = sums.column(0).mapv(|s| (s / count) as f32);
    let sq = per_plane(n, c, |b, ch| [sq_dev(plane(b, ch), mean[ch])]);
    let var: Array1<f32> = sq.column(0).mapv(|s| (s / count) as f32);
    let inv_std = var.mapv(|v| 1.0 / (v + p.eps).sqrt());
    BatchNormCache {
        mean,
        var,
        inv_std,
        count: n * hw,
    }
}

/// Training mode as one affine map per channel: `scale = γ / σ_batch`,
/// `shift = β − mean · scale`.
fn train_scale_shift(
    cache: &BatchNormCache,
    gamma: ArrayView1<'_, f32>,
    beta: ArrayView1<'_, f32>,
) -> (Array1<f32>, Array1<f32>) {
    let scale = &cache.inv_std * &gamma;
    let shift = &beta - &(&cache.mean * &scale);
    (scale, shift)
}

/// Inference mode as one affine map per channel, from the running
/// statistics.
fn inference_scale_shift(
    p: &BatchNormParams,
    gamma: ArrayView1<'_, f32>,
    beta: ArrayView1<'_, f32>,
    running_mean: ArrayView1<'_, f32>,
    running_var: ArrayView1<'_, f32>,
) -> (Array1<f32>, Array1<f32>) {
    assert!(
        beta.len() == p.channels
            && running_mean.len() == p.channels
            && running_var.len() == p.channels,
        "batch_norm inference: parameter lengths differ from {} channels",
        p.channels
    );
    let scale = Zip::from(&gamma)
        .and(&running_var)
        .map_collect(|&g, &v| g / (v + p.eps).sqrt());
    let shift = &beta - &(&running_mean * &scale);
    (scale, shift)
}

/// Which statistics a forward pass normalises with.
#[derive(Clone, Copy, Debug)]
pub enum Statistics<'a> {
    /// The batch's own (training mode).
    Batch,
    /// Running statistics (inference mode).
    Running {
        /// Running mean, `[c]`.
        mean: ArrayView1<'a, f32>,
        /// Running variance, `[c]`.
        var: ArrayView1<'a, f32>,
    },
}

/// BN followed by `act`, in place and in one pass over `x`: the forward of
/// a pass that keeps no tape, so neither the BN input nor its output is
/// needed afterwards. Gives bit for bit what [`batch_norm_train`] (or
/// [`batch_norm_inference`]) followed by `act` gives. Returns the batch
/// statistics when it used them (to update the running ones).
///
/// # Shapes
/// `x: [n, c, h, w]` in standard layout, `gamma, beta` and the running
/// statistics `[c]`.
pub fn batch_norm_activation_in_place(
    p: &BatchNormParams,
    mut x: ArrayViewMut4<'_, f32>,
    gamma: ArrayView1<'_, f32>,
    beta: ArrayView1<'_, f32>,
    stats: Statistics<'_>,
    act: Activation,
) -> Option<BatchNormCache> {
    p.assert_shapes("in place", &x.view(), &gamma);
    let (cache, (scale, shift)) = match stats {
        Statistics::Batch => {
            assert_eq!(beta.len(), p.channels, "batch_norm in place: beta length");
            let cache = batch_statistics(p, x.view());
            let affine = train_scale_shift(&cache, gamma, beta);
            (Some(cache), affine)
        }
        Statistics::Running { mean, var } => {
            (None, inference_scale_shift(p, gamma, beta, mean, var))
        }
    };
    let (scale, shift) = (scale.view(), shift.view());
    // One loop per activation, so the scalar function inlines into it.
    match act {
        Activation::Identity => affine_then_in_place(x.view_mut(), scale, shift, |v| v),
        Activation::Relu => affine_then_in_place(x.view_mut(), scale, shift, relu_scalar),
        Activation::Swish6 => affine_then_in_place(x.view_mut(), scale, shift, swish6_scalar),
    }
    cache
}

/// `x = f(x · scale[c] + shift[c])` in place, parallel over images.
fn affine_then_in_place(
    x: ArrayViewMut4<'_, f32>,
    scale: ArrayView1<'_, f32>,
    shift: ArrayView1<'_, f32>,
    f: impl Fn(f32) -> f32 + Sync + Send,
) {
    let (_, _, h, w) = x.dim();
    let hw = h * w;
    assert!(
        x.is_standard_layout(),
        "batch_norm in place: standard layout"
    );
    for_each_outer(
        x,
        || (),
        |_, _, mut xb| {
            let xb = xb.as_slice_mut().expect("standard layout");
            for (ch, xc) in xb.chunks_exact_mut(hw).enumerate() {
                let (a, t) = (scale[ch], shift[ch]);
                for v in xc.iter_mut() {
                    *v = f(*v * a + t);
                }
            }
        },
    );
}

/// `y = x · scale[c] + shift[c]`, parallel over images.
fn affine(
    x: &ArrayView4<'_, f32>,
    scale: ArrayView1<'_, f32>,
    shift: ArrayView1<'_, f32>,
) -> Array4<f32> {
    let (_, c, h, w) = x.dim();
    let hw = h * w;
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let mut y = super::zeros4(x.raw_dim());
    for_each_outer(
        y.view_mut(),
        || (),
        |_, b, mut yb| {
            let yb = yb.as_slice_mut().expect("output is standard layout");
            let xb = &xs[b * c * hw..(b + 1) * c * hw];
            for (ch, (yc, xc)) in yb.chunks_exact_mut(hw).zip(xb.chunks_exact(hw)).enumerate() {
                let (a, t) = (scale[ch], shift[ch]);
                for (o, &v) in yc.iter_mut().zip(xc) {
                    *o = v * a + t;
                }
            }
        },
    );
    y
}

/// Training-mode backward.
///
/// `dx = gamma · inv_std / m · (m·dy − Σdy − x̂ · Σ(dy·x̂))` with
/// `x̂ = (x − mean) · inv_std` recomputed from `x` and the cache.
///
/// # Shapes
/// `x, dy: [n, c, h, w]`, `gamma: [c]` → grads of shapes `x`, `[c]`, `[c]`.
pub fn batch_norm_backward(
    p: &BatchNormParams,
    x: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    gamma: ArrayView1<'_, f32>,
    cache: &BatchNormCache,
) -> BatchNormGrads {
    batch_norm_backward_in_place(p, x, super::standard_copy4(dy), gamma, cache)
}

/// [`batch_norm_backward`] on an owned `dy`, which becomes `dx`: each
/// element of `dx` needs only the same element of `dy` (after the
/// per-channel sums), so no second activation-sized buffer is filled.
pub(crate) fn batch_norm_backward_in_place(
    p: &BatchNormParams,
    x: ArrayView4<'_, f32>,
    mut dy: Array4<f32>,
    gamma: ArrayView1<'_, f32>,
    cache: &BatchNormCache,
) -> BatchNormGrads {
    p.assert_shapes("backward", &x, &gamma);
    assert_eq!(x.shape(), dy.shape(), "batch_norm backward: x vs dy");
    assert!(
        dy.is_standard_layout(),
        "batch_norm backward: dy in standard layout"
    );
    let (n, c, h, w) = x.dim();
    assert_eq!(
        cache.count,
        n * h * w,
        "batch_norm backward: cache is from another batch"
    );
    let hw = h * w;
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    // Per-channel sums first (parallel over channels), then dx (parallel over
    // images), so each output slice is written by one task.
    let plane = |b: usize, ch: usize| (b * c + ch) * hw..(b * c + ch + 1) * hw;
    let (dbeta, dgamma) = {
        let dys = dy.as_slice().expect("standard layout");
        let sums = per_plane(n, c, |b, ch| {
            let r = plane(b, ch);
            let (xp, gp) = (&xs[r.clone()], &dys[r]);
            [sum_f32(gp), dot_centred(gp, xp, cache.mean[ch])]
        });
        let dbeta: Array1<f32> = sums.column(0).mapv(|v| v as f32);
        let dgamma: Array1<f32> = Zip::from(sums.column(1))
            .and(&cache.inv_std)
            .map_collect(|&v, &inv| (v * f64::from(inv)) as f32);
        (dbeta, dgamma)
    };
    let m = cache.count as f32;
    for_each_outer(
        dy.view_mut(),
        || (),
        |_, b, mut gb| {
            let gb = gb.as_slice_mut().expect("standard layout");
            let xb = &xs[b * c * hw..(b + 1) * c * hw];
            for (ch, (gc, xc)) in gb.chunks_exact_mut(hw).zip(xb.chunks_exact(hw)).enumerate() {
                // dx = k·(dy − mean_dy − x̂·mean_dyx), x̂ = (x − mean)·inv,
                // folded into dx = k·dy + a·x + t, written over dy.
                let inv = cache.inv_std[ch];
                let k = gamma[ch] * inv;
                let mean_dy = dbeta[ch] / m;
                let mean_dyx = dgamma[ch] / m;
                let a = -k * inv * mean_dyx;
                let t = -k * mean_dy - a * cache.mean[ch];
                for (g, &v) in gc.iter_mut().zip(xc) {
                    *g = k * *g + a * v + t;
                }
            }
        },
    );
    BatchNormGrads {
        dx: dy,
        dgamma,
        dbeta,
    }
}

/// Moves the running statistics toward the batch's:
/// `running = momentum · running + (1 − momentum) · batch`, the variance
/// Bessel-corrected.
///
/// # Shapes
/// `running_mean, running_var: [c]`.
pub(crate) fn batch_norm_update_running(
    p: &BatchNormParams,
    mut running_mean: ArrayViewMut1<'_, f32>,
    mut running_var: ArrayViewMut1<'_, f32>,
    cache: &BatchNormCache,
) {
    assert!(
        running_mean.len() == p.channels && running_var.len() == p.channels,
        "batch_norm update_running: running stats [{}], [{}] vs {} channels",
        running_mean.len(),
        running_var.len(),
        p.channels
    );
    let m = p.momentum;
    let bessel = if cache.count > 1 {
        cache.count as f32 / (cache.count - 1) as f32
    } else {
        1.0
    };
    Zip::from(&mut running_mean)
        .and(&cache.mean)
        .for_each(|r, &b| *r = m * *r + (1.0 - m) * b);
    Zip::from(&mut running_var)
        .and(&cache.var)
        .for_each(|r, &b| *r = m * *r + (1.0 - m) * b * bessel);
}

/// Inference-mode forward with running statistics.
///
/// # Shapes
/// `x: [n, c, h, w]`, all others `[c]` → `[n, c, h, w]`.
pub(crate) fn batch_norm_inference(
    p: &BatchNormParams,
    x: ArrayView4<'_, f32>,
    gamma: ArrayView1<'_, f32>,
    beta: ArrayView1<'_, f32>,
    running_mean: ArrayView1<'_, f32>,
    running_var: ArrayView1<'_, f32>,
) -> Array4<f32> {
    p.assert_shapes("inference", &x, &gamma);
    let (scale, shift) = inference_scale_shift(p, gamma, beta, running_mean, running_var);
    affine(&x, scale.view(), shift.view())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_grad, dot64, rng, uniform};
    use ndarray::{Array, Array1};

    fn setup() -> (BatchNormParams, Array4<f32>, Array1<f32>, Array1<f32>) {
        let mut r = rng(11);
        let p = BatchNormParams::new(3).unwrap();
        let x = uniform(&mut r, (4, 3, 3, 2), -1.0, 2.0);
        let gamma = uniform(&mut r, 3, 0.5, 1.5);
        let beta = uniform(&mut r, 3, -0.5, 0.5);
        (p, x, gamma, beta)
    }

    #[test]
    fn normalises_to_zero_mean_unit_variance() {
        let (p, x, _, _) = setup();
        let ones = Array1::ones(3);
        let zeros = Array1::zeros(3);
        let (y, cache) = batch_norm_train(&p, x.view(), ones.view(), zeros.view());
        for ch in 0..3 {
            let yc = y.index_axis(Axis(1), ch);
            let mean = yc.mean().unwrap();
            let var = yc.mapv(|v| v * v).mean().unwrap() - mean * mean;
            assert!(mean.abs() < 1e-5, "channel {ch} mean {mean}");
            let expect = cache.var[ch] / (cache.var[ch] + p.eps);
            assert!((var - expect).abs() < 1e-4, "channel {ch} var {var}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (p, x, gamma, beta) = setup();
        let dy = uniform(&mut rng(12), x.raw_dim(), -1.0, 1.0);
        let (_, cache) = batch_norm_train(&p, x.view(), gamma.view(), beta.view());
        let g = batch_norm_backward(&p, x.view(), dy.view(), gamma.view(), &cache);
        let loss = |x: &Array4<f32>, gamma: &Array1<f32>, beta: &Array1<f32>| {
            dot64(
                &batch_norm_train(&p, x.view(), gamma.view(), beta.view()).0,
                &dy,
            )
        };
        let shape = x.raw_dim();
        let mut xs = x.clone();
        check_grad(
            "bn dx",
            xs.as_slice_mut().unwrap(),
            g.dx.as_slice().unwrap(),
            1e-2,
            2e-2,
            2e-3,
            |v| {
                let xv = Array::from_shape_vec(shape, v.to_vec()).unwrap();
                loss(&xv, &gamma, &beta)
            },
        );
        let mut gs = gamma.clone();
        check_grad(
            "bn dgamma",
            gs.as_slice_mut().unwrap(),
            g.dgamma.as_slice().unwrap(),
            1e-2,
            1e-2,
            1e-3,
            |v| loss(&x, &Array1::from(v.to_vec()), &beta),
        );
        let mut bs = beta.clone();
        check_grad(
            "bn dbeta",
            bs.as_slice_mut().unwrap(),
            g.dbeta.as_slice().unwrap(),
            1e-2,
            1e-2,
            1e-3,
            |v| loss(&x, &gamma, &Array1::from(v.to_vec())),
        );
    }

    #[test]
    fn running_stats_and_inference() {
        let (p, x, gamma, beta) = setup();
        let (_, cache) = batch_norm_train(&p, x.view(), gamma.view(), beta.view());
        let mut rm = Array1::<f32>::zeros(3);
        let mut rv = Array1::<f32>::ones(3);
        batch_norm_update_running(&p, rm.view_mut(), rv.view_mut(), &cache);
        let m = cache.count as f32;
        for ch in 0..3 {
            assert!((rm[ch] - 0.01 * cache.mean[ch]).abs() < 1e-6);
            let expect = 0.99 + 0.01 * cache.var[ch] * m / (m - 1.0);
            assert!((rv[ch] - expect).abs() < 1e-6);
        }
        // With the batch's own (biased) statistics, inference equals training.
        let y_train = batch_norm_train(&p, x.view(), gamma.view(), beta.view()).0;
        let y_inf = batch_norm_inference(
            &p,
            x.view(),
            gamma.view(),
            beta.view(),
            cache.mean.view(),
            cache.var.view(),
        );
        for (a, b) in y_train.iter().zip(y_inf.iter()) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn in_place_bn_and_activation_equal_bn_then_activation() {
        // The reference: BN into a new array, then the activation.
        let mut r = rng(17);
        let p = BatchNormParams::new(16).unwrap();
        let x = uniform(&mut r, (5, 16, 6, 6), -4.0, 4.0);
        let gamma = uniform(&mut r, 16, 0.5, 1.5);
        let beta = uniform(&mut r, 16, -0.5, 0.5);
        let mean = uniform(&mut r, 16, -0.5, 0.5);
        let var = uniform(&mut r, 16, 0.5, 2.0);
        for act in [Activation::Identity, Activation::Relu, Activation::Swish6] {
            let fused = |stats: Statistics<'_>| {
                let mut y = x.clone();
                let got = batch_norm_activation_in_place(
                    &p,
                    y.view_mut(),
                    gamma.view(),
                    beta.view(),
                    stats,
                    act,
                );
                (y, got)
            };
            let (mut reference, cache) = batch_norm_train(&p, x.view(), gamma.view(), beta.view());
            act.forward_in_place(reference.view_mut());
            let (y, got) = fused(Statistics::Batch);
            assert_eq!(y, reference, "{act:?}, batch statistics");
            assert_eq!(got, Some(cache));

            let mut reference = batch_norm_inference(
                &p,
                x.view(),
                gamma.view(),
                beta.view(),
                mean.view(),
                var.view(),
            );
            act.forward_in_place(reference.view_mut());
            let (y, got) = fused(Statistics::Running {
                mean: mean.view(),
                var: var.view(),
            });
            assert_eq!(y, reference, "{act:?}, running statistics");
            assert_eq!(got, None);
        }
    }

    #[test]
    fn parallel_matches_serial() {
        let mut r = rng(13);
        let p = BatchNormParams::new(16).unwrap();
        let x = uniform(&mut r, (8, 16, 7, 7), -1.0, 1.0);
        let dy = uniform(&mut r, (8, 16, 7, 7), -1.0, 1.0);
        let gamma = uniform(&mut r, 16, 0.5, 1.5);
        let beta = uniform(&mut r, 16, -0.5, 0.5);
        let run = || {
            let (y, cache) = batch_norm_train(&p, x.view(), gamma.view(), beta.view());
            let g = batch_norm_backward(&p, x.view(), dy.view(), gamma.view(), &cache);
            (y, g)
        };
        let par = run();
        crate::layers::set_serial(true);
        let ser = run();
        crate::layers::set_serial(false);
        assert_eq!(par, ser);
    }

    #[test]
    fn rejects_bad_params() {
        assert!(BatchNormParams::new(0).is_err());
        let p = BatchNormParams {
            channels: 2,
            eps: 1e-3,
            momentum: 1.5,
        };
        assert!(p.checked().is_err());
    }
}
