//! The whole network of an architecture: the profiler's model, and the
//! one an application uses as it is (batch axis, input normalisation,
//! metadata).

use super::chain::{INPUT_NAME, OpSite, chain_model, check_chain};
use super::emit::emit_op;
use crate::arch::Architecture;
use crate::onnx::builder::{Dim, GraphBuilder, encode, model};
use crate::onnx::proto::{ModelProto, StringStringEntryProto};
use crate::onnx::{OnnxError, WeightSource};
use crate::opkey::{OpKind, architecture_ops};
use crate::space::SearchSpace;

/// The network scope of the layer at `pos`: `stage{s}/layer{l}`, counted
/// from 1. The searcher names a layer's weights by it, so an exported
/// network finds them (the one home of the format).
pub fn layer_scope(pos: crate::space::LayerPosition) -> String {
    format!("stage{}/layer{}", pos.stage + 1, pos.layer + 1)
}

/// The ops of an architecture with their network scopes: `stem`,
/// `stage{s}/layer{l}` for every layer that is not skipped, `head`,
/// `head_fc` (when the space has a post-pool conv), `classifier`.
pub fn network_sites(space: &SearchSpace, arch: &Architecture, batch: u32) -> Vec<OpSite> {
    let net = arch.resolve(space);
    let mut scopes = vec!["stem".to_string()];
    for l in net.layers.iter().filter(|l| !l.skipped) {
        scopes.push(layer_scope(l.position));
    }
    scopes.push("head".to_string());
    let keys = architecture_ops(space, arch, batch);
    if keys.iter().any(|k| k.op == OpKind::HeadFc) {
        scopes.push("head_fc".to_string());
    }
    scopes.push("classifier".to_string());
    assert_eq!(
        scopes.len(),
        keys.len(),
        "scopes {scopes:?} do not match the ops of the architecture"
    );
    scopes
        .into_iter()
        .zip(keys)
        .map(|(scope, key)| OpSite { scope, key })
        .collect()
}

/// The whole network of an architecture (stem, layers that are not skipped,
/// head, classifier): input `[batch, channels, height, width]`, output
/// logits `[batch, classes]`. The input is fed to the stem as it is (already
/// normalised); this is the model the profiler times, op for op the one-op
/// models' nodes. For a model an application can use as it is, see
/// [`network_model_with`].
pub fn network_model(
    space: &SearchSpace,
    arch: &Architecture,
    weights: &mut dyn WeightSource,
    batch: u32,
) -> Result<Vec<u8>, OnnxError> {
    let name = format!("{}-{}", space.name, arch.to_compact());
    chain_model(&name, &network_sites(space, arch, batch), weights)
}

/// Name of the symbolic batch axis of a model with [`BatchDim::Dynamic`].
pub const BATCH_DIM_NAME: &str = "batch";

/// The batch axis of a network's input and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchDim {
    /// A fixed batch size (at least 1).
    Fixed(u32),
    /// A symbolic axis named [`BATCH_DIM_NAME`]: the caller picks the batch
    /// at every run. The nodes are the same as with a fixed batch (none of
    /// them depends on it).
    Dynamic,
}

impl BatchDim {
    fn dim(self) -> Dim {
        match self {
            BatchDim::Fixed(n) => Dim::Fixed(i64::from(n)),
            BatchDim::Dynamic => Dim::Named(BATCH_DIM_NAME.to_string()),
        }
    }

    /// The batch written into the op keys (1 for a dynamic axis).
    fn key_batch(self) -> u32 {
        match self {
            BatchDim::Fixed(n) => n,
            BatchDim::Dynamic => 1,
        }
    }
}

/// Per-channel normalisation `(x − mean[c]) / std[c]` that a network was
/// trained with, applied inside the model so that it takes plain pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct InputNormalization {
    /// Per-channel mean, subtracted first.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation, divided by (finite, > 0).
    pub std: Vec<f32>,
}

impl InputNormalization {
    /// Checks the statistics against a network input of `channels` channels.
    pub(crate) fn check(&self, channels: usize) -> Result<(), OnnxError> {
        let invalid = |what: String| Err(OnnxError::InvalidNormalization { what });
        if self.mean.len() != channels || self.std.len() != channels {
            return invalid(format!(
                "the input has {channels} channels, but {} means and {} standard deviations are given",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return invalid(format!("mean {m} is not a finite number"));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return invalid(format!(
                "standard deviation {s} is not a finite number above 0"
            ));
        }
        Ok(())
    }
}

/// How [`network_model_with`] declares and prepares a network's input, and
/// what it writes beside the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkOptions {
    /// The batch axis of the input and the logits.
    pub batch: BatchDim,
    /// Input normalisation applied inside the model, before the stem; `None`
    /// feeds the input to the stem as it is.
    pub normalization: Option<InputNormalization>,
    /// `metadata_props` entries, in this order; keys must be unique.
    pub metadata: Vec<(String, String)>,
    /// Text put before the list of ops in the model's `doc_string`.
    pub description: Option<String>,
}

impl NetworkOptions {
    /// What [`network_model`] writes: a fixed batch, no normalisation, no
    /// metadata.
    pub fn fixed(batch: u32) -> Self {
        NetworkOptions {
            batch: BatchDim::Fixed(batch),
            normalization: None,
            metadata: Vec::new(),
            description: None,
        }
    }
}

/// Scope of the nodes and initializers that normalise the input.
const NORMALIZE_SCOPE: &str = "normalize";

/// The model [`network_model_with`] serialises.
pub(crate) fn network_model_proto_with(
    space: &SearchSpace,
    arch: &Architecture,
    weights: &mut dyn WeightSource,
    options: &NetworkOptions,
) -> Result<ModelProto, OnnxError> {
    let name = format!("{}-{}", space.name, arch.to_compact());
    if let BatchDim::Fixed(0) = options.batch {
        return Err(OnnxError::InvalidKey {
            key: name,
            what: "a fixed batch must be at least 1".to_string(),
        });
    }
    let sites = network_sites(space, arch, options.batch.key_batch());
    check_chain(&sites)?;
    let mut seen = std::collections::BTreeSet::new();
    for (key, _) in &options.metadata {
        if !seen.insert(key.as_str()) {
            return Err(OnnxError::DuplicateMetadataKey { key: key.clone() });
        }
    }
    let first = &sites[0].key;
    let batch = options.batch.dim();
    let mut g = GraphBuilder::new(&name);
    let mut x = g.input_dims(
        INPUT_NAME,
        &[
            batch.clone(),
            Dim::Fixed(i64::from(first.cin)),
            Dim::Fixed(i64::from(first.in_h)),
            Dim::Fixed(i64::from(first.in_w)),
        ],
    );
    if let Some(n) = &options.normalization {
        n.check(first.cin as usize)?;
        let c = i64::from(first.cin);
        let mean = g.initializer(&format!("{NORMALIZE_SCOPE}/mean"), &[1, c, 1, 1], &n.mean);
        let std = g.initializer(&format!("{NORMALIZE_SCOPE}/std"), &[1, c, 1, 1], &n.std);
        let centered = g.sub(&format!("{NORMALIZE_SCOPE}/sub"), &x, &mean);
        x = g.div(&format!("{NORMALIZE_SCOPE}/div"), &centered, &std);
    }
    for site in &sites {
        x = emit_op(&mut g, &site.scope, &site.key, &x, weights)?;
    }
    let last = &sites[sites.len() - 1].key;
    g.output_dims(&x, &[batch, Dim::Fixed(i64::from(last.cout))]);
    let mut doc: Vec<String> = options.description.iter().cloned().collect();
    doc.extend(sites.iter().map(|s| format!("{}: {}", s.scope, s.key)));
    let mut m = model(g.finish(), &doc.join("\n"));
    m.metadata_props = options
        .metadata
        .iter()
        .map(|(key, value)| StringStringEntryProto {
            key: key.clone(),
            value: value.clone(),
        })
        .collect();
    Ok(m)
}

/// The whole network of an architecture as [`network_model`] builds it, with
/// the batch axis, input normalisation and metadata of `options`, serialised.
///
/// # Input normalisation
///
/// With [`NetworkOptions::normalization`] the graph starts with two
/// element-wise nodes, `normalize/sub` (`x − mean`) and `normalize/div`
/// (`/ std`), whose constants are `[1, C, 1, 1]` initializers, and the stem
/// reads their output. The normalisation is deliberately *not* folded into
/// the stem's weights (`W' = W / std`, `b' = b − Σ W·mean/std`): the stem
/// pads its input with zeros, and a zero of the normalised input is the raw
/// value `mean`, so a folded stem would be exact only away from the border
/// unless a `Pad` node with value `mean` were added in front of it. The two
/// explicit nodes are exact everywhere (the same arithmetic, in the same
/// order, as the training pipeline), cost one pass over the input image
/// (negligible next to the stem), leave the stem's weights identical to the
/// one-op model the latency table timed, and show a reader of the graph
/// what the input is.
pub fn network_model_with(
    space: &SearchSpace,
    arch: &Architecture,
    weights: &mut dyn WeightSource,
    options: &NetworkOptions,
) -> Result<Vec<u8>, OnnxError> {
    network_model_proto_with(space, arch, weights, options).map(|m| encode(&m))
}
