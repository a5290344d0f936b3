//! Latency tables: one row per op key with its timing statistics, plus the
//! provenance of the measurements (docs/design.md, "Latency tables").
//!
//! The file is CSV preceded by `# field = value` provenance lines:
//!
//! ```text
//! # tunas latency table v1
//! # device = local
//! # ...
//! op,input_h,input_w,cin,cout,mid,kernel,stride,se,act,residual,batch,median_us,p10_us,p90_us,mean_us,std_us,runs,measured_at
//! stem,28,28,1,8,1,3,1,0,relu,0,1,3.1,3.0,3.4,3.2,0.2,200,2026-11-28T01:00:00Z
//! ```
//!
//! Reading is strict: every problem is an error naming the file, the line
//! and, where known, the op key.

mod calibration;
mod estimate;
mod parse;
mod provenance;
mod schema;
mod stats;
mod write;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::opkey::OpKey;

pub use calibration::{
    CALIBRATION_SEED_FIELD, Calibration, FIT_CONSTANT_FIELD, FieldError, OP_SCALE_FIELD,
    PER_NODE_FIELD, REFERENCE_KEY_FIELD, REFERENCE_LEVEL_FIELD, REFERENCE_START_FIELD,
    SENTINEL_BASELINE_FIELD, STATISTIC_FIELD, TimingReference,
};
pub use provenance::{KIND_SCALE_FIELD, Provenance, kind_scales_text};
pub use schema::TABLE_SIGNATURE;
pub use stats::{OpStats, Statistic, quantile};
pub use write::write_atomic;

/// A latency table: provenance and one [`OpStats`] per [`OpKey`].
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyTable {
    /// Where and how it was measured.
    pub provenance: Provenance,
    /// The rows.
    pub rows: BTreeMap<OpKey, OpStats>,
    /// The file it was read from (for error messages), if any.
    pub path: Option<PathBuf>,
}

impl LatencyTable {
    /// An empty table with this provenance.
    pub fn new(provenance: Provenance) -> Self {
        LatencyTable {
            provenance,
            rows: BTreeMap::new(),
            path: None,
        }
    }

    /// The file the table was read from, or `<latency table>`.
    pub fn path_text(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<latency table>".into())
    }
}
