use std::collections::{BTreeMap, BTreeSet};

use prost::Message;

use super::*;
use crate::arch::Architecture;
use crate::builtin::builtin_space;
use crate::onnx::proto::{AttributeType, DataType, ModelProto, TensorProto};
use crate::onnx::{GraphBuilder, OnnxError, RandomWeights, WeightRequest, WeightSource};
use crate::opkey::space_op_keys;
use crate::opkey::{OpKey, OpKind};
use crate::space::Activation;

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
        let first = decode(&chain_model("one", &sites[..1], &mut RandomWeights::new(5)).unwrap());
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
