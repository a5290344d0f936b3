//! Typed requests of the profiler's commands: what the binary builds from
//! its command line (every default in one place, every value checked) and
//! hands to the library. Nothing here has a side effect: pinning the
//! process is the explicit step [`Pin::apply`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::device;
use crate::profile::{ProfileSettings, TimingSettings};
use crate::runtime::{ExecutionProvider, RuntimeError};
use crate::sentinel::SentinelSettings;
use crate::timing::BenchmarkConfig;

/// Which cores the process is pinned to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pin {
    /// Not pinned.
    None,
    /// The cores with the highest `cpuinfo_max_freq` (big.LITTLE phones).
    Big,
    /// These cores.
    Cores(Vec<usize>),
}

/// A pinning that is not a core, a list of cores, `big` or `none`.
#[derive(Debug, Error)]
#[error("{0}: expected a core number, a list like 4,5,6,7, big or none")]
pub struct PinParseError(pub String);

impl FromStr for Pin {
    type Err = PinParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(Pin::None),
            "big" => Ok(Pin::Big),
            list => list
                .split(',')
                .map(|c| c.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .map(Pin::Cores)
                .map_err(|_| PinParseError(list.to_string())),
        }
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pin::None => f.write_str("none"),
            Pin::Big => f.write_str("big"),
            Pin::Cores(cores) => {
                let list: Vec<String> = cores.iter().map(usize::to_string).collect();
                f.write_str(&list.join(","))
            }
        }
    }
}

/// Pinning failed.
#[derive(Debug, Error)]
pub enum PinError {
    /// The big cores were found but could not be pinned to.
    #[error("{0}")]
    Big(String),
    /// The listed cores could not be pinned to.
    #[error("{0}")]
    Cores(String),
}

impl Pin {
    /// Pins this process (taskset) and returns the pinning as provenance
    /// records it. `big` where /sys has no cpufreq leaves the process
    /// unpinned and says so on stderr.
    pub fn apply(&self) -> Result<String, PinError> {
        match self {
            Pin::None => Ok("none".into()),
            Pin::Big => {
                let big = device::Sysfs::system().big_cores();
                if big.is_empty() {
                    eprintln!(
                        "--pin big: no core reports cpuinfo_max_freq (/sys/devices/system/cpu/cpu*/cpufreq is absent); not pinned"
                    );
                    return Ok("none (--pin big: no cpufreq to find the big cores)".into());
                }
                let done = device::pin_to_cores(&big).map_err(PinError::Big)?;
                Ok(format!("{done} (big: highest cpuinfo_max_freq)"))
            }
            Pin::Cores(cores) => device::pin_to_cores(cores).map_err(PinError::Cores),
        }
    }
}

/// How ops and networks are timed (`profile`, `refresh`, `measure`,
/// `validate`). `None` means the default: 1 thread, cpu, batch 1, unpinned
/// (`refresh`: the table's own; remote devices: pinned to `big`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimingRequest {
    /// Intra-op threads.
    pub threads: Option<usize>,
    /// Execution provider, as given (checked to parse).
    pub ep: Option<String>,
    /// Pinning.
    pub pin: Option<Pin>,
    /// Batch size.
    pub batch: Option<u32>,
    /// libonnxruntime.so to load.
    pub ort_lib: Option<PathBuf>,
    /// Op timing: minimum warm-up runs.
    pub warmup_runs: usize,
    /// Op timing: minimum warm-up time (ms).
    pub warmup_ms: u64,
    /// Op timing: minimum timed runs.
    pub runs: usize,
    /// Op timing: minimum timed time (ms).
    pub min_ms: u64,
    /// End-to-end timing: minimum timed runs.
    pub network_runs: usize,
    /// End-to-end timing: minimum timed time (ms).
    pub network_min_ms: u64,
    /// Hide the progress bar.
    pub quiet: bool,
}

impl Default for TimingRequest {
    /// The defaults of every command that times (the flags' defaults).
    fn default() -> Self {
        TimingRequest {
            threads: None,
            ep: None,
            pin: None,
            batch: None,
            ort_lib: None,
            warmup_runs: 10,
            warmup_ms: 20,
            runs: 60,
            min_ms: 30,
            network_runs: 50,
            network_min_ms: 150,
            quiet: false,
        }
    }
}

impl TimingRequest {
    /// The execution provider (cpu when none was given).
    pub(crate) fn provider(&self) -> Result<ExecutionProvider, RuntimeError> {
        self.ep.as_deref().unwrap_or("cpu").parse()
    }

    /// The timing settings, with `pinning` as [`Pin::apply`] returned it and
    /// the device label a remote runner passed (else this machine's name).
    pub fn settings(
        &self,
        pinning: String,
        device: Option<&str>,
    ) -> Result<TimingSettings, RuntimeError> {
        let ms = Duration::from_millis;
        Ok(TimingSettings {
            threads: self.threads.unwrap_or(1),
            provider: self.provider()?,
            pinning,
            batch: self.batch.unwrap_or(1),
            op_loop: BenchmarkConfig {
                min_warmup_runs: self.warmup_runs,
                min_warmup_time: ms(self.warmup_ms),
                min_runs: self.runs,
                min_time: ms(self.min_ms),
                max_time: Duration::from_secs(60),
            },
            network_loop: BenchmarkConfig {
                min_warmup_runs: self.warmup_runs,
                min_warmup_time: ms(self.warmup_ms.max(50)),
                min_runs: self.network_runs,
                min_time: ms(self.network_min_ms),
                max_time: Duration::from_secs(60),
            },
            device: device
                .map(String::from)
                .unwrap_or_else(device::local_device_name),
            reference: None,
            reference_log: None,
        })
    }
}

/// How `profile` and `refresh` measure, beyond the timing loops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Random networks timed end to end to fit the per-inference constant.
    pub calibration_networks: usize,
    /// Different networks each op is timed in.
    pub contexts: usize,
    /// Re-time the sentinel op after every N networks or keys (0: off).
    pub sentinel_every: usize,
    /// Drift of the sentinel (percent) that counts as throttling.
    pub drift_threshold_pct: f64,
    /// Cool-down pause (seconds) after drift.
    pub cooldown_s: f64,
    /// Total cool-down pausing allowed over the run (seconds).
    pub cooldown_budget_s: f64,
    /// Print plain `progress: ...` lines to stderr.
    pub progress_lines: bool,
    /// At most one progress line per this many seconds.
    pub progress_every_s: f64,
    /// Time the sentinel op beside every run and scale runs to its level.
    #[serde(default)]
    pub reference: bool,
    /// Seed of the context and calibration networks and of their order
    /// (`x-calibration-seed`; `refresh` uses the table's).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The device name recorded in the table (set by the adb/ssh runners).
    pub device_label: Option<String>,
}

/// The default seed of a profile's context and calibration networks (and
/// of the order they are timed in): fixed, so that two tables of one space
/// time the same networks unless `profile --seed` says otherwise. A resumed
/// run keeps its journal's seed.
pub const CALIBRATION_SEED: u64 = 1_000_003;

fn one_round() -> usize {
    1
}

fn default_seed() -> u64 {
    CALIBRATION_SEED
}

/// Random networks drawn in a row without covering a new op key before
/// profiling gives up on in-context coverage and times the rest alone.
pub(crate) const MAX_NETWORKS_WITHOUT_PROGRESS: usize = 50;

impl Default for RunRequest {
    /// The defaults of `profile` and `refresh` (the flags' defaults).
    fn default() -> Self {
        RunRequest {
            calibration_networks: 40,
            contexts: 2,
            sentinel_every: 10,
            drift_threshold_pct: 10.0,
            cooldown_s: 60.0,
            cooldown_budget_s: 600.0,
            progress_lines: false,
            progress_every_s: 5.0,
            reference: false,
            seed: CALIBRATION_SEED,
            device_label: None,
        }
    }
}

impl RunRequest {
    /// The drift watch.
    pub(crate) fn sentinel(&self) -> SentinelSettings {
        SentinelSettings {
            every: self.sentinel_every,
            threshold: self.drift_threshold_pct / 100.0,
            cooldown: Duration::from_secs_f64(self.cooldown_s),
            max_cooldowns: 3,
            cooldown_budget: Duration::from_secs_f64(self.cooldown_budget_s),
        }
    }

    /// What `profile` and `refresh` hand to the measuring loop.
    pub fn settings(
        &self,
        timing: TimingSettings,
        quiet: bool,
        out: &Path,
        resume: bool,
        force: bool,
        max_keys: Option<usize>,
    ) -> ProfileSettings {
        ProfileSettings {
            timing,
            out: out.to_path_buf(),
            resume,
            force,
            calibration_networks: self.calibration_networks,
            calibration_seed: self.seed,
            max_networks_without_progress: MAX_NETWORKS_WITHOUT_PROGRESS,
            contexts_per_key: self.contexts,
            progress: !quiet,
            // Off a terminal (a log, CI, a pipe) the bar is invisible, so
            // plain lines stand in for it unless the run is quiet.
            progress_lines: self.progress_lines
                || (!quiet && !std::io::IsTerminal::is_terminal(&std::io::stderr())),
            progress_every: Duration::from_secs_f64(self.progress_every_s),
            max_keys,
            sentinel: self.sentinel(),
            reference: self.reference,
        }
    }
}

/// `profile`: time every op of a space and write the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileRequest {
    /// A built-in space name or a path to a .toml file.
    pub space: String,
    /// The table to write (all-adb: the folder of tables).
    pub out: PathBuf,
    /// Continue an interrupted run from its journal.
    pub resume: bool,
    /// Overwrite an existing table.
    pub force: bool,
    /// Measure only the first N op keys.
    pub max_keys: Option<usize>,
    /// Calibration, contexts, drift watch, progress.
    pub run: RunRequest,
    /// Timing loops, threads, provider, pinning.
    pub timing: TimingRequest,
}

/// `refresh`: measure only what a table is missing or has stale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefreshRequest {
    /// The table to refresh.
    pub table: PathBuf,
    /// The space (default: the table's, when it is built in).
    pub space: Option<String>,
    /// Re-measure rows measured more than this many days ago.
    pub older_than_days: Option<f64>,
    /// Where the refreshed table goes (default: over `table`).
    pub out: PathBuf,
    /// Calibration, contexts, drift watch, progress.
    pub run: RunRequest,
    /// Timing loops; threads, batch and provider must be the table's.
    pub timing: TimingRequest,
}

/// `measure`: time one architecture of a space, or an ONNX model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasureRequest {
    /// The space of `arch` (or of `model`, when its table's is not built in).
    pub space: Option<String>,
    /// The architecture: compact text, `largest` or `random:SEED`.
    pub arch: Option<String>,
    /// An ONNX model to time instead.
    pub model: Option<PathBuf>,
    /// A table whose estimate to print beside the measurement.
    pub table: Option<PathBuf>,
    /// Timing loops, threads, provider, pinning.
    pub timing: TimingRequest,
}

/// `validate`: time random architectures and compare them with a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidateRequest {
    /// A built-in space name or a path to a .toml file.
    pub space: String,
    /// The table to check.
    pub table: PathBuf,
    /// Number of random architectures.
    pub samples: usize,
    /// Seed of the random architectures.
    pub seed: u64,
    /// Rounds every network is timed in (the figure is their median).
    #[serde(default = "one_round")]
    pub rounds: usize,
    /// Where to write the estimate-vs-measured chart.
    pub plot: Option<PathBuf>,
    /// Timing loops, threads, provider, pinning.
    pub timing: TimingRequest,
}

impl ValidateRequest {
    /// Random architectures timed by default.
    pub const DEFAULT_SAMPLES: usize = 200;
    /// Their default seed.
    pub const DEFAULT_SEED: u64 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_parses_and_prints_back() {
        for text in ["none", "big", "4", "4,5,6,7"] {
            assert_eq!(text.parse::<Pin>().unwrap().to_string(), text);
        }
        assert_eq!(
            " 1, 2".parse::<Pin>().unwrap(),
            Pin::Cores(vec![1, 2]),
            "spaces around cores are allowed"
        );
        let e = "4x".parse::<Pin>().unwrap_err().to_string();
        assert_eq!(
            e,
            "4x: expected a core number, a list like 4,5,6,7, big or none"
        );
    }
}
