//! The settings of the timing commands, and the provenance they record.

use std::path::PathBuf;
use std::time::Duration;

use tunas_shared::table::TimingReference;
use tunas_shared::{Provenance, SearchSpace};

use crate::device;
use crate::runtime::{ExecutionProvider, Runtime, SessionConfig};
use crate::sentinel::SentinelSettings;
use crate::timing::{BenchmarkConfig, ROW_STATISTIC};

/// Settings shared by every timing command.
#[derive(Clone, Debug)]
pub struct TimingSettings {
    /// Intra-op threads.
    pub threads: usize,
    /// Execution provider.
    pub provider: ExecutionProvider,
    /// Pinning as recorded in provenance (`none`, `core 1`).
    pub pinning: String,
    /// Batch size.
    pub batch: u32,
    /// Loop limits for op timing.
    pub op_loop: BenchmarkConfig,
    /// Loop limits for end-to-end timing.
    pub network_loop: BenchmarkConfig,
    /// The device as recorded in provenance (`local:HOST (ARCH)`, or the
    /// label a remote runner passes, e.g. `adb:SERIAL (Pixel 7)`).
    pub device: String,
    /// A reference op timed beside every run, every run scaled to its
    /// level (`profile --reference`; `validate` and `measure` take the
    /// table's).
    pub reference: Option<TimingReference>,
    /// Where a profile collects the reference's own times, to set the
    /// table's level to its fast mode at the end.
    pub reference_log: Option<ReferenceLog>,
}

/// The reference's own times (µs) every timing loop of a run adds to.
#[derive(Clone, Debug, Default)]
pub struct ReferenceLog(std::sync::Arc<std::sync::Mutex<Vec<f64>>>);

impl ReferenceLog {
    /// Adds readings.
    pub(crate) fn extend(&self, readings: &[f64]) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(readings);
    }

    /// The readings so far.
    pub(crate) fn readings(&self) -> Vec<f64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl TimingSettings {
    /// These settings with the reference a table was profiled with, if any.
    pub fn with_reference_of(
        mut self,
        table: &tunas_shared::LatencyTable,
    ) -> Result<Self, super::error::ProfileError> {
        self.reference = table.provenance.timing_reference().map_err(|source| {
            super::error::ProfileError::BadTableNote {
                table: table.path_text(),
                source,
            }
        })?;
        Ok(self)
    }

    /// The statistic every timing reports, in words: the row statistic,
    /// and the reference its runs were scaled by.
    pub fn statistic_text(&self) -> String {
        match &self.reference {
            None => ROW_STATISTIC.name().into(),
            Some(r) => format!(
                "{} of runs scaled to the reference op {} at {:.2} us",
                ROW_STATISTIC.name(),
                r.key,
                r.level_us
            ),
        }
    }
}

/// Settings of `profile`.
#[derive(Clone, Debug)]
pub struct ProfileSettings {
    /// Timing settings.
    pub timing: TimingSettings,
    /// Output table.
    pub out: PathBuf,
    /// Continue an interrupted run.
    pub resume: bool,
    /// Overwrite an existing table.
    pub force: bool,
    /// Random networks timed end to end to fit the per-inference constant.
    pub calibration_networks: usize,
    /// Seed of the calibration networks.
    pub calibration_seed: u64,
    /// Stop looking for context networks after this many in a row add no key.
    pub max_networks_without_progress: usize,
    /// Each op is timed in this many different networks; their runs are pooled.
    pub contexts_per_key: usize,
    /// Show a progress bar.
    pub progress: bool,
    /// Print plain `progress: ...` lines to stderr (for remote runs, where
    /// stderr is a pipe and no bar is drawn).
    pub progress_lines: bool,
    /// At most one progress line per this interval (the first and last
    /// lines come at once).
    pub progress_every: Duration,
    /// Measure only the first N op keys of the space (smoke tests, emulated
    /// devices); the table is then partial and not calibrated.
    pub max_keys: Option<usize>,
    /// Thermal drift watch.
    pub sentinel: SentinelSettings,
    /// Time the sentinel op beside every run and scale every run to its
    /// level (a device that flips between speed modes within seconds).
    pub reference: bool,
}

pub(super) fn session_config(t: &TimingSettings, profile_prefix: Option<PathBuf>) -> SessionConfig {
    SessionConfig {
        intra_threads: t.threads,
        provider: t.provider,
        profile_prefix,
        input_seed: 0,
    }
}

/// The provenance of a new table.
pub fn new_provenance(runtime: &Runtime, space: &SearchSpace, t: &TimingSettings) -> Provenance {
    Provenance {
        device: t.device.clone(),
        cpu: device::cpu_description(),
        os: device::os_description(),
        runtime: "onnxruntime".into(),
        runtime_version: runtime.version().to_string(),
        execution_provider: t.provider.name().into(),
        threads: t.threads as u32,
        pinning: t.pinning.clone(),
        batch: t.batch,
        date: tunas_shared::time::utc_now_rfc3339(),
        profiler_version: env!("CARGO_PKG_VERSION").into(),
        space: space.name.clone(),
        space_hash: space.content_hash(),
        method: "ops timed in context (random networks, per-node profile attributed by op scope; one-op models for keys no network reached); constant, scale and per-op cost fitted on end-to-end random networks".into(),
        overhead_us: 0.0,
        extra: [("x-statistic".to_string(), ROW_STATISTIC.provenance_text())].into(),
    }
}
