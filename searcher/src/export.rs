//! Exporting a trained architecture as ONNX: BN statistics recalibrated on
//! training batches for that architecture, folded into the convolutions,
//! and written through the same per-op emitter the profiler times
//! (`tunas_shared::onnx`).

use ndarray::{ArrayViewD, SliceInfoElem};
use tunas_shared::onnx::{WeightRequest, WeightSource, network_model};
use tunas_shared::{Architecture, OpKind};

use crate::data::{BatchMaker, Dataset};
use crate::supernet::{BnMode, PathPlan, Supernet};

/// BN epsilon of the supernet's layers (TuNAS's 1e-3).
const BN_EPS: f32 = 1e-3;

/// Re-estimates every BN's running statistics for `arch` as the plain
/// average of `batches` training batches' statistics.
pub fn recalibrate_bn(
    net: &mut Supernet,
    arch: &Architecture,
    data: &Dataset,
    maker: &BatchMaker,
    batches: usize,
    batch_size: usize,
) {
    let plan = PathPlan::single(arch.clone());
    let mut rng = rand::rng();
    let batch_size = batch_size.min(data.len()).max(1);
    for k in 0..batches {
        net.bn_momentum = Some(k as f32 / (k as f32 + 1.0));
        let start = (k * batch_size) % (data.len() - batch_size + 1);
        let idx: Vec<usize> = (start..start + batch_size).collect();
        let (x, _) = maker.batch(data, &idx, &mut rng);
        let _ = net.forward(x, &plan, BnMode::BatchUpdateRunning, false);
    }
    net.bn_momentum = None;
}

/// The supernet's weights for one architecture, BN folded, served to the
/// ONNX writer by scope and tensor name.
pub struct TrainedWeights<'a> {
    net: &'a Supernet,
}

impl<'a> TrainedWeights<'a> {
    /// Weights of `net` (call [`recalibrate_bn`] first).
    pub fn new(net: &'a Supernet) -> Self {
        TrainedWeights { net }
    }

    fn tensor_named(&self, name: &str) -> Result<ArrayViewD<'a, f32>, String> {
        let store = &self.net.store;
        store
            .index_of(name)
            .map(|i| store.tensors[i].value.view())
            .ok_or_else(|| format!("the supernet has no tensor '{name}'"))
    }

    /// The first `shape` entries of a stored tensor (leading slice per axis).
    fn sliced(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let t = self.tensor_named(name)?;
        if t.ndim() != shape.len() {
            // 2-d dense weights asked for as [out, in, 1, 1] convs.
            if t.ndim() == 2 && shape.len() == 4 && shape[2] == 1 && shape[3] == 1 {
                return self.sliced(name, &[shape[0], shape[1]]);
            }
            return Err(format!(
                "tensor '{name}' has {} axes, the writer asks for {shape:?}",
                t.ndim()
            ));
        }
        for (have, want) in t.shape().iter().zip(shape) {
            if want > have {
                return Err(format!(
                    "tensor '{name}' is {:?}, smaller than the asked {shape:?}",
                    t.shape()
                ));
            }
        }
        let info: Vec<SliceInfoElem> = shape
            .iter()
            .map(|&n| SliceInfoElem::Slice {
                start: 0,
                end: Some(n as isize),
                step: 1,
            })
            .collect();
        // Row-major iteration of the sliced view is the order the writer wants.
        Ok(t.slice(info.as_slice()).iter().copied().collect())
    }

    /// Folded `(weight, bias)` of a conv + BN unit stored under `unit`.
    fn folded(&self, unit: &str, shape: &[usize]) -> Result<(Vec<f32>, Vec<f32>), String> {
        let out = shape[0];
        let w = self.sliced(&format!("{unit}/weight"), shape)?;
        let gamma = self.sliced(&format!("{unit}/bn/gamma"), &[out])?;
        let beta = self.sliced(&format!("{unit}/bn/beta"), &[out])?;
        let mean = self.sliced(&format!("{unit}/bn/running_mean"), &[out])?;
        let var = self.sliced(&format!("{unit}/bn/running_var"), &[out])?;
        let per_out = w.len() / out;
        let mut weight = w;
        let mut bias = vec![0.0; out];
        for o in 0..out {
            let scale = gamma[o] / (var[o] + BN_EPS).sqrt();
            for v in &mut weight[o * per_out..(o + 1) * per_out] {
                *v *= scale;
            }
            bias[o] = beta[o] - mean[o] * scale;
        }
        Ok((weight, bias))
    }
}

impl WeightSource for TrainedWeights<'_> {
    fn tensor(&mut self, r: &WeightRequest<'_>) -> Result<Vec<f32>, String> {
        let (part, which) = r
            .tensor
            .rsplit_once('.')
            .ok_or_else(|| format!("unexpected tensor name '{}'", r.tensor))?;
        let is_bias = which == "bias";
        let k = r.key.kernel;
        // Plain (unfolded) tensors first.
        let plain = match (r.key.op, part) {
            (OpKind::Bottleneck, "se.reduce") => Some(format!("{}/se/reduce", r.scope)),
            (OpKind::Bottleneck, "se.expand") => Some(format!("{}/se/expand", r.scope)),
            (OpKind::HeadFc, "conv") => Some("head/fc".to_string()),
            (OpKind::Classifier, "fc") => Some("classifier".to_string()),
            _ => None,
        };
        if let Some(unit) = plain {
            let name = format!("{unit}/{which}");
            return self.sliced(&name, r.shape);
        }
        let unit = match (r.key.op, part) {
            (OpKind::Stem, "conv") => format!("stem/k{k}"),
            (OpKind::Bottleneck, "expand") => format!("{}/expand", r.scope),
            (OpKind::Bottleneck | OpKind::Separable, "dw") => format!("{}/dw{k}", r.scope),
            (OpKind::Bottleneck, "project") => format!("{}/project", r.scope),
            (OpKind::Separable, "pw") => format!("{}/pointwise", r.scope),
            (OpKind::HeadConv, "conv") => "head/conv".to_string(),
            _ => {
                return Err(format!(
                    "no supernet tensor for {} of {} at {}",
                    r.tensor, r.key, r.scope
                ));
            }
        };
        // The writer asks for weight then bias; fold with the weight's shape.
        if is_bias {
            let w_shape = match r.key.op {
                OpKind::Stem => vec![
                    r.key.cout as usize,
                    r.key.cin as usize,
                    k as usize,
                    k as usize,
                ],
                _ if part == "dw" => vec![r.shape[0], 1, k as usize, k as usize],
                _ => {
                    let cin = match (r.key.op, part) {
                        (OpKind::Bottleneck, "expand") => r.key.cin,
                        (OpKind::Bottleneck, "project") => r.key.mid,
                        _ => r.key.cin,
                    };
                    vec![r.shape[0], cin as usize, 1, 1]
                }
            };
            Ok(self.folded(&unit, &w_shape)?.1)
        } else {
            Ok(self.folded(&unit, r.shape)?.0)
        }
    }
}

/// The ONNX model of `arch` with the supernet's (recalibrated) weights.
pub fn export_onnx(net: &Supernet, arch: &Architecture, batch: u32) -> Result<Vec<u8>, String> {
    let mut weights = TrainedWeights::new(net);
    network_model(&net.space, arch, &mut weights, batch).map_err(|e| e.to_string())
}
