//! Repeatability: how two tables of the same space differ, key by key.

use serde::Serialize;
use tunas_shared::LatencyTable;

/// How two tables of the same space differ, key by key.
#[derive(Clone, Debug, Serialize)]
pub struct TableComparison {
    /// Keys in both tables.
    pub common_keys: usize,
    /// Keys in only one of them.
    pub unmatched_keys: usize,
    /// Median over keys of |a/b − 1| (percent).
    pub median_rel_diff_pct: f64,
    /// 90th percentile of |a/b − 1| (percent).
    pub p90_rel_diff_pct: f64,
    /// Largest |a/b − 1| (percent).
    pub max_rel_diff_pct: f64,
    /// Per-inference constants (µs) of a and b.
    pub overhead_us: (f64, f64),
}

/// Compares the medians of two tables key by key (repeatability).
pub fn compare_tables(a: &LatencyTable, b: &LatencyTable) -> TableComparison {
    let mut diffs: Vec<f64> = a
        .rows
        .iter()
        .filter_map(|(k, sa)| {
            let sb = b.rows.get(k)?;
            Some(if sb.median_us > 0.0 {
                (sa.median_us / sb.median_us - 1.0).abs() * 100.0
            } else if sa.median_us == 0.0 {
                0.0
            } else {
                100.0
            })
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    let common = diffs.len();
    let q = |p: f64| {
        if diffs.is_empty() {
            f64::NAN
        } else {
            tunas_shared::table::quantile(&diffs, p)
        }
    };
    TableComparison {
        common_keys: common,
        unmatched_keys: a.rows.len() + b.rows.len() - 2 * common,
        median_rel_diff_pct: q(0.5),
        p90_rel_diff_pct: q(0.9),
        max_rel_diff_pct: diffs.last().copied().unwrap_or(f64::NAN),
        overhead_us: (a.provenance.overhead_us, b.provenance.overhead_us),
    }
}
