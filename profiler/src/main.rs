//! `tunas-profiler`: the command-line front end. Everything testable lives
//! in the library; this file parses arguments and maps errors to exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tunas_profiler::export::{ExportFormat, export};
use tunas_profiler::output::{check_output_file, check_output_folder};
use tunas_profiler::profile::{self, ProfileSettings, TimingSettings};
use tunas_profiler::refresh;
use tunas_profiler::remote::{self, DeviceSpec, RemoteCommand, RemoteRun, Transport};
use tunas_profiler::runtime::{self, ExecutionProvider, Runtime};
use tunas_profiler::sentinel::SentinelSettings;
use tunas_profiler::timing::BenchmarkConfig;
use tunas_profiler::{catalog, device};
use tunas_shared::{Architecture, LatencyTable, load_space};

/// Measure what every op of a neural-architecture search space costs on
/// this device, and write it as a latency table for tunas-searcher.
///
/// Data (tables, CSV, JSON) goes to stdout; progress and logs go to stderr.
#[derive(Parser, Debug)]
#[command(name = "tunas-profiler", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
enum Command {
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
    Profile {
        /// A built-in space name or a path to a .toml file.
        #[arg(long, value_name = "NAME|FILE.toml")]
        space: String,
        /// Where to write the table (CSV with provenance). With
        /// --device all-adb: a folder, one MODEL_SERIAL.csv per phone.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Continue an interrupted run from FILE.partial (remote devices
        /// resume by themselves).
        #[arg(long)]
        resume: bool,
        /// Overwrite an existing table.
        #[arg(long)]
        force: bool,
        /// Measure only the first N op keys of the space (smoke tests,
        /// emulators). The table is then partial and not calibrated.
        #[arg(long, value_name = "N", value_parser = whole::<usize>(1, MAX_RUNS))]
        max_keys: Option<usize>,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        device: DeviceArgs,
        #[command(flatten)]
        timing: TimingArgs,
    },
    /// Bring a table up to date: measure only what is missing or stale.
    ///
    /// Keys a changed space no longer has are dropped and new ones measured;
    /// a different ONNX Runtime version re-measures every row; rows older
    /// than --older-than days are re-measured. Everything else is kept, the
    /// whole table is calibrated again, and an `x-refresh-N` provenance line
    /// records what was re-measured when (each row keeps its measured_at).
    /// Threads, execution provider and batch are the table's own.
    Refresh {
        /// The table to refresh.
        #[arg(long, value_name = "FILE")]
        table: PathBuf,
        /// The space (default: the table's, when it is a built-in space).
        #[arg(long, value_name = "NAME|FILE.toml")]
        space: Option<String>,
        /// Re-measure rows measured more than this many days ago.
        #[arg(long, value_name = "DAYS", value_parser = number(0.0, true, 36_500.0))]
        older_than: Option<f64>,
        /// Write the refreshed table here instead of over --table.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        device: DeviceArgs,
        #[command(flatten)]
        timing: TimingArgs,
    },
    /// Time one architecture (or an ONNX file) end to end.
    Measure {
        /// A built-in space name or a path to a .toml file (with --arch).
        #[arg(long, value_name = "NAME|FILE.toml", required_unless_present = "model")]
        space: Option<String>,
        /// The architecture: compact text, `largest` or `random:SEED`.
        #[arg(long, value_name = "ARCH", required_unless_present = "model")]
        arch: Option<String>,
        /// Time this ONNX model instead (e.g. from `tunas-searcher export`).
        #[arg(long, value_name = "FILE.onnx", conflicts_with = "arch")]
        model: Option<PathBuf>,
        /// Also print the table's estimate (of --arch, or of the architecture
        /// an exported --model records in its metadata).
        #[arg(long, value_name = "FILE")]
        table: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        timing: TimingArgs,
    },
    /// Check a table: time N random architectures end to end and compare
    /// them with the table's estimates.
    Validate {
        /// A built-in space name or a path to a .toml file.
        #[arg(long, value_name = "NAME|FILE.toml")]
        space: String,
        /// The latency table to check.
        #[arg(long, value_name = "FILE")]
        table: PathBuf,
        /// Number of random architectures.
        #[arg(long, default_value_t = 200, value_parser = whole::<usize>(2, 100_000))]
        samples: usize,
        /// Seed of the random architectures.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
        /// Write the estimate-vs-measured chart (.svg or .png).
        #[arg(long, value_name = "FILE.svg|png")]
        plot: Option<PathBuf>,
        #[command(flatten)]
        timing: TimingArgs,
    },
    /// Compare two tables of the same space key by key (repeatability).
    Compare {
        /// First table.
        a: PathBuf,
        /// Second table.
        b: PathBuf,
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
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ExportFormatArg {
    ProxylessnasYaml,
    OfaYaml,
    Json,
}

/// How ops and networks are timed.
#[derive(Args, Debug, Clone)]
struct TimingArgs {
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
    #[arg(long, default_value_t = 10, value_parser = whole::<usize>(0, MAX_RUNS))]
    warmup_runs: usize,
    /// Op timing: minimum warm-up time (ms).
    #[arg(long, default_value_t = 20, value_parser = whole::<u64>(0, MAX_LOOP_MS))]
    warmup_ms: u64,
    /// Op timing: minimum timed runs (per network an op is timed in).
    #[arg(long, default_value_t = 60, value_parser = whole::<usize>(1, MAX_RUNS))]
    runs: usize,
    /// Op timing: minimum timed time (ms).
    #[arg(long, default_value_t = 30, value_parser = whole::<u64>(0, MAX_LOOP_MS))]
    min_ms: u64,
    /// End-to-end timing: minimum timed runs.
    #[arg(long, default_value_t = 50, value_parser = whole::<usize>(1, MAX_RUNS))]
    network_runs: usize,
    /// End-to-end timing: minimum timed time (ms).
    #[arg(long, default_value_t = 150, value_parser = whole::<u64>(0, MAX_LOOP_MS))]
    network_min_ms: u64,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

impl TimingArgs {
    fn settings(&self, device: Option<&str>) -> Result<TimingSettings> {
        let provider: ExecutionProvider = self
            .ep
            .as_deref()
            .unwrap_or("cpu")
            .parse()
            .context("--ep")?;
        // Ranges were checked when the command line was parsed.
        let threads = self.threads.unwrap_or(1);
        let batch = self.batch.unwrap_or(1);
        let pinning = match self.pin.as_deref() {
            None | Some("none") => "none".into(),
            Some("big") => {
                let big = device::Sysfs::system().big_cores();
                if big.is_empty() {
                    eprintln!(
                        "--pin big: no core reports cpuinfo_max_freq (/sys/devices/system/cpu/cpu*/cpufreq is absent); not pinned"
                    );
                    "none (--pin big: no cpufreq to find the big cores)".into()
                } else {
                    let done = device::pin_to_cores(&big)
                        .map_err(anyhow::Error::msg)
                        .context("--pin big")?;
                    format!("{done} (big: highest cpuinfo_max_freq)")
                }
            }
            Some(list) => {
                let cores = list
                    .split(',')
                    .map(|c| c.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "--pin {list}: expected a core number, a list like 4,5,6,7, big or none"
                        )
                    })?;
                device::pin_to_cores(&cores)
                    .map_err(anyhow::Error::msg)
                    .context("--pin")?
            }
        };
        let ms = Duration::from_millis;
        Ok(TimingSettings {
            threads,
            provider,
            pinning,
            batch,
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
        })
    }

    /// The same settings as profiler arguments, for the device's profiler
    /// (`--pin` defaults to `big` there; the runtime is the pushed one).
    fn forward(&self) -> Vec<String> {
        let mut a = vec![
            format!("--warmup-runs={}", self.warmup_runs),
            format!("--warmup-ms={}", self.warmup_ms),
            format!("--runs={}", self.runs),
            format!("--min-ms={}", self.min_ms),
            format!("--network-runs={}", self.network_runs),
            format!("--network-min-ms={}", self.network_min_ms),
            format!("--pin={}", self.pin.as_deref().unwrap_or("big")),
        ];
        if let Some(t) = self.threads {
            a.push(format!("--threads={t}"));
        }
        if let Some(ep) = &self.ep {
            a.push(format!("--ep={ep}"));
        }
        if let Some(b) = self.batch {
            a.push(format!("--batch={b}"));
        }
        a
    }

    fn runtime(&self) -> Result<&'static Runtime> {
        let library = runtime::locate_runtime(self.ort_lib.as_deref())?;
        let rt = runtime::init_runtime(&library)?;
        eprintln!(
            "onnxruntime {} from {} ({})",
            rt.version(),
            library.path.display(),
            library.source
        );
        Ok(rt)
    }
}

/// How `profile` and `refresh` measure, beyond the timing loops.
#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Random networks timed end to end to fit the per-inference constant
    /// (at least 3: the fit has three unknowns).
    #[arg(long, default_value_t = 40, value_parser = whole::<usize>(3, 100_000))]
    calibration_networks: usize,
    /// Different networks each op is timed in (runs pooled).
    #[arg(long, default_value_t = 2, value_parser = whole::<usize>(1, 100))]
    contexts: usize,
    /// Re-time the sentinel op after every N context networks or one-op
    /// keys; 0 turns the thermal-drift watch off.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = whole::<usize>(0, MAX_RUNS))]
    sentinel_every: usize,
    /// Drift of the sentinel from its first timing (percent) that counts as
    /// throttling: pause, then re-measure the rows taken since the last
    /// steady check.
    #[arg(long, value_name = "PCT", default_value_t = 10.0, value_parser = number(0.0, false, 1000.0))]
    drift_threshold: f64,
    /// Cool-down pause (seconds) after drift, up to 3 times before the new
    /// level is taken as the baseline (recorded in the provenance).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = number(0.0, true, DAY_S))]
    cooldown_s: f64,
    /// Total cool-down pausing allowed over the run (seconds); once spent,
    /// drift resets the baseline and re-measures rows without pausing (a
    /// machine whose speed keeps changing for reasons other than heat).
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0, value_parser = number(0.0, true, 7.0 * DAY_S))]
    cooldown_budget_s: f64,
    /// Print plain `progress: ...` lines to stderr (what remote runs stream
    /// back; a terminal gets a progress bar instead).
    #[arg(long)]
    progress_lines: bool,
    /// With --progress-lines: at most one line per this many seconds (the
    /// first and the last come at once; a count is never printed twice).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = number(0.0, true, 3600.0))]
    progress_every: f64,
    /// The device name recorded in the table (set by the adb/ssh runners).
    #[arg(long, value_name = "TEXT", hide = true)]
    device_label: Option<String>,
}

impl RunArgs {
    /// The drift watch (ranges were checked when the command line was
    /// parsed).
    fn sentinel(&self) -> SentinelSettings {
        SentinelSettings {
            every: self.sentinel_every,
            threshold: self.drift_threshold / 100.0,
            cooldown: Duration::from_secs_f64(self.cooldown_s),
            max_cooldowns: 3,
            cooldown_budget: Duration::from_secs_f64(self.cooldown_budget_s),
        }
    }

    /// What `profile` and `refresh` hand to the measuring loop.
    fn settings(
        &self,
        timing: &TimingArgs,
        out: &Path,
        resume: bool,
        force: bool,
        max_keys: Option<usize>,
    ) -> Result<ProfileSettings> {
        Ok(ProfileSettings {
            timing: timing.settings(self.device_label.as_deref())?,
            out: out.to_path_buf(),
            resume,
            force,
            calibration_networks: self.calibration_networks,
            calibration_seed: 1_000_003,
            max_networks_without_progress: 50,
            contexts_per_key: self.contexts,
            progress: !timing.quiet,
            progress_lines: self.progress_lines,
            progress_every: Duration::from_secs_f64(self.progress_every),
            max_keys,
            sentinel: self.sentinel(),
        })
    }

    fn forward(&self) -> Vec<String> {
        vec![
            format!("--calibration-networks={}", self.calibration_networks),
            format!("--contexts={}", self.contexts),
            format!("--sentinel-every={}", self.sentinel_every),
            format!("--drift-threshold={}", self.drift_threshold),
            format!("--cooldown-s={}", self.cooldown_s),
            format!("--cooldown-budget-s={}", self.cooldown_budget_s),
            format!("--progress-every={}", self.progress_every),
        ]
    }
}

/// Where to profile.
#[derive(Args, Debug, Clone)]
struct DeviceArgs {
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
    fn spec(&self) -> Result<DeviceSpec> {
        Ok(self.device.parse()?)
    }

    fn ssh_options(&self) -> Vec<String> {
        self.ssh_option
            .iter()
            .flat_map(|o| o.split_whitespace().map(String::from))
            .collect()
    }

    fn remote_run(
        &self,
        transport: Transport,
        command: RemoteCommand,
        space: &str,
        args: Vec<String>,
        out: PathBuf,
        ort_lib: Option<PathBuf>,
    ) -> RemoteRun {
        RemoteRun {
            transport,
            command,
            space: space.to_string(),
            args,
            out,
            remote_dir: self.remote_dir.clone(),
            device_binary: self.device_binary.clone(),
            device_ort_lib: self.device_ort_lib.clone(),
            local_ort_lib: ort_lib,
        }
    }
}

fn log_line(line: &str) {
    eprintln!("{line}");
}

/// Runs `profile` or `refresh` on the device(s) `device` names.
fn run_remote(
    device: &DeviceArgs,
    force: bool,
    command: RemoteCommand,
    space: &str,
    args: Vec<String>,
    out: &Path,
    ort_lib: Option<PathBuf>,
) -> Result<()> {
    let started = std::time::Instant::now();
    match device.spec()? {
        DeviceSpec::Local => unreachable!("local runs do not come here"),
        DeviceSpec::AllAdb => {
            let make = |transport: Transport, table: PathBuf| {
                device.remote_run(
                    transport,
                    command.clone(),
                    space,
                    args.clone(),
                    table,
                    ort_lib.clone(),
                )
            };
            let results = remote::profile_all_adb(out, force, &make, &log_line)?;
            let finished: Vec<&remote::FleetResult> =
                results.iter().filter(|r| r.result.is_ok()).collect();
            for r in &results {
                match &r.result {
                    Ok(rep) => eprintln!(
                        "finished {}: {} ({} rows{})",
                        rep.device,
                        rep.out.display(),
                        rep.rows,
                        if rep.skipped {
                            ", already there: kept (--force measures again)"
                        } else if rep.resumed {
                            ", resumed"
                        } else {
                            ""
                        }
                    ),
                    Err(e) => eprintln!("FAILED {}: {e}", r.device),
                }
            }
            eprintln!(
                "all-adb: {} of {} device(s) finished ({}) in {:.0} s",
                finished.len(),
                results.len(),
                finished
                    .iter()
                    .map(|r| r.device.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                started.elapsed().as_secs_f64()
            );
            if finished.len() < results.len() {
                bail!(
                    "{} device(s) failed (see above); run the same command again: they resume where they stopped, and finished devices keep their tables",
                    results.len() - finished.len()
                );
            }
        }
        spec => {
            let transport = Transport::for_device(&spec, &device.ssh_options())?;
            let run =
                device.remote_run(transport, command, space, args, out.to_path_buf(), ort_lib);
            let report = run.execute(&log_line)?;
            eprintln!(
                "wrote {} ({} rows, measured on {} in {}{}) in {:.0} s",
                report.out.display(),
                report.rows,
                report.device,
                report.remote_dir,
                if report.resumed { ", resumed" } else { "" },
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// The summary line of a finished table: calibration, pinning, sentinel,
/// temperatures.
fn summary(table: &LatencyTable) -> String {
    let x = |k: &str| {
        table
            .provenance
            .extra
            .get(k)
            .map(String::as_str)
            .unwrap_or("?")
    };
    format!(
        "pinning {}; sentinel: {}; temperature before {} / after {}; governor {}",
        table.provenance.pinning,
        x("x-sentinel"),
        x("x-before-temp-c"),
        x("x-after-temp-c"),
        x("x-after-governor")
    )
}

#[cfg(feature = "plot")]
fn write_plot(path: &Path, title: &str, points: &[(f64, f64)]) -> Result<()> {
    tunas_shared::plot::estimate_vs_measured(path, title, "ms", points, 0.10)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[cfg(feature = "plot")]
fn check_plot_path(path: &Path) -> Result<()> {
    Ok(check_output_file(path, "charts", &["svg", "png"])?)
}

#[cfg(not(feature = "plot"))]
fn check_plot_path(path: &Path) -> Result<()> {
    bail!(
        "{}: this profiler was built without the `plot` feature (device builds leave it out); run validate --json here and chart it on the workstation",
        path.display()
    )
}

#[cfg(not(feature = "plot"))]
fn write_plot(path: &Path, _title: &str, _points: &[(f64, f64)]) -> Result<()> {
    check_plot_path(path).context("--plot")
}

fn load_table(path: &Path) -> Result<LatencyTable> {
    Ok(LatencyTable::read(path)?)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Spaces { json, show } => {
            if let Some(name) = show {
                let space = load_space(&name)?;
                print!("{}", space.to_toml());
            } else if json {
                let list = catalog::builtin_summaries();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", catalog::summaries_text(&catalog::builtin_summaries()));
            }
        }
        Command::Ops { space, batch } => {
            let space = load_space(&space).context("--space")?;
            print!("{}", catalog::op_keys_csv(&space, batch));
        }
        Command::Profile {
            space,
            out,
            resume,
            force,
            max_keys,
            run,
            device,
            timing,
        } => {
            let spec = device.spec()?;
            if spec == DeviceSpec::AllAdb {
                check_output_folder(&out).context("--out")?;
            } else {
                check_output_file(&out, "tables", &[]).context("--out")?;
                if out.exists() && !force {
                    bail!(
                        "--out {} exists; pass --force to overwrite it, or write to another file (tables are data: new measurements go to new files){}",
                        out.display(),
                        if resume {
                            "; --resume continues an interrupted run's journal, it does not replace a finished table"
                        } else {
                            ""
                        }
                    );
                }
            }
            let space_def = load_space(&space).context("--space")?;
            if spec != DeviceSpec::Local {
                let mut args = run.forward();
                args.extend(timing.forward());
                if let Some(n) = max_keys {
                    args.push(format!("--max-keys={n}"));
                }
                return run_remote(
                    &device,
                    force,
                    RemoteCommand::Profile,
                    &space,
                    args,
                    &out,
                    timing.ort_lib.clone(),
                );
            }
            let settings = run.settings(&timing, &out, resume, force, max_keys)?;
            let rt = timing.runtime()?;
            let started = std::time::Instant::now();
            let table = profile::profile(rt, &space_def, &settings)?;
            eprintln!(
                "wrote {} ({} op keys, per-inference constant {:.1} µs, calibration MAPE {}%) in {:.0} s",
                out.display(),
                table.rows.len(),
                table.provenance.overhead_us,
                table
                    .provenance
                    .extra
                    .get("x-calibration-mape-pct")
                    .map(String::as_str)
                    .unwrap_or("? (not calibrated)"),
                started.elapsed().as_secs_f64()
            );
            eprintln!("{}", summary(&table));
        }
        Command::Refresh {
            table,
            space,
            older_than,
            out,
            run,
            device,
            timing,
        } => {
            let out = out.unwrap_or_else(|| table.clone());
            check_output_file(&out, "tables", &[]).context("--out")?;
            let old = load_table(&table)?;
            let space_name = match space {
                Some(s) => s,
                None => {
                    if tunas_shared::builtin_space(&old.provenance.space).is_err() {
                        bail!(
                            "{} was made for the space '{}', which is not built in; pass --space FILE.toml",
                            table.display(),
                            old.provenance.space
                        );
                    }
                    old.provenance.space.clone()
                }
            };
            let space_def = load_space(&space_name).context("--space")?;
            // The rows mean these settings: a refresh keeps them.
            let prov = &old.provenance;
            for (flag, given, own) in [
                (
                    "--threads",
                    timing.threads.map(|v| v.to_string()),
                    prov.threads.to_string(),
                ),
                (
                    "--batch",
                    timing.batch.map(|v| v.to_string()),
                    prov.batch.to_string(),
                ),
                ("--ep", timing.ep.clone(), prov.execution_provider.clone()),
            ] {
                if let Some(given) = given
                    && given != own
                {
                    bail!(
                        "{flag} {given}: {} was measured with {own}; a refresh keeps the table's settings (profile anew for others)",
                        table.display()
                    );
                }
            }
            let mut timing = timing;
            timing.threads = Some(prov.threads as usize);
            timing.batch = Some(prov.batch);
            timing.ep = Some(prov.execution_provider.clone());
            if device.spec()? != DeviceSpec::Local {
                let mut args = run.forward();
                args.extend(timing.forward());
                if let Some(d) = older_than {
                    args.push(format!("--older-than={d}"));
                }
                return run_remote(
                    &device,
                    true,
                    RemoteCommand::Refresh { table },
                    &space_name,
                    args,
                    &out,
                    timing.ort_lib.clone(),
                );
            }
            let settings = run.settings(&timing, &out, true, true, None)?;
            let rt = timing.runtime()?;
            if old.provenance.cpu != device::cpu_description() {
                bail!(
                    "{} was measured on {}, this device is {}: refresh a table on the device it came from, or profile anew",
                    table.display(),
                    old.provenance.cpu,
                    device::cpu_description()
                );
            }
            let cutoff = older_than.map(|days| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                now.saturating_sub((days * 86_400.0) as u64)
            });
            let (plan, counts) = refresh::plan_refresh(&old, &space_def, rt.version(), cutoff);
            eprintln!("refresh {}: {}", table.display(), counts.text());
            let started = std::time::Instant::now();
            let fresh = profile::run_plan(rt, &space_def, &settings, plan)?;
            eprintln!(
                "wrote {} ({} op keys, {} re-measured) in {:.0} s",
                out.display(),
                fresh.rows.len(),
                counts.to_measure(),
                started.elapsed().as_secs_f64()
            );
            eprintln!("{}", summary(&fresh));
        }
        Command::Measure {
            space,
            arch,
            model,
            table,
            json,
            timing,
        } => {
            // The model is read before the runtime starts: a wrong path
            // fails at once.
            let model = match model {
                Some(path) => {
                    let bytes = std::fs::read(&path).with_context(|| {
                        format!("--model: cannot read the model {}", path.display())
                    })?;
                    Some((path, bytes))
                }
                None => None,
            };
            let settings = timing.settings(None)?;
            let rt = timing.runtime()?;
            let (what, stats, estimate) = match model {
                Some((path, bytes)) => {
                    let m = profile::time_model(rt, &bytes, &settings).with_context(|| {
                        format!(
                            "--model {}: ONNX Runtime cannot load or run it (is it an ONNX model, e.g. from `tunas-searcher export`?)",
                            path.display()
                        )
                    })?;
                    let estimate = match &table {
                        Some(t) => Some(estimate_of_model(
                            &path,
                            &bytes,
                            &load_table(t)?,
                            space.as_deref(),
                        )?),
                        None => None,
                    };
                    (path.display().to_string(), m.stats(), estimate)
                }
                None => {
                    let space =
                        load_space(space.as_deref().unwrap_or_default()).context("--space")?;
                    let arch =
                        Architecture::parse_spec(&space, arch.as_deref().unwrap_or_default())
                            .context("--arch")?;
                    let estimate = match &table {
                        Some(t) => {
                            let t = load_table(t)?;
                            t.check_space(&space)?;
                            Some(t.estimate_us(&space, &arch)? / 1000.0)
                        }
                        None => None,
                    };
                    let stats = profile::measure_architecture(rt, &space, &arch, &settings)?;
                    (arch.to_compact(), stats, estimate)
                }
            };
            if json {
                let v = serde_json::json!({
                    "what": what,
                    "median_ms": stats.median_us / 1000.0,
                    "p10_ms": stats.p10_us / 1000.0,
                    "p90_ms": stats.p90_us / 1000.0,
                    "mean_ms": stats.mean_us / 1000.0,
                    "std_ms": stats.std_us / 1000.0,
                    "runs": stats.runs,
                    "estimate_ms": estimate,
                    "runtime": format!("onnxruntime {}", rt.version()),
                    "threads": settings.threads,
                    "execution_provider": settings.provider.name(),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "{what}: median {:.3} ms (p10 {:.3}, p90 {:.3}, {} runs)",
                    stats.median_us / 1000.0,
                    stats.p10_us / 1000.0,
                    stats.p90_us / 1000.0,
                    stats.runs
                );
                if let Some(e) = estimate {
                    println!(
                        "table estimate {e:.3} ms ({:+.1}% vs measured)",
                        (e * 1000.0 / stats.median_us - 1.0) * 100.0
                    );
                }
            }
        }
        Command::Validate {
            space,
            table,
            samples,
            seed,
            json,
            plot,
            timing,
        } => {
            if let Some(path) = &plot {
                check_plot_path(path).context("--plot")?;
            }
            let space = load_space(&space).context("--space")?;
            let table = load_table(&table)?;
            table.check_space(&space)?;
            let settings = timing.settings(None)?;
            let rt = timing.runtime()?;
            let report =
                profile::validate(rt, &space, &table, samples, seed, &settings, !timing.quiet)?;
            if let Some(path) = plot {
                let points: Vec<(f64, f64)> = report
                    .networks
                    .iter()
                    .map(|n| (n.estimate_ms, n.measured_ms))
                    .collect();
                let title = format!(
                    "{}: {} networks, {:.0}% within ±10%, Kendall τ {:.2}",
                    report.space,
                    report.agreement.samples,
                    report.agreement.within_10pct * 100.0,
                    report.agreement.kendall_tau
                );
                write_plot(&path, &title, &points)?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", profile::validation_text(&report));
            }
        }
        Command::Compare { a, b, json } => {
            let (ta, tb) = (load_table(&a)?, load_table(&b)?);
            if ta.provenance.space_hash != tb.provenance.space_hash {
                bail!(
                    "{} is for space {} ({}), {} for {} ({}): compare tables of one space",
                    a.display(),
                    ta.provenance.space,
                    ta.provenance.space_hash,
                    b.display(),
                    tb.provenance.space,
                    tb.provenance.space_hash
                );
            }
            let c = profile::compare_tables(&ta, &tb);
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                println!(
                    "{} common keys ({} unmatched): median |difference| {:.2}%, p90 {:.2}%, max {:.2}%; constants {:.1} / {:.1} µs",
                    c.common_keys,
                    c.unmatched_keys,
                    c.median_rel_diff_pct,
                    c.p90_rel_diff_pct,
                    c.max_rel_diff_pct,
                    c.overhead_us.0,
                    c.overhead_us.1
                );
            }
        }
        Command::Export { table, format } => {
            let table = load_table(&table)?;
            let format = match format {
                ExportFormatArg::ProxylessnasYaml => ExportFormat::ProxylessnasYaml,
                ExportFormatArg::OfaYaml => ExportFormat::OfaYaml,
                ExportFormatArg::Json => ExportFormat::Json,
            };
            print!("{}", export(&table, format));
        }
    }
    Ok(())
}

/// The table's estimate of an exported model, from the space hash and
/// architecture its metadata records (`tunas-searcher export` writes them).
fn estimate_of_model(
    path: &std::path::Path,
    bytes: &[u8],
    table: &tunas_shared::LatencyTable,
    space: Option<&str>,
) -> Result<f64> {
    use tunas_shared::onnx::{metadata_keys, read_metadata};
    let meta = read_metadata(bytes)
        .with_context(|| format!("--model {}: not an ONNX model", path.display()))?;
    let (Some(hash), Some(arch)) = (
        meta.get(metadata_keys::SPACE_HASH),
        meta.get(metadata_keys::ARCHITECTURE),
    ) else {
        anyhow::bail!(
            "--model {}: the file records no space and architecture (export it again with `tunas-searcher export`), so --table cannot estimate it; use --space S --arch A --table T instead",
            path.display()
        );
    };
    let space = match space {
        Some(s) => load_space(s).context("--space")?,
        None => tunas_shared::builtin_space_of(table).with_context(|| {
            format!(
                "--table: made for space '{}', which is not built in: pass --space FILE.toml",
                table.provenance.space
            )
        })?,
    };
    if &space.content_hash() != hash {
        anyhow::bail!(
            "--model {} was searched in a space with hash {hash}, --table is for space '{}' (hash {}): give the table of the model's space",
            path.display(),
            space.name,
            space.content_hash()
        );
    }
    let arch = Architecture::parse(&space, arch)
        .with_context(|| format!("--model {}: its architecture", path.display()))?;
    Ok(table.estimate_us(&space, &arch)? / 1000.0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
