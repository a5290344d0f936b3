//! The calibration of a table and the other `x-` provenance notes the code
//! reads back, as typed values (docs/design.md, "Latency tables").
//!
//! A table's rows are not raw single-op timings: the profiler fits
//! `measured ≈ constant + op_scale · Σ raw + per_node · nodes` on whole
//! networks and stores every row as `op_scale · raw + per_node · nodes(op)`.
//! `refresh` has to undo that for the rows it keeps, so the fit is written
//! with shortest round-trip decimals: reading it back gives the very same
//! numbers, and a refresh does not drift.

use std::collections::BTreeMap;
use std::fmt;

use super::Provenance;
use crate::opkey::OpKey;

/// `x-op-scale`: the fit's factor on the sum of raw op timings.
pub const OP_SCALE_FIELD: &str = "x-op-scale";
/// `x-per-node-us`: the fit's cost per ONNX node (µs).
pub const PER_NODE_FIELD: &str = "x-per-node-us";
/// `x-fit-constant-us`: the fit's per-inference constant (µs), before it is
/// clamped at 0 into `overhead_us`.
pub const FIT_CONSTANT_FIELD: &str = "x-fit-constant-us";
/// `x-calibration-seed`: the seed of the calibration networks.
pub const CALIBRATION_SEED_FIELD: &str = "x-calibration-seed";
/// `x-statistic`: which statistic the `median_us` column holds.
pub const STATISTIC_FIELD: &str = "x-statistic";
/// `x-sentinel-baseline-us`: the drift watch's reference timing (µs).
pub const SENTINEL_BASELINE_FIELD: &str = "x-sentinel-baseline-us";
/// `x-reference-key`: the op timed beside every run (`profile --reference`).
pub const REFERENCE_KEY_FIELD: &str = "x-reference-key";
/// `x-reference-level-us`: the time every run is scaled to, as if the
/// reference op had taken it beside that run (µs).
pub const REFERENCE_LEVEL_FIELD: &str = "x-reference-level-us";

/// `x-reference-start-us`: the reference's level timed at the start of a
/// profile, before the runs moved to its fast mode over the whole run.
pub const REFERENCE_START_FIELD: &str = "x-reference-start-us";

/// A reference op timed beside every run, and the level its time is scaled
/// to: a run beside which the reference took `r` µs counts `level_us / r`
/// times its own time. A device that changes speed between runs changes
/// both alike, so the scaled runs keep one speed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimingReference {
    /// The reference op (a one-op model).
    pub key: OpKey,
    /// The reference's time every run is scaled to (µs).
    pub level_us: f64,
}

/// The whole-network fit a table's rows were calibrated with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// Factor on each raw op timing.
    pub op_scale: f64,
    /// Cost added per ONNX node of an op (µs).
    pub per_node_us: f64,
    /// Per-inference constant of the fit (µs; may be negative).
    pub constant_us: f64,
}

/// A provenance note that does not hold what its name says.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The `x-` field.
    pub(crate) field: &'static str,
    /// Its text.
    pub(crate) value: String,
    /// What it should be.
    pub(crate) expected: &'static str,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = '{}': expected {}",
            self.field, self.value, self.expected
        )
    }
}

impl std::error::Error for FieldError {}

impl Calibration {
    /// No calibration: rows are the raw timings.
    pub const IDENTITY: Calibration = Calibration {
        op_scale: 1.0,
        per_node_us: 0.0,
        constant_us: 0.0,
    };

    /// A raw op timing as the table stores it (may be negative: the caller
    /// clamps and counts).
    pub fn calibrated_us(&self, raw_us: f64, nodes: usize) -> f64 {
        self.op_scale * raw_us + self.per_node_us * nodes as f64
    }

    /// A stored row value turned back into its raw timing, at least 0.
    pub fn raw_us(&self, row_us: f64, nodes: usize) -> f64 {
        ((row_us - self.per_node_us * nodes as f64) / self.op_scale).max(0.0)
    }

    /// Writes the fit into provenance notes, losslessly.
    pub fn record(&self, extra: &mut BTreeMap<String, String>) {
        extra.insert(OP_SCALE_FIELD.into(), self.op_scale.to_string());
        extra.insert(PER_NODE_FIELD.into(), self.per_node_us.to_string());
        extra.insert(FIT_CONSTANT_FIELD.into(), self.constant_us.to_string());
    }

    /// Removes the fit's notes (a table left uncalibrated).
    pub fn forget(extra: &mut BTreeMap<String, String>) {
        for field in [OP_SCALE_FIELD, PER_NODE_FIELD, FIT_CONSTANT_FIELD] {
            extra.remove(field);
        }
    }
}

/// `field` as a finite number, if present.
fn number(p: &Provenance, field: &'static str) -> Result<Option<f64>, FieldError> {
    let Some(text) = p.extra.get(field) else {
        return Ok(None);
    };
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(FieldError {
            field,
            value: text.clone(),
            expected: "a finite number",
        }),
    }
}

impl Provenance {
    /// The calibration the rows were written with; `None` for a table
    /// without one (raw timings, or written before the notes existed).
    pub fn calibration(&self) -> Result<Option<Calibration>, FieldError> {
        let Some(op_scale) = number(self, OP_SCALE_FIELD)? else {
            return Ok(None);
        };
        if op_scale <= 0.0 {
            return Err(FieldError {
                field: OP_SCALE_FIELD,
                value: op_scale.to_string(),
                expected: "a positive number",
            });
        }
        Ok(Some(Calibration {
            op_scale,
            per_node_us: number(self, PER_NODE_FIELD)?.unwrap_or(0.0),
            constant_us: number(self, FIT_CONSTANT_FIELD)?.unwrap_or(self.overhead_us),
        }))
    }

    /// The seed of the calibration networks, if recorded.
    pub fn calibration_seed(&self) -> Result<Option<u64>, FieldError> {
        let Some(text) = self.extra.get(CALIBRATION_SEED_FIELD) else {
            return Ok(None);
        };
        text.trim().parse().map(Some).map_err(|_| FieldError {
            field: CALIBRATION_SEED_FIELD,
            value: text.clone(),
            expected: "a whole number",
        })
    }

    /// The drift watch's reference timing (µs), if recorded.
    pub fn sentinel_baseline_us(&self) -> Result<Option<f64>, FieldError> {
        number(self, SENTINEL_BASELINE_FIELD)
    }

    /// The reference every run was scaled by, if the table was profiled
    /// with one.
    pub fn timing_reference(&self) -> Result<Option<TimingReference>, FieldError> {
        let Some(text) = self.extra.get(REFERENCE_KEY_FIELD) else {
            return Ok(None);
        };
        let key = text.trim().parse::<OpKey>().map_err(|_| FieldError {
            field: REFERENCE_KEY_FIELD,
            value: text.clone(),
            expected: "an op key",
        })?;
        let level_us = match number(self, REFERENCE_LEVEL_FIELD)? {
            Some(v) if v > 0.0 => v,
            other => {
                return Err(FieldError {
                    field: REFERENCE_LEVEL_FIELD,
                    value: other.map(|v| v.to_string()).unwrap_or_default(),
                    expected: "a positive number beside x-reference-key",
                });
            }
        };
        Ok(Some(TimingReference { key, level_us }))
    }

    /// Records the reference every run is scaled by.
    pub fn set_timing_reference(&mut self, reference: &TimingReference) {
        self.extra
            .insert(REFERENCE_KEY_FIELD.into(), reference.key.to_string());
        self.extra
            .insert(REFERENCE_LEVEL_FIELD.into(), reference.level_us.to_string());
    }

    /// The statistic's name as recorded (`median` when the note is absent).
    pub fn statistic_name(&self) -> &str {
        self.extra
            .get(STATISTIC_FIELD)
            .map(|v| v.split(" (").next().unwrap_or_default())
            .unwrap_or("median")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calibration_reads_back_bit_identical() {
        let fit = Calibration {
            op_scale: 0.1 + 0.2,
            per_node_us: 1.0 / 3.0,
            constant_us: -7.123456789012345,
        };
        let mut p = Provenance::default();
        fit.record(&mut p.extra);
        assert_eq!(p.calibration().unwrap(), Some(fit));
        for nodes in [0, 1, 5] {
            let raw = 12.345678901;
            let back = fit.raw_us(fit.calibrated_us(raw, nodes), nodes);
            assert!((back - raw).abs() < 1e-12, "{back} vs {raw}");
        }
        Calibration::forget(&mut p.extra);
        assert_eq!(p.calibration().unwrap(), None);
    }

    #[test]
    fn bad_notes_are_errors_naming_the_field() {
        let mut p = Provenance::default();
        p.extra.insert(OP_SCALE_FIELD.into(), "-1".into());
        let e = p.calibration().unwrap_err().to_string();
        assert_eq!(e, "x-op-scale = '-1': expected a positive number");
        p.extra.insert(OP_SCALE_FIELD.into(), "0.9".into());
        p.extra.insert(PER_NODE_FIELD.into(), "n/a".into());
        let e = p.calibration().unwrap_err().to_string();
        assert_eq!(e, "x-per-node-us = 'n/a': expected a finite number");
        p.extra.insert(CALIBRATION_SEED_FIELD.into(), "1e3".into());
        assert_eq!(
            p.calibration_seed().unwrap_err().field,
            "x-calibration-seed"
        );
        assert_eq!(p.statistic_name(), "median");
    }
}
