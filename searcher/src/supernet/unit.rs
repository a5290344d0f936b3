//! A conv + BN + activation unit, and the choice among several of them
//! (the depthwise kernels, the stem kernels): forward and backward.

use std::sync::Arc;

use ndarray::{Array1, Array4, ArrayView4, CowArray, Ix4};

use super::build::ConvBn;
use super::tape::{KernelTape, UnitTape};
use super::{BnMode, Supernet};
use crate::layers::activation::Activation as Act;
use crate::layers::batch_norm::{
    BatchNormCache, BatchNormParams, Statistics, batch_norm_activation_in_place,
    batch_norm_backward_in_place, batch_norm_inference, batch_norm_train,
    batch_norm_update_running,
};
use crate::layers::conv::{Conv2dParams, conv2d, conv2d_backward_input, conv2d_backward_weight};
use crate::layers::residual::residual_add_assign;
use crate::layers::{scaled4, standard_copy4};

/// What a unit computes on a path: its output width (the weights' leading
/// `cout` channels), its stride and the activation after BN.
#[derive(Clone, Copy, Debug)]
pub(super) struct UnitShape {
    pub(super) cout: usize,
    pub(super) stride: usize,
    pub(super) act: Act,
}

/// A unit's input: owned when the caller hands it over (a kept tape then
/// stores it without a copy), borrowed when the caller still needs it (a
/// residual, the other branches of an all-values choice) and no tape is
/// kept, so nothing is copied at all, or shared when several units read it
/// and their tapes keep one copy between them.
pub(super) enum UnitInput<'a> {
    Cow(CowArray<'a, f32, Ix4>),
    Shared(&'a Arc<Array4<f32>>),
}

impl UnitInput<'_> {
    pub(super) fn view(&self) -> ArrayView4<'_, f32> {
        match self {
            UnitInput::Cow(x) => x.view(),
            UnitInput::Shared(x) => x.view(),
        }
    }

    /// The input as a tape keeps it (copied only if it was borrowed).
    fn into_kept(self) -> Arc<Array4<f32>> {
        match self {
            UnitInput::Cow(x) => Arc::new(x.into_owned()),
            UnitInput::Shared(x) => Arc::clone(x),
        }
    }

    /// The input as an owned array (copied unless it was owned).
    pub(super) fn into_owned(self) -> Array4<f32> {
        match self {
            UnitInput::Cow(x) => x.into_owned(),
            UnitInput::Shared(x) => x.as_ref().clone(),
        }
    }
}

impl From<Array4<f32>> for UnitInput<'_> {
    fn from(x: Array4<f32>) -> Self {
        UnitInput::Cow(x.into())
    }
}

impl<'a> From<ArrayView4<'a, f32>> for UnitInput<'a> {
    fn from(x: ArrayView4<'a, f32>) -> Self {
        UnitInput::Cow(x.into())
    }
}

/// A gradient flowing backward: owned, or borrowed when the caller still
/// needs it (a residual, the other branches of an all-values choice). The
/// backward pieces only read it.
pub(super) type Gradient<'a> = CowArray<'a, f32, Ix4>;

/// Which units of a kernel choice run: the `chosen` one, or with `all`
/// every one averaged, whose branches the backward then recomputes one at a
/// time when `remat` is set instead of keeping their tapes.
#[derive(Clone, Copy, Debug)]
pub(super) struct KernelChoice {
    pub(super) chosen: usize,
    pub(super) all: bool,
    pub(super) remat: bool,
}

impl Supernet {
    /// With `keep_tape` the tape holds the input, the conv output and the
    /// pre-activation for the backward pass; without it (evaluation, the
    /// forward pass of a rematerialized branch) none of them is copied.
    pub(super) fn unit_forward(
        &mut self,
        u: &ConvBn,
        x: UnitInput<'_>,
        shape: UnitShape,
        mode: BnMode,
        keep_tape: bool,
    ) -> (Array4<f32>, Option<UnitTape>) {
        let UnitShape { cout, stride, act } = shape;
        let (_, cin, h, w) = x.view().dim();
        let params = Conv2dParams {
            cin,
            cout,
            kernel: u.kernel,
            stride,
            padding: u.kernel / 2,
            groups: if u.depthwise { cin } else { 1 },
            in_h: h,
            in_w: w,
        }
        .checked()
        .unwrap_or_else(|e| panic!("supernet built an impossible conv: {e}"));
        let per_group = if u.depthwise { 1 } else { cin };
        let conv_out = conv2d(
            &params,
            x.view(),
            self.store.v4(u.conv, cout, per_group),
            None,
        );
        let bnp = BatchNormParams::new(cout).expect("positive channels");
        let gamma = self.store.v1(u.gamma, cout).to_owned();
        let beta = self.store.v1(u.beta, cout).to_owned();
        if !keep_tape {
            // Nothing is kept, so BN and the activation overwrite the conv
            // output in one pass.
            let mut y = conv_out;
            let running = match mode {
                BnMode::Running => Some((
                    self.store.v1(u.mean, cout).to_owned(),
                    self.store.v1(u.var, cout).to_owned(),
                )),
                BnMode::Batch | BnMode::BatchUpdateRunning => None,
            };
            let stats = match &running {
                Some((mean, var)) => Statistics::Running {
                    mean: mean.view(),
                    var: var.view(),
                },
                None => Statistics::Batch,
            };
            let batch = batch_norm_activation_in_place(
                &bnp,
                y.view_mut(),
                gamma.view(),
                beta.view(),
                stats,
                act,
            );
            if mode == BnMode::BatchUpdateRunning {
                let cache = batch.expect("batch statistics were used");
                self.update_running(u, &bnp, cout, &cache);
            }
            return (y, None);
        }
        let (y, cache) = match mode {
            BnMode::Running => {
                let mean = self.store.v1(u.mean, cout).to_owned();
                let var = self.store.v1(u.var, cout).to_owned();
                let y = batch_norm_inference(
                    &bnp,
                    conv_out.view(),
                    gamma.view(),
                    beta.view(),
                    mean.view(),
                    var.view(),
                );
                // Eval passes keep no tape worth using; an empty cache marks it.
                let empty = BatchNormCache {
                    mean: Array1::zeros(0),
                    var: Array1::zeros(0),
                    inv_std: Array1::zeros(0),
                    count: 0,
                };
                (y, empty)
            }
            BnMode::Batch | BnMode::BatchUpdateRunning => {
                let (y, cache) = batch_norm_train(&bnp, conv_out.view(), gamma.view(), beta.view());
                if mode == BnMode::BatchUpdateRunning {
                    self.update_running(u, &bnp, cout, &cache);
                }
                (y, cache)
            }
        };
        // The BN output is kept as it is for the activation's backward, and
        // the activation writes a new array: one pass, no copy.
        let (y, bn_out) = if act == Act::Identity {
            (y, None)
        } else {
            (act.forward(y.view()), Some(y))
        };
        let tape = UnitTape {
            params,
            act,
            x: x.into_kept(),
            conv_out,
            bn: cache,
            bn_out,
        };
        (y, Some(tape))
    }

    fn update_running(
        &mut self,
        u: &ConvBn,
        bnp: &BatchNormParams,
        c: usize,
        cache: &BatchNormCache,
    ) {
        let mut bnp = *bnp;
        if let Some(m) = self.bn_momentum {
            bnp.momentum = m;
        }
        let bnp = &bnp;
        let mut mean = self.store.v1(u.mean, c).to_owned();
        let mut var = self.store.v1(u.var, c).to_owned();
        batch_norm_update_running(bnp, mean.view_mut(), var.view_mut(), cache);
        self.store.v1_mut(u.mean, c).assign(&mean);
        self.store.v1_mut(u.var, c).assign(&var);
    }

    pub(super) fn unit_backward(
        &mut self,
        u: &ConvBn,
        tape: UnitTape,
        dy: Gradient<'_>,
    ) -> Array4<f32> {
        let UnitTape {
            params,
            act,
            x,
            conv_out,
            bn,
            bn_out,
        } = tape;
        // The activation's and BN's input grads are written over `dy` when
        // it is this unit's own (no other reader), else into one new array.
        let mut d_bn = if dy.is_view() {
            match &bn_out {
                Some(pre) => act.backward(pre.view(), dy.view()),
                None => standard_copy4(dy.view()),
            }
        } else {
            let mut owned = dy.into_owned();
            if let Some(pre) = &bn_out {
                act.backward_in_place(pre.view(), owned.view_mut());
            }
            owned
        };
        if !d_bn.is_standard_layout() {
            d_bn = standard_copy4(d_bn.view());
        }
        let cout = params.cout;
        let bnp = BatchNormParams::new(cout).expect("positive channels");
        let gamma = self.store.v1(u.gamma, cout).to_owned();
        let g = batch_norm_backward_in_place(&bnp, conv_out.view(), d_bn, gamma.view(), &bn);
        drop(conv_out);
        self.store.add_grad(u.gamma, &g.dgamma);
        self.store.add_grad(u.beta, &g.dbeta);
        let dw = conv2d_backward_weight(&params, x.view(), g.dx.view());
        self.store.add_grad(u.conv, &dw);
        let per_group = if u.depthwise { 1 } else { params.cin };
        conv2d_backward_input(&params, g.dx.view(), self.store.v4(u.conv, cout, per_group))
    }

    /// Runs the depthwise choice: one kernel, or every kernel averaged.
    /// With `keep_tape` the result carries what `kernel_backward` needs.
    pub(super) fn kernel_forward(
        &mut self,
        units: &[ConvBn],
        x: UnitInput<'_>,
        shape: UnitShape,
        mode: BnMode,
        choice: KernelChoice,
        keep_tape: bool,
    ) -> (Array4<f32>, Option<KernelTape>) {
        let KernelChoice { chosen, all, remat } = choice;
        if !all || units.len() == 1 {
            let (y, t) = self.unit_forward(&units[chosen], x, shape, mode, keep_tape);
            return (y, t.map(|t| KernelTape::One(chosen, Box::new(t))));
        }
        let n = units.len() as f32;
        let mut sum: Option<Array4<f32>> = None;
        let mut tapes = Vec::new();
        // Rematerialized branches are recomputed in the backward pass, so
        // their forward keeps nothing.
        let keep_branches = keep_tape && !remat;
        // Kept branches read one input and their tapes share one copy.
        let (shared, x) = if keep_branches {
            (Some(Arc::new(x.into_owned())), None)
        } else {
            (None, Some(x))
        };
        for u in units {
            let input = match (&shared, &x) {
                (Some(shared), _) => UnitInput::Shared(shared),
                (None, Some(x)) => x.view().into(),
                (None, None) => unreachable!("the input is shared or kept"),
            };
            let (y, t) = self.unit_forward(u, input, shape, mode, keep_branches);
            match &mut sum {
                None => sum = Some(y),
                Some(s) => residual_add_assign(s.view_mut(), y.view()),
            }
            tapes.extend(t);
        }
        let y = scaled4(sum.expect("at least one kernel").view(), 1.0 / n);
        let tape = match (keep_tape, remat) {
            (false, _) => None,
            (true, true) => Some(KernelTape::AllRemat(
                x.expect("not shared when rematerialized").into_owned(),
            )),
            (true, false) => Some(KernelTape::AllKept(tapes)),
        };
        (y, tape)
    }

    pub(super) fn kernel_backward(
        &mut self,
        units: &[ConvBn],
        tape: KernelTape,
        dy: Array4<f32>,
        shape: UnitShape,
    ) -> Array4<f32> {
        match tape {
            KernelTape::One(i, t) => self.unit_backward(&units[i], *t, dy.into()),
            KernelTape::AllKept(tapes) => {
                let scaled = scaled4(dy.view(), 1.0 / tapes.len() as f32);
                let mut dx: Option<Array4<f32>> = None;
                for (u, t) in units.iter().zip(tapes) {
                    let d = self.unit_backward(u, t, scaled.view().into());
                    match &mut dx {
                        None => dx = Some(d),
                        Some(s) => residual_add_assign(s.view_mut(), d.view()),
                    }
                }
                dx.expect("at least one kernel")
            }
            KernelTape::AllRemat(x) => {
                let x = Arc::new(x);
                let scaled = scaled4(dy.view(), 1.0 / units.len() as f32);
                let mut dx: Option<Array4<f32>> = None;
                for u in units {
                    // Recompute this branch with its caches, then free them.
                    let input = UnitInput::Shared(&x);
                    let (_, t) = self.unit_forward(u, input, shape, BnMode::Batch, true);
                    let t = t.expect("the tape was kept");
                    let d = self.unit_backward(u, t, scaled.view().into());
                    match &mut dx {
                        None => dx = Some(d),
                        Some(s) => residual_add_assign(s.view_mut(), d.view()),
                    }
                }
                dx.expect("at least one kernel")
            }
        }
    }
}
