//! Calibration: `measured ≈ c0 + α·Σ ops + c1·Σ nodes` fitted on
//! end-to-end networks turns raw in-context op times into table rows whose
//! plain sum predicts a whole network (see the module docs of
//! [`crate::profile`]).

use std::collections::BTreeMap;

use tunas_shared::table::{CALIBRATION_SEED_FIELD, Calibration};
use tunas_shared::{LatencyTable, OpKey, OpStats};

use super::measure::op_node_count;
use crate::agreement::Agreement;
use crate::interleave::{CALIBRATION_E2E_FIELD, calibration_times_text};
use crate::kindfit::{DEFAULT_RIDGE, KindFitRow, fit_kind_scales};

/// Least-squares fit of `measured ≈ c0 + α·sum + c1·n` over rows
/// `(sum, n, measured)` (normal equations, 3×3). A negative constant is not
/// physical (a table's constant is ≥ 0): the fit is then redone through the
/// origin. Returns `(c0, α, c1)`.
pub fn fit_calibration(rows: &[(f64, f64, f64)]) -> (f64, f64, f64) {
    let fit = |with_constant: bool| {
        let mut a = [[0.0f64; 3]; 3];
        let mut b = [0.0f64; 3];
        if !with_constant {
            a[0][0] = 1.0;
        }
        for &(s, n, m) in rows {
            let x = [f64::from(u8::from(with_constant)), s, n];
            for i in 0..3 {
                for j in 0..3 {
                    a[i][j] += x[i] * x[j];
                }
                b[i] += x[i] * m;
            }
        }
        if !with_constant {
            a[0][0] = 1.0;
            b[0] = 0.0;
        }
        solve3(a, b)
    };
    match fit(true) {
        Some([c0, alpha, c1]) if alpha > 0.0 && c0 >= 0.0 => (c0, alpha, c1),
        _ => match fit(false) {
            Some([_, alpha, c1]) if alpha > 0.0 => (0.0, alpha, c1),
            _ => {
                let mean_gap =
                    rows.iter().map(|&(s, _, m)| m - s).sum::<f64>() / rows.len().max(1) as f64;
                (mean_gap.max(0.0), 1.0, 0.0)
            }
        },
    }
}

/// Fits per-kind scale factors of the calibrated `table` on the
/// calibration networks `(ops, measured µs)` and records them as
/// `x-kind-scale` with the fit's error (see [`crate::kindfit`]); a refused
/// fit leaves the table without factors and says so.
fn record_kind_scales(table: &mut LatencyTable, networks: &[(Vec<OpKey>, f64)]) {
    let constant_us = table.provenance.overhead_us;
    let rows: Vec<KindFitRow> = networks
        .iter()
        .map(|(ops, measured_us)| {
            let mut per_kind_us = BTreeMap::new();
            for key in ops {
                let row = table.rows.get(key).map_or(0.0, |r| r.median_us);
                *per_kind_us.entry(key.op).or_insert(0.0) += row;
            }
            KindFitRow {
                per_kind_us,
                constant_us,
                measured_us: *measured_us,
            }
        })
        .collect();
    let e = &mut table.provenance.extra;
    match fit_kind_scales(&rows, DEFAULT_RIDGE) {
        Some(scales) => {
            let pairs: Vec<(f64, f64)> = rows
                .iter()
                .map(|r| {
                    let est: f64 = r
                        .per_kind_us
                        .iter()
                        .map(|(k, x)| scales.get(k).copied().unwrap_or(1.0) * x)
                        .sum();
                    (r.constant_us + est, r.measured_us)
                })
                .collect();
            e.insert(
                tunas_shared::table::KIND_SCALE_FIELD.into(),
                tunas_shared::table::kind_scales_text(&scales),
            );
            e.insert(
                "x-kind-scale-fit".into(),
                format!(
                    "least squares on {} calibration networks, ridge {DEFAULT_RIDGE} towards 1; MAPE {:.2}%",
                    rows.len(),
                    Agreement::of(&pairs).mape
                ),
            );
        }
        None => {
            e.remove(tunas_shared::table::KIND_SCALE_FIELD);
            e.insert(
                "x-kind-scale-fit".into(),
                "refused (singular, or a factor outside 0.5..2): estimates use the plain sum"
                    .into(),
            );
        }
    }
}

/// Gauss–Jordan elimination with partial pivoting on a 3×3 system.
#[allow(clippy::needless_range_loop)]
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in 0..3 {
            if row != col {
                let f = a[row][col] / a[col][col];
                for k in 0..3 {
                    a[row][k] -= f * a[col][k];
                }
                b[row] -= f * b[col];
            }
        }
    }
    Some([b[0] / a[0][0], b[1] / a[1][1], b[2] / a[2][2]])
}

/// The calibration networks of a run, timed end to end.
pub(super) struct CalibrationSet {
    /// Per network: the sum of its ops' raw medians, its node count and
    /// its measured time (µs).
    pub rows: Vec<(f64, f64, f64)>,
    /// Per network: its ops and its measured time (µs), for the per-kind fit.
    pub ops: Vec<(Vec<OpKey>, f64)>,
    /// How many of them were timed among the op units.
    pub interleaved: usize,
    /// Their seed.
    pub seed: u64,
    /// Measured times by network index, as the journal records them.
    pub times: BTreeMap<usize, f64>,
}

impl CalibrationSet {
    /// Fits the calibration and fills `table` with the calibrated rows of
    /// `raw`, the fit and its error on record.
    pub(super) fn calibrate(&self, table: &mut LatencyTable, raw: &BTreeMap<OpKey, OpStats>) {
        let rows = &self.rows;
        let (c0, alpha, c1) = fit_calibration(rows);
        let fitted: Vec<(f64, f64)> = rows
            .iter()
            .map(|&(sum, n, m)| (c0 + alpha * sum + c1 * n, m))
            .collect();
        let fit = Agreement::of(&fitted);
        table.provenance.overhead_us = c0.max(0.0);
        let e = &mut table.provenance.extra;
        e.insert("x-calibration-networks".into(), rows.len().to_string());
        e.insert(CALIBRATION_SEED_FIELD.into(), self.seed.to_string());
        e.insert(
            "x-calibration-order".into(),
            format!(
                "{} of {} networks timed among the op units in a seeded random order, the rest after them",
                self.interleaved,
                rows.len()
            ),
        );
        e.insert(
            CALIBRATION_E2E_FIELD.into(),
            calibration_times_text(&self.times),
        );
        let calibration = Calibration {
            op_scale: alpha,
            per_node_us: c1,
            constant_us: c0,
        };
        calibration.record(e);
        e.insert("x-calibration-mape-pct".into(), format!("{:.2}", fit.mape));
        let mut clamped = 0;
        for (key, raw) in raw {
            let stats = calibrated_row(raw, &calibration, op_node_count(key), &mut clamped);
            table.rows.insert(*key, stats);
        }
        table
            .provenance
            .extra
            .insert("x-clamped-values".into(), clamped.to_string());
        record_kind_scales(table, &self.ops);
    }
}

/// Each statistic of a raw row of an op with `nodes` ONNX nodes,
/// calibrated (the spread scaled by the op scale); a value the fit would
/// make negative is 0 and counted in `clamped`.
fn calibrated_row(
    raw: &OpStats,
    calibration: &Calibration,
    nodes: usize,
    clamped: &mut usize,
) -> OpStats {
    let mut adjust = |v: f64| {
        let v = calibration.calibrated_us(v, nodes);
        if v < 0.0 {
            *clamped += 1;
        }
        v.max(0.0)
    };
    OpStats {
        median_us: adjust(raw.median_us),
        p10_us: adjust(raw.p10_us),
        p90_us: adjust(raw.p90_us),
        mean_us: adjust(raw.mean_us),
        std_us: calibration.op_scale * raw.std_us,
        runs: raw.runs,
        measured_at: raw.measured_at.clone(),
    }
}

/// A table that does not cover the space (`--max-keys`) keeps its raw
/// in-context timings and says why it is not calibrated.
pub(super) fn leave_uncalibrated(
    table: &mut LatencyTable,
    raw: BTreeMap<OpKey, OpStats>,
    space_keys: usize,
) {
    table.provenance.overhead_us = 0.0;
    table.provenance.extra.insert(
        "x-calibration".into(),
        format!(
            "skipped: the table covers {} of the space's {space_keys} op keys (--max-keys); rows are raw in-context timings",
            raw.len(),
        ),
    );
    table.rows = raw;
    let e = &mut table.provenance.extra;
    e.remove(tunas_shared::table::KIND_SCALE_FIELD);
    Calibration::forget(e);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_fit_recovers_a_known_line() {
        let rows: Vec<(f64, f64, f64)> = (0..10)
            .map(|i| {
                let s = 100.0 + 37.0 * i as f64;
                let n = 5.0 + (i % 4) as f64;
                (s, n, 20.0 + 0.9 * s + 3.0 * n)
            })
            .collect();
        let (c0, a, c1) = fit_calibration(&rows);
        assert!((c0 - 20.0).abs() < 1e-6 && (a - 0.9).abs() < 1e-9 && (c1 - 3.0).abs() < 1e-6);
    }
}
