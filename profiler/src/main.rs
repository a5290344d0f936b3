//! `tunas-profiler`: the command-line front end. Everything testable lives
//! in the library; this file parses arguments and maps errors to exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tunas_profiler::export::{ExportFormat, export};
use tunas_profiler::profile::{self, ProfileSettings, TimingSettings};
use tunas_profiler::runtime::{self, ExecutionProvider, Runtime};
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
        #[arg(long, default_value_t = 1)]
        batch: u32,
    },
    /// Time every op of a space on this device and write the latency table.
    ///
    /// Each op is built as a one-op ONNX model and timed through ONNX
    /// Runtime; random networks are then timed end to end to fit the
    /// per-inference constant. Rows are appended to FILE.partial as they are
    /// measured: a killed run continues with --resume.
    Profile {
        /// A built-in space name or a path to a .toml file.
        #[arg(long, value_name = "NAME|FILE.toml")]
        space: String,
        /// Where to write the table (CSV with provenance).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Continue an interrupted run from FILE.partial.
        #[arg(long)]
        resume: bool,
        /// Overwrite an existing table.
        #[arg(long)]
        force: bool,
        /// Random networks timed end to end to fit the per-inference constant.
        #[arg(long, default_value_t = 40)]
        calibration_networks: usize,
        /// Different networks each op is timed in (runs pooled).
        #[arg(long, default_value_t = 2)]
        contexts: usize,
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
        #[arg(long, value_name = "FILE.onnx", conflicts_with_all = ["space", "arch"])]
        model: Option<PathBuf>,
        /// Also print the table's estimate for the architecture.
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
        #[arg(long, default_value_t = 200)]
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
    /// Intra-op threads of ONNX Runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Execution provider: cpu, xnnpack, nnapi or qnn. One that cannot be
    /// registered is an error, never a silent CPU fallback.
    #[arg(long, default_value = "cpu")]
    ep: String,
    /// Pin the process to this CPU core (taskset).
    #[arg(long, value_name = "CORE")]
    pin: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 1)]
    batch: u32,
    /// Path to libonnxruntime.so (else ORT_DYLIB_PATH, the copy `cargo xtask
    /// setup` provisions, or an installed Python onnxruntime).
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
    /// Op timing: minimum warm-up runs.
    #[arg(long, default_value_t = 10)]
    warmup_runs: usize,
    /// Op timing: minimum warm-up time (ms).
    #[arg(long, default_value_t = 20)]
    warmup_ms: u64,
    /// Op timing: minimum timed runs (per network an op is timed in).
    #[arg(long, default_value_t = 60)]
    runs: usize,
    /// Op timing: minimum timed time (ms).
    #[arg(long, default_value_t = 30)]
    min_ms: u64,
    /// End-to-end timing: minimum timed runs.
    #[arg(long, default_value_t = 50)]
    network_runs: usize,
    /// End-to-end timing: minimum timed time (ms).
    #[arg(long, default_value_t = 150)]
    network_min_ms: u64,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

impl TimingArgs {
    fn settings(&self) -> Result<TimingSettings> {
        let provider: ExecutionProvider = self.ep.parse().context("--ep")?;
        if self.threads == 0 {
            bail!("--threads must be at least 1");
        }
        if self.batch == 0 {
            bail!("--batch must be at least 1");
        }
        let pinning = match self.pin {
            Some(core) => device::pin_to_core(core)
                .map_err(anyhow::Error::msg)
                .context("--pin")?,
            None => "none".into(),
        };
        let ms = Duration::from_millis;
        Ok(TimingSettings {
            threads: self.threads,
            provider,
            pinning,
            batch: self.batch,
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
        })
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
            anyhow::ensure!(batch >= 1, "--batch must be at least 1");
            let space = load_space(&space).context("--space")?;
            print!("{}", catalog::op_keys_csv(&space, batch));
        }
        Command::Profile {
            space,
            out,
            resume,
            force,
            calibration_networks,
            contexts,
            timing,
        } => {
            let space = load_space(&space).context("--space")?;
            let settings = ProfileSettings {
                timing: timing.settings()?,
                out: out.clone(),
                resume,
                force,
                calibration_networks,
                calibration_seed: 1_000_003,
                max_networks_without_progress: 50,
                contexts_per_key: contexts,
                progress: !timing.quiet,
            };
            let rt = timing.runtime()?;
            let started = std::time::Instant::now();
            let table = profile::profile(rt, &space, &settings)?;
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
                    .unwrap_or("?"),
                started.elapsed().as_secs_f64()
            );
        }
        Command::Measure {
            space,
            arch,
            model,
            table,
            json,
            timing,
        } => {
            let settings = timing.settings()?;
            let rt = timing.runtime()?;
            let (what, stats, estimate) = match model {
                Some(path) => {
                    let bytes = std::fs::read(&path)
                        .with_context(|| format!("cannot read the model {}", path.display()))?;
                    let m = profile::time_model(rt, &bytes, &settings)?;
                    (path.display().to_string(), m.stats(), None)
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
            anyhow::ensure!(samples >= 2, "--samples must be at least 2");
            let space = load_space(&space).context("--space")?;
            let table = load_table(&table)?;
            table.check_space(&space)?;
            let settings = timing.settings()?;
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
                tunas_shared::plot::estimate_vs_measured(&path, &title, "ms", &points, 0.10)?;
                eprintln!("wrote {}", path.display());
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
