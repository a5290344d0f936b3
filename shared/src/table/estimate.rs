//! What a table answers: the latency of an op, the estimate of an
//! architecture, and whether the table fits a space.

use super::LatencyTable;
use crate::arch::Architecture;
use crate::error::TableError;
use crate::opkey::{OpKey, architecture_ops};
use crate::space::SearchSpace;

impl LatencyTable {
    /// Refuses a table made for another space.
    pub fn check_space(&self, space: &SearchSpace) -> Result<(), TableError> {
        let hash = space.content_hash();
        if self.provenance.space_hash != hash {
            return Err(TableError::SpaceMismatch {
                path: self.path_text(),
                table_space: self.provenance.space.clone(),
                table_hash: self.provenance.space_hash.clone(),
                space: space.name.clone(),
                space_hash: hash,
            });
        }
        Ok(())
    }

    /// The median latency of one op.
    pub(crate) fn op_latency_us(&self, key: &OpKey) -> Result<f64, TableError> {
        self.rows
            .get(key)
            .map(|s| s.median_us)
            .ok_or_else(|| TableError::MissingOp {
                path: self.path_text(),
                key: key.to_string(),
            })
    }

    /// Estimated latency of an architecture (µs): the per-inference constant
    /// plus the median of every op it executes, each times its kind's
    /// factor from `x-kind-scale` (1 when the table has none).
    pub fn estimate_us(&self, space: &SearchSpace, arch: &Architecture) -> Result<f64, TableError> {
        let ops = architecture_ops(space, arch, self.provenance.batch);
        let scales = self.kind_scales()?;
        let mut total = self.provenance.overhead_us;
        for key in &ops {
            let latency = self.op_latency_us(key)?;
            total += match scales.get(&key.op) {
                Some(scale) => scale * latency,
                None => latency,
            };
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opkey::OpKind;
    use crate::table::{KIND_SCALE_FIELD, OpStats, Provenance};

    #[test]
    fn estimates_apply_kind_scales_and_old_tables_sum_as_before() {
        let space = crate::builtin_space("tiny28").unwrap();
        let mut t = LatencyTable::new(Provenance {
            batch: 1,
            overhead_us: 5.0,
            ..Provenance::default()
        });
        for key in crate::space_op_keys(&space, 1) {
            t.rows.insert(key, OpStats::from_samples(&[2.0]));
        }
        let arch = Architecture::largest(&space);
        let ops = architecture_ops(&space, &arch, 1);
        let bottlenecks = ops.iter().filter(|k| k.op == OpKind::Bottleneck).count() as f64;
        let plain = t.estimate_us(&space, &arch).unwrap();
        assert_eq!(plain, 5.0 + 2.0 * ops.len() as f64);
        t.provenance
            .extra
            .insert(KIND_SCALE_FIELD.into(), "bottleneck=1.5".into());
        let scaled = t.estimate_us(&space, &arch).unwrap();
        assert!((scaled - (plain + 0.5 * 2.0 * bottlenecks)).abs() < 1e-9);
        t.provenance
            .extra
            .insert(KIND_SCALE_FIELD.into(), "bottleneck=x".into());
        assert!(t.estimate_us(&space, &arch).is_err());
    }
}
