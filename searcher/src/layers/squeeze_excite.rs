//! Squeeze-and-excite block.
//!
//! `p = avgpool(x)`; `z = W_r·p + b_r` (1×1 conv to `squeeze` channels);
//! `g = sigmoid(W_e·relu(z) + b_e)` (1×1 conv back to `channels`);
//! `y = x · g` (per channel).
//!
//! The cache keeps **the pooled input `p` `[n, c]`, the pre-ReLU hidden `z`
//! `[n, s]` and the gate `g` `[n, c]`** — O(n·c) floats, not a full
//! activation; backward also needs the forward input `x`, held by the caller.
//!
//! Weights use the conv layout: `w_reduce: [s, c, 1, 1]`,
//! `w_expand: [c, s, 1, 1]`; both may be sliced views.

use ndarray::{
    Array1, Array2, Array4, ArrayView1, ArrayView2, ArrayView4, Axis, Zip, linalg::general_mat_mul,
    s,
};
use serde::{Deserialize, Serialize};

use super::{LayerError, dot_f32, for_each_outer, pool::global_avg_pool};

/// Geometry of a squeeze-excite block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqueezeExciteParams {
    /// Channels of the input and output.
    pub(crate) channels: usize,
    /// Channels of the hidden layer (`round8(mid / 4)` in the search spaces).
    pub(crate) squeeze: usize,
}

impl SqueezeExciteParams {
    /// Checks that both sizes are positive.
    pub fn new(channels: usize, squeeze: usize) -> Result<Self, LayerError> {
        for (what, v) in [("channels", channels), ("squeeze", squeeze)] {
            if v == 0 {
                return Err(LayerError::Zero {
                    layer: "squeeze_excite",
                    what,
                });
            }
        }
        Ok(Self { channels, squeeze })
    }

    fn assert_weights(&self, w_reduce: &ArrayView4<'_, f32>, w_expand: &ArrayView4<'_, f32>) {
        let (c, s) = (self.channels, self.squeeze);
        assert!(
            w_reduce.dim() == (s, c, 1, 1) && w_expand.dim() == (c, s, 1, 1),
            "squeeze_excite: weights {:?} / {:?} do not match {self:?} \
             (expected [{s}, {c}, 1, 1] / [{c}, {s}, 1, 1])",
            w_reduce.shape(),
            w_expand.shape()
        );
    }
}

/// What [`squeeze_excite_backward`] needs besides `x`.
#[derive(Debug, Clone, PartialEq)]
pub struct SqueezeExciteCache {
    /// Pooled input `[n, c]`.
    pub(crate) pooled: Array2<f32>,
    /// Hidden pre-activation `[n, s]`.
    pub(crate) hidden: Array2<f32>,
    /// Gate (sigmoid output) `[n, c]`.
    pub(crate) gate: Array2<f32>,
}

/// Gradients of a squeeze-excite block.
#[derive(Debug, Clone, PartialEq)]
pub struct SqueezeExciteGrads {
    /// Input grad `[n, c, h, w]`.
    pub(crate) dx: Array4<f32>,
    /// Reduce weight grad `[s, c, 1, 1]`.
    pub(crate) dw_reduce: Array4<f32>,
    /// Reduce bias grad `[s]`.
    pub(crate) db_reduce: Array1<f32>,
    /// Expand weight grad `[c, s, 1, 1]`.
    pub(crate) dw_expand: Array4<f32>,
    /// Expand bias grad `[c]`.
    pub(crate) db_expand: Array1<f32>,
}

fn matrix<'a>(w: &'a ArrayView4<'_, f32>) -> ArrayView2<'a, f32> {
    w.slice(s![.., .., 0, 0])
}

/// Forward pass.
///
/// # Shapes
/// `x: [n, c, h, w]`, `w_reduce: [s, c, 1, 1]`, `b_reduce: [s]`,
/// `w_expand: [c, s, 1, 1]`, `b_expand: [c]` → (`[n, c, h, w]`, cache).
pub fn squeeze_excite(
    p: &SqueezeExciteParams,
    x: ArrayView4<'_, f32>,
    w_reduce: ArrayView4<'_, f32>,
    b_reduce: ArrayView1<'_, f32>,
    w_expand: ArrayView4<'_, f32>,
    b_expand: ArrayView1<'_, f32>,
) -> (Array4<f32>, SqueezeExciteCache) {
    p.assert_weights(&w_reduce, &w_expand);
    assert!(
        x.len_of(Axis(1)) == p.channels
            && b_reduce.len() == p.squeeze
            && b_expand.len() == p.channels,
        "squeeze_excite forward: input {:?}, biases [{}], [{}] vs {p:?}",
        x.shape(),
        b_reduce.len(),
        b_expand.len()
    );
    let n = x.len_of(Axis(0));
    let pooled = global_avg_pool(x.view());
    let mut hidden = b_reduce
        .broadcast((n, p.squeeze))
        .expect("bias broadcasts")
        .to_owned();
    general_mat_mul(1.0, &pooled, &matrix(&w_reduce).t(), 1.0, &mut hidden);
    let act = hidden.mapv(|v| v.max(0.0));
    let mut gate = b_expand
        .broadcast((n, p.channels))
        .expect("bias broadcasts")
        .to_owned();
    general_mat_mul(1.0, &act, &matrix(&w_expand).t(), 1.0, &mut gate);
    gate.mapv_inplace(|v| 1.0 / (1.0 + (-v).exp()));
    let (c, hw) = (p.channels, x.len_of(Axis(2)) * x.len_of(Axis(3)));
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let mut y = super::zeros4(x.raw_dim());
    for_each_outer(
        y.view_mut(),
        || (),
        |_, b, mut yb| {
            let yb = yb.as_slice_mut().expect("output is standard layout");
            let xb = &xs[b * c * hw..(b + 1) * c * hw];
            for ((yc, xc), &g) in yb
                .chunks_exact_mut(hw)
                .zip(xb.chunks_exact(hw))
                .zip(gate.row(b))
            {
                for (o, &v) in yc.iter_mut().zip(xc) {
                    *o = v * g;
                }
            }
        },
    );
    (
        y,
        SqueezeExciteCache {
            pooled,
            hidden,
            gate,
        },
    )
}

/// Backward pass: the input grad and all four parameter grads.
///
/// # Shapes
/// `x, dy: [n, c, h, w]`, weights as in [`squeeze_excite`] → grads of the
/// same shapes as `x` and the parameters.
pub fn squeeze_excite_backward(
    p: &SqueezeExciteParams,
    x: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    w_reduce: ArrayView4<'_, f32>,
    w_expand: ArrayView4<'_, f32>,
    cache: &SqueezeExciteCache,
) -> SqueezeExciteGrads {
    p.assert_weights(&w_reduce, &w_expand);
    assert_eq!(x.shape(), dy.shape(), "squeeze_excite backward: x vs dy");
    let (n, c, h, w) = x.dim();
    assert!(
        c == p.channels && cache.gate.dim() == (n, c) && cache.hidden.dim() == (n, p.squeeze),
        "squeeze_excite backward: input {:?} / cache gate {:?} vs {p:?}",
        x.shape(),
        cache.gate.shape()
    );
    let hw = h * w;
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let dy = dy.as_standard_layout();
    let dys = dy.as_slice().expect("standard layout");
    // d gate[n, c] = Σ_hw dy · x, then through the sigmoid.
    let mut dz_gate = Array2::<f32>::zeros((n, c));
    for_each_outer(
        dz_gate.view_mut(),
        || (),
        |_, b, mut row| {
            let xb = xs[b * c * hw..(b + 1) * c * hw].chunks_exact(hw);
            let gb = dys[b * c * hw..(b + 1) * c * hw].chunks_exact(hw);
            for (((o, xc), gc), &gt) in row.iter_mut().zip(xb).zip(gb).zip(cache.gate.row(b)) {
                *o = dot_f32(xc, gc) * gt * (1.0 - gt);
            }
        },
    );
    let act = cache.hidden.mapv(|v| v.max(0.0));
    let db_expand = dz_gate.sum_axis(Axis(0));
    let dw_expand = dz_gate.t().dot(&act);
    let mut dz_hidden = dz_gate.dot(&matrix(&w_expand));
    Zip::from(&mut dz_hidden)
        .and(&cache.hidden)
        .for_each(|d, &z| {
            if z <= 0.0 {
                *d = 0.0;
            }
        });
    let db_reduce = dz_hidden.sum_axis(Axis(0));
    let dw_reduce = dz_hidden.t().dot(&cache.pooled);
    let dpooled = dz_hidden.dot(&matrix(&w_reduce));
    let inv_hw = 1.0 / (h * w) as f32;
    let mut dx = super::zeros4(x.raw_dim());
    for_each_outer(
        dx.view_mut(),
        || (),
        |_, b, mut dxb| {
            let dxb = dxb.as_slice_mut().expect("output is standard layout");
            let gb = dys[b * c * hw..(b + 1) * c * hw].chunks_exact(hw);
            for (ch, (dxc, gc)) in dxb.chunks_exact_mut(hw).zip(gb).enumerate() {
                let g = cache.gate[[b, ch]];
                let spread = dpooled[[b, ch]] * inv_hw;
                for (o, &d) in dxc.iter_mut().zip(gc) {
                    *o = d * g + spread;
                }
            }
        },
    );
    let s = p.squeeze;
    SqueezeExciteGrads {
        dx,
        dw_reduce: dw_reduce
            .into_shape_with_order((s, c, 1, 1))
            .expect("[s, c] reshapes"),
        db_reduce,
        dw_expand: dw_expand
            .into_shape_with_order((c, s, 1, 1))
            .expect("[c, s] reshapes"),
        db_expand,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_grad, dot64, rng, uniform};
    use ndarray::Array;

    struct Case {
        p: SqueezeExciteParams,
        x: Array4<f32>,
        wr: Array4<f32>,
        br: Array1<f32>,
        we: Array4<f32>,
        be: Array1<f32>,
        dy: Array4<f32>,
    }

    fn case() -> Case {
        let mut r = rng(51);
        let p = SqueezeExciteParams::new(4, 3).unwrap();
        Case {
            p,
            x: uniform(&mut r, (2, 4, 3, 3), -1.0, 2.0),
            wr: uniform(&mut r, (3, 4, 1, 1), -1.0, 1.0),
            br: uniform(&mut r, 3, -0.5, 0.5),
            we: uniform(&mut r, (4, 3, 1, 1), -1.5, 1.5),
            be: uniform(&mut r, 4, -0.5, 0.5),
            dy: uniform(&mut r, (2, 4, 3, 3), -1.0, 1.0),
        }
    }

    fn loss(
        c: &Case,
        x: &Array4<f32>,
        wr: &Array4<f32>,
        br: &Array1<f32>,
        we: &Array4<f32>,
        be: &Array1<f32>,
    ) -> f64 {
        let (y, _) = squeeze_excite(&c.p, x.view(), wr.view(), br.view(), we.view(), be.view());
        dot64(&y, &c.dy)
    }

    #[test]
    fn gradients_match_finite_differences() {
        let c = case();
        let (_, cache) = squeeze_excite(
            &c.p,
            c.x.view(),
            c.wr.view(),
            c.br.view(),
            c.we.view(),
            c.be.view(),
        );
        // Central differences must not cross the hidden ReLU's kink.
        let margin = cache
            .hidden
            .iter()
            .fold(f32::INFINITY, |m, &v| m.min(v.abs()));
        assert!(
            margin > 0.05,
            "hidden pre-activation {margin} too close to 0: change the seed"
        );
        let g = squeeze_excite_backward(
            &c.p,
            c.x.view(),
            c.dy.view(),
            c.wr.view(),
            c.we.view(),
            &cache,
        );
        let (eps, rtol, atol) = (1e-2, 1e-2, 1e-3);
        let mut x = c.x.clone();
        check_grad(
            "se dx",
            x.as_slice_mut().unwrap(),
            g.dx.as_slice().unwrap(),
            eps,
            rtol,
            atol,
            |v| {
                let xv = Array::from_shape_vec(c.x.raw_dim(), v.to_vec()).unwrap();
                loss(&c, &xv, &c.wr, &c.br, &c.we, &c.be)
            },
        );
        let mut wr = c.wr.clone();
        check_grad(
            "se dw_reduce",
            wr.as_slice_mut().unwrap(),
            g.dw_reduce.as_slice().unwrap(),
            eps,
            rtol,
            atol,
            |v| {
                let wv = Array::from_shape_vec(c.wr.raw_dim(), v.to_vec()).unwrap();
                loss(&c, &c.x, &wv, &c.br, &c.we, &c.be)
            },
        );
        let mut br = c.br.clone();
        check_grad(
            "se db_reduce",
            br.as_slice_mut().unwrap(),
            g.db_reduce.as_slice().unwrap(),
            eps,
            rtol,
            atol,
            |v| loss(&c, &c.x, &c.wr, &Array1::from(v.to_vec()), &c.we, &c.be),
        );
        let mut we = c.we.clone();
        check_grad(
            "se dw_expand",
            we.as_slice_mut().unwrap(),
            g.dw_expand.as_slice().unwrap(),
            eps,
            rtol,
            atol,
            |v| {
                let wv = Array::from_shape_vec(c.we.raw_dim(), v.to_vec()).unwrap();
                loss(&c, &c.x, &c.wr, &c.br, &wv, &c.be)
            },
        );
        let mut be = c.be.clone();
        check_grad(
            "se db_expand",
            be.as_slice_mut().unwrap(),
            g.db_expand.as_slice().unwrap(),
            eps,
            rtol,
            atol,
            |v| loss(&c, &c.x, &c.wr, &c.br, &c.we, &Array1::from(v.to_vec())),
        );
    }

    #[test]
    fn sliced_weights_match_owned() {
        let c = case();
        let mut r = rng(52);
        // Wider weights whose leading block is the case's weights.
        let mut wide_r = uniform(&mut r, (5, 6, 1, 1), -1.0, 1.0);
        wide_r.slice_mut(s![..3, ..4, .., ..]).assign(&c.wr);
        let mut wide_e = uniform(&mut r, (6, 5, 1, 1), -1.0, 1.0);
        wide_e.slice_mut(s![..4, ..3, .., ..]).assign(&c.we);
        let wr = wide_r.slice(s![..3, ..4, .., ..]);
        let we = wide_e.slice(s![..4, ..3, .., ..]);
        let (y1, c1) = squeeze_excite(
            &c.p,
            c.x.view(),
            c.wr.view(),
            c.br.view(),
            c.we.view(),
            c.be.view(),
        );
        let (y2, c2) = squeeze_excite(&c.p, c.x.view(), wr, c.br.view(), we, c.be.view());
        assert_eq!(y1, y2);
        let g1 =
            squeeze_excite_backward(&c.p, c.x.view(), c.dy.view(), c.wr.view(), c.we.view(), &c1);
        let g2 = squeeze_excite_backward(&c.p, c.x.view(), c.dy.view(), wr, we, &c2);
        assert_eq!(g1, g2);
    }
}
