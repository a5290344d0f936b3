//! One searchable layer: squeeze-excite, the body (expand, depthwise
//! choice, squeeze-excite, project, residual) and the skip choice, forward
//! and backward.

use ndarray::{Array1, Array4};
use tunas_shared::space::round_to_8;

use super::build::{LayerWeights, SeWeights};
use super::plan::LayerDims;
use super::tape::{BodyTape, LayerTape, SeTape};
use super::unit::{KernelChoice, UnitShape};
use super::{BnMode, Supernet};
use crate::layers::activation::Activation as Act;
use crate::layers::copy4;
use crate::layers::residual::residual_add_assign;
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

    fn body_forward(
        &mut self,
        li: usize,
        x: Array4<f32>,
        d: &LayerDims,
        mode: BnMode,
        remat: bool,
    ) -> (Array4<f32>, BodyTape) {
        let lw = self.layers[li].clone();
        let input_for_residual = if d.residual {
            Some(copy4(x.view()))
        } else {
            None
        };
        let (h, expand) = match &lw.expand {
            Some(e) => {
                let shape = UnitShape {
                    cout: d.mid,
                    stride: 1,
                    act: d.act,
                };
                let (h, t) = self.unit_forward(e, x, shape, mode);
                (h, Some(t))
            }
            None => (x, None),
        };
        let choice = KernelChoice {
            chosen: d.kernel_index,
            all: d.kernel_all,
            remat,
        };
        let (h, kernel) =
            self.kernel_forward(&lw.depthwise, h, depthwise_shape(&lw, d), mode, choice);
        let (h, se) = match &lw.se {
            Some(se) => self.se_forward(se, h, d.se, d.se_all, remat),
            None => (h, SeTape::Off),
        };
        let shape = UnitShape {
            cout: d.cout,
            stride: 1,
            act: Act::Identity,
        };
        let (mut y, project) = self.unit_forward(&lw.project, h, shape, mode);
        if let Some(r) = input_for_residual {
            residual_add_assign(y.view_mut(), r.view());
        }
        (
            y,
            BodyTape {
                expand,
                kernel,
                se,
                project,
                residual: d.residual,
            },
        )
    }

    fn body_backward(
        &mut self,
        li: usize,
        tape: BodyTape,
        dy: Array4<f32>,
        d: &LayerDims,
    ) -> Array4<f32> {
        let lw = self.layers[li].clone();
        let residual_grad = if tape.residual {
            Some(copy4(dy.view()))
        } else {
            None
        };
        let dh = self.unit_backward(&lw.project, tape.project, dy);
        let dh = match &lw.se {
            Some(se) => self.se_backward(se, tape.se, dh),
            None => dh,
        };
        let dh = self.kernel_backward(&lw.depthwise, tape.kernel, dh, depthwise_shape(&lw, d));
        let mut dx = match (&lw.expand, tape.expand) {
            (Some(e), Some(t)) => self.unit_backward(e, t, dh),
            _ => dh,
        };
        if let Some(r) = residual_grad {
            residual_add_assign(dx.view_mut(), r.view());
        }
        dx
    }

    pub(super) fn layer_forward(
        &mut self,
        li: usize,
        x: Array4<f32>,
        d: &LayerDims,
        mode: BnMode,
        remat: bool,
    ) -> (Array4<f32>, LayerTape) {
        if d.skip_all {
            let (y, body) = self.body_forward(li, x.clone(), d, mode, remat);
            let avg = mean_with_input(y, &x);
            let tape = if remat {
                LayerTape::AllRemat(x)
            } else {
                LayerTape::AllKept(Box::new(body))
            };
            return (avg, tape);
        }
        if d.skipped {
            return (x, LayerTape::Skipped);
        }
        let (y, body) = self.body_forward(li, x, d, mode, remat);
        (y, LayerTape::Body(Box::new(body)))
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
            LayerTape::Body(b) => self.body_backward(li, *b, dy, d),
            LayerTape::AllKept(b) => {
                let half = dy.mapv(|v| v * 0.5);
                let mut dx = self.body_backward(li, *b, half.clone(), d);
                dx += &half;
                dx
            }
            LayerTape::AllRemat(x) => {
                let half = dy.mapv(|v| v * 0.5);
                // Recompute this one layer keeping every branch's tape (no
                // nested rematerialization): recomputing the kernel and SE
                // branches a second time inside would triple their cost,
                // and only this layer's tapes are alive at once.
                let (_, b) = self.body_forward(li, x, d, BnMode::Batch, false);
                let mut dx = self.body_backward(li, b, half.clone(), d);
                dx += &half;
                dx
            }
        }
    }
}

/// The depthwise choice's shape in layer `lw` at `d`: it runs on the
/// expanded width, or on the input's when the layer has no expansion.
fn depthwise_shape(lw: &LayerWeights, d: &LayerDims) -> UnitShape {
    UnitShape {
        cout: if lw.expand.is_some() { d.mid } else { d.cin },
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
