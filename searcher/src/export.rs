//! Exporting a trained architecture as ONNX: BN statistics recalibrated on
//! training batches for that architecture, folded into the convolutions,
//! and written through the same per-op emitter the profiler times
//! (`tunas_shared::onnx`).
//!
//! [`export_app_onnx`] writes the model an application uses as it is: plain
//! `[0, 1]` pixels in, a dynamic batch, the training normalisation inside
//! the graph and a description in `metadata_props` (see [`metadata_keys`]).

use std::collections::{HashMap, HashSet};

use ndarray::ArrayViewD;
use thiserror::Error;
use tunas_shared::onnx::{
    BatchDim, InputNormalization, NetworkOptions, OnnxError, WeightRequest, WeightSource,
    network_model_with,
};
use tunas_shared::{Architecture, LayerOp, OpKind};

use crate::data::{BatchMaker, Dataset};
use crate::search::SearchResult;
use crate::supernet::names::{self, BnPart};
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
    // Seeded: recalibration (and so the exported weights) is reproducible
    // even with a batch maker that augments.
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
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
/// ONNX writer by scope and tensor name (`supernet::names` is the
/// contract between the two).
pub(crate) struct TrainedWeights<'a> {
    net: &'a Supernet,
    by_name: HashMap<&'a str, usize>,
    /// Scopes of the layers whose op is searched: their tensors live under
    /// `names::op_scope` of the op the architecture runs.
    searched_op_scopes: HashSet<String>,
}

impl<'a> TrainedWeights<'a> {
    /// Weights of `net` (call [`recalibrate_bn`] first).
    pub(crate) fn new(net: &'a Supernet) -> Self {
        let by_name = (net.store.tensors.iter().enumerate())
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let searched_op_scopes = (net.space.layers())
            .filter(|(_, layer)| layer.op.decision().is_some())
            .map(|(pos, _)| names::layer(pos))
            .collect();
        TrainedWeights {
            net,
            by_name,
            searched_op_scopes,
        }
    }

    /// The scope of the tensors of op `op` that the writer emits at
    /// `scope`.
    fn op_scope(&self, scope: &str, op: OpKind) -> String {
        let layer_op = match op {
            OpKind::Separable => LayerOp::Separable,
            OpKind::Bottleneck => LayerOp::Bottleneck,
            OpKind::Fused => LayerOp::Fused,
            _ => return scope.to_string(),
        };
        names::op_scope(scope, layer_op, self.searched_op_scopes.contains(scope))
    }

    fn tensor_named(&self, name: &str) -> Result<ArrayViewD<'a, f32>, String> {
        let net: &'a Supernet = self.net;
        self.by_name
            .get(name)
            .map(|&i| net.store.tensors[i].value.view())
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
        let info = crate::supernet::leading_region(shape);
        // Row-major iteration of the sliced view is the order the writer wants.
        Ok(t.slice(info.as_slice()).iter().copied().collect())
    }

    /// Folded `(weight, bias)` of a conv + BN unit stored under `unit`.
    fn folded(&self, unit: &str, shape: &[usize]) -> Result<(Vec<f32>, Vec<f32>), String> {
        let out = shape[0];
        let w = self.sliced(&names::weight(unit), shape)?;
        let gamma = self.sliced(&names::bn(unit, BnPart::Gamma), &[out])?;
        let beta = self.sliced(&names::bn(unit, BnPart::Beta), &[out])?;
        let mean = self.sliced(&names::bn(unit, BnPart::RunningMean), &[out])?;
        let var = self.sliced(&names::bn(unit, BnPart::RunningVar), &[out])?;
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
        let scope = &self.op_scope(r.scope, r.key.op);
        // Plain (unfolded) tensors first.
        let plain = match (r.key.op, part) {
            (OpKind::Bottleneck, "se.reduce") => Some(names::se_reduce(scope)),
            (OpKind::Bottleneck, "se.expand") => Some(names::se_expand(scope)),
            (OpKind::HeadFc, "conv") => Some(names::HEAD_FC.to_string()),
            (OpKind::Classifier, "fc") => Some(names::CLASSIFIER.to_string()),
            _ => None,
        };
        if let Some(unit) = plain {
            let name = if is_bias {
                names::bias(&unit)
            } else {
                names::weight(&unit)
            };
            return self.sliced(&name, r.shape);
        }
        let unit = match (r.key.op, part) {
            (OpKind::Stem, "conv") => names::stem(k),
            (OpKind::Bottleneck, "expand") => names::expand(scope),
            (OpKind::Bottleneck | OpKind::Separable, "dw") => names::depthwise(scope, k),
            (OpKind::Bottleneck | OpKind::Fused, "project") => names::project(scope),
            (OpKind::Separable, "pw") => names::pointwise(scope),
            (OpKind::Fused, "expand") => names::fused_expand(scope, k),
            (OpKind::HeadConv, "conv") => names::HEAD_CONV.to_string(),
            _ => {
                return Err(format!(
                    "no supernet tensor for {} of {} at {}",
                    r.tensor, r.key, r.scope
                ));
            }
        };
        // The writer asks for weight then bias; fold with the weight's shape.
        if is_bias {
            let w_shape = match (r.key.op, part) {
                (OpKind::Stem, _) | (OpKind::Fused, "expand") => {
                    vec![r.shape[0], r.key.cin as usize, k as usize, k as usize]
                }
                (_, "dw") => vec![r.shape[0], 1, k as usize, k as usize],
                _ => {
                    let cin = match (r.key.op, part) {
                        (OpKind::Bottleneck, "expand") => r.key.cin,
                        (OpKind::Bottleneck | OpKind::Fused, "project") => r.key.mid,
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

pub use tunas_shared::onnx::metadata_keys;

/// Value of `input_range`: what the model's input is.
pub(crate) const INPUT_RANGE: &str = "[0,1] pixels, value/255";

/// What an exported model says about itself beyond its graph, and the
/// normalisation it applies to its input.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportMetadata {
    /// Per-channel mean the network was trained with (pixels scaled to
    /// [0, 1]); the model subtracts it.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation the network was trained with; the
    /// model divides by it.
    pub std: Vec<f32>,
    /// Name of each class, in logit order; `None` names them `"0"` to
    /// `"N-1"`.
    pub class_names: Option<Vec<String>>,
    /// Latency of the architecture estimated from a latency table (ms).
    pub est_latency_ms: Option<f64>,
    /// The device that table was measured on.
    pub latency_device: Option<String>,
}

impl ExportMetadata {
    /// The normalisation of `maker` (the batches the network was trained
    /// and evaluated on), default class names, no latency.
    pub fn new(maker: &BatchMaker) -> Self {
        ExportMetadata {
            mean: maker.mean.clone(),
            std: maker.std.clone(),
            class_names: None,
            est_latency_ms: None,
            latency_device: None,
        }
    }

    /// Adds the device of the latency table `result` was searched with and,
    /// when `arch` is the searched architecture, its estimated latency (the
    /// estimate of another architecture is not in the result).
    pub fn with_search_result(mut self, result: &SearchResult, arch: &Architecture) -> Self {
        if result.arch == arch.to_compact() {
            self.est_latency_ms = result.est_latency_ms;
        }
        self.latency_device = table_device(&result.table_provenance);
        self
    }
}

/// The device of a table from its provenance lines (`field = value`): the
/// device name, with the CPU, runtime, provider and threads when given.
fn table_device(provenance: &[String]) -> Option<String> {
    let field = |name: &str| {
        provenance.iter().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            (k.trim() == name && !v.is_empty()).then(|| v.to_string())
        })
    };
    let device = field("device")?;
    let details: Vec<String> = [
        field("cpu"),
        match (field("runtime"), field("runtime_version")) {
            (Some(r), Some(v)) => Some(format!("{r} {v}")),
            (r, _) => r,
        },
        field("execution_provider"),
        field("threads").map(|t| format!("{t} threads")),
    ]
    .into_iter()
    .flatten()
    .collect();
    Some(if details.is_empty() {
        device
    } else {
        format!("{device} ({})", details.join(", "))
    })
}

/// Why [`export_app_onnx`] failed.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The class names do not match the space's classes.
    #[error(
        "{given} class names are given, but the space '{space}' has {classes} classes; give one name per class"
    )]
    ClassNames {
        /// Names given.
        given: usize,
        /// Classes of the space.
        classes: usize,
        /// The space.
        space: String,
    },
    /// The ONNX writer refused the model (bad normalisation statistics, a
    /// tensor missing from the supernet, ...).
    #[error("cannot write the ONNX model of {arch}")]
    Onnx {
        /// The architecture, compact form.
        arch: String,
        /// The writer's error.
        #[source]
        source: OnnxError,
    },
}

/// The ONNX model of `arch` with the supernet's (recalibrated) weights, for
/// an application to use as it is:
///
/// - input `input`, `[batch, C, H, W]` float32 (NCHW), plain pixels in
///   `[0, 1]` (byte value / 255), `batch` a free (dynamic) axis;
/// - output `[batch, classes]` logits;
/// - the training normalisation `(x − mean) / std` applied inside the
///   graph by explicit `Sub` and `Div` nodes before the stem, not folded
///   into the stem's weights: the stem zero-pads, a zero of the normalised
///   input is the raw value `mean`, so folding would be wrong on the
///   border (see [`tunas_shared::onnx::network_model_with`]);
/// - `metadata_props` as listed in [`metadata_keys`].
///
/// The nodes after the normalisation are those the latency table timed.
pub fn export_app_onnx(
    net: &Supernet,
    arch: &Architecture,
    meta: &ExportMetadata,
) -> Result<Vec<u8>, ExportError> {
    let space = &net.space;
    let (c, h, w, classes) = (
        space.input.channels,
        space.input.height,
        space.input.width,
        space.input.classes as usize,
    );
    let class_names = match &meta.class_names {
        Some(names) if names.len() != classes => {
            return Err(ExportError::ClassNames {
                given: names.len(),
                classes,
                space: space.name.clone(),
            });
        }
        Some(names) => names.clone(),
        None => (0..classes).map(|i| i.to_string()).collect(),
    };
    fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
        serde_json::to_string(v).expect("lists of strings and floats always serialise")
    }
    let mut metadata: Vec<(&str, String)> = vec![
        (metadata_keys::CLASS_NAMES, json(&class_names)),
        (metadata_keys::INPUT_LAYOUT, "NCHW".to_string()),
        (
            metadata_keys::INPUT_SHAPE,
            format!("[{}, {c}, {h}, {w}]", tunas_shared::onnx::BATCH_DIM_NAME),
        ),
        (metadata_keys::INPUT_RANGE, INPUT_RANGE.to_string()),
        (
            metadata_keys::NORMALIZATION,
            "(x - mean) / std per channel, inside the graph (nodes normalize/sub, normalize/div); \
             do not normalise the input again"
                .to_string(),
        ),
        (metadata_keys::NORMALIZATION_MEAN, json(&meta.mean)),
        (metadata_keys::NORMALIZATION_STD, json(&meta.std)),
        (metadata_keys::SPACE, space.name.clone()),
        (metadata_keys::SPACE_HASH, space.content_hash()),
        (metadata_keys::ARCHITECTURE, arch.to_compact()),
    ];
    if let Some(ms) = meta.est_latency_ms {
        metadata.push((metadata_keys::EST_LATENCY_MS, format!("{ms:.4}")));
    }
    if let Some(device) = &meta.latency_device {
        metadata.push((metadata_keys::LATENCY_DEVICE, device.clone()));
    }
    let options = NetworkOptions {
        batch: BatchDim::Dynamic,
        normalization: Some(InputNormalization {
            mean: meta.mean.clone(),
            std: meta.std.clone(),
        }),
        metadata: metadata
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        description: Some(format!(
            "{} {} searched by tunas-rs. Input: float32 NCHW [batch, {c}, {h}, {w}], \
             plain pixels in [0, 1] (byte / 255); the training normalisation is \
             applied inside the graph. Output: [batch, {classes}] logits. \
             metadata_props name the classes.",
            space.name,
            arch.to_compact()
        )),
    };
    let mut weights = TrainedWeights::new(net);
    network_model_with(space, arch, &mut weights, &options).map_err(|source| ExportError::Onnx {
        arch: arch.to_compact(),
        source,
    })
}

/// What [`export_searched`] produced: the app-ready model and what it
/// scored.
#[derive(Clone, Debug)]
pub struct ExportedModel {
    /// The ONNX model's bytes.
    pub onnx: Vec<u8>,
    /// Test accuracy of the exported weights (shared weights, BN
    /// recalibrated for the architecture).
    pub test_accuracy: f64,
    /// The normalisation inside the model.
    pub maker: BatchMaker,
}

/// The whole of `export` after its inputs are read: BN recalibrated for
/// `arch` on `calibration_batches` training batches of 256, the test split
/// evaluated, and the app-ready model built with the run's metadata (and
/// `class_names` when they fit the space). `log` receives progress lines.
pub fn export_searched(
    net: &mut Supernet,
    arch: &Architecture,
    data: &crate::data::TrainTest,
    result: &SearchResult,
    class_names: Option<Vec<String>>,
    calibration_batches: usize,
    log: &dyn Fn(&str),
) -> Result<ExportedModel, ExportError> {
    let maker = BatchMaker::plain(&data.train);
    let mut metadata = ExportMetadata::new(&maker).with_search_result(result, arch);
    metadata.class_names = class_names.filter(|c| c.len() == net.space.input.classes as usize);
    log(&format!(
        "export: recalibrating BN on {calibration_batches} training batches of 256"
    ));
    recalibrate_bn(net, arch, &data.train, &maker, calibration_batches, 256);
    log(&format!(
        "export: evaluating on {} test images",
        data.test.len()
    ));
    let plan = PathPlan::single(arch.clone());
    let accuracy = crate::train::evaluate_dataset(net, &plan, &data.test, &maker, 500);
    let onnx = export_app_onnx(net, arch, &metadata)?;
    Ok(ExportedModel {
        onnx,
        test_accuracy: f64::from(accuracy),
        maker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunas_shared::builtin_space;

    #[test]
    fn the_table_device_reads_the_provenance_lines() {
        let lines: Vec<String> = [
            "tunas-rs latency table v1",
            "device = adb:R58M",
            "cpu = Snapdragon 865",
            "runtime = onnxruntime",
            "runtime_version = 1.31.1",
            "execution_provider = xnnpack",
            "threads = 4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            table_device(&lines).as_deref(),
            Some("adb:R58M (Snapdragon 865, onnxruntime 1.31.1, xnnpack, 4 threads)")
        );
        assert_eq!(
            table_device(&["device = local".to_string()]).as_deref(),
            Some("local")
        );
        assert_eq!(table_device(&[]), None);
    }

    #[test]
    fn class_names_must_match_the_classes() {
        let space = builtin_space("tiny28").unwrap();
        let net = Supernet::new(&space, 0);
        let arch = Architecture::largest(&space);
        let meta = ExportMetadata {
            mean: vec![0.5],
            std: vec![0.25],
            class_names: Some(vec!["shirt".into(), "boot".into()]),
            est_latency_ms: None,
            latency_device: None,
        };
        let err = export_app_onnx(&net, &arch, &meta).unwrap_err();
        assert!(
            matches!(
                err,
                ExportError::ClassNames {
                    given: 2,
                    classes: 10,
                    ..
                }
            ),
            "{err}"
        );
        let bad_std = ExportMetadata {
            std: vec![-1.0],
            class_names: None,
            ..meta
        };
        let err = export_app_onnx(&net, &arch, &bad_std).unwrap_err();
        let cause = std::error::Error::source(&err).expect("the writer's error is kept");
        assert!(cause.to_string().contains("above 0"), "{cause}");
    }
}
