//! `tunas-searcher estimate`: latency (from a table), FLOPs and parameters of
//! one architecture.

use serde::Serialize;
use tunas_shared::{
    Architecture, LatencyTable, SearchSpace, TableError, architecture_flops, architecture_params,
};

/// The cost of one architecture.
#[derive(Clone, Debug, Serialize)]
pub struct CostEstimate {
    /// Space name.
    pub(crate) space: String,
    /// Compact architecture text.
    pub(crate) arch: String,
    /// Estimated latency from the table, in milliseconds (absent without a table).
    pub(crate) latency_ms: Option<f64>,
    /// Multiply-adds per image.
    pub(crate) flops: u64,
    /// Trainable parameters.
    pub(crate) params: u64,
}

/// Estimates FLOPs, parameters and, given a table, latency; the table must
/// match the space and contain every op of the architecture.
pub fn estimate(
    space: &SearchSpace,
    table: Option<&LatencyTable>,
    arch: &Architecture,
) -> Result<CostEstimate, TableError> {
    let latency_ms = match table {
        Some(table) => {
            table.check_space(space)?;
            Some(table.estimate_us(space, arch)? / 1000.0)
        }
        None => None,
    };
    Ok(CostEstimate {
        space: space.name.clone(),
        arch: arch.to_compact(),
        latency_ms,
        flops: architecture_flops(space, arch),
        params: architecture_params(space, arch),
    })
}

/// Human-readable report: the numbers, then the architecture one layer per line.
pub fn estimate_text(space: &SearchSpace, arch: &Architecture, e: &CostEstimate) -> String {
    format!(
        "space       {}\narch        {}\nlatency     {}\nflops       {:.2} M multiply-adds\nparams      {:.3} M\n\n{}",
        e.space,
        e.arch,
        match e.latency_ms {
            Some(ms) => format!("{ms:.3} ms (estimated from the table)"),
            None => "not estimated (give --table FILE from `tunas-profiler profile`)".into(),
        },
        e.flops as f64 / 1e6,
        e.params as f64 / 1e6,
        arch.describe(space)
    )
}
