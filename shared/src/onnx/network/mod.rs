//! Op emitters and the models built from them: one op, a chain of ops, a
//! whole network.
//!
//! [`emit_op`] is the only place that knows what nodes an op is made of; the
//! model functions only declare the input, chain emitters and declare the
//! output. Node and value names are `{scope}/{part}` (for example
//! `stage2/layer1/dw_act`), initializers `{scope}/{tensor}` (for example
//! `stage2/layer1/dw.weight`), so per-node runtime profiles can be
//! attributed to ops by their scope prefix.

mod architecture;
mod chain;
mod emit;

pub use architecture::{
    BATCH_DIM_NAME, BatchDim, InputNormalization, NetworkOptions, layer_scope, network_model,
    network_model_with, network_sites,
};
pub use chain::{OpSite, context_model, op_model};
pub use emit::{emit_op, input_dims, output_dims};

#[cfg(test)]
use chain::{INPUT_NAME, chain_model};

#[cfg(test)]
mod tests;
