//! The command line: clap definitions, and the one conversion of each
//! command's flags into the library's typed request. Ranges are checked by
//! clap when the line is parsed; what clap cannot check is checked here,
//! before any work starts, and the error names the flag.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tunas_profiler::export::ExportFormat;
use tunas_profiler::remote::{DeviceRequest, DeviceSpec, RemoteRun, Transport};
use tunas_profiler::request::{
    CALIBRATION_SEED, MeasureRequest, Pin, ProfileRequest, RefreshRequest, RunRequest,
    TimingRequest, ValidateRequest,
};

/// Measure what every op of a neural-architecture search space costs on
/// this device, and write it as a latency table for tunas-searcher.
///
/// Data (tables, CSV, JSON) goes to stdout; progress and logs go to stderr.
#[derive(Parser, Debug)]
#[command(name = "tunas-profiler", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// A whole-number flag from `min` to `max`. Every numeric flag is checked
/// here, when the command line is parsed, before any work starts; clap
/// names the flag in the error.
fn whole<T>(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64>,
{
    move |text| {
        let range = || format!("a whole number from {min} to {max}");
        let v: u64 = text
            .trim()
            .parse()
            .map_err(|_| format!("expected {}", range()))?;
        if v < min || v > max {
            return Err(format!("must be {}", range()));
        }
        T::try_from(v).map_err(|_| format!("must be {}", range()))
    }
}

/// A finite number above `min` (or at it, when `min_allowed`) and at most
/// `max`.
fn number(
    min: f64,
    min_allowed: bool,
    max: f64,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |text| {
        let range = || {
            let low = if min_allowed { "from" } else { "above" };
            format!("a number {low} {min} up to {max}")
        };
        let v: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("expected {}", range()))?;
        let low_ok = if min_allowed { v >= min } else { v > min };
        if !v.is_finite() || !low_ok || v > max {
            return Err(format!("must be {}", range()));
        }
        Ok(v)
    }
}

/// Limits of the numeric flags: generous for real use, small enough that a
/// typo cannot ask for a run that never ends or memory no device has.
const MAX_THREADS: u64 = 1024;
const MAX_BATCH: u64 = 1024;
const MAX_RUNS: u64 = 1_000_000;
/// Each timing loop stops after 60 s whatever its minimums.
const MAX_LOOP_MS: u64 = 60_000;
const DAY_S: f64 = 86_400.0;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the built-in search spaces, or print one as TOML.
    ///
    /// Columns: number of decisions, number of op keys a latency table for
    /// the space needs, log10 of the number of distinct networks, and the
    /// content hash that tables record.
    Spaces {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
        /// Print this space (a built-in name or a .toml file) as TOML, the
        /// format to copy when writing your own space.
        #[arg(long, value_name = "NAME")]
        show: Option<String>,
    },
    /// Print the op keys a space needs, as CSV (one row per op to profile).
    Ops {
        /// A built-in space name (see `spaces`) or a path to a .toml file.
        #[arg(long, value_name = "NAME|FILE.toml")]
        space: String,
        /// Batch size of every op.
        #[arg(long, default_value_t = 1, value_parser = whole::<u32>(1, MAX_BATCH))]
        batch: u32,
    },
    /// Time every op of a space on a device and write the latency table.
    ///
    /// Ops are timed in context (random networks with per-node profiling),
    /// then random networks are timed end to end to calibrate the sums.
    /// Rows are appended to FILE.partial as they are measured: a killed run
    /// continues with --resume. With --device adb|ssh the profiler runs on
    /// the phone or board and the table is pulled back here; re-running the
    /// same command after a dropped connection resumes on the device.
    Profile(ProfileArgs),
    /// Bring a table up to date: measure only what is missing or stale.
    ///
    /// Keys a changed space no longer has are dropped and new ones measured;
    /// a different ONNX Runtime version re-measures every row; rows older
    /// than --older-than days are re-measured. Everything else is kept, the
    /// whole table is calibrated again, and an `x-refresh-N` provenance line
    /// records what was re-measured when (each row keeps its measured_at).
    /// Threads, execution provider and batch are the table's own.
    Refresh(RefreshArgs),
    /// Time one architecture (or an ONNX file) end to end.
    Measure(MeasureArgs),
    /// Check a table: time N random architectures end to end and compare
    /// them with the table's estimates.
    Validate(ValidateArgs),
    /// Compare tables of the same space (repeatability): key by key for
    /// each pair, and on the estimates of random whole networks.
    ///
    /// A network's spread is the largest distance of one table's estimate
    /// from the median of all the tables' estimates; the summary gives the
    /// fraction of networks within ±3%.
    Compare {
        /// Two or more tables of one space.
        #[arg(required = true, num_args = 2.., value_name = "TABLE")]
        tables: Vec<PathBuf>,
        /// The space, when the tables' is not built in (a .toml file).
        #[arg(long, value_name = "NAME|FILE.toml")]
        space: Option<String>,
        /// Random networks whose estimates are compared.
        #[arg(long, default_value_t = 100, value_parser = whole::<usize>(1, 100_000))]
        networks: usize,
        /// Their seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also compare the estimates with each table divided by its
        /// reference level (`x-reference-level-us`, written by `profile
        /// --reference`): what agrees then is the tables' shape, with the
        /// speed the device ran at during each profile taken out. Every
        /// table needs the level.
        #[arg(long)]
        per_level: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Convert a table for the PyTorch searchers (ProxylessNAS, Once-for-All) or to JSON.
    Export {
        /// The latency table.
        #[arg(long, value_name = "FILE")]
        table: PathBuf,
        /// Output format.
        #[arg(long, value_enum)]
        format: ExportFormatArg,
    },
    /// Run a request a host shipped to this device (the device side of
    /// `--device adb|ssh`), and write its result beside it.
    #[command(hide = true)]
    RunRequest {
        /// The request (JSON), as `--device` runs write it.
        file: PathBuf,
    },
}

// The flags of `profile` (no doc comment: the variant's is the help).
#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// A built-in space name or a path to a .toml file.
    #[arg(long, value_name = "NAME|FILE.toml")]
    pub space: String,
    /// Where to write the table (CSV with provenance). With
    /// --device all-adb: a folder, one MODEL_SERIAL.csv per phone.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Continue an interrupted run from FILE.partial (remote devices
    /// resume by themselves).
    #[arg(long)]
    pub resume: bool,
    /// Overwrite an existing table.
    #[arg(long)]
    pub force: bool,
    /// Measure only the first N op keys of the space (smoke tests,
    /// emulators). The table is then partial and not calibrated.
    #[arg(long, value_name = "N", value_parser = whole::<usize>(1, MAX_RUNS))]
    pub max_keys: Option<usize>,
    /// Seed of the random context and calibration networks. Profiles with
    /// the default time the same networks; give each of several profiles
    /// its own seed to make them independent (a resumed run must use the
    /// seed it started with).
    #[arg(long, value_name = "N", default_value_t = CALIBRATION_SEED)]
    pub seed: u64,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
}

// The flags of `refresh` (no doc comment: the variant's is the help).
#[derive(Args, Debug)]
pub struct RefreshArgs {
    /// The table to refresh.
    #[arg(long, value_name = "FILE")]
    pub table: PathBuf,
    /// The space (default: the table's, when it is a built-in space).
    #[arg(long, value_name = "NAME|FILE.toml")]
    pub space: Option<String>,
    /// Re-measure rows measured more than this many days ago.
    #[arg(long, value_name = "DAYS", value_parser = number(0.0, true, 36_500.0))]
    pub older_than: Option<f64>,
    /// Write the refreshed table here instead of over --table.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
}

// The flags of `measure` (no doc comment: the variant's is the help).
#[derive(Args, Debug)]
pub struct MeasureArgs {
    /// A built-in space name or a path to a .toml file (with --arch).
    #[arg(long, value_name = "NAME|FILE.toml", required_unless_present = "model")]
    pub space: Option<String>,
    /// The architecture: compact text, `largest` or `random:SEED`.
    #[arg(long, value_name = "ARCH", required_unless_present = "model")]
    pub arch: Option<String>,
    /// Time this ONNX model instead (e.g. from `tunas-searcher export`).
    #[arg(long, value_name = "FILE.onnx", conflicts_with = "arch")]
    pub model: Option<PathBuf>,
    /// Also print the table's estimate (of --arch, or of the architecture
    /// an exported --model records in its metadata).
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub timing: TimingArgs,
}

// The flags of `validate` (no doc comment: the variant's is the help).
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// A built-in space name or a path to a .toml file.
    #[arg(long, value_name = "NAME|FILE.toml")]
    pub space: String,
    /// The latency table to check.
    #[arg(long, value_name = "FILE")]
    pub table: PathBuf,
    /// Number of random architectures.
    #[arg(long, default_value_t = ValidateRequest::DEFAULT_SAMPLES, value_parser = whole::<usize>(2, 100_000))]
    pub samples: usize,
    /// Seed of the random architectures.
    #[arg(long, default_value_t = ValidateRequest::DEFAULT_SEED)]
    pub seed: u64,
    /// Time every network in N rounds over all of them (each a full timing
    /// loop) and take the median of its rounds: a burst of drift on a
    /// shared machine then spoils one round of the networks it meets, not
    /// their figures. Costs N times the time.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = whole::<usize>(1, 100))]
    pub rounds: usize,
    /// Print the full report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the estimate-vs-measured chart (.svg or .png).
    #[arg(long, value_name = "FILE.svg|png")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub timing: TimingArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormatArg {
    ProxylessnasYaml,
    OfaYaml,
    Json,
}

/// How ops and networks are timed.
#[derive(Args, Debug, Clone)]
pub struct TimingArgs {
    /// Intra-op threads of ONNX Runtime [default: 1; refresh: the table's].
    #[arg(long, value_name = "N", value_parser = whole::<usize>(1, MAX_THREADS))]
    threads: Option<usize>,
    /// Execution provider: cpu, xnnpack, nnapi or qnn. One that cannot be
    /// registered is an error, never a silent CPU fallback [default: cpu;
    /// refresh: the table's].
    #[arg(long, value_name = "EP")]
    ep: Option<String>,
    /// Pin the process (taskset): a core (`4`), a list (`4,5,6,7`), or `big`
    /// for the cores with the highest cpuinfo_max_freq (big.LITTLE phones;
    /// unpinned, and said so, where /sys has no cpufreq) [default: none
    /// here, big on adb/ssh devices].
    #[arg(long, value_name = "CORES|big")]
    pin: Option<String>,
    /// Batch size [default: 1; refresh: the table's].
    #[arg(long, value_name = "N", value_parser = whole::<u32>(1, MAX_BATCH))]
    batch: Option<u32>,
    /// Path to libonnxruntime.so (else ORT_DYLIB_PATH, the copy `cargo xtask
    /// setup` provisions, or an installed Python onnxruntime).
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
    /// Op timing: minimum warm-up runs.
    #[arg(long, default_value_t = TimingRequest::default().warmup_runs, value_parser = whole::<usize>(0, MAX_RUNS))]
    warmup_runs: usize,
    /// Op timing: minimum warm-up time (ms).
    #[arg(long, default_value_t = TimingRequest::default().warmup_ms, value_parser = whole::<u64>(0, MAX_LOOP_MS))]
    warmup_ms: u64,
    /// Op timing: minimum timed runs (per network an op is timed in).
    #[arg(long, default_value_t = TimingRequest::default().runs, value_parser = whole::<usize>(1, MAX_RUNS))]
    runs: usize,
    /// Op timing: minimum timed time (ms).
    #[arg(long, default_value_t = TimingRequest::default().min_ms, value_parser = whole::<u64>(0, MAX_LOOP_MS))]
    min_ms: u64,
    /// End-to-end timing: minimum timed runs.
    #[arg(long, default_value_t = TimingRequest::default().network_runs, value_parser = whole::<usize>(1, MAX_RUNS))]
    network_runs: usize,
    /// End-to-end timing: minimum timed time (ms).
    #[arg(long, default_value_t = TimingRequest::default().network_min_ms, value_parser = whole::<u64>(0, MAX_LOOP_MS))]
    network_min_ms: u64,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// How `profile` and `refresh` measure, beyond the timing loops.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Random networks timed end to end to fit the per-inference constant
    /// (at least 3: the fit has three unknowns).
    #[arg(long, default_value_t = RunRequest::default().calibration_networks, value_parser = whole::<usize>(3, 100_000))]
    calibration_networks: usize,
    /// Different networks each op is timed in (runs pooled).
    #[arg(long, default_value_t = RunRequest::default().contexts, value_parser = whole::<usize>(1, 100))]
    contexts: usize,
    /// Re-time the sentinel op after every N context networks or one-op
    /// keys; 0 turns the thermal-drift watch off.
    #[arg(long, value_name = "N", default_value_t = RunRequest::default().sentinel_every, value_parser = whole::<usize>(0, MAX_RUNS))]
    sentinel_every: usize,
    /// Drift of the sentinel from its first timing (percent) that counts as
    /// throttling: pause, then re-measure the rows taken since the last
    /// steady check.
    #[arg(long, value_name = "PCT", default_value_t = RunRequest::default().drift_threshold_pct, value_parser = number(0.0, false, 1000.0))]
    drift_threshold: f64,
    /// Cool-down pause (seconds) after drift, up to 3 times before the new
    /// level is taken as the baseline (recorded in the provenance).
    #[arg(long, value_name = "SECONDS", default_value_t = RunRequest::default().cooldown_s, value_parser = number(0.0, true, DAY_S))]
    cooldown_s: f64,
    /// Total cool-down pausing allowed over the run (seconds); once spent,
    /// drift resets the baseline and re-measures rows without pausing (a
    /// machine whose speed keeps changing for reasons other than heat).
    #[arg(long, value_name = "SECONDS", default_value_t = RunRequest::default().cooldown_budget_s, value_parser = number(0.0, true, 7.0 * DAY_S))]
    cooldown_budget_s: f64,
    /// Print plain `progress: ...` lines to stderr, also on a terminal
    /// (what remote runs stream back). Without it a terminal gets a progress
    /// bar, and any other stderr (a log, CI, a pipe) these lines unless
    /// --quiet.
    #[arg(long)]
    progress_lines: bool,
    /// With --progress-lines: at most one line per this many seconds (the
    /// first and the last come at once; a count is never printed twice).
    #[arg(long, value_name = "SECONDS", default_value_t = RunRequest::default().progress_every_s, value_parser = number(0.0, true, 3600.0))]
    progress_every: f64,
    /// Time the sentinel op beside every run (before and after it) and
    /// scale each run by the sentinel's level over its time there: for a
    /// device whose speed flips between modes within seconds (a shared VM,
    /// a phone moving between cores), where pausing does not help. The
    /// table records the reference; `validate`, `measure --table` and
    /// `refresh` then time the same way. The drift watch is then off (its
    /// pauses would only cost time). The reference's runs count toward
    /// each loop's minimum time, so loops bound by --min-ms or
    /// --network-min-ms time fewer runs of their own.
    #[arg(long)]
    reference: bool,
    /// The device name recorded in the table (set by the adb/ssh runners).
    #[arg(long, value_name = "TEXT", hide = true)]
    device_label: Option<String>,
}

/// Where to profile.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Where to run: local, adb (the one attached phone), adb:SERIAL,
    /// all-adb (every attached phone, in parallel), or
    /// ssh:[USER@]HOST[:PORT] (a Linux board). adb is $ADB or `adb`; ssh is
    /// the system OpenSSH client.
    #[arg(long, value_name = "DEVICE", default_value = "local")]
    device: String,
    /// Work folder on the device [default: /data/local/tmp/tunas on
    /// Android; ~/.cache/tunas, else /tmp/tunas-USER, over ssh]. It is
    /// created with mode 700; an existing one must be a folder (not a
    /// symbolic link) owned by the login user that no one else can write.
    #[arg(long, value_name = "DIR")]
    remote_dir: Option<String>,
    /// The profiler build for the device [default: this executable when the
    /// device has this machine's architecture, else the build `cargo xtask
    /// android` / `cargo xtask cross aarch64-linux-gnu` leaves in target/].
    #[arg(long, value_name = "PATH")]
    device_binary: Option<PathBuf>,
    /// libonnxruntime.so for the device [default: this machine's when the
    /// architecture matches, else target/onnxruntime-android/ or
    /// target/onnxruntime-ARCH/].
    #[arg(long, value_name = "PATH")]
    device_ort_lib: Option<PathBuf>,
    /// Extra ssh arguments, split on whitespace (repeatable), e.g.
    /// `--ssh-option "-i key -o StrictHostKeyChecking=no"`; $TUNAS_SSH_OPTS
    /// is added too. Every connection uses `-o BatchMode=yes`.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    ssh_option: Vec<String>,
}

impl DeviceArgs {
    pub fn spec(&self) -> Result<DeviceSpec> {
        self.device.parse().context("--device")
    }

    pub fn ssh_options(&self) -> Vec<String> {
        self.ssh_option
            .iter()
            .flat_map(|o| o.split_whitespace().map(String::from))
            .collect()
    }

    pub fn remote_run(
        &self,
        transport: Transport,
        request: DeviceRequest,
        out: PathBuf,
        ort_lib: Option<PathBuf>,
    ) -> RemoteRun {
        RemoteRun {
            transport,
            request,
            out,
            remote_dir: self.remote_dir.clone(),
            device_binary: self.device_binary.clone(),
            device_ort_lib: self.device_ort_lib.clone(),
            local_ort_lib: ort_lib,
        }
    }
}

impl TimingArgs {
    /// The timing request. `--pin` is checked here; `--ep` where the
    /// command uses it (a refresh first compares it with the table's).
    pub fn request(&self) -> Result<TimingRequest> {
        let pin = match self.pin.as_deref() {
            None => None,
            Some(text) => Some(
                text.parse::<Pin>()
                    .map_err(|e| anyhow::anyhow!("--pin {e}"))?,
            ),
        };
        Ok(TimingRequest {
            threads: self.threads,
            ep: self.ep.clone(),
            pin,
            batch: self.batch,
            ort_lib: self.ort_lib.clone(),
            warmup_runs: self.warmup_runs,
            warmup_ms: self.warmup_ms,
            runs: self.runs,
            min_ms: self.min_ms,
            network_runs: self.network_runs,
            network_min_ms: self.network_min_ms,
            quiet: self.quiet,
        })
    }
}

impl RunArgs {
    /// The run request (every range was checked by clap).
    pub fn request(&self) -> RunRequest {
        RunRequest {
            calibration_networks: self.calibration_networks,
            contexts: self.contexts,
            sentinel_every: self.sentinel_every,
            drift_threshold_pct: self.drift_threshold,
            cooldown_s: self.cooldown_s,
            cooldown_budget_s: self.cooldown_budget_s,
            progress_lines: self.progress_lines,
            progress_every_s: self.progress_every,
            reference: self.reference,
            // `profile --seed`; `refresh` takes the table's.
            seed: CALIBRATION_SEED,
            device_label: self.device_label.clone(),
        }
    }
}

impl ExportFormatArg {
    /// The library's format.
    pub fn format(self) -> ExportFormat {
        match self {
            ExportFormatArg::ProxylessnasYaml => ExportFormat::ProxylessnasYaml,
            ExportFormatArg::OfaYaml => ExportFormat::OfaYaml,
            ExportFormatArg::Json => ExportFormat::Json,
        }
    }
}

impl ProfileArgs {
    /// The request of `profile`.
    pub fn request(&self) -> Result<ProfileRequest> {
        Ok(ProfileRequest {
            space: self.space.clone(),
            out: self.out.clone(),
            resume: self.resume,
            force: self.force,
            max_keys: self.max_keys,
            run: RunRequest {
                seed: self.seed,
                ..self.run.request()
            },
            timing: self.timing.request()?,
        })
    }
}

impl RefreshArgs {
    /// The request of `refresh` (`--out` defaults to `--table`).
    pub fn request(&self) -> Result<RefreshRequest> {
        Ok(RefreshRequest {
            table: self.table.clone(),
            space: self.space.clone(),
            older_than_days: self.older_than,
            out: self.out.clone().unwrap_or_else(|| self.table.clone()),
            run: self.run.request(),
            timing: self.timing.request()?,
        })
    }
}

impl MeasureArgs {
    /// The request of `measure`.
    pub fn request(&self) -> Result<MeasureRequest> {
        Ok(MeasureRequest {
            space: self.space.clone(),
            arch: self.arch.clone(),
            model: self.model.clone(),
            table: self.table.clone(),
            timing: self.timing.request()?,
        })
    }
}

impl ValidateArgs {
    /// The request of `validate`.
    pub fn request(&self) -> Result<ValidateRequest> {
        Ok(ValidateRequest {
            space: self.space.clone(),
            table: self.table.clone(),
            samples: self.samples,
            seed: self.seed,
            rounds: self.rounds,
            plot: self.plot.clone(),
            timing: self.timing.request()?,
        })
    }
}
