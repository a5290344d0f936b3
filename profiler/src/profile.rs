//! `profile`, `measure` and `validate`: the latency table and the proof that
//! it predicts whole networks.
//!
//! # Method
//!
//! Ops are timed *in context*: random networks of the space are built as
//! ONNX models and run with ONNX Runtime's per-node profiling on, and each
//! op's time is the summed time of its own nodes (attributed by node-name
//! scope: the runtime keeps the op's scope in the names of fused nodes),
//! each op in two different networks with their runs pooled.
//! So an op is timed with its input coming from the op before it, in the
//! layout the runtime keeps between ops, without the fixed cost of a
//! `run()` call or the layout reorders at a model's edges, which a network
//! pays once. Networks are chosen greedily (the best of several random
//! candidates) to cover the keys not yet measured; a key no network reached
//! within the budget is timed as a one-op model.
//!
//! Then other random networks (calibration networks, their own seed) are
//! timed end to end without profiling, and
//! `measured ≈ c0 + α·Σ ops + c1·Σ nodes` is fitted by least squares (the
//! executor's per-node cost and the profiler's own per-node cost scale with
//! the number of graph nodes an op has): `c0` becomes the table's
//! per-inference constant (`overhead_us`), and each row's statistics are
//! `α·t + c1·nodes(op)`, so the table's plain sum predicts a whole network.
//! `validate` then checks that on yet other networks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use serde::Serialize;
use thiserror::Error;
use tunas_shared::onnx::{RandomWeights, network_model, network_sites, op_model};
use tunas_shared::{
    Architecture, LatencyTable, OpKey, OpStats, Provenance, SearchSpace, TableError,
    architecture_ops, space_op_keys,
};

use crate::agreement::Agreement;
use crate::device;
use crate::interleave::{
    CALIBRATION_E2E_FIELD, Interleave, calibration_times_text, parse_calibration_times,
};
use crate::kindfit::{DEFAULT_RIDGE, KindFitRow, fit_kind_scales};
use crate::partial::{Journal, journal_path};
use crate::runtime::{ExecutionProvider, ModelSession, Runtime, RuntimeError, SessionConfig};
use crate::sentinel::{Check, Sentinel, SentinelSettings};
use crate::timing::{BenchmarkConfig, Measurement, ROW_STATISTIC, benchmark_session};
use tunas_shared::progress::ProgressLines;

/// Anything that can stop profiling or validation.
#[derive(Debug, Error)]
pub enum ProfileError {
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A table could not be read or written.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A model could not be built.
    #[error("cannot build the ONNX model for {what}: {message}")]
    Model {
        /// The op key or architecture.
        what: String,
        /// The builder's message.
        message: String,
    },
    /// The output exists and overwriting was not asked for (resuming does
    /// not overwrite a finished table).
    #[error(
        "{path} exists; pass --force to overwrite it, or write to another file (tables are data: new measurements go to new files)"
    )]
    OutputExists {
        /// The table path.
        path: String,
    },
    /// A journal from an earlier run exists.
    #[error(
        "{journal} holds {rows} rows of an interrupted run; pass --resume to continue it, or delete the file to start over"
    )]
    JournalExists {
        /// The journal path.
        journal: String,
        /// Rows in it.
        rows: usize,
    },
    /// The journal was measured with other settings.
    #[error(
        "{journal} was measured with {field} = {found}, this run asks for {wanted}; resume with the same settings or delete the journal"
    )]
    ResumeMismatch {
        /// The journal path.
        journal: String,
        /// The differing setting.
        field: &'static str,
        /// In the journal.
        found: String,
        /// Asked for now.
        wanted: String,
    },
    /// A setting is out of range (the command line checks its flags; this
    /// guards other callers of the library).
    #[error("profile settings: {what}")]
    BadSettings {
        /// What is wrong.
        what: String,
    },
    /// The output folder cannot be written.
    #[error("cannot write to {path}: {message}")]
    Unwritable {
        /// Path.
        path: String,
        /// The system's message.
        message: String,
    },
}

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
}

fn session_config(t: &TimingSettings, profile_prefix: Option<PathBuf>) -> SessionConfig {
    SessionConfig {
        intra_threads: t.threads,
        provider: t.provider,
        profile_prefix,
        input_seed: 0,
    }
}

/// Runs the op timing loop on `model` with per-node profiling (the profile
/// file is written under `prefix` and removed after reading; warm-up runs
/// are left out).
fn profiled_benchmark(
    runtime: &Runtime,
    model: &[u8],
    t: &TimingSettings,
    prefix: &Path,
) -> Result<(Measurement, crate::runtime::NodeProfile), ProfileError> {
    let config = session_config(t, Some(prefix.to_path_buf()));
    let mut session = ModelSession::new(runtime, model, &config)?;
    let m = benchmark_session(&mut session, &t.op_loop)?;
    let profile_path = session.end_profiling()?;
    let profile = crate::runtime::read_profile(&profile_path, m.warmup_runs);
    let _ = std::fs::remove_file(&profile_path);
    Ok((m, profile?))
}

/// ONNX Runtime's profiler records node durations in whole microseconds.
const PROFILER_RESOLUTION_US: f64 = 1.0;

/// A row from pooled per-run node times (whole µs).
fn row_stats(runs: &[f64]) -> OpStats {
    OpStats::with_statistic(runs, PROFILER_RESOLUTION_US, ROW_STATISTIC)
}

/// Raw cost of one op: its own nodes' mean time, with the wall-time spread.
fn time_op(
    runtime: &Runtime,
    key: &OpKey,
    t: &TimingSettings,
    scratch: &Path,
) -> Result<OpStats, ProfileError> {
    let model = op_model(key, &mut RandomWeights::new(1)).map_err(|e| ProfileError::Model {
        what: key.to_string(),
        message: e.to_string(),
    })?;
    let (m, profile) = profiled_benchmark(runtime, &model, t, &scratch.join("op"))?;
    let (own, _) = profile.attribute(&["op"]);
    let own_us = own[0];
    let wall = m.stats();
    // Shift the wall-time distribution so its mean is the op's own time.
    let shift = wall.mean_us - own_us;
    let samples: Vec<f64> = m.samples_us.iter().map(|s| (s - shift).max(0.0)).collect();
    Ok(OpStats::with_statistic(&samples, 0.0, ROW_STATISTIC))
}

/// Times a whole network with per-node profiling and returns, per op, the
/// per-run times of its own nodes (µs).
fn time_in_context(
    runtime: &Runtime,
    space: &SearchSpace,
    arch: &Architecture,
    t: &TimingSettings,
    scratch: &Path,
) -> Result<Vec<(OpKey, Vec<f64>)>, ProfileError> {
    let model = network_model(space, arch, &mut RandomWeights::new(7), t.batch).map_err(|e| {
        ProfileError::Model {
            what: arch.to_compact(),
            message: e.to_string(),
        }
    })?;
    let sites = network_sites(space, arch, t.batch);
    let (_, profile) = profiled_benchmark(runtime, &model, t, &scratch.join("net"))?;
    let scopes: Vec<&str> = sites.iter().map(|s| s.scope.as_str()).collect();
    let per_run = profile.attribute_per_run(&scopes);
    Ok(sites
        .iter()
        .zip(per_run)
        .filter(|(_, runs)| !runs.is_empty())
        .map(|(site, runs)| (site.key, runs))
        .collect())
}

/// End-to-end timing of a model.
pub fn time_model(
    runtime: &Runtime,
    model: &[u8],
    t: &TimingSettings,
) -> Result<Measurement, ProfileError> {
    let mut session = ModelSession::new(runtime, model, &session_config(t, None))?;
    Ok(benchmark_session(&mut session, &t.network_loop)?)
}

/// End-to-end timing of one architecture (random weights).
pub fn measure_architecture(
    runtime: &Runtime,
    space: &SearchSpace,
    arch: &Architecture,
    t: &TimingSettings,
) -> Result<OpStats, ProfileError> {
    let model = network_model(space, arch, &mut RandomWeights::new(7), t.batch).map_err(|e| {
        ProfileError::Model {
            what: arch.to_compact(),
            message: e.to_string(),
        }
    })?;
    Ok(time_model(runtime, &model, t)?.stats())
}

fn bar(len: u64, show: bool, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {pos}/{len} ({percent}%) elapsed {elapsed_precise} eta {eta_precise}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    b.set_message(what.to_string());
    b
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

/// The calibration times a journal holds; a journal timed with another
/// calibration seed cannot lend them.
fn journal_calibration_times(
    journal: &Path,
    found: &Provenance,
    s: &ProfileSettings,
) -> Result<BTreeMap<usize, f64>, ProfileError> {
    let Some(text) = found.extra.get(CALIBRATION_E2E_FIELD) else {
        return Ok(BTreeMap::new());
    };
    let seed = found
        .extra
        .get("x-calibration-seed")
        .cloned()
        .unwrap_or_default();
    if seed != s.calibration_seed.to_string() {
        return Err(ProfileError::ResumeMismatch {
            journal: journal.display().to_string(),
            field: "x-calibration-seed",
            found: seed,
            wanted: s.calibration_seed.to_string(),
        });
    }
    parse_calibration_times(text).map_err(|message| {
        ProfileError::Table(TableError::BadProvenance {
            path: journal.display().to_string(),
            line: 0,
            message: format!("{CALIBRATION_E2E_FIELD}: {message}"),
        })
    })
}

fn check_resumable(
    journal: &Path,
    found: &Provenance,
    wanted: &Provenance,
) -> Result<(), ProfileError> {
    let pairs = [
        ("device", &found.device, &wanted.device),
        ("space_hash", &found.space_hash, &wanted.space_hash),
        (
            "execution_provider",
            &found.execution_provider,
            &wanted.execution_provider,
        ),
        (
            "runtime_version",
            &found.runtime_version,
            &wanted.runtime_version,
        ),
    ];
    for (field, a, b) in pairs {
        if a != b {
            return Err(ProfileError::ResumeMismatch {
                journal: journal.display().to_string(),
                field,
                found: a.clone(),
                wanted: b.clone(),
            });
        }
    }
    let statistic = |p: &Provenance| {
        p.extra
            .get("x-statistic")
            .cloned()
            .unwrap_or_else(|| "median".into())
    };
    let (a, b) = (statistic(found), statistic(wanted));
    if a != b {
        return Err(ProfileError::ResumeMismatch {
            journal: journal.display().to_string(),
            field: "x-statistic",
            found: a,
            wanted: b,
        });
    }
    for (field, a, b) in [
        ("threads", found.threads, wanted.threads),
        ("batch", found.batch, wanted.batch),
    ] {
        if a != b {
            return Err(ProfileError::ResumeMismatch {
                journal: journal.display().to_string(),
                field,
                found: a.to_string(),
                wanted: b.to_string(),
            });
        }
    }
    Ok(())
}

/// Least-squares fit of `measured ≈ c0 + α·sum + c1·n` over rows
/// `(sum, n, measured)` (normal equations, 3×3). A negative constant is not
/// physical (a table's constant is ≥ 0): the fit is then redone through the
/// origin. Returns `(c0, α, c1)`.
pub fn fit_calibration(rows: &[(f64, f64, f64)]) -> (f64, f64, f64) {
    let fit = |with_constant: bool| {
        let mut a = [[0.0f64; 3]; 3];
        let mut b = [0.0f64; 3];
        if !with_constant {
            a[0][0] = 1.0;
        }
        for &(s, n, m) in rows {
            let x = [f64::from(u8::from(with_constant)), s, n];
            for i in 0..3 {
                for j in 0..3 {
                    a[i][j] += x[i] * x[j];
                }
                b[i] += x[i] * m;
            }
        }
        if !with_constant {
            a[0][0] = 1.0;
            b[0] = 0.0;
        }
        solve3(a, b)
    };
    match fit(true) {
        Some([c0, alpha, c1]) if alpha > 0.0 && c0 >= 0.0 => (c0, alpha, c1),
        _ => match fit(false) {
            Some([_, alpha, c1]) if alpha > 0.0 => (0.0, alpha, c1),
            _ => {
                let mean_gap =
                    rows.iter().map(|&(s, _, m)| m - s).sum::<f64>() / rows.len().max(1) as f64;
                (mean_gap.max(0.0), 1.0, 0.0)
            }
        },
    }
}

/// Fits per-kind scale factors of the calibrated `table` on the
/// calibration networks `(ops, measured µs)` and records them as
/// `x-kind-scale` with the fit's error (see [`crate::kindfit`]); a refused
/// fit leaves the table without factors and says so.
fn record_kind_scales(table: &mut LatencyTable, networks: &[(Vec<OpKey>, f64)]) {
    let constant_us = table.provenance.overhead_us;
    let rows: Vec<KindFitRow> = networks
        .iter()
        .map(|(ops, measured_us)| {
            let mut per_kind_us = BTreeMap::new();
            for key in ops {
                let row = table.rows.get(key).map_or(0.0, |r| r.median_us);
                *per_kind_us.entry(key.op).or_insert(0.0) += row;
            }
            KindFitRow {
                per_kind_us,
                constant_us,
                measured_us: *measured_us,
            }
        })
        .collect();
    let e = &mut table.provenance.extra;
    match fit_kind_scales(&rows, DEFAULT_RIDGE) {
        Some(scales) => {
            let pairs: Vec<(f64, f64)> = rows
                .iter()
                .map(|r| {
                    let est: f64 = r
                        .per_kind_us
                        .iter()
                        .map(|(k, x)| scales.get(k).copied().unwrap_or(1.0) * x)
                        .sum();
                    (r.constant_us + est, r.measured_us)
                })
                .collect();
            e.insert(
                tunas_shared::table::KIND_SCALE_FIELD.into(),
                tunas_shared::table::kind_scales_text(&scales),
            );
            e.insert(
                "x-kind-scale-fit".into(),
                format!(
                    "least squares on {} calibration networks, ridge {DEFAULT_RIDGE} towards 1; MAPE {:.2}%",
                    rows.len(),
                    Agreement::of(&pairs).mape
                ),
            );
        }
        None => {
            e.remove(tunas_shared::table::KIND_SCALE_FIELD);
            e.insert(
                "x-kind-scale-fit".into(),
                "refused (singular, or a factor outside 0.5..2): estimates use the plain sum"
                    .into(),
            );
        }
    }
}

/// Nodes the ONNX writer emits for an op (before the runtime's fusions):
/// the per-node cost of the executor scales with it.
pub fn op_node_count(key: &OpKey) -> usize {
    let mut g = tunas_shared::onnx::GraphBuilder::new("count");
    let input = g.input("x", &tunas_shared::onnx::network::input_dims(key));
    match tunas_shared::onnx::emit_op(&mut g, "op", key, &input, &mut RandomWeights::new(0)) {
        Ok(_) => g.node_count(),
        Err(_) => 1,
    }
}

/// Gauss–Jordan elimination with partial pivoting on a 3×3 system.
#[allow(clippy::needless_range_loop)]
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in 0..3 {
            if row != col {
                let f = a[row][col] / a[col][col];
                for k in 0..3 {
                    a[row][k] -= f * a[col][k];
                }
                b[row] -= f * b[col];
            }
        }
    }
    Some([b[0] / a[0][0], b[1] / a[1][1], b[2] / a[2][2]])
}

/// What one `profile` or `refresh` run measures.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Keys to measure now.
    pub to_measure: BTreeSet<OpKey>,
    /// Rows kept from an earlier table, as raw (uncalibrated) timings.
    pub kept_raw: BTreeMap<OpKey, OpStats>,
    /// Extra provenance fields to carry (refresh history).
    pub extra: BTreeMap<String, String>,
}

/// Profiles every op key of `space` (or the first `max_keys`) and writes
/// the table (see the module docs for the method). Rows go to a journal as
/// they are measured.
pub fn profile(
    runtime: &Runtime,
    space: &SearchSpace,
    s: &ProfileSettings,
) -> Result<LatencyTable, ProfileError> {
    let mut to_measure = space_op_keys(space, s.timing.batch);
    if let Some(n) = s.max_keys {
        to_measure = to_measure.into_iter().take(n.max(1)).collect();
    }
    run_plan(
        runtime,
        space,
        s,
        Plan {
            to_measure,
            ..Plan::default()
        },
    )
}

/// Measures what `plan` asks for, merges it with the kept rows, calibrates
/// when the table covers the whole space, and writes it.
pub fn run_plan(
    runtime: &Runtime,
    space: &SearchSpace,
    s: &ProfileSettings,
    plan: Plan,
) -> Result<LatencyTable, ProfileError> {
    let out = &s.out;
    if s.calibration_networks == 0 {
        return Err(ProfileError::BadSettings {
            what: "calibration needs at least one network (three for a fit of its three unknowns)"
                .into(),
        });
    }
    // --resume continues a journal; it never stands in for --force: a
    // finished table is data and is only replaced when asked to.
    if out.exists() && !s.force {
        return Err(ProfileError::OutputExists {
            path: out.display().to_string(),
        });
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let unwritable = |e: std::io::Error| ProfileError::Unwritable {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    // The folder is not created: a mistyped one is an error, not a new folder.
    if !dir.is_dir() {
        return Err(ProfileError::Unwritable {
            path: dir.display().to_string(),
            message: "no such folder".into(),
        });
    }
    let scratch = dir.join(format!(".tunas-profile-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(unwritable)?;
    let result = profile_into(runtime, space, s, &scratch, plan);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// The sentinel op: the key with the median FLOP count, so its timing is
/// long enough to be stable and short enough to re-time often.
pub fn sentinel_key(keys: &BTreeSet<OpKey>) -> Option<OpKey> {
    let mut by_flops: Vec<OpKey> = keys.iter().copied().collect();
    by_flops.sort_by_key(|k| (k.flops(), *k));
    by_flops.get(by_flops.len() / 2).copied()
}

/// The sentinel's own loop: long enough for a stable median whatever the
/// op loop's settings.
fn sentinel_loop() -> BenchmarkConfig {
    BenchmarkConfig {
        min_warmup_runs: 3,
        min_warmup_time: std::time::Duration::from_millis(10),
        min_runs: 30,
        min_time: std::time::Duration::from_millis(40),
        max_time: std::time::Duration::from_secs(10),
    }
}

/// Stop throwing rows away after this many drifts; later drifts are only
/// recorded (a device that never settles would otherwise never finish).
const MAX_REMEASURES: usize = 5;

fn profile_into(
    runtime: &Runtime,
    space: &SearchSpace,
    s: &ProfileSettings,
    scratch: &Path,
    plan: Plan,
) -> Result<LatencyTable, ProfileError> {
    let t = &s.timing;
    let sysfs = device::Sysfs::system();
    let before = sysfs.snapshot();
    let mut provenance = new_provenance(runtime, space, t);
    provenance
        .extra
        .insert("x-calibration-seed".into(), s.calibration_seed.to_string());
    let all_keys = space_op_keys(space, t.batch);
    let jpath = journal_path(&s.out);
    let resumed = if jpath.exists() {
        let (journal, table) = Journal::resume(&jpath)?;
        if !s.resume {
            return Err(ProfileError::JournalExists {
                journal: jpath.display().to_string(),
                rows: table.rows.len(),
            });
        }
        check_resumable(&jpath, &table.provenance, &provenance)?;
        eprintln!(
            "resuming {}: {} rows already measured",
            jpath.display(),
            table.rows.len()
        );
        Some((journal, table))
    } else {
        None
    };

    // The sentinel: a one-op model kept open and re-timed every few units.
    let mut sentinel = match sentinel_key(&all_keys).filter(|_| s.sentinel.every > 0) {
        Some(key) => {
            let model =
                op_model(&key, &mut RandomWeights::new(3)).map_err(|e| ProfileError::Model {
                    what: key.to_string(),
                    message: e.to_string(),
                })?;
            let mut session = ModelSession::new(runtime, &model, &session_config(t, None))?;
            let cfg = sentinel_loop();
            let measure = move || -> Result<f64, ProfileError> {
                Ok(benchmark_session(&mut session, &cfg)?.plain_median_us())
            };
            let journal_baseline = resumed.as_ref().and_then(|(_, table)| {
                table
                    .provenance
                    .extra
                    .get("x-sentinel-baseline-us")
                    .and_then(|v| v.parse().ok())
            });
            let sentinel = Sentinel::new(s.sentinel.clone(), measure, journal_baseline)?;
            provenance.extra.insert(
                "x-sentinel-baseline-us".into(),
                format!("{:.3}", sentinel.baseline_us()),
            );
            provenance
                .extra
                .insert("x-sentinel-key".into(), key.to_string());
            Some(sentinel)
        }
        None => None,
    };

    let (mut journal, mut measured) = match resumed {
        Some(r) => r,
        None => {
            let table = LatencyTable::new(provenance.clone());
            (Journal::create(&jpath, &table)?, table)
        }
    };
    // Rows from a journal that the plan does not ask for are ignored.
    measured.rows.retain(|k, _| plan.to_measure.contains(k));
    // Calibration networks (when the table will be complete), timed among
    // the op units; their times so far come from the journal.
    let calibrate = all_keys
        .iter()
        .all(|k| plan.to_measure.contains(k) || plan.kept_raw.contains_key(k));
    let cal_archs: Vec<Architecture> = if calibrate {
        let mut rng = rand::rngs::StdRng::seed_from_u64(s.calibration_seed);
        (0..s.calibration_networks)
            .map(|_| Architecture::sample_uniform(space, &mut rng))
            .collect()
    } else {
        Vec::new()
    };
    let mut cal_times = journal_calibration_times(&jpath, &measured.provenance, s)?;
    cal_times.retain(|i, _| *i < cal_archs.len());
    // Calibration networks timed since the last steady sentinel check.
    let mut cal_since_check: Vec<usize> = Vec::new();
    let mut schedule = Interleave::new(
        s.calibration_seed ^ 0x1a7e ^ (measured.rows.len() + cal_times.len()) as u64,
    );
    let total = plan.to_measure.len();
    let progress = bar(total as u64, s.progress, "ops");
    progress.set_position(measured.rows.len() as u64);
    let mut lines = ProgressLines::new(
        s.progress_lines,
        "ops",
        total,
        measured.rows.len(),
        s.progress_every,
    );
    // Context networks: the best of several random candidates at covering
    // keys not yet measured. Seeded by how many rows exist, so a resumed
    // run picks new networks.
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(s.calibration_seed ^ 0x5eed ^ measured.rows.len() as u64);
    // Samples of keys seen in fewer contexts than wanted, and how many.
    let mut pooled: BTreeMap<OpKey, (usize, Vec<f64>)> = Default::default();
    // Rows journaled since the last steady sentinel check.
    let mut since_check: Vec<OpKey> = Vec::new();
    let wanted = s.contexts_per_key.max(1);
    let missing = |measured: &LatencyTable| {
        plan.to_measure
            .iter()
            .filter(|k| !measured.rows.contains_key(k))
            .count()
    };
    // One unit (a context network or a one-op key) is done: maybe check
    // the sentinel, and on drift throw away what was measured since the
    // last steady check. Returns whether rows were thrown away.
    macro_rules! unit_done {
        () => {{
            let mut dropped = false;
            if let Some(sentinel) = sentinel.as_mut() {
                match sentinel.tick()? {
                    Check::Skipped => {}
                    Check::Steady => {
                        since_check.clear();
                        cal_since_check.clear();
                    }
                    Check::Drifted(event) => {
                        eprintln!(
                            "sentinel drifted {:+.1}% after {} units: {}",
                            event.drift_pct(),
                            event.after_units,
                            event.outcome()
                        );
                        let remeasure = sentinel.events.len() <= MAX_REMEASURES;
                        let n = if remeasure {
                            let affected: Vec<OpKey> = since_check.drain(..).collect();
                            for k in &affected {
                                measured.rows.remove(k);
                            }
                            for i in cal_since_check.drain(..) {
                                cal_times.remove(&i);
                            }
                            measured.provenance.extra.insert(
                                CALIBRATION_E2E_FIELD.into(),
                                calibration_times_text(&cal_times),
                            );
                            pooled.clear();
                            journal = journal.rewrite(&measured)?;
                            progress.set_position(measured.rows.len() as u64);
                            affected.len()
                        } else {
                            since_check.clear();
                            cal_since_check.clear();
                            0
                        };
                        if let Some(last) = sentinel.events.last_mut() {
                            last.remeasured_rows = n;
                        }
                        dropped = n > 0;
                    }
                }
            }
            dropped
        }};
    }

    // Times calibration network `i` and journals its time.
    macro_rules! time_calibration {
        ($i:expr) => {{
            let i = $i;
            let e2e = measure_architecture(runtime, space, &cal_archs[i], t)?.median_us;
            cal_times.insert(i, e2e);
            cal_since_check.push(i);
            measured.provenance.extra.insert(
                CALIBRATION_E2E_FIELD.into(),
                calibration_times_text(&cal_times),
            );
            journal = journal.rewrite(&measured)?;
        }};
    }
    // After an op unit: maybe time the next calibration network.
    macro_rules! calibrate_if_due {
        () => {{
            let left: Vec<usize> = (0..cal_archs.len())
                .filter(|i| !cal_times.contains_key(i))
                .collect();
            if let Some(&i) = left.first() {
                if schedule.due(left.len(), missing(&measured)) {
                    time_calibration!(i);
                    unit_done!();
                }
            }
        }};
    }

    while missing(&measured) > 0 {
        let mut misses = 0;
        while missing(&measured) > 0 && misses < s.max_networks_without_progress {
            let candidate = (0..32)
                .map(|_| {
                    let arch = Architecture::sample_uniform(space, &mut rng);
                    let new = architecture_ops(space, &arch, t.batch)
                        .into_iter()
                        .filter(|k| plan.to_measure.contains(k) && !measured.rows.contains_key(k))
                        .collect::<BTreeSet<_>>();
                    // Keys never seen count double: coverage first.
                    let score: usize = new
                        .iter()
                        .map(|k| if pooled.contains_key(k) { 1 } else { 2 })
                        .sum();
                    (score, arch)
                })
                .max_by_key(|(score, _)| *score)
                .expect("32 candidates");
            if candidate.0 == 0 {
                misses += 1;
                continue;
            }
            let found = time_in_context(runtime, space, &candidate.1, t, scratch)?;
            let rows_before = measured.rows.len();
            let mut progressed = false;
            for (key, runs) in found {
                if !plan.to_measure.contains(&key) || measured.rows.contains_key(&key) {
                    continue;
                }
                let entry = pooled.entry(key).or_default();
                entry.0 += 1;
                entry.1.extend(runs);
                progressed = true;
                if entry.0 >= wanted {
                    let stats = row_stats(&entry.1);
                    pooled.remove(&key);
                    journal.append(&key, &stats)?;
                    measured.rows.insert(key, stats);
                    since_check.push(key);
                    progress.inc(1);
                }
            }
            lines.update(measured.rows.len());
            if progressed {
                misses = 0;
            } else {
                misses += 1;
            }
            schedule.unit(measured.rows.len().saturating_sub(rows_before));
            if !unit_done!() {
                calibrate_if_due!();
            }
        }
        // Keys seen in fewer contexts than wanted keep what they have.
        for (key, (_, runs)) in std::mem::take(&mut pooled) {
            let stats = row_stats(&runs);
            journal.append(&key, &stats)?;
            measured.rows.insert(key, stats);
            since_check.push(key);
            progress.inc(1);
        }
        // Keys no network reached: one-op models.
        let left: Vec<OpKey> = plan
            .to_measure
            .iter()
            .filter(|k| !measured.rows.contains_key(k))
            .copied()
            .collect();
        for key in left {
            progress.set_message("one-op");
            let stats = time_op(runtime, &key, t, scratch)?;
            journal.append(&key, &stats)?;
            measured.rows.insert(key, stats);
            since_check.push(key);
            progress.inc(1);
            lines.update(measured.rows.len());
            schedule.unit(1);
            if unit_done!() {
                // Rows were thrown away: back to the context networks.
                break;
            }
            calibrate_if_due!();
        }
    }
    progress.finish_and_clear();

    // Raw rows of the whole table: measured now, and kept from before.
    let mut raw = plan.kept_raw.clone();
    raw.extend(measured.rows.iter().map(|(k, v)| (*k, v.clone())));
    let complete = all_keys.iter().all(|k| raw.contains_key(k));

    let mut table = LatencyTable::new(Provenance {
        date: tunas_shared::time::utc_now_rfc3339(),
        ..measured.provenance.clone()
    });
    let e = &mut table.provenance.extra;
    e.extend(plan.extra.clone());
    e.insert(
        "x-op-loop".into(),
        format!(
            "warm-up >= {} runs and {:?}; timed >= {} runs and {:?}",
            t.op_loop.min_warmup_runs,
            t.op_loop.min_warmup_time,
            t.op_loop.min_runs,
            t.op_loop.min_time
        ),
    );
    if complete {
        // Calibration on end-to-end networks: those not timed among the op
        // units are timed now (and journaled).
        let cal = bar(s.calibration_networks as u64, s.progress, "calibration");
        let mut rows = Vec::with_capacity(s.calibration_networks);
        let mut cal_ops: Vec<(Vec<OpKey>, f64)> = Vec::with_capacity(s.calibration_networks);
        let mut lines = ProgressLines::new(
            s.progress_lines,
            "calibration",
            s.calibration_networks,
            0,
            s.progress_every,
        );
        let interleaved = cal_times.len();
        for (i, arch) in cal_archs.iter().enumerate() {
            let ops = architecture_ops(space, arch, t.batch);
            let sum: f64 = ops.iter().map(|k| raw[k].median_us).sum();
            let nodes: usize = ops.iter().map(op_node_count).sum();
            if !cal_times.contains_key(&i) {
                time_calibration!(i);
            }
            let e2e = cal_times[&i];
            rows.push((sum, nodes as f64, e2e));
            cal_ops.push((ops, e2e));
            cal.inc(1);
            lines.update(i + 1);
        }
        cal.finish_and_clear();
        let (c0, alpha, c1) = fit_calibration(&rows);
        let fitted: Vec<(f64, f64)> = rows
            .iter()
            .map(|&(sum, n, m)| (c0 + alpha * sum + c1 * n, m))
            .collect();
        let fit = Agreement::of(&fitted);
        table.provenance.overhead_us = c0.max(0.0);
        let e = &mut table.provenance.extra;
        e.insert("x-calibration-networks".into(), rows.len().to_string());
        e.insert("x-calibration-seed".into(), s.calibration_seed.to_string());
        e.insert(
            "x-calibration-order".into(),
            format!(
                "{interleaved} of {} networks timed among the op units in a seeded random order, the rest after them",
                rows.len()
            ),
        );
        e.insert(
            CALIBRATION_E2E_FIELD.into(),
            calibration_times_text(&cal_times),
        );
        e.insert("x-op-scale".into(), format!("{alpha:.5}"));
        e.insert("x-per-node-us".into(), format!("{c1:.3}"));
        e.insert("x-fit-constant-us".into(), format!("{c0:.3}"));
        e.insert("x-calibration-mape-pct".into(), format!("{:.2}", fit.mape));
        let mut clamped = 0;
        for (key, raw) in &raw {
            let per_op = c1 * op_node_count(key) as f64;
            let mut adjust = |v: f64| {
                let v = alpha * v + per_op;
                if v < 0.0 {
                    clamped += 1;
                }
                v.max(0.0)
            };
            let stats = OpStats {
                median_us: adjust(raw.median_us),
                p10_us: adjust(raw.p10_us),
                p90_us: adjust(raw.p90_us),
                mean_us: adjust(raw.mean_us),
                std_us: alpha * raw.std_us,
                runs: raw.runs,
                measured_at: raw.measured_at.clone(),
            };
            table.rows.insert(*key, stats);
        }
        table
            .provenance
            .extra
            .insert("x-clamped-values".into(), clamped.to_string());
        record_kind_scales(&mut table, &cal_ops);
    } else {
        table.provenance.overhead_us = 0.0;
        table.provenance.extra.insert(
            "x-calibration".into(),
            format!(
                "skipped: the table covers {} of the space's {} op keys (--max-keys); rows are raw in-context timings",
                raw.len(),
                all_keys.len()
            ),
        );
        table.rows = raw;
        table
            .provenance
            .extra
            .remove(tunas_shared::table::KIND_SCALE_FIELD);
    }
    let after = sysfs.snapshot();
    let e = &mut table.provenance.extra;
    before.record("before", e);
    after.record("after", e);
    if let Some(sentinel) = &sentinel {
        e.insert("x-sentinel".into(), sentinel.summary());
        e.insert("x-sentinel-drifts".into(), sentinel.events_text());
    } else {
        e.remove("x-sentinel-baseline-us");
        e.insert("x-sentinel".into(), "off".into());
    }
    table.write_atomic(&s.out)?;
    journal.finish().map_err(|e| ProfileError::Unwritable {
        path: jpath.display().to_string(),
        message: e.to_string(),
    })?;
    table.path = Some(s.out.clone());
    Ok(table)
}

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

/// The outcome of `validate`.
#[derive(Clone, Debug, Serialize)]
pub struct ValidationReport {
    /// Space name.
    pub space: String,
    /// Table file.
    pub table: String,
    /// Seed of the sampled architectures.
    pub seed: u64,
    /// Agreement figures (`samples`, `within_5pct`, ...), flattened.
    #[serde(flatten)]
    pub agreement: Agreement,
    /// Runtime and version.
    pub runtime: String,
    /// Intra-op threads.
    pub threads: usize,
    /// Execution provider.
    pub execution_provider: String,
    /// Device description.
    pub device: String,
    /// CPU.
    pub cpu: String,
    /// The statistic of the measured times (`lower-mode`, `median`).
    pub statistic: String,
    /// Per network: architecture, estimate (ms), measured median (ms).
    pub networks: Vec<ValidatedNetwork>,
}

/// One validated network.
#[derive(Clone, Debug, Serialize)]
pub struct ValidatedNetwork {
    /// Compact architecture.
    pub arch: String,
    /// Table estimate (ms).
    pub estimate_ms: f64,
    /// Measured median (ms).
    pub measured_ms: f64,
}

/// Times `samples` random architectures end to end and compares them with
/// the table's estimates.
pub fn validate(
    runtime: &Runtime,
    space: &SearchSpace,
    table: &LatencyTable,
    samples: usize,
    seed: u64,
    t: &TimingSettings,
    show_progress: bool,
) -> Result<ValidationReport, ProfileError> {
    table.check_space(space)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut progress = tunas_shared::progress::Progress::new(
        "validate",
        samples as u64,
        "networks",
        show_progress,
    );
    let mut networks = Vec::with_capacity(samples);
    for _ in 0..samples {
        let arch = Architecture::sample_uniform(space, &mut rng);
        let estimate = table.estimate_us(space, &arch)?;
        let measured = measure_architecture(runtime, space, &arch, t)?;
        networks.push(ValidatedNetwork {
            arch: arch.to_compact(),
            estimate_ms: estimate / 1000.0,
            measured_ms: measured.median_us / 1000.0,
        });
        progress.inc(1);
    }
    progress.finish();
    let pairs: Vec<(f64, f64)> = networks
        .iter()
        .map(|n| (n.estimate_ms, n.measured_ms))
        .collect();
    Ok(ValidationReport {
        space: space.name.clone(),
        table: table
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        seed,
        agreement: Agreement::of(&pairs),
        runtime: format!("onnxruntime {}", runtime.version()),
        threads: t.threads,
        execution_provider: t.provider.name().into(),
        device: t.device.clone(),
        cpu: device::cpu_description(),
        statistic: ROW_STATISTIC.name().into(),
        networks,
    })
}

/// Human summary of a validation.
pub fn validation_text(r: &ValidationReport) -> String {
    let a = &r.agreement;
    format!(
        "{} networks of {} (seed {}), {} with {} thread(s) on {}, measured as the {}\n  within ±5%: {:.1}%   within ±10%: {:.1}%   MAPE {:.2}%   max |err| {:.2}%   mean signed err {:+.2}%\n  Kendall τ {:.3}   Spearman ρ {:.3}\n",
        a.samples,
        r.space,
        r.seed,
        r.runtime,
        r.threads,
        r.cpu,
        r.statistic,
        a.within_5pct * 100.0,
        a.within_10pct * 100.0,
        a.mape,
        a.max_abs_err,
        a.mean_signed_err,
        a.kendall_tau,
        a.spearman
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_fit_recovers_a_known_line() {
        let rows: Vec<(f64, f64, f64)> = (0..10)
            .map(|i| {
                let s = 100.0 + 37.0 * i as f64;
                let n = 5.0 + (i % 4) as f64;
                (s, n, 20.0 + 0.9 * s + 3.0 * n)
            })
            .collect();
        let (c0, a, c1) = fit_calibration(&rows);
        assert!((c0 - 20.0).abs() < 1e-6 && (a - 0.9).abs() < 1e-9 && (c1 - 3.0).abs() < 1e-6);
    }
}
