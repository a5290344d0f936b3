//! The whole net: forward through stem, layers and head, backward in
//! reverse, and the training and evaluation steps built on them.

use ndarray::{Array2, Array4, ArrayView2};

use super::plan::PlanDims;
use super::tape::{HeadTape, KernelTape, NetTape};
use super::unit::{KernelChoice, UnitShape};
use super::{BnMode, PathPlan, Supernet, act_of};
use crate::layers::activation::Activation as Act;
use crate::layers::linear::{
    LinearParams, linear, linear_backward_bias, linear_backward_input, linear_backward_weight,
};
use crate::layers::pool::{global_avg_pool, global_avg_pool_backward};
use crate::optim::Optimizer;

impl Supernet {
    /// Forward pass of `plan` on an NCHW batch. With `keep_tape` the result
    /// carries what `Supernet::backward` needs.
    ///
    /// # Shapes
    /// `x: [n, channels, height, width]` of the space's input → logits `[n, classes]`.
    pub fn forward(
        &mut self,
        x: Array4<f32>,
        plan: &PathPlan,
        mode: BnMode,
        keep_tape: bool,
    ) -> (Array2<f32>, Option<NetTape>) {
        let dims = self.plan_dims(plan);
        let (mut h, stem) = self.stem_forward(x, plan, dims.stem_filters, mode, keep_tape);
        let mut layer_tapes = Vec::with_capacity(dims.layers.len());
        for (li, d) in dims.layers.iter().enumerate() {
            let (y, t) = self.layer_forward(li, h, d, mode, plan.rematerialize, keep_tape);
            h = y;
            layer_tapes.extend(t);
        }
        let (logits, head) = self.head_forward(h, &dims, mode, keep_tape);
        let tape = match (stem, head) {
            (Some(stem), Some(head)) if keep_tape => Some(NetTape {
                stem,
                layers: layer_tapes,
                head,
            }),
            _ => None,
        };
        (logits, tape)
    }

    /// Backward pass: accumulates every parameter gradient of the path from
    /// the logits' gradient.
    ///
    /// # Shapes
    /// `dlogits: [n, classes]`.
    pub(crate) fn backward(&mut self, tape: NetTape, plan: &PathPlan, dlogits: Array2<f32>) {
        let dims = self.plan_dims(plan);
        let NetTape {
            stem,
            layers,
            head: ht,
        } = tape;
        let mut dh = self.head_backward(ht, &dims, dlogits);
        for (li, t) in layers.into_iter().enumerate().rev() {
            dh = self.layer_backward(li, t, dh, &dims.layers[li]);
        }
        let stem_units = self.stem.clone();
        let shape = self.stem_shape(dims.stem_filters);
        let _ = self.kernel_backward(&stem_units, stem, dh, shape);
    }

    /// The stem's kernel choice at `filters` output channels.
    fn stem_forward(
        &mut self,
        x: Array4<f32>,
        plan: &PathPlan,
        filters: usize,
        mode: BnMode,
        keep_tape: bool,
    ) -> (Array4<f32>, Option<KernelTape>) {
        let stem_units = self.stem.clone();
        let stem_index = self
            .stem_kernel_decision
            .map_or(0, |i| plan.arch.indices[i]);
        let stem_all = self
            .stem_kernel_decision
            .is_some_and(|i| plan.all_values[i]);
        let choice = KernelChoice {
            chosen: stem_index,
            all: stem_all,
            remat: plan.rematerialize,
        };
        let shape = self.stem_shape(filters);
        self.kernel_forward(&stem_units, x.into(), shape, mode, choice, keep_tape)
    }

    /// The stem's shape at `filters` output channels.
    fn stem_shape(&self, filters: usize) -> UnitShape {
        UnitShape {
            cout: filters,
            stride: self.space.stem.stride as usize,
            act: act_of(self.space.stem.activation),
        }
    }

    /// The activation after the post-pool fully connected layer.
    fn post_pool_act(&self) -> Act {
        act_of(
            self.space
                .head
                .post_pool_activation
                .unwrap_or(tunas_shared::Activation::Relu),
        )
    }

    /// Head conv, global average pool, the optional fully connected layer
    /// and the classifier.
    fn head_forward(
        &mut self,
        h: Array4<f32>,
        dims: &PlanDims,
        mode: BnMode,
        keep_tape: bool,
    ) -> (Array2<f32>, Option<HeadTape>) {
        let head_filters = dims.head_filters;
        let head = self.head.clone();
        let shape = UnitShape {
            cout: head_filters,
            stride: 1,
            act: act_of(self.space.head.activation),
        };
        let (hc, conv_tape) = self.unit_forward(&head.conv, h.into(), shape, mode, keep_tape);
        let hw = (hc.dim().2, hc.dim().3);
        let pooled = global_avg_pool(hc.view());
        drop(hc);
        let (features, fc) = match (head.fc, dims.post_pool_filters) {
            (Some((w, b)), Some(out)) => {
                let lp = LinearParams::new(head_filters, out).expect("positive");
                let wv = self.store.v2(w, out, head_filters).to_owned();
                let bv = self.store.v1(b, out).to_owned();
                let z = linear(&lp, pooled.view(), wv.view(), Some(bv.view()));
                let f = self.post_pool_act().forward(z.view());
                (f, Some((pooled, z)))
            }
            _ => (pooled, None),
        };
        let (cw, cb) = head.classifier;
        let classes = self.space.input.classes as usize;
        let nf = features.dim().1;
        let lp = LinearParams::new(nf, classes).expect("positive");
        let wv = self.store.v2(cw, classes, nf).to_owned();
        let logits = linear(
            &lp,
            features.view(),
            wv.view(),
            Some(self.store.v1(cb, classes)),
        );
        let tape = conv_tape.map(|conv| HeadTape {
            conv,
            hw,
            fc,
            features,
        });
        (logits, tape)
    }

    /// Backward through the classifier, fully connected layer, pool and
    /// head conv: the gradient at the head's input.
    fn head_backward(
        &mut self,
        ht: HeadTape,
        dims: &PlanDims,
        dlogits: Array2<f32>,
    ) -> Array4<f32> {
        let head_filters = dims.head_filters;
        let head = self.head.clone();
        let (cw, cb) = head.classifier;
        let classes = self.space.input.classes as usize;
        let nf = ht.features.dim().1;
        let lp = LinearParams::new(nf, classes).expect("positive");
        let wv = self.store.v2(cw, classes, nf).to_owned();
        self.store.add_grad(
            cw,
            &linear_backward_weight(&lp, ht.features.view(), dlogits.view()),
        );
        self.store
            .add_grad(cb, &linear_backward_bias(dlogits.view()));
        let mut dfeat = linear_backward_input(&lp, dlogits.view(), wv.view());
        if let (Some((w, b)), Some(out), Some((pooled, z))) =
            (head.fc, dims.post_pool_filters, ht.fc)
        {
            let dz = self.post_pool_act().backward(z.view(), dfeat.view());
            let lp = LinearParams::new(head_filters, out).expect("positive");
            let wv = self.store.v2(w, out, head_filters).to_owned();
            self.store
                .add_grad(w, &linear_backward_weight(&lp, pooled.view(), dz.view()));
            self.store.add_grad(b, &linear_backward_bias(dz.view()));
            dfeat = linear_backward_input(&lp, dz.view(), wv.view());
        }
        let dhc = global_avg_pool_backward(dfeat.view(), ht.hw.0, ht.hw.1);
        self.unit_backward(&head.conv, ht.conv, dhc.into())
    }
}

/// Loss and accuracy of one batch after a forward and backward pass; the
/// gradients are left in the store (zeroed first).
pub(super) fn loss_and_gradients(
    net: &mut Supernet,
    x: Array4<f32>,
    labels: &[usize],
    plan: &PathPlan,
    bn: BnMode,
    label_smoothing: f32,
) -> (f32, f32) {
    net.store.zero_grads();
    let (logits, tape) = net.forward(x, plan, bn, true);
    let (loss, dlogits) =
        crate::layers::loss::softmax_cross_entropy(logits.view(), labels, label_smoothing);
    let acc = crate::layers::loss::accuracy(logits.view(), labels);
    net.backward(tape.expect("tape was kept"), plan, dlogits);
    (loss, acc)
}

/// How one training step updates the weights.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepSettings<'a> {
    /// The optimiser of the weights.
    pub(crate) optimizer: &'a Optimizer,
    /// Its learning rate at this step.
    pub(crate) lr: f32,
    /// Label smoothing of the cross-entropy.
    pub(crate) label_smoothing: f32,
    /// Batch statistics only (the search: running statistics mean nothing
    /// for a supernet whose paths change every step), or batch statistics
    /// that also update the running ones (stand-alone training).
    pub(crate) bn: BnMode,
}

/// One training step: forward, backward, optimiser update; returns the
/// batch's loss and accuracy.
pub(crate) fn train_step(
    net: &mut Supernet,
    x: Array4<f32>,
    labels: &[usize],
    plan: &PathPlan,
    step: &StepSettings,
) -> (f32, f32) {
    let loss_acc = loss_and_gradients(net, x, labels, plan, step.bn, step.label_smoothing);
    net.store.step(step.optimizer, step.lr);
    loss_acc
}

/// Accuracy of a path on a batch (no gradients).
pub fn evaluate(
    net: &mut Supernet,
    x: Array4<f32>,
    labels: &[usize],
    plan: &PathPlan,
    mode: BnMode,
) -> f32 {
    score_path(net, x, labels, plan, mode, crate::layers::loss::accuracy)
}

/// `score` of a path's logits on a batch (no gradients).
pub(crate) fn score_path(
    net: &mut Supernet,
    x: Array4<f32>,
    labels: &[usize],
    plan: &PathPlan,
    mode: BnMode,
    score: fn(ArrayView2<'_, f32>, &[usize]) -> f32,
) -> f32 {
    let (logits, _) = net.forward(x, plan, mode, false);
    score(logits.view(), labels)
}
