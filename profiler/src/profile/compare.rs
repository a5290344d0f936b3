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

/// How closely several tables of one space agree on whole networks: each
/// of `networks` uniform random architectures is estimated with every
/// table, and its spread is the largest distance of a table's estimate from
/// the median of the tables' estimates.
#[derive(Clone, Debug, Serialize)]
pub struct EstimateAgreement {
    /// Tables compared.
    pub tables: usize,
    /// Random architectures estimated.
    pub networks: usize,
    /// Their seed.
    pub seed: u64,
    /// Fraction of networks whose every estimate lies within ±3% of their
    /// median estimate.
    pub within_3pct: f64,
    /// Median spread (percent).
    pub median_spread_pct: f64,
    /// 95th-percentile spread (percent).
    pub p95_spread_pct: f64,
    /// Largest spread (percent).
    pub max_spread_pct: f64,
}

/// Every table's estimate (µs) of `networks` uniform random architectures
/// of `space` (seed `seed`): the input of [`NetworkEstimates::agreement`].
#[derive(Clone, Debug)]
pub struct NetworkEstimates {
    seed: u64,
    tables: usize,
    /// One row per network, one estimate per table.
    rows: Vec<Vec<f64>>,
}

impl NetworkEstimates {
    /// Estimates the networks with every table, once.
    pub fn of(
        space: &tunas_shared::SearchSpace,
        tables: &[LatencyTable],
        networks: usize,
        seed: u64,
    ) -> Result<Self, tunas_shared::TableError> {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let rows = (0..networks)
            .map(|_| {
                let arch = tunas_shared::Architecture::sample_uniform(space, &mut rng);
                tables.iter().map(|t| t.estimate_us(space, &arch)).collect()
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            seed,
            tables: tables.len(),
            rows,
        })
    }

    /// How far apart the estimates lie, each table's multiplied by its
    /// factor in `scales` (1 for the tables as they are; `level₀ / levelᵢ`
    /// to take out the speed level each profile ran at).
    pub fn agreement(&self, scales: &[f64]) -> EstimateAgreement {
        assert_eq!(self.tables, scales.len(), "one scale per table");
        let mut spreads: Vec<f64> = self
            .rows
            .iter()
            .map(|row| {
                let mut estimates: Vec<f64> = row.iter().zip(scales).map(|(e, s)| e * s).collect();
                estimates.sort_by(f64::total_cmp);
                let median = tunas_shared::table::quantile(&estimates, 0.5);
                estimates
                    .iter()
                    .map(|e| (e / median - 1.0).abs() * 100.0)
                    .fold(0.0, f64::max)
            })
            .collect();
        spreads.sort_by(f64::total_cmp);
        let networks = spreads.len();
        let q = |p: f64| tunas_shared::table::quantile(&spreads, p);
        EstimateAgreement {
            tables: self.tables,
            networks,
            seed: self.seed,
            within_3pct: spreads.iter().filter(|s| **s <= 3.0).count() as f64 / networks as f64,
            median_spread_pct: q(0.5),
            p95_spread_pct: q(0.95),
            max_spread_pct: spreads.last().copied().unwrap_or(f64::NAN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunas_shared::{Architecture, OpStats, Provenance, builtin_space, space_op_keys};

    fn table_scaled(space: &tunas_shared::SearchSpace, scale: f64) -> LatencyTable {
        let mut t = LatencyTable::new(Provenance {
            space: space.name.clone(),
            space_hash: space.content_hash(),
            batch: 1,
            ..Provenance::default()
        });
        for (i, key) in space_op_keys(space, 1).into_iter().enumerate() {
            let v = scale * (1.0 + (i % 7) as f64);
            t.rows.insert(
                key,
                OpStats::with_statistic(&[v], 0.0, crate::timing::ROW_STATISTIC),
            );
        }
        t
    }

    #[test]
    fn tables_that_differ_by_a_constant_factor_spread_by_it() {
        let space = builtin_space("tiny28").unwrap();
        let same = [table_scaled(&space, 1.0), table_scaled(&space, 1.0)];
        let a = NetworkEstimates::of(&space, &same, 20, 3)
            .unwrap()
            .agreement(&[1.0, 1.0]);
        assert_eq!((a.within_3pct, a.max_spread_pct), (1.0, 0.0));
        // Scales 1.0, 1.02, 1.05: the median table is the 1.02 one, and the
        // farthest lies 2.94% from it.
        let three = [
            table_scaled(&space, 1.0),
            table_scaled(&space, 1.02),
            table_scaled(&space, 1.05),
        ];
        let b = NetworkEstimates::of(&space, &three, 20, 3)
            .unwrap()
            .agreement(&[1.0; 3]);
        let farthest = (1.05 / 1.02 - 1.0) * 100.0;
        assert!((b.max_spread_pct - farthest).abs() < 1e-9, "{b:?}");
        assert_eq!(b.within_3pct, 1.0);
        // Scaled back by their factors, the three agree exactly.
        let back = NetworkEstimates::of(&space, &three, 20, 3)
            .unwrap()
            .agreement(&[1.0, 1.0 / 1.02, 1.0 / 1.05]);
        assert!(back.max_spread_pct < 1e-9, "{back:?}");
        let arch = Architecture::largest(&space);
        assert!(
            three[2].estimate_us(&space, &arch).unwrap()
                > three[0].estimate_us(&space, &arch).unwrap()
        );
    }
}
