//! `refresh`: bring an existing table up to date by measuring only what is
//! missing or stale, keeping every other row as it is.
//!
//! A row is stale when the table was measured with another ONNX Runtime
//! version (then every row is), or when it is older than a given age. A
//! changed space (its hash differs) drops the keys the new space no longer
//! has and measures the keys it gained. Kept rows are turned back into raw
//! timings with the old calibration ([`Calibration`], stored losslessly in
//! the provenance) so that the whole table is calibrated afresh, on this
//! run's end-to-end networks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;
use tunas_shared::table::{Calibration, FieldError};
use tunas_shared::{LatencyTable, OpStats, SearchSpace, space_op_keys};

use crate::device;
use crate::profile::{Plan, op_node_count};
use crate::request::TimingRequest;

/// Why a table cannot be refreshed as asked.
#[derive(Debug, Error)]
pub enum RefreshError {
    /// No space was given and the table's is not built in.
    #[error("{} was made for the space '{space}', which is not built in", table.display())]
    SpaceNotBuiltIn {
        /// The table.
        table: PathBuf,
        /// The space it records.
        space: String,
    },
    /// A timing setting other than the table's was asked for.
    #[error(
        "{given}: {} was measured with {own}; a refresh keeps the table's settings (profile anew for others)",
        table.display()
    )]
    SettingChanged {
        /// `threads`, `batch` or `ep`.
        setting: &'static str,
        /// What was asked for.
        given: String,
        /// What the table was measured with.
        own: String,
        /// The table.
        table: PathBuf,
    },
    /// The table was measured on another CPU.
    #[error(
        "{} was measured on {table_cpu}, this device is {this_cpu}: refresh a table on the device it came from, or profile anew",
        table.display()
    )]
    OtherCpu {
        /// The table.
        table: PathBuf,
        /// The CPU it records.
        table_cpu: String,
        /// This device's CPU.
        this_cpu: String,
    },
    /// The table's calibration notes cannot be read back.
    #[error("{}: its calibration cannot be undone for the rows it keeps", table.display())]
    BadCalibration {
        /// The table.
        table: PathBuf,
        /// The unreadable note.
        #[source]
        source: FieldError,
    },
}

/// The space to refresh `old` (read from `table`) for: `given`, else the
/// table's own when it is built in.
pub fn space_name(
    table: &Path,
    old: &LatencyTable,
    given: Option<String>,
) -> Result<String, RefreshError> {
    if let Some(s) = given {
        return Ok(s);
    }
    if tunas_shared::builtin_space(&old.provenance.space).is_err() {
        return Err(RefreshError::SpaceNotBuiltIn {
            table: table.to_path_buf(),
            space: old.provenance.space.clone(),
        });
    }
    Ok(old.provenance.space.clone())
}

/// The rows mean the table's threads, batch and execution provider: a
/// refresh keeps them. Refuses others and fills them into `timing`.
pub fn keep_table_settings(
    table: &Path,
    old: &LatencyTable,
    timing: &mut TimingRequest,
) -> Result<(), RefreshError> {
    let prov = &old.provenance;
    for (setting, given, own) in [
        (
            "threads",
            timing.threads.map(|v| v.to_string()),
            prov.threads.to_string(),
        ),
        (
            "batch",
            timing.batch.map(|v| v.to_string()),
            prov.batch.to_string(),
        ),
        ("ep", timing.ep.clone(), prov.execution_provider.clone()),
    ] {
        if let Some(given) = given
            && given != own
        {
            return Err(RefreshError::SettingChanged {
                setting,
                given,
                own,
                table: table.to_path_buf(),
            });
        }
    }
    timing.threads = Some(prov.threads as usize);
    timing.batch = Some(prov.batch);
    timing.ep = Some(prov.execution_provider.clone());
    Ok(())
}

/// A table is refreshed on the device it was measured on.
pub fn check_same_cpu(table: &Path, old: &LatencyTable) -> Result<(), RefreshError> {
    let this_cpu = device::cpu_description();
    if old.provenance.cpu != this_cpu {
        return Err(RefreshError::OtherCpu {
            table: table.to_path_buf(),
            table_cpu: old.provenance.cpu.clone(),
            this_cpu,
        });
    }
    Ok(())
}

/// The Unix time before which rows are stale, for rows older than
/// `older_than_days`.
pub fn cutoff_unix(older_than_days: Option<f64>) -> Option<u64> {
    older_than_days.map(|days| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        now.saturating_sub((days * 86_400.0) as u64)
    })
}

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
/// epoch) are stale. Kept rows are un-calibrated (see the module docs); a
/// table whose calibration notes cannot be read is refused.
pub fn plan_refresh(
    old: &LatencyTable,
    space: &SearchSpace,
    runtime_version: &str,
    cutoff_unix: Option<u64>,
) -> Result<(Plan, RefreshCounts), RefreshError> {
    let keys = space_op_keys(space, old.provenance.batch);
    let runtime_changed = old.provenance.runtime_version != runtime_version;
    let calibration = old
        .provenance
        .calibration()
        .map_err(|source| RefreshError::BadCalibration {
            table: old.path.clone().unwrap_or_default(),
            source,
        })?
        .unwrap_or(Calibration::IDENTITY);
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
        counts.kept += 1;
        let raw = uncalibrated(row, &calibration, op_node_count(key));
        plan.kept_raw.insert(*key, raw);
    }
    plan.extra = refresh_history(old, space, runtime_version, &counts);
    Ok((plan, counts))
}

/// A calibrated row of an op with `nodes` ONNX nodes turned back into a
/// raw timing (each statistic at least 0).
fn uncalibrated(row: &OpStats, calibration: &Calibration, nodes: usize) -> OpStats {
    let raw = |v: f64| calibration.raw_us(v, nodes);
    OpStats {
        median_us: raw(row.median_us),
        p10_us: raw(row.p10_us),
        p90_us: raw(row.p90_us),
        mean_us: raw(row.mean_us),
        std_us: row.std_us / calibration.op_scale,
        runs: row.runs,
        measured_at: row.measured_at.clone(),
    }
}

/// The refresh history of `old` (`x-refresh-NNN`) with this refresh added:
/// when, what `counts` says, and a change of space or runtime.
fn refresh_history(
    old: &LatencyTable,
    space: &SearchSpace,
    runtime_version: &str,
    counts: &RefreshCounts,
) -> BTreeMap<String, String> {
    // Earlier refreshes stay on record.
    let mut history: BTreeMap<String, String> = old
        .provenance
        .extra
        .iter()
        .filter(|(k, _)| k.starts_with("x-refresh-"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let n = history.len() + 1;
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
    if old.provenance.runtime_version != runtime_version {
        note.push_str(&format!(
            "; runtime {} -> {runtime_version}",
            old.provenance.runtime_version
        ));
    }
    history.insert(format!("x-refresh-{n:03}"), note);
    history
}
