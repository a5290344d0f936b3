//! Models of a chain of ops: one op, a few ops that chain ("context"
//! models), and the list of sites every model is built from.

use super::emit::{check_key, emit_op, input_dims, output_dims};
use crate::onnx::builder::{GraphBuilder, encode, model};
use crate::onnx::proto::ModelProto;
use crate::onnx::{OnnxError, WeightSource};
use crate::opkey::OpKey;

/// Name of the graph input of every model.
pub(crate) const INPUT_NAME: &str = "input";

/// An op and where it sits in a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpSite {
    /// Scope: prefix of the op's node, value and weight names (see
    /// [`WeightRequest::scope`](crate::onnx::WeightRequest::scope)).
    pub scope: String,
    /// The op.
    pub key: OpKey,
}

fn dims_text(dims: &[i64]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Checks that `sites` form a chain: each op's output shape is the next
/// op's input shape, and only the last op may be the classifier.
pub(crate) fn check_chain(sites: &[OpSite]) -> Result<(), OnnxError> {
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
pub(crate) fn chain_model_proto(
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
pub(crate) fn chain_model(
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
