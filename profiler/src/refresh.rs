//! `refresh`: bring an existing table up to date by measuring only what is
//! missing or stale, keeping every other row as it is.
//!
//! A row is stale when the table was measured with another ONNX Runtime
//! version (then every row is), or when it is older than a given age. A
//! changed space (its hash differs) drops the keys the new space no longer
//! has and measures the keys it gained. Kept rows are turned back into raw
//! timings with the old calibration (`x-op-scale`, `x-per-node-us`) so that
//! the whole table is calibrated afresh, on this run's end-to-end networks.

use std::collections::BTreeMap;

use tunas_shared::{LatencyTable, OpStats, SearchSpace, space_op_keys};

use crate::profile::{Plan, op_node_count};

/// Why rows are measured again, counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RefreshCounts {
    /// Rows kept as they are.
    pub kept: usize,
    /// Keys the space needs that the table lacks.
    pub missing: usize,
    /// Rows re-measured because the runtime version changed.
    pub runtime_changed: usize,
    /// Rows re-measured because they are older than the limit.
    pub too_old: usize,
    /// Rows dropped because the space no longer has their key.
    pub dropped: usize,
}

impl RefreshCounts {
    /// Rows to measure.
    pub fn to_measure(&self) -> usize {
        self.missing + self.runtime_changed + self.too_old
    }

    /// One line for the provenance and the summary.
    pub fn text(&self) -> String {
        format!(
            "re-measured {} rows ({} missing from the space, {} for a new runtime version, {} too old), kept {}, dropped {} keys the space no longer has",
            self.to_measure(),
            self.missing,
            self.runtime_changed,
            self.too_old,
            self.kept,
            self.dropped
        )
    }
}

/// What to measure to refresh `old` for `space` with a runtime of version
/// `runtime_version`; rows measured before `cutoff_unix` (seconds since the
/// epoch) are stale. Kept rows are un-calibrated (see the module docs).
pub fn plan_refresh(
    old: &LatencyTable,
    space: &SearchSpace,
    runtime_version: &str,
    cutoff_unix: Option<u64>,
) -> (Plan, RefreshCounts) {
    let keys = space_op_keys(space, old.provenance.batch);
    let runtime_changed = old.provenance.runtime_version != runtime_version;
    let number = |name: &str, default: f64| {
        old.provenance
            .extra
            .get(name)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .unwrap_or(default)
    };
    let (alpha, per_node) = (number("x-op-scale", 1.0), number("x-per-node-us", 0.0));
    let alpha = if alpha > 0.0 { alpha } else { 1.0 };
    let mut counts = RefreshCounts {
        dropped: old.rows.keys().filter(|k| !keys.contains(k)).count(),
        ..Default::default()
    };
    let mut plan = Plan::default();
    for key in &keys {
        let Some(row) = old.rows.get(key) else {
            counts.missing += 1;
            plan.to_measure.insert(*key);
            continue;
        };
        if runtime_changed {
            counts.runtime_changed += 1;
            plan.to_measure.insert(*key);
            continue;
        }
        let measured = tunas_shared::time::unix_from_rfc3339(&row.measured_at);
        if let Some(cutoff) = cutoff_unix
            && measured.is_none_or(|m| m < cutoff)
        {
            counts.too_old += 1;
            plan.to_measure.insert(*key);
            continue;
        }
        let per_op = per_node * op_node_count(key) as f64;
        let raw = |v: f64| ((v - per_op) / alpha).max(0.0);
        counts.kept += 1;
        plan.kept_raw.insert(
            *key,
            OpStats {
                median_us: raw(row.median_us),
                p10_us: raw(row.p10_us),
                p90_us: raw(row.p90_us),
                mean_us: raw(row.mean_us),
                std_us: row.std_us / alpha,
                runs: row.runs,
                measured_at: row.measured_at.clone(),
            },
        );
    }
    // Earlier refreshes stay on record.
    let history: BTreeMap<String, String> = old
        .provenance
        .extra
        .iter()
        .filter(|(k, _)| k.starts_with("x-refresh-"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let n = history.len() + 1;
    plan.extra = history;
    let mut note = format!(
        "{}: {}",
        tunas_shared::time::utc_now_rfc3339(),
        counts.text()
    );
    if old.provenance.space_hash != space.content_hash() {
        note.push_str(&format!(
            "; space {} ({}) -> {} ({})",
            old.provenance.space,
            old.provenance.space_hash,
            space.name,
            space.content_hash()
        ));
    }
    if runtime_changed {
        note.push_str(&format!(
            "; runtime {} -> {runtime_version}",
            old.provenance.runtime_version
        ));
    }
    plan.extra.insert(format!("x-refresh-{n:03}"), note);
    (plan, counts)
}
