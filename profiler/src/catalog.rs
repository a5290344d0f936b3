//! What `tunas-profiler spaces` and `tunas-profiler ops` print: the built-in
//! spaces with their sizes, and the op keys a space needs.

use serde::Serialize;
use tunas_shared::opkey::KEY_COLUMNS;
use tunas_shared::{SearchSpace, builtin_spaces, count_distinct_networks, space_op_keys};

/// One line of the space listing.
#[derive(Clone, Debug, Serialize)]
pub struct SpaceSummary {
    /// Space name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Number of categorical decisions.
    pub decisions: usize,
    /// Number of op keys a latency table for it needs (batch 1).
    pub op_keys: usize,
    /// log10 of the number of distinct networks.
    pub log10_networks: f64,
    /// Content hash recorded in latency tables.
    pub hash: String,
}

impl SpaceSummary {
    /// Summarises one space.
    pub fn of(space: &SearchSpace) -> Self {
        SpaceSummary {
            name: space.name.clone(),
            description: space.description.clone(),
            decisions: space.decisions.len(),
            op_keys: space_op_keys(space, 1).len(),
            log10_networks: count_distinct_networks(space).log10(),
            hash: space.content_hash(),
        }
    }
}

/// Summaries of every built-in space.
pub fn builtin_summaries() -> Vec<SpaceSummary> {
    builtin_spaces().iter().map(SpaceSummary::of).collect()
}

/// The listing as an aligned text table.
pub fn summaries_text(summaries: &[SpaceSummary]) -> String {
    let mut out = format!(
        "{:<24} {:>9} {:>7} {:>12}  {:<16}  {}\n",
        "space", "decisions", "op keys", "log10(nets)", "hash", "description"
    );
    for s in summaries {
        out.push_str(&format!(
            "{:<24} {:>9} {:>7} {:>12.2}  {:<16}  {}\n",
            s.name, s.decisions, s.op_keys, s.log10_networks, s.hash, s.description
        ));
    }
    out
}

/// The op keys of a space as CSV: the key columns plus the canonical text.
pub fn op_keys_csv(space: &SearchSpace, batch: u32) -> String {
    let mut out = KEY_COLUMNS.join(",");
    out.push_str(",key\n");
    for key in space_op_keys(space, batch) {
        out.push_str(&key.cells().join(","));
        out.push(',');
        out.push_str(&key.to_string());
        out.push('\n');
    }
    out
}
