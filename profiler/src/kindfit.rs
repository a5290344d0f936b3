//! Per-op-kind scale factors: where the calibrated sum of a network's rows
//! is not enough (one kind of op runs faster or slower inside a whole
//! network than its rows say), a factor per kind is fitted by least squares
//! on the calibration networks and stored as the table's `x-kind-scale`
//! line; the estimator multiplies each row by its kind's factor.
//!
//! The fit minimises `Σ_i (m_i − c_i − Σ_k s_k·x_ik)² + λ·Σ_k w_k·(s_k − 1)²`
//! over the factors `s_k`, where `x_ik` is network `i`'s summed rows of kind
//! `k`, `c_i` its constant and `m_i` its measured time. The small ridge
//! (`w_k = Σ_i x_ik²`, so it does not depend on units) pulls kinds that the
//! networks cannot tell apart (the stem and the head appear once in every
//! network) towards 1 instead of leaving the system singular; it never makes
//! the fit worse than no factors at all, which is the point `s = 1`.

use std::collections::BTreeMap;

use tunas_shared::opkey::OpKind;

/// One calibration network, as the fit sees it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct KindFitRow {
    /// Summed (calibrated) rows of each kind the network executes, µs.
    pub per_kind_us: BTreeMap<OpKind, f64>,
    /// The table's per-inference constant, µs.
    pub constant_us: f64,
    /// The network's measured time, µs.
    pub measured_us: f64,
}

/// Factors outside this range are not a correction but a broken fit.
pub(crate) const SCALE_RANGE: (f64, f64) = (0.5, 2.0);

/// The ridge weight the profiler uses.
pub(crate) const DEFAULT_RIDGE: f64 = 1e-3;

/// Fits one factor per kind present in `rows`. `None` when there is nothing
/// to fit, the system is singular, or a factor falls outside
/// [`SCALE_RANGE`].
pub(crate) fn fit_kind_scales(rows: &[KindFitRow], ridge: f64) -> Option<BTreeMap<OpKind, f64>> {
    let kinds: Vec<OpKind> = rows
        .iter()
        .flat_map(|r| r.per_kind_us.keys().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let n = kinds.len();
    if n == 0 || rows.is_empty() {
        return None;
    }
    let mut a = vec![vec![0.0f64; n]; n];
    let mut b = vec![0.0f64; n];
    for r in rows {
        let x: Vec<f64> = kinds
            .iter()
            .map(|k| r.per_kind_us.get(k).copied().unwrap_or(0.0))
            .collect();
        let y = r.measured_us - r.constant_us;
        for i in 0..n {
            for j in 0..n {
                a[i][j] += x[i] * x[j];
            }
            b[i] += x[i] * y;
        }
    }
    for i in 0..n {
        let w = a[i][i];
        a[i][i] += ridge * w;
        b[i] += ridge * w;
    }
    let s = solve(a, b)?;
    let (lo, hi) = SCALE_RANGE;
    if s.iter().any(|v| !v.is_finite() || *v < lo || *v > hi) {
        return None;
    }
    Some(kinds.into_iter().zip(s).collect())
}

/// Gauss–Jordan elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        let scale = a.iter().map(|r| r[col].abs()).fold(0.0, f64::max);
        if a[pivot][col].abs() <= 1e-12 * scale.max(1e-300) {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (p_row, p_b) = (a[col].clone(), b[col]);
        for (row, (a_row, b_row)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
            if row != col {
                let f = a_row[col] / p_row[col];
                for (v, p) in a_row.iter_mut().zip(&p_row) {
                    *v -= f * p;
                }
                *b_row -= f * p_b;
            }
        }
    }
    Some((0..n).map(|i| b[i] / a[i][i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Networks whose kinds vary independently, timed with known factors.
    fn synthetic(truth: &[(OpKind, f64)]) -> Vec<KindFitRow> {
        (0..40)
            .map(|i| {
                let per_kind_us: BTreeMap<OpKind, f64> = truth
                    .iter()
                    .enumerate()
                    .map(|(j, (k, _))| (*k, 10.0 + ((i * (2 * j + 3) + j * 7) % 17) as f64 * 5.0))
                    .collect();
                let measured_us = 25.0 + truth.iter().map(|(k, s)| s * per_kind_us[k]).sum::<f64>();
                KindFitRow {
                    per_kind_us,
                    constant_us: 25.0,
                    measured_us,
                }
            })
            .collect()
    }

    #[test]
    fn the_fit_recovers_known_factors() {
        let truth = [
            (OpKind::Stem, 1.0),
            (OpKind::Separable, 0.8),
            (OpKind::Bottleneck, 1.25),
            (OpKind::HeadConv, 1.1),
        ];
        let fit = fit_kind_scales(&synthetic(&truth), 0.0).unwrap();
        for (k, s) in truth {
            assert!((fit[&k] - s).abs() < 1e-9, "{k:?}: {} vs {s}", fit[&k]);
        }
        // The profiler's small ridge moves them only a little.
        let fit = fit_kind_scales(&synthetic(&truth), DEFAULT_RIDGE).unwrap();
        for (k, s) in truth {
            assert!((fit[&k] - s).abs() < 2e-3, "{k:?}: {} vs {s}", fit[&k]);
        }
    }

    #[test]
    fn exact_sums_give_unit_factors_and_aliased_kinds_stay_finite() {
        let fit = fit_kind_scales(
            &synthetic(&[(OpKind::Separable, 1.0), (OpKind::Classifier, 1.0)]),
            DEFAULT_RIDGE,
        )
        .unwrap();
        assert!(fit.values().all(|s| (s - 1.0).abs() < 1e-9), "{fit:?}");
        // Two kinds with the same sum in every network cannot be told
        // apart: without the ridge the system is singular; with it, both
        // share the correction.
        let rows: Vec<KindFitRow> = (0..10)
            .map(|i| {
                let x = 10.0 + i as f64;
                KindFitRow {
                    per_kind_us: [(OpKind::HeadFc, x), (OpKind::Classifier, x)].into(),
                    constant_us: 0.0,
                    measured_us: 2.2 * x,
                }
            })
            .collect();
        assert_eq!(fit_kind_scales(&rows, 0.0), None);
        let fit = fit_kind_scales(&rows, DEFAULT_RIDGE).unwrap();
        assert!((fit[&OpKind::HeadFc] - fit[&OpKind::Classifier]).abs() < 1e-9);
        assert!((fit[&OpKind::HeadFc] - 1.1).abs() < 1e-3, "{fit:?}");
    }

    #[test]
    fn broken_fits_are_refused() {
        assert_eq!(fit_kind_scales(&[], DEFAULT_RIDGE), None);
        let rows = synthetic(&[(OpKind::Separable, 5.0)]);
        assert_eq!(fit_kind_scales(&rows, 0.0), None);
    }
}
