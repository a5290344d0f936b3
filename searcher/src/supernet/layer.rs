//! One searchable layer: squeeze-excite, the body (expand, depthwise
//! choice, squeeze-excite, project, residual) and the skip choice, forward
//! and backward.

use ndarray::{Array1, Array4};
use tunas_shared::space::round_to_8;

use super::build::{OpWeights, SeWeights};
use super::plan::LayerDims;
use super::tape::{BodyTape, LayerTape, OpsTape, SeTape};
use super::unit::{Gradient, KernelChoice, UnitInput, UnitShape};
use super::{BnMode, Supernet};
use crate::layers::activation::Activation as Act;
use crate::layers::residual::residual_add_assign;
use crate::layers::scaled4;
use crate::layers::squeeze_excite::{SqueezeExciteParams, squeeze_excite, squeeze_excite_backward};

impl Supernet {
    fn se_params(
        &self,
        se: &SeWeights,
        mid: usize,
    ) -> (
        SqueezeExciteParams,
        Array4<f32>,
        Array1<f32>,
        Array4<f32>,
        Array1<f32>,
    ) {
        let s_width = round_to_8(mid as f64 / 4.0) as usize;
        let p = SqueezeExciteParams::new(mid, s_width).expect("positive widths");
        let wr = self.store.v4(se.w_reduce, s_width, mid).to_owned();
        let br = self.store.v1(se.b_reduce, s_width).to_owned();
        let we = self.store.v4(se.w_expand, mid, s_width).to_owned();
        let be = self.store.v1(se.b_expand, mid).to_owned();
        (p, wr, br, we, be)
    }

    fn se_forward(
        &self,
        se: &SeWeights,
        x: Array4<f32>,
        on: bool,
        all: bool,
        remat: bool,
    ) -> (Array4<f32>, SeTape) {
        if !on && !all {
            return (x, SeTape::Off);
        }
        let mid = x.dim().1;
        let (p, wr, br, we, be) = self.se_params(se, mid);
        let (y, cache) = squeeze_excite(&p, x.view(), wr.view(), br.view(), we.view(), be.view());
        if !all {
            return (y, SeTape::On(x, cache));
        }
        let avg = mean_with_input(y, &x);
        let tape = if remat {
            SeTape::AllRemat(x)
        } else {
            SeTape::AllKept(x, cache)
        };
        (avg, tape)
    }

    fn se_backward(&mut self, se: &SeWeights, tape: SeTape, dy: Array4<f32>) -> Array4<f32> {
        let (x, cache, half) = match tape {
            SeTape::Off => return dy,
            SeTape::On(x, c) => (x, c, false),
            SeTape::AllKept(x, c) => (x, c, true),
            SeTape::AllRemat(x) => {
                let mid = x.dim().1;
                let (p, wr, br, we, be) = self.se_params(se, mid);
                let (_, c) =
                    squeeze_excite(&p, x.view(), wr.view(), br.view(), we.view(), be.view());
                (x, c, true)
            }
        };
        let mid = x.dim().1;
        let (p, wr, _, we, _) = self.se_params(se, mid);
        let d_se = if half { dy.mapv(|v| v * 0.5) } else { dy };
        let g = squeeze_excite_backward(&p, x.view(), d_se.view(), wr.view(), we.view(), &cache);
        self.store.add_grad(se.w_reduce, &g.dw_reduce);
        self.store.add_grad(se.b_reduce, &g.db_reduce);
        self.store.add_grad(se.w_expand, &g.dw_expand);
        self.store.add_grad(se.b_expand, &g.db_expand);
        let mut dx = g.dx;
        if half {
            // The identity half of the average.
            dx.scaled_add(1.0, &d_se);
        }
        dx
    }

    /// Op `oi` of layer `li`, with its residual. With `keep_tape` the
    /// result carries what `body_backward` needs.
    fn body_forward(
        &mut self,
        (li, oi): (usize, usize),
        x: UnitInput<'_>,
        d: &LayerDims,
        mode: BnMode,
        remat: bool,
        keep_tape: bool,
    ) -> (Array4<f32>, Option<BodyTape>) {
        if !d.residual {
            return self.body_path((li, oi), x, d, mode, (remat, keep_tape));
        }
        // The body borrows the input, which the residual then adds: a kept
        // tape copies what it stores, an evaluation copies nothing.
        let (mut y, tape) = self.body_path((li, oi), x.view().into(), d, mode, (remat, keep_tape));
        residual_add_assign(y.view_mut(), x.view());
        (y, tape)
    }

    /// Op `oi` of layer `li` without its residual: expand, k×k choice,
    /// squeeze-excite, project.
    fn body_path(
        &mut self,
        (li, oi): (usize, usize),
        x: UnitInput<'_>,
        d: &LayerDims,
        mode: BnMode,
        (remat, keep_tape): (bool, bool),
    ) -> (Array4<f32>, Option<BodyTape>) {
        let lw = self.layers[li].ops[oi].clone();
        let (h, expand) = match &lw.expand {
            Some(e) => {
                let shape = UnitShape {
                    cout: d.expanded,
                    stride: 1,
                    act: d.act,
                };
                let (h, t) = self.unit_forward(e, x, shape, mode, keep_tape);
                (UnitInput::from(h), t)
            }
            None => (x, None),
        };
        let choice = KernelChoice {
            chosen: d.kernel_index,
            all: d.kernel_all,
            remat,
        };
        let shape = spatial_shape(&lw, d);
        let (h, kernel) = self.kernel_forward(&lw.spatial, h, shape, mode, choice, keep_tape);
        let (h, se) = match &lw.se {
            Some(se) => self.se_forward(se, h, d.se, d.se_all, remat),
            None => (h, SeTape::Off),
        };
        let shape = UnitShape {
            cout: d.cout,
            stride: 1,
            act: Act::Identity,
        };
        let (y, project) = self.unit_forward(&lw.project, h.into(), shape, mode, keep_tape);
        let tape = match (keep_tape, kernel, project) {
            (true, Some(kernel), Some(project)) => Some(BodyTape {
                expand,
                kernel,
                se,
                project,
                residual: d.residual,
            }),
            _ => None,
        };
        (y, tape)
    }

    fn body_backward(
        &mut self,
        (li, oi): (usize, usize),
        tape: BodyTape,
        dy: Gradient<'_>,
        d: &LayerDims,
    ) -> Array4<f32> {
        let lw = self.layers[li].ops[oi].clone();
        // The project unit only reads the gradient, which the residual then
        // adds: borrowed, not copied.
        let dh = self.unit_backward(&lw.project, tape.project, dy.view().into());
        let dh = match &lw.se {
            Some(se) => self.se_backward(se, tape.se, dh),
            None => dh,
        };
        let dh = self.kernel_backward(&lw.spatial, tape.kernel, dh, spatial_shape(&lw, d));
        let mut dx = match (&lw.expand, tape.expand) {
            (Some(e), Some(t)) => self.unit_backward(e, t, dh.into()),
            _ => dh,
        };
        if tape.residual {
            residual_add_assign(dx.view_mut(), dy.view());
        }
        dx
    }

    /// Runs the layer's op choice: the path's op, or every op averaged.
    /// With `keep_tape` the result carries what `ops_backward` needs.
    fn ops_forward(
        &mut self,
        li: usize,
        x: UnitInput<'_>,
        d: &LayerDims,
        mode: BnMode,
        remat: bool,
        keep_tape: bool,
    ) -> (Array4<f32>, Option<OpsTape>) {
        let n = self.layers[li].ops.len();
        if !d.op_all || n == 1 {
            let (y, t) = self.body_forward((li, d.op_index), x, d, mode, remat, keep_tape);
            return (y, t.map(|t| OpsTape::One(d.op_index, Box::new(t))));
        }
        let mut sum: Option<Array4<f32>> = None;
        let mut tapes = Vec::new();
        // Rematerialized ops are recomputed in the backward pass, so their
        // forward keeps nothing.
        let keep_ops = keep_tape && !remat;
        for oi in 0..n {
            let (y, t) = self.body_forward((li, oi), x.view().into(), d, mode, remat, keep_ops);
            match &mut sum {
                None => sum = Some(y),
                Some(s) => residual_add_assign(s.view_mut(), y.view()),
            }
            tapes.extend(t);
        }
        let y = scaled4(sum.expect("at least one op").view(), 1.0 / n as f32);
        let tape = match (keep_tape, remat) {
            (false, _) => None,
            (true, true) => Some(OpsTape::AllRemat(x.into_owned())),
            (true, false) => Some(OpsTape::AllKept(tapes)),
        };
        (y, tape)
    }

    fn ops_backward(
        &mut self,
        li: usize,
        tape: OpsTape,
        dy: Gradient<'_>,
        d: &LayerDims,
    ) -> Array4<f32> {
        let n = self.layers[li].ops.len();
        let mut dx: Option<Array4<f32>> = None;
        let mut add = |d: Array4<f32>| match &mut dx {
            None => dx = Some(d),
            Some(s) => residual_add_assign(s.view_mut(), d.view()),
        };
        match tape {
            OpsTape::One(oi, t) => return self.body_backward((li, oi), *t, dy, d),
            OpsTape::AllKept(tapes) => {
                let scaled = scaled4(dy.view(), 1.0 / n as f32);
                for (oi, t) in tapes.into_iter().enumerate() {
                    add(self.body_backward((li, oi), t, scaled.view().into(), d));
                }
            }
            OpsTape::AllRemat(x) => {
                let scaled = scaled4(dy.view(), 1.0 / n as f32);
                for oi in 0..n {
                    // Recompute this op keeping its tapes (no nested
                    // rematerialization), then free them.
                    let input = x.view().into();
                    let (_, t) = self.body_forward((li, oi), input, d, BnMode::Batch, false, true);
                    let t = t.expect("the tape was kept");
                    add(self.body_backward((li, oi), t, scaled.view().into(), d));
                }
            }
        }
        dx.expect("at least one op")
    }

    /// Layer `li`: skipped, its op choice, or (skip warm-up) the mean of
    /// both. With `keep_tape` the result carries what `layer_backward`
    /// needs.
    pub(super) fn layer_forward(
        &mut self,
        li: usize,
        x: Array4<f32>,
        d: &LayerDims,
        mode: BnMode,
        remat: bool,
        keep_tape: bool,
    ) -> (Array4<f32>, Option<LayerTape>) {
        if d.skip_all {
            // A rematerialized layer is recomputed in the backward pass, so
            // its forward keeps nothing.
            let keep_body = keep_tape && !remat;
            let (y, body) = self.ops_forward(li, x.view().into(), d, mode, remat, keep_body);
            let avg = mean_with_input(y, &x);
            let tape = match (keep_tape, remat, body) {
                (false, _, _) => None,
                (true, true, _) => Some(LayerTape::AllRemat(x)),
                (true, false, body) => Some(LayerTape::AllKept(Box::new(
                    body.expect("the tape was kept"),
                ))),
            };
            return (avg, tape);
        }
        if d.skipped {
            return (x, keep_tape.then_some(LayerTape::Skipped));
        }
        let (y, body) = self.ops_forward(li, x.into(), d, mode, remat, keep_tape);
        (y, body.map(|b| LayerTape::Body(Box::new(b))))
    }

    pub(super) fn layer_backward(
        &mut self,
        li: usize,
        tape: LayerTape,
        dy: Array4<f32>,
        d: &LayerDims,
    ) -> Array4<f32> {
        match tape {
            LayerTape::Skipped => dy,
            LayerTape::Body(b) => self.ops_backward(li, *b, dy.into(), d),
            LayerTape::AllKept(b) => {
                let half = dy.mapv(|v| v * 0.5);
                let mut dx = self.ops_backward(li, *b, half.view().into(), d);
                dx += &half;
                dx
            }
            LayerTape::AllRemat(x) => {
                let half = dy.mapv(|v| v * 0.5);
                // Recompute this one layer keeping every branch's tape (no
                // nested rematerialization): recomputing the kernel and SE
                // branches a second time inside would triple their cost,
                // and only this layer's tapes are alive at once.
                let (_, b) = self.ops_forward(li, x.into(), d, BnMode::Batch, false, true);
                let b = b.expect("the tape was kept");
                let mut dx = self.ops_backward(li, b, half.view().into(), d);
                dx += &half;
                dx
            }
        }
    }
}

/// The shape of op `lw`'s k×k choice at `d`: it outputs the expanded
/// width (bottleneck: depthwise after the 1×1 expand; fused: the dense
/// expand itself), or the input's when the op has no expansion.
fn spatial_shape(lw: &OpWeights, d: &LayerDims) -> UnitShape {
    UnitShape {
        cout: if lw.op.expands() { d.expanded } else { d.cin },
        stride: d.stride,
        act: d.act,
    }
}

/// The all-values output of an optional block: the mean of its output `y`
/// and its input `x` (the block on, the block off), in place in `y`.
fn mean_with_input<D: ndarray::Dimension>(
    mut y: ndarray::Array<f32, D>,
    x: &ndarray::Array<f32, D>,
) -> ndarray::Array<f32, D> {
    y += x;
    y.mapv_inplace(|v| v * 0.5);
    y
}
