//! Op emitters and the models built from them: one op, a chain of ops, a
//! whole network.
//!
//! [`emit_op`] is the only place that knows what nodes an op is made of; the
//! model functions only declare the input, chain emitters and declare the
//! output. Node and value names are `{scope}/{part}` (for example
//! `stage2/layer1/dw_act`), initializers `{scope}/{tensor}` (for example
//! `stage2/layer1/dw.weight`), so per-node runtime profiles can be
//! attributed to ops by their scope prefix.

use super::builder::{ConvParams, Dim, GraphBuilder, encode, model};
use super::proto::{ModelProto, StringStringEntryProto};
use super::{OnnxError, WeightRequest, WeightSource};
use crate::arch::Architecture;
use crate::opkey::{OpKey, OpKind, architecture_ops};
use crate::space::{Activation, SearchSpace};

/// Name of the graph input of every model.
pub const INPUT_NAME: &str = "input";

/// An op and where it sits in a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpSite {
    /// Scope: prefix of the op's node, value and weight names (see
    /// [`WeightRequest::scope`]).
    pub scope: String,
    /// The op.
    pub key: OpKey,
}

/// Input shape (NCHW) of an op.
pub fn input_dims(key: &OpKey) -> [i64; 4] {
    [
        key.batch as i64,
        key.cin as i64,
        key.in_h as i64,
        key.in_w as i64,
    ]
}

/// Output shape of an op: NCHW, or `[batch, classes]` for the classifier.
pub fn output_dims(key: &OpKey) -> Vec<i64> {
    let (oh, ow) = key.out_hw();
    match key.op {
        OpKind::Classifier => vec![key.batch as i64, key.cout as i64],
        _ => vec![key.batch as i64, key.cout as i64, oh as i64, ow as i64],
    }
}

fn dims_text(dims: &[i64]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Checks that a key describes an op the emitters can build.
pub fn check_key(key: &OpKey) -> Result<(), OnnxError> {
    let invalid = |what: &str| {
        Err(OnnxError::InvalidKey {
            key: key.to_string(),
            what: what.to_string(),
        })
    };
    if [
        key.in_h, key.in_w, key.cin, key.cout, key.mid, key.kernel, key.stride, key.batch,
    ]
    .contains(&0)
    {
        return invalid("sizes, kernel, stride and batch must all be at least 1");
    }
    if key.kernel.is_multiple_of(2) {
        return invalid("the kernel size must be odd for symmetric \"same\" padding");
    }
    if key.se && key.op != OpKind::Bottleneck {
        return invalid("only a bottleneck has squeeze-excite");
    }
    match key.op {
        OpKind::Stem | OpKind::Bottleneck => {}
        OpKind::Separable => {
            if key.mid != key.cin {
                return invalid("a separable conv has mid = cin");
            }
        }
        OpKind::HeadConv => {
            if key.kernel != 1 || key.stride != 1 {
                return invalid("the head conv is 1x1 with stride 1");
            }
        }
        OpKind::HeadFc | OpKind::Classifier => {
            if key.kernel != 1 || key.stride != 1 || key.in_h != 1 || key.in_w != 1 {
                return invalid("head_fc and classifier take 1x1 inputs with kernel 1, stride 1");
            }
        }
    }
    if key.residual {
        if !matches!(key.op, OpKind::Separable | OpKind::Bottleneck) {
            return invalid("only separable and bottleneck ops can be residual");
        }
        if key.cin != key.cout || key.stride != 1 {
            return invalid("a residual op needs cin = cout and stride 1");
        }
    }
    Ok(())
}

/// Emits the nodes and initializers of one op reading value `input`;
/// returns the name of its output value. This function is used for every
/// model: one-op, chain and network.
///
/// # Shapes
/// `input` is `[batch, cin, in_h, in_w]`; the output is [`output_dims`].
pub fn emit_op(
    graph: &mut GraphBuilder,
    scope: &str,
    key: &OpKey,
    input: &str,
    weights: &mut dyn WeightSource,
) -> Result<String, OnnxError> {
    check_key(key)?;
    let mut e = Emitter {
        g: graph,
        scope,
        key,
        weights,
    };
    let relu_gain = 2f32.sqrt();
    let (cin, cout, mid) = (key.cin as usize, key.cout as usize, key.mid as usize);
    // The last conv of a residual branch starts small so that activations
    // stay of similar size through a deep stack of residual adds.
    let branch_gain = if key.residual { 0.5 } else { 1.0 };
    let full = |kernel: u32, stride: u32| ConvParams {
        kernel,
        stride,
        group: 1,
    };
    let out = match key.op {
        OpKind::Stem => {
            let conv = e.conv(
                "conv",
                input,
                cout,
                cin,
                full(key.kernel, key.stride),
                relu_gain,
            )?;
            e.act("act", &conv)
        }
        OpKind::Separable => {
            let dw_params = ConvParams {
                kernel: key.kernel,
                stride: key.stride,
                group: key.cin,
            };
            let dw = e.conv("dw", input, cin, 1, dw_params, relu_gain)?;
            let dw = e.act("dw_act", &dw);
            let pw = e.conv("pw", &dw, cout, cin, full(1, 1), branch_gain)?;
            e.residual(input, &pw)
        }
        OpKind::Bottleneck => {
            let ex = e.conv("expand", input, mid, cin, full(1, 1), relu_gain)?;
            let ex = e.act("expand_act", &ex);
            let dw_params = ConvParams {
                kernel: key.kernel,
                stride: key.stride,
                group: key.mid,
            };
            let dw = e.conv("dw", &ex, mid, 1, dw_params, relu_gain)?;
            let mut x = e.act("dw_act", &dw);
            if key.se {
                let s = key.se_width() as usize;
                let pool = e.name("se_pool");
                e.g.unary("GlobalAveragePool", &pool, &x);
                let red = e.conv("se.reduce", &pool, s, mid, full(1, 1), relu_gain)?;
                let relu = e.name("se_relu");
                e.g.unary("Relu", &relu, &red);
                let exp = e.conv("se.expand", &relu, mid, s, full(1, 1), 1.0)?;
                let gate = e.name("se_gate");
                e.g.unary("Sigmoid", &gate, &exp);
                let scaled = e.name("se_mul");
                x = e.g.mul(&scaled, &x, &gate);
            }
            let pr = e.conv("project", &x, cout, mid, full(1, 1), branch_gain)?;
            e.residual(input, &pr)
        }
        OpKind::HeadConv => {
            let conv = e.conv("conv", input, cout, cin, full(1, 1), relu_gain)?;
            let act = e.act("act", &conv);
            let pool = e.name("pool");
            e.g.unary("GlobalAveragePool", &pool, &act)
        }
        OpKind::HeadFc => {
            let conv = e.conv("conv", input, cout, cin, full(1, 1), relu_gain)?;
            e.act("act", &conv)
        }
        OpKind::Classifier => {
            let flat = e.name("flatten");
            e.g.flatten(&flat, input, 1);
            let w = e.weight("fc.weight", &[cout, cin], cin, 1.0)?;
            let b = e.weight("fc.bias", &[cout], 0, 0.0)?;
            let fc = e.name("fc");
            e.g.gemm(&fc, &flat, &w, &b)
        }
    };
    Ok(out)
}

/// Emits the parts of one op; holds what every part needs.
struct Emitter<'g, 'w> {
    g: &'g mut GraphBuilder,
    scope: &'g str,
    key: &'g OpKey,
    weights: &'w mut dyn WeightSource,
}

impl Emitter<'_, '_> {
    fn name(&self, part: &str) -> String {
        format!("{}/{part}", self.scope)
    }

    /// Asks the source for a tensor, checks its size, adds it as an
    /// initializer; returns the initializer name.
    fn weight(
        &mut self,
        tensor: &str,
        shape: &[usize],
        fan_in: usize,
        gain: f32,
    ) -> Result<String, OnnxError> {
        let request = WeightRequest {
            scope: self.scope,
            key: self.key,
            tensor,
            shape,
            fan_in,
            gain,
        };
        let values = self
            .weights
            .tensor(&request)
            .map_err(|message| OnnxError::Weights {
                scope: self.scope.to_string(),
                tensor: tensor.to_string(),
                message,
            })?;
        if values.len() != request.len() {
            return Err(OnnxError::WeightShape {
                scope: self.scope.to_string(),
                tensor: tensor.to_string(),
                shape: shape.to_vec(),
                expected: request.len(),
                found: values.len(),
            });
        }
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        Ok(self.g.initializer(&self.name(tensor), &dims, &values))
    }

    /// A conv with folded-BN weight `{part}.weight` `[cout, cin/group, k, k]`
    /// and bias `{part}.bias` `[cout]`; the output value is `{scope}/{part}`
    /// with dots in `part` turned into underscores.
    fn conv(
        &mut self,
        part: &str,
        x: &str,
        cout: usize,
        cin_per_group: usize,
        params: ConvParams,
        gain: f32,
    ) -> Result<String, OnnxError> {
        let k = params.kernel as usize;
        let fan_in = cin_per_group * k * k;
        let w = self.weight(
            &format!("{part}.weight"),
            &[cout, cin_per_group, k, k],
            fan_in,
            gain,
        )?;
        let b = self.weight(&format!("{part}.bias"), &[cout], 0, 0.0)?;
        let out = self.name(&part.replace('.', "_"));
        Ok(self.g.conv(&out, x, &w, Some(&b), params))
    }

    /// The key's activation.
    fn act(&mut self, part: &str, x: &str) -> String {
        let op = match self.key.act {
            Activation::Relu => "Relu",
            Activation::Swish6 => "HardSwish",
        };
        let out = self.name(part);
        self.g.unary(op, &out, x)
    }

    /// Adds the op's input when the key is residual.
    fn residual(&mut self, input: &str, branch: &str) -> String {
        if self.key.residual {
            let out = self.name("add");
            self.g.add(&out, input, branch)
        } else {
            branch.to_string()
        }
    }
}

/// Checks that `sites` form a chain: each op's output shape is the next
/// op's input shape, and only the last op may be the classifier.
pub fn check_chain(sites: &[OpSite]) -> Result<(), OnnxError> {
    if sites.is_empty() {
        return Err(OnnxError::EmptyChain);
    }
    for site in sites {
        check_key(&site.key)?;
    }
    for (i, pair) in sites.windows(2).enumerate() {
        let (a, b) = (&pair[0].key, &pair[1].key);
        let produces = output_dims(a);
        let expects = input_dims(b);
        if produces != expects {
            return Err(OnnxError::BrokenChain {
                index: i,
                next_index: i + 1,
                previous: a.to_string(),
                next: b.to_string(),
                produces: dims_text(&produces),
                expects: dims_text(&expects),
            });
        }
    }
    Ok(())
}

/// The model of a chain of ops, as a message.
pub fn chain_model_proto(
    name: &str,
    sites: &[OpSite],
    weights: &mut dyn WeightSource,
) -> Result<ModelProto, OnnxError> {
    check_chain(sites)?;
    let mut g = GraphBuilder::new(name);
    let first = &sites[0].key;
    let mut x = g.input(INPUT_NAME, &input_dims(first));
    for site in sites {
        x = emit_op(&mut g, &site.scope, &site.key, &x, weights)?;
    }
    let last = &sites[sites.len() - 1].key;
    g.output(&x, &output_dims(last));
    let doc = sites
        .iter()
        .map(|s| format!("{}: {}", s.scope, s.key))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(model(g.finish(), &doc))
}

/// The serialised model of a chain of ops. One graph input called
/// [`INPUT_NAME`] of the first op's [`input_dims`], one output of the last
/// op's [`output_dims`].
pub fn chain_model(
    name: &str,
    sites: &[OpSite],
    weights: &mut dyn WeightSource,
) -> Result<Vec<u8>, OnnxError> {
    chain_model_proto(name, sites, weights).map(|m| encode(&m))
}

/// A one-op model (scope `op`).
pub fn op_model(key: &OpKey, weights: &mut dyn WeightSource) -> Result<Vec<u8>, OnnxError> {
    let site = OpSite {
        scope: "op".to_string(),
        key: *key,
    };
    chain_model(&key.to_string(), &[site], weights)
}

/// A "context" model: ops that chain (each key's output shape is the next
/// key's input), scoped `op0`, `op1`, ... Timing an op inside such a chain
/// lets the runtime fuse across op boundaries as it does in a network.
pub fn context_model(keys: &[OpKey], weights: &mut dyn WeightSource) -> Result<Vec<u8>, OnnxError> {
    let sites: Vec<OpSite> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| OpSite {
            scope: format!("op{i}"),
            key: *key,
        })
        .collect();
    chain_model("context", &sites, weights)
}

/// The ops of an architecture with their network scopes: `stem`,
/// `stage{s}/layer{l}` for every layer that is not skipped, `head`,
/// `head_fc` (when the space has a post-pool conv), `classifier`.
pub fn network_sites(space: &SearchSpace, arch: &Architecture, batch: u32) -> Vec<OpSite> {
    let net = arch.resolve(space);
    let mut scopes = vec!["stem".to_string()];
    for l in net.layers.iter().filter(|l| !l.skipped) {
        scopes.push(format!(
            "stage{}/layer{}",
            l.position.stage + 1,
            l.position.layer + 1
        ));
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
    pub fn check(&self, channels: usize) -> Result<(), OnnxError> {
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

/// The whole network of an architecture as [`network_model`] builds it, with
/// the batch axis, input normalisation and metadata of `options`.
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
pub fn network_model_proto_with(
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

/// [`network_model_proto_with`], serialised.
pub fn network_model_with(
    space: &SearchSpace,
    arch: &Architecture,
    weights: &mut dyn WeightSource,
    options: &NetworkOptions,
) -> Result<Vec<u8>, OnnxError> {
    network_model_proto_with(space, arch, weights, options).map(|m| encode(&m))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use prost::Message;

    use super::*;
    use crate::builtin::builtin_space;
    use crate::onnx::RandomWeights;
    use crate::onnx::proto::{AttributeType, DataType, TensorProto};
    use crate::opkey::space_op_keys;

    fn decode(bytes: &[u8]) -> ModelProto {
        ModelProto::decode(bytes).expect("the writer produces valid protobuf")
    }

    fn dims_of(v: &crate::onnx::proto::ValueInfoProto) -> Vec<i64> {
        v.r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .and_then(|t| t.shape.as_ref())
            .map(|s| s.dim.iter().map(|d| d.dim_value.unwrap()).collect())
            .unwrap()
    }

    /// Every node input is a graph input, an initializer or an earlier
    /// node's output; names are unique.
    fn check_topology(m: &ModelProto) {
        let g = m.graph.as_ref().unwrap();
        let mut known: BTreeSet<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
        for t in &g.initializer {
            assert!(known.insert(&t.name), "duplicate name {}", t.name);
        }
        for n in &g.node {
            for i in &n.input {
                assert!(
                    known.contains(i.as_str()),
                    "node {} reads unknown {i}",
                    n.name
                );
            }
            for o in &n.output {
                assert!(known.insert(o), "value {o} defined twice");
            }
        }
        for o in &g.output {
            assert!(
                known.contains(o.name.as_str()),
                "output {} undefined",
                o.name
            );
        }
    }

    fn op_types(m: &ModelProto) -> Vec<&str> {
        m.graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .map(|n| n.op_type.as_str())
            .collect()
    }

    fn initializers(m: &ModelProto) -> BTreeMap<&str, &TensorProto> {
        m.graph
            .as_ref()
            .unwrap()
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect()
    }

    fn bottleneck(se: bool, residual: bool, act: Activation) -> OpKey {
        OpKey {
            op: OpKind::Bottleneck,
            in_h: 14,
            in_w: 14,
            cin: 24,
            cout: 24,
            mid: 144,
            kernel: 5,
            stride: 1,
            se,
            act,
            residual,
            batch: 2,
        }
    }

    #[test]
    fn bottleneck_with_se_and_residual_has_the_documented_nodes() {
        let key = bottleneck(true, true, Activation::Swish6);
        let m = decode(&op_model(&key, &mut RandomWeights::new(0)).unwrap());
        assert_eq!(m.ir_version, 8);
        assert_eq!(m.opset_import[0].version, 17);
        check_topology(&m);
        assert_eq!(
            op_types(&m),
            [
                "Conv",
                "HardSwish",
                "Conv",
                "HardSwish",
                "GlobalAveragePool",
                "Conv",
                "Relu",
                "Conv",
                "Sigmoid",
                "Mul",
                "Conv",
                "Add"
            ]
        );
        let g = m.graph.as_ref().unwrap();
        assert_eq!(dims_of(&g.input[0]), [2, 24, 14, 14]);
        assert_eq!(dims_of(&g.output[0]), [2, 24, 14, 14]);
        let inits = initializers(&m);
        let s = key.se_width() as i64;
        assert_eq!(s, 40);
        for (name, dims) in [
            ("op/expand.weight", vec![144, 24, 1, 1]),
            ("op/expand.bias", vec![144]),
            ("op/dw.weight", vec![144, 1, 5, 5]),
            ("op/se.reduce.weight", vec![s, 144, 1, 1]),
            ("op/se.reduce.bias", vec![s]),
            ("op/se.expand.weight", vec![144, s, 1, 1]),
            ("op/project.weight", vec![24, 144, 1, 1]),
            ("op/project.bias", vec![24]),
        ] {
            let t = inits.get(name).unwrap_or_else(|| panic!("missing {name}"));
            assert_eq!(t.dims, dims, "{name}");
            assert_eq!(t.data_type, DataType::Float as i32);
            assert_eq!(t.raw_data.len() as i64, dims.iter().product::<i64>() * 4);
        }
        let dw = &g.node[2];
        assert_eq!(dw.name, "op/dw");
        let attr = |n: &str| dw.attribute.iter().find(|a| a.name == n).unwrap();
        assert_eq!(attr("group").i, Some(144));
        assert_eq!(attr("group").r#type, AttributeType::Int as i32);
        assert_eq!(attr("kernel_shape").ints, [5, 5]);
        assert_eq!(attr("pads").ints, [2, 2, 2, 2]);
        assert_eq!(attr("strides").ints, [1, 1]);
    }

    #[test]
    fn plain_bottleneck_and_separable() {
        let key = bottleneck(false, false, Activation::Relu);
        let m = decode(&op_model(&key, &mut RandomWeights::new(0)).unwrap());
        assert_eq!(op_types(&m), ["Conv", "Relu", "Conv", "Relu", "Conv"]);
        let sep = OpKey {
            op: OpKind::Separable,
            mid: 24,
            kernel: 7,
            stride: 2,
            cout: 16,
            ..key
        };
        let m = decode(&op_model(&sep, &mut RandomWeights::new(0)).unwrap());
        check_topology(&m);
        assert_eq!(op_types(&m), ["Conv", "Relu", "Conv"]);
        let g = m.graph.as_ref().unwrap();
        assert_eq!(dims_of(&g.output[0]), [2, 16, 7, 7]);
    }

    #[test]
    fn invalid_keys_are_refused_with_the_key_in_the_message() {
        let mut bad = bottleneck(false, true, Activation::Relu);
        bad.stride = 2;
        let err = op_model(&bad, &mut RandomWeights::new(0)).unwrap_err();
        assert!(err.to_string().contains("cin = cout and stride 1"), "{err}");
        assert!(err.to_string().contains(&bad.to_string()), "{err}");
        let mut even = bottleneck(false, false, Activation::Relu);
        even.kernel = 4;
        assert!(op_model(&even, &mut RandomWeights::new(0)).is_err());
    }

    #[test]
    fn broken_chains_name_both_ops() {
        let a = bottleneck(false, false, Activation::Relu);
        let mut b = a;
        b.cin = 32;
        let err = context_model(&[a, b], &mut RandomWeights::new(0)).unwrap_err();
        match &err {
            OnnxError::BrokenChain {
                produces, expects, ..
            } => {
                assert_eq!(produces, "2x24x14x14");
                assert_eq!(expects, "2x32x14x14");
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(
            context_model(&[], &mut RandomWeights::new(0)).unwrap_err(),
            OnnxError::EmptyChain
        );
    }

    struct Short;
    impl WeightSource for Short {
        fn tensor(&mut self, r: &WeightRequest<'_>) -> Result<Vec<f32>, String> {
            if r.tensor == "dw.bias" {
                return Err("not trained".into());
            }
            Ok(vec![0.0; r.len()])
        }
    }

    #[test]
    fn weight_source_errors_name_scope_and_tensor() {
        let key = bottleneck(false, false, Activation::Relu);
        let err = op_model(&key, &mut Short).unwrap_err();
        assert_eq!(err.to_string(), "weights for op/dw.bias: not trained");
        let sep = OpKey {
            op: OpKind::Separable,
            mid: 24,
            ..key
        };
        struct NoBiasFail;
        impl WeightSource for NoBiasFail {
            fn tensor(&mut self, r: &WeightRequest<'_>) -> Result<Vec<f32>, String> {
                Ok(vec![0.0; r.len() - usize::from(r.tensor == "pw.weight")])
            }
        }
        let err = op_model(&sep, &mut NoBiasFail).unwrap_err();
        assert!(matches!(
            err,
            OnnxError::WeightShape {
                expected: 576,
                found: 575,
                ..
            }
        ));
    }

    #[test]
    fn every_op_of_every_builtin_space_builds() {
        for name in crate::builtin::BUILTIN_SPACES {
            let space = builtin_space(name).unwrap();
            let keys = space_op_keys(&space, 1);
            // The big spaces have thousands of keys; a stride through them
            // still covers every kind, kernel, SE and residual variant.
            let stride = (keys.len() / 200).max(1);
            for key in keys.into_iter().step_by(stride) {
                let m = decode(&op_model(&key, &mut RandomWeights::new(1)).unwrap());
                check_topology(&m);
                let g = m.graph.as_ref().unwrap();
                assert_eq!(dims_of(&g.output[0]), output_dims(&key), "{key}");
            }
        }
    }

    #[test]
    fn networks_chain_the_same_emitters() {
        for name in crate::builtin::BUILTIN_SPACES {
            let space = builtin_space(name).unwrap();
            let arch = Architecture::largest(&space);
            let sites = network_sites(&space, &arch, 3);
            let m = decode(&network_model(&space, &arch, &mut RandomWeights::new(5), 3).unwrap());
            check_topology(&m);
            let g = m.graph.as_ref().unwrap();
            assert_eq!(
                dims_of(&g.input[0]),
                [
                    3,
                    space.input.channels as i64,
                    space.input.height as i64,
                    space.input.width as i64
                ]
            );
            assert_eq!(dims_of(&g.output[0]), [3, space.input.classes as i64]);
            // The network's nodes are exactly the one-op models' nodes, scope
            // by scope.
            let mut expected = GraphBuilder::new("expected");
            let mut x = expected.input(INPUT_NAME, &input_dims(&sites[0].key));
            for s in &sites {
                x = emit_op(
                    &mut expected,
                    &s.scope,
                    &s.key,
                    &x,
                    &mut RandomWeights::new(5),
                )
                .unwrap();
            }
            let expected = expected.finish();
            assert_eq!(g.node, expected.node, "{name}");
            assert_eq!(g.initializer, expected.initializer, "{name}");
            // Same weights as the one-op model of the same scope.
            let first =
                decode(&chain_model("one", &sites[..1], &mut RandomWeights::new(5)).unwrap());
            assert_eq!(
                first.graph.unwrap().initializer[0],
                g.initializer[0],
                "{name}"
            );
        }
    }

    #[test]
    fn fixed_options_write_the_profilers_network_byte_for_byte() {
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let plain = network_model(&space, &arch, &mut RandomWeights::new(2), 3).unwrap();
        let with = network_model_with(
            &space,
            &arch,
            &mut RandomWeights::new(2),
            &NetworkOptions::fixed(3),
        )
        .unwrap();
        assert_eq!(plain, with);
    }

    fn app_options() -> NetworkOptions {
        NetworkOptions {
            batch: BatchDim::Dynamic,
            normalization: Some(InputNormalization {
                mean: vec![0.25],
                std: vec![0.5],
            }),
            metadata: vec![
                ("input_layout".into(), "NCHW".into()),
                ("class_names".into(), "[\"a\"]".into()),
            ],
            description: Some("plain pixels".into()),
        }
    }

    #[test]
    fn app_networks_normalise_first_and_have_a_symbolic_batch() {
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let m = decode(
            &network_model_with(&space, &arch, &mut RandomWeights::new(2), &app_options()).unwrap(),
        );
        check_topology(&m);
        let g = m.graph.as_ref().unwrap();
        let axes = |v: &crate::onnx::proto::ValueInfoProto| {
            v.r#type
                .as_ref()
                .and_then(|t| t.tensor_type.as_ref())
                .and_then(|t| t.shape.as_ref())
                .unwrap()
                .dim
                .iter()
                .map(|d| match (&d.dim_param, d.dim_value) {
                    (Some(p), None) => p.clone(),
                    (None, Some(v)) => v.to_string(),
                    other => panic!("a dimension is a value or a name, got {other:?}"),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(axes(&g.input[0]), ["batch", "1", "28", "28"]);
        assert_eq!(axes(&g.output[0]), ["batch", "10"]);
        assert_eq!(op_types(&m)[..3], ["Sub", "Div", "Conv"]);
        assert_eq!(g.node[0].input, [INPUT_NAME, "normalize/mean"]);
        assert_eq!(g.node[2].input[0], "normalize/div");
        let inits = initializers(&m);
        assert_eq!(inits["normalize/std"].dims, [1, 1, 1, 1]);
        assert_eq!(inits["normalize/std"].raw_data, 0.5f32.to_le_bytes());
        let props: Vec<(&str, &str)> = m
            .metadata_props
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            props,
            [("input_layout", "NCHW"), ("class_names", "[\"a\"]")]
        );
        assert!(
            m.doc_string.starts_with("plain pixels\nstem: "),
            "{}",
            m.doc_string
        );
        // Past the normalisation, the nodes are the profiler's network's.
        let plain = decode(&network_model(&space, &arch, &mut RandomWeights::new(2), 1).unwrap());
        let plain_nodes = &plain.graph.as_ref().unwrap().node;
        assert_eq!(g.node.len(), plain_nodes.len() + 2);
        assert_eq!(g.node[3..], plain_nodes[1..]);
    }

    #[test]
    fn bad_normalisation_and_repeated_metadata_keys_are_refused() {
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let build = |o: &NetworkOptions| {
            network_model_with(&space, &arch, &mut RandomWeights::new(2), o).unwrap_err()
        };
        let mut o = app_options();
        o.normalization.as_mut().unwrap().std = vec![0.0];
        let err = build(&o);
        assert!(
            matches!(err, OnnxError::InvalidNormalization { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("above 0"), "{err}");
        let mut o = app_options();
        o.normalization.as_mut().unwrap().mean = vec![0.1, 0.2, 0.3];
        let err = build(&o);
        assert!(err.to_string().contains("1 channels, but 3 means"), "{err}");
        let mut o = app_options();
        o.metadata.push(("input_layout".into(), "NHWC".into()));
        assert_eq!(
            build(&o),
            OnnxError::DuplicateMetadataKey {
                key: "input_layout".into()
            }
        );
        let mut o = app_options();
        o.batch = BatchDim::Fixed(0);
        assert!(build(&o).to_string().contains("at least 1"));
    }

    #[test]
    fn network_scopes_follow_decision_names() {
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let scopes: Vec<String> = network_sites(&space, &arch, 1)
            .into_iter()
            .map(|s| s.scope)
            .collect();
        assert_eq!(scopes[0], "stem");
        assert_eq!(scopes[1], "stage1/layer1");
        assert_eq!(scopes[2], "stage1/layer2");
        assert_eq!(scopes.last().unwrap(), "classifier");
        assert_eq!(scopes[scopes.len() - 2], "head");
        for s in &scopes[1..scopes.len() - 2] {
            let prefix = format!("{s}/kernel");
            assert!(
                space.decisions.iter().any(|d| d.name == prefix),
                "no decision {prefix}"
            );
        }
    }

    #[test]
    fn context_models_chain_ops_of_a_network() {
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let keys: Vec<OpKey> = network_sites(&space, &arch, 1)
            .into_iter()
            .map(|s| s.key)
            .collect();
        let m = decode(&context_model(&keys[1..4], &mut RandomWeights::new(0)).unwrap());
        check_topology(&m);
        let g = m.graph.unwrap();
        assert!(g.node[0].name.starts_with("op0/"));
        assert!(g.node.last().unwrap().name.starts_with("op2/"));
    }
}
