//! # tunas-shared
//!
//! What the tunas profiler and searcher both need: search spaces and their
//! decisions, architectures, op keys, the latency-table schema, and the
//! latency / FLOPs / parameter estimators.
//!
//! ```
//! use tunas_shared::{Architecture, builtin_space, count_distinct_networks};
//!
//! let space = builtin_space("tiny28").unwrap();
//! assert_eq!(space.decisions.len(), 30);
//! let largest = Architecture::largest(&space);
//! let text = largest.to_compact();
//! assert_eq!(Architecture::parse(&space, &text).unwrap(), largest);
//! assert!((count_distinct_networks(&space) / 1.23e11 - 1.0).abs() < 0.01);
//! ```

pub mod arch;
pub mod builtin;
pub mod error;
pub mod onnx;
pub mod opkey;
pub mod output;
#[cfg(feature = "plot")]
pub mod plot;
pub mod progress;
pub mod rank;
pub mod space;
pub mod table;
pub mod time;

pub use arch::{Architecture, ResolvedLayer, ResolvedNetwork, count_distinct_networks};
pub use builtin::{BUILTIN_SPACES, builtin_space, builtin_spaces};
pub use error::{ArchError, OpKeyError, SpaceError, TableError};
pub use onnx::OnnxError;
pub use opkey::{
    OpKey, OpKind, architecture_flops, architecture_ops, architecture_params, space_op_keys,
};
pub use space::{Activation, Choice, Decision, DecisionKind, LayerOp, Param, SearchSpace};
pub use table::{LatencyTable, OpStats, Provenance, Statistic, write_atomic};

/// A short content digest (the first 8 bytes of SHA-256, as hex): how
/// spaces, tables and data files are recognised in run folders.
pub fn content_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The built-in space a table was made for, if its name and content hash
/// match one (a table of a user's TOML space needs that file).
pub fn builtin_space_of(table: &LatencyTable) -> Option<SearchSpace> {
    let space = builtin_space(&table.provenance.space).ok()?;
    (space.content_hash() == table.provenance.space_hash).then_some(space)
}

/// Loads a space by built-in name, or from a `.toml` file path.
pub fn load_space(name_or_path: &str) -> Result<SearchSpace, SpaceError> {
    let path = std::path::Path::new(name_or_path);
    if name_or_path.ends_with(".toml") || path.is_file() {
        return SearchSpace::from_toml_file(path);
    }
    builtin_space(name_or_path)
}
