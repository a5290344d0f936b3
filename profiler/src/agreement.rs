//! How well table estimates agree with end-to-end measurements: error
//! fractions, MAPE and rank correlations (Kendall τ-b, Spearman ρ).

use serde::Serialize;
pub use tunas_shared::rank::{kendall_tau_b, pearson, ranks, spearman};

/// Agreement between estimated and measured latencies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agreement {
    /// Number of pairs.
    pub samples: usize,
    /// Fraction with |estimate/measured − 1| ≤ 5%.
    pub within_5pct: f64,
    /// Fraction with |estimate/measured − 1| ≤ 10%.
    pub within_10pct: f64,
    /// Mean absolute percentage error (percent).
    pub mape: f64,
    /// Largest absolute relative error (percent).
    pub max_abs_err: f64,
    /// Mean signed relative error (percent): positive = the table overestimates.
    pub mean_signed_err: f64,
    /// Kendall's τ-b between estimates and measurements.
    pub kendall_tau: f64,
    /// Spearman's ρ between estimates and measurements.
    pub spearman: f64,
}

/// Relative error of an estimate, in percent.
pub(crate) fn relative_error_pct(estimate: f64, measured: f64) -> f64 {
    (estimate / measured - 1.0) * 100.0
}

impl Agreement {
    /// Computes every figure from `(estimate, measured)` pairs.
    pub(crate) fn of(pairs: &[(f64, f64)]) -> Self {
        assert!(!pairs.is_empty(), "agreement needs at least one pair");
        let errs: Vec<f64> = pairs
            .iter()
            .map(|&(e, m)| relative_error_pct(e, m))
            .collect();
        let n = pairs.len() as f64;
        let frac = |limit: f64| errs.iter().filter(|e| e.abs() <= limit).count() as f64 / n;
        let est: Vec<f64> = pairs.iter().map(|p| p.0).collect();
        let meas: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        Agreement {
            samples: pairs.len(),
            within_5pct: frac(5.0),
            within_10pct: frac(10.0),
            mape: errs.iter().map(|e| e.abs()).sum::<f64>() / n,
            max_abs_err: errs.iter().map(|e| e.abs()).fold(0.0, f64::max),
            mean_signed_err: errs.iter().sum::<f64>() / n,
            kendall_tau: kendall_tau_b(&est, &meas),
            spearman: spearman(&est, &meas),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fractions() {
        let g = Agreement::of(&[(1.04, 1.0), (1.08, 1.0), (0.8, 1.0), (2.0, 2.0)]);
        assert_eq!(g.within_5pct, 0.5);
        assert_eq!(g.within_10pct, 0.75);
        assert!((g.max_abs_err - 20.0).abs() < 1e-9);
        assert!((g.mape - 8.0).abs() < 1e-9);
    }
}
