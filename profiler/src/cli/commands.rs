//! What each command does, in the binary: it turns the typed request into
//! library calls and prints the report. Errors name the flag at fault.

use std::path::Path;

use anyhow::{Context, Result, bail};
use tunas_profiler::catalog;
use tunas_profiler::export::export;
use tunas_profiler::output::{check_output_file, check_output_folder};
use tunas_profiler::profile;
use tunas_profiler::refresh::{self, RefreshError};
use tunas_profiler::remote::{DeviceRequest, DeviceResult, DeviceSpec};
use tunas_profiler::report::MeasureReport;
use tunas_profiler::request::{
    CALIBRATION_SEED, MeasureRequest, PinError, ProfileRequest, RefreshRequest, TimingRequest,
    ValidateRequest,
};
use tunas_profiler::runtime::{self, Runtime};
use tunas_shared::{Architecture, LatencyTable, load_space};

use super::args::{Command, DeviceArgs};
use super::remote_run::run_remote;

/// Loads the runtime `--ort-lib` (or the default search) names, and says
/// which one on stderr.
fn runtime(ort_lib: Option<&Path>) -> Result<&'static Runtime> {
    let library = runtime::locate_runtime(ort_lib)?;
    let rt = runtime::init_runtime(&library)?;
    eprintln!(
        "onnxruntime {} from {} ({})",
        rt.version(),
        library.path.display(),
        library.source
    );
    Ok(rt)
}

/// Pins the process as `--pin` asks: the explicit step of every command
/// that times here. Returns the pinning as provenance records it.
fn pin(timing: &TimingRequest) -> Result<String> {
    let Some(p) = &timing.pin else {
        return Ok("none".into());
    };
    p.apply().map_err(|e| match e {
        PinError::Big(m) => anyhow::Error::msg(m).context("--pin big"),
        PinError::Cores(m) => anyhow::Error::msg(m).context("--pin"),
    })
}

/// A profiling error with the flag that resolves it, where one does.
fn profile_error(e: profile::ProfileError) -> anyhow::Error {
    let hint = match &e {
        profile::ProfileError::OutputExists { .. } => {
            "; pass --force to overwrite it, or write to another file"
        }
        profile::ProfileError::JournalExists { .. } => {
            "; pass --resume to continue it, or delete the file to start over"
        }
        _ => return anyhow::Error::new(e),
    };
    anyhow::anyhow!("{e}{hint}")
}

/// The flag a refresh error is about, named.
fn refresh_error(e: RefreshError) -> anyhow::Error {
    match e {
        RefreshError::SpaceNotBuiltIn { .. } => anyhow::anyhow!("{e}; pass --space FILE.toml"),
        RefreshError::SettingChanged { setting, .. } => anyhow::anyhow!("--{setting} {e}"),
        RefreshError::OtherCpu { .. } | RefreshError::BadCalibration { .. } => {
            anyhow::Error::new(e)
        }
    }
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

/// Runs the parsed command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Spaces { json, show } => spaces(json, show),
        Command::Ops { space, batch } => {
            let space = load_space(&space).context("--space")?;
            print!("{}", catalog::op_keys_csv(&space, batch));
            Ok(())
        }
        Command::Profile(args) => profile(&args.request()?, &args.device),
        Command::Refresh(args) => refresh(&args.request()?, &args.device),
        Command::Measure(args) => measure(&args.request()?, args.json),
        Command::Validate(args) => validate(&args.request()?, args.json),
        Command::Compare {
            tables,
            space,
            networks,
            seed,
            per_level,
            json,
        } => compare(&tables, space.as_deref(), networks, seed, per_level, json),
        Command::Export { table, format } => {
            let table = load_table(&table)?;
            print!("{}", export(&table, format.format()));
            Ok(())
        }
        Command::RunRequest { file } => run_request(&file),
    }
}

/// The device side of a remote run: runs the shipped request here and
/// writes its result beside it (also when it fails, with the error and its
/// causes), so the host reads back a typed outcome.
fn run_request(file: &Path) -> Result<()> {
    let request = DeviceRequest::read(file)?;
    let done = match &request {
        DeviceRequest::Profile(p) => check_output_file(&p.out, "tables", &[])
            .context("--out")
            .and_then(|()| profile_here(p)),
        DeviceRequest::Refresh(r) => refresh_here(r),
    };
    let result = match &done {
        Ok(rows) => DeviceResult {
            rows: *rows,
            error: None,
        },
        Err(e) => DeviceResult {
            rows: 0,
            error: Some(format!("{e:#}")),
        },
    };
    result.write_beside(file)?;
    done.map(|_| ())
}

fn spaces(json: bool, show: Option<String>) -> Result<()> {
    if let Some(name) = show {
        let space = load_space(&name)?;
        print!("{}", space.to_toml());
    } else if json {
        let list = catalog::builtin_summaries();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", catalog::summaries_text(&catalog::builtin_summaries()));
    }
    Ok(())
}

/// `--out` of `profile`: a folder for all-adb, else a table that is only
/// overwritten with `--force`.
fn check_profile_out(out: &Path, spec: &DeviceSpec, resume: bool, force: bool) -> Result<()> {
    if *spec == DeviceSpec::AllAdb {
        check_output_folder(out).context("--out")?;
        return Ok(());
    }
    check_output_file(out, "tables", &[]).context("--out")?;
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
    Ok(())
}

fn profile(request: &ProfileRequest, device: &DeviceArgs) -> Result<()> {
    let out = request.out.as_path();
    let spec = device.spec()?;
    check_profile_out(out, &spec, request.resume, request.force)?;
    load_space(&request.space).context("--space")?;
    if spec != DeviceSpec::Local {
        let (force, ort_lib) = (request.force, request.timing.ort_lib.clone());
        let remote = DeviceRequest::Profile(request.clone());
        return run_remote(device, force, remote, out, ort_lib);
    }
    profile_here(request).map(|_| ())
}

/// `profile` on this machine; returns the rows written.
fn profile_here(request: &ProfileRequest) -> Result<usize> {
    let ProfileRequest {
        space,
        out,
        resume,
        force,
        max_keys,
        run,
        timing,
    } = request;
    let (out, resume, force, max_keys) = (out.as_path(), *resume, *force, *max_keys);
    let space_def = load_space(space).context("--space")?;
    let pinning = pin(timing)?;
    let timing_settings = timing
        .settings(pinning, run.device_label.as_deref())
        .context("--ep")?;
    let settings = run.settings(timing_settings, timing.quiet, out, resume, force, max_keys);
    let rt = runtime(timing.ort_lib.as_deref())?;
    let started = std::time::Instant::now();
    let table = profile::profile(rt, &space_def, &settings).map_err(profile_error)?;
    eprintln!(
        "wrote {} ({} op keys, per-inference constant {:.1} µs, calibration MAPE {}) in {:.0} s",
        out.display(),
        table.rows.len(),
        table.provenance.overhead_us,
        table
            .provenance
            .extra
            .get("x-calibration-mape-pct")
            .map_or("? (not calibrated)".to_string(), |m| format!("{m}%")),
        started.elapsed().as_secs_f64()
    );
    eprintln!("{}", summary(&table));
    Ok(table.rows.len())
}

fn refresh(request: &RefreshRequest, device: &DeviceArgs) -> Result<()> {
    if device.spec()? == DeviceSpec::Local {
        // refresh_here makes every check itself: read the table once.
        return refresh_here(request).map(|_| ());
    }
    let mut request = request.clone();
    check_output_file(&request.out, "tables", &[]).context("--out")?;
    let table = request.table.as_path();
    let old = load_table(table)?;
    let space_name =
        refresh::space_name(table, &old, request.space.clone()).map_err(refresh_error)?;
    load_space(&space_name).context("--space")?;
    refresh::keep_table_settings(table, &old, &mut request.timing).map_err(refresh_error)?;
    request.space = Some(space_name);
    let (out, ort_lib) = (request.out.clone(), request.timing.ort_lib.clone());
    run_remote(device, true, DeviceRequest::Refresh(request), &out, ort_lib)
}

/// `refresh` on this machine; returns the rows written.
fn refresh_here(request: &RefreshRequest) -> Result<usize> {
    let (mut run, mut timing) = (request.run.clone(), request.timing.clone());
    let (table, out) = (request.table.as_path(), &request.out);
    let older_than = request.older_than_days;
    check_output_file(out, "tables", &[]).context("--out")?;
    let old = load_table(table)?;
    let space_name =
        refresh::space_name(table, &old, request.space.clone()).map_err(refresh_error)?;
    let space_def = load_space(&space_name).context("--space")?;
    refresh::keep_table_settings(table, &old, &mut timing).map_err(refresh_error)?;
    let pinning = pin(&timing)?;
    let timing_settings = timing
        .settings(pinning, run.device_label.as_deref())
        .context("--ep")?
        // Rows it re-measures are scaled as the kept ones were.
        .with_reference_of(&old)?;
    // The calibration networks are the ones the table was fitted on.
    run.seed = old
        .provenance
        .calibration_seed()
        .with_context(|| table.display().to_string())?
        .unwrap_or(CALIBRATION_SEED);
    let settings = run.settings(timing_settings, timing.quiet, out, true, true, None);
    let rt = runtime(timing.ort_lib.as_deref())?;
    refresh::check_same_cpu(table, &old).map_err(refresh_error)?;
    let cutoff = refresh::cutoff_unix(older_than);
    let (plan, counts) =
        refresh::plan_refresh(&old, &space_def, rt.version(), cutoff).map_err(refresh_error)?;
    eprintln!("refresh {}: {}", table.display(), counts.text());
    let started = std::time::Instant::now();
    let fresh = profile::run_plan(rt, &space_def, &settings, plan).map_err(profile_error)?;
    eprintln!(
        "wrote {} ({} op keys, {} re-measured) in {:.0} s",
        out.display(),
        fresh.rows.len(),
        counts.to_measure(),
        started.elapsed().as_secs_f64()
    );
    eprintln!("{}", summary(&fresh));
    Ok(fresh.rows.len())
}

/// The timing settings of `measure` and `validate`, after pinning.
fn local_settings(timing: &TimingRequest) -> Result<profile::TimingSettings> {
    let pinning = pin(timing)?;
    timing.settings(pinning, None).context("--ep")
}

/// What `measure` timed: its name, the timings and the table's estimate.
struct Measured {
    what: String,
    stats: tunas_shared::OpStats,
    estimate: Option<f64>,
}

fn measure_model(
    rt: &Runtime,
    path: &Path,
    bytes: &[u8],
    table: Option<&tunas_shared::LatencyTable>,
    space: Option<&str>,
    settings: &profile::TimingSettings,
) -> Result<Measured> {
    let m = profile::time_model(rt, bytes, settings).with_context(|| {
        format!(
            "--model {}: ONNX Runtime cannot load or run it (is it an ONNX model, e.g. from `tunas-searcher export`?)",
            path.display()
        )
    })?;
    let estimate = match table {
        Some(t) => Some(estimate_of_model(path, bytes, t, space)?),
        None => None,
    };
    Ok(Measured {
        what: path.display().to_string(),
        stats: m.stats(),
        estimate,
    })
}

fn measure_arch(
    rt: &Runtime,
    space: Option<&str>,
    arch: Option<&str>,
    table: Option<&tunas_shared::LatencyTable>,
    settings: &profile::TimingSettings,
) -> Result<Measured> {
    let space = load_space(space.unwrap_or_default()).context("--space")?;
    let arch = Architecture::parse_spec(&space, arch.unwrap_or_default()).context("--arch")?;
    let estimate = match table {
        Some(t) => {
            t.check_space(&space)?;
            Some(t.estimate_us(&space, &arch)? / 1000.0)
        }
        None => None,
    };
    let stats = profile::measure_architecture(rt, &space, &arch, settings)?;
    Ok(Measured {
        what: arch.to_compact(),
        stats,
        estimate,
    })
}

fn measure(request: &MeasureRequest, json: bool) -> Result<()> {
    let MeasureRequest {
        space,
        arch,
        model,
        table,
        timing,
    } = request;
    // The model is read before the runtime starts: a wrong path fails at
    // once.
    let model = match model {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("--model: cannot read the model {}", path.display()))?;
            Some((path, bytes))
        }
        None => None,
    };
    // A table is read before timing: a bad one fails at once, and its
    // reference (if it was profiled with one) scales these runs too.
    let table = table.as_deref().map(load_table).transpose()?;
    let mut settings = local_settings(timing)?;
    if let Some(t) = &table {
        settings = settings.with_reference_of(t)?;
    }
    let rt = runtime(timing.ort_lib.as_deref())?;
    let table = table.as_ref();
    let Measured {
        what,
        stats,
        estimate,
    } = match model {
        Some((path, bytes)) => measure_model(rt, path, &bytes, table, space.as_deref(), &settings)?,
        None => measure_arch(rt, space.as_deref(), arch.as_deref(), table, &settings)?,
    };
    let report = MeasureReport::new(
        what,
        &stats,
        estimate,
        rt.version(),
        settings.threads,
        settings.provider.name(),
        settings.statistic_text(),
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

fn validate(request: &ValidateRequest, json: bool) -> Result<()> {
    let ValidateRequest {
        space,
        table,
        samples,
        seed,
        rounds,
        plot,
        timing,
    } = request;
    if let Some(path) = &plot {
        check_plot_path(path).context("--plot")?;
    }
    let space = load_space(space).context("--space")?;
    let table = load_table(table)?;
    table.check_space(&space)?;
    let settings = local_settings(timing)?.with_reference_of(&table)?;
    let rt = runtime(timing.ort_lib.as_deref())?;
    let report = profile::validate(
        rt,
        &space,
        &table,
        profile::ValidationPlan {
            samples: *samples,
            seed: *seed,
            rounds: *rounds,
        },
        &settings,
        !timing.quiet,
    )?;
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
        write_plot(path, &title, &points)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", profile::validation_text(&report));
    }
    Ok(())
}

/// What `compare` prints as JSON.
#[derive(serde::Serialize)]
struct ComparisonReport {
    tables: Vec<String>,
    pairs: Vec<PairComparison>,
    estimates: profile::EstimateAgreement,
    /// With `--per-level`: each table's reference level (µs) and the
    /// agreement of the estimates divided by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    per_level: Option<PerLevelAgreement>,
}

#[derive(serde::Serialize)]
struct PerLevelAgreement {
    levels_us: Vec<f64>,
    estimates: profile::EstimateAgreement,
}

#[derive(serde::Serialize)]
struct PairComparison {
    a: String,
    b: String,
    #[serde(flatten)]
    keys: profile::TableComparison,
}

fn compare(
    paths: &[std::path::PathBuf],
    space: Option<&str>,
    networks: usize,
    seed: u64,
    per_level: bool,
    json: bool,
) -> Result<()> {
    let tables = paths
        .iter()
        .map(|p| load_table(p))
        .collect::<Result<Vec<_>>>()?;
    let levels = if per_level {
        Some(reference_levels(paths, &tables)?)
    } else {
        None
    };
    let first = &tables[0];
    for (path, t) in paths.iter().zip(&tables).skip(1) {
        if t.provenance.space_hash != first.provenance.space_hash {
            bail!(
                "{} is for space {} ({}), {} for {} ({}): compare tables of one space",
                paths[0].display(),
                first.provenance.space,
                first.provenance.space_hash,
                path.display(),
                t.provenance.space,
                t.provenance.space_hash
            );
        }
    }
    let space = match space {
        Some(s) => load_space(s).context("--space")?,
        None => tunas_shared::builtin_space_of(first).with_context(|| {
            format!(
                "{}: made for space '{}', which is not built in: pass --space FILE.toml",
                paths[0].display(),
                first.provenance.space
            )
        })?,
    };
    if space.content_hash() != first.provenance.space_hash {
        bail!(
            "--space {} has hash {}, the tables were made for {}: pass the tables' space",
            space.name,
            space.content_hash(),
            first.provenance.space_hash
        );
    }
    let mut pairs = Vec::new();
    for i in 0..tables.len() {
        for j in i + 1..tables.len() {
            pairs.push(PairComparison {
                a: paths[i].display().to_string(),
                b: paths[j].display().to_string(),
                keys: profile::compare_tables(&tables[i], &tables[j]),
            });
        }
    }
    let network_estimates = profile::NetworkEstimates::of(&space, &tables, networks, seed)?;
    let estimates = network_estimates.agreement(&vec![1.0; tables.len()]);
    let per_level = levels.map(|levels_us| {
        let scales: Vec<f64> = levels_us.iter().map(|l| levels_us[0] / l).collect();
        PerLevelAgreement {
            estimates: network_estimates.agreement(&scales),
            levels_us,
        }
    });
    let report = ComparisonReport {
        tables: paths.iter().map(|p| p.display().to_string()).collect(),
        pairs,
        estimates,
        per_level,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", comparison_text(&report));
    }
    Ok(())
}

/// Every table's reference level (µs), for `compare --per-level`; a table
/// without one is refused by name.
fn reference_levels(paths: &[std::path::PathBuf], tables: &[LatencyTable]) -> Result<Vec<f64>> {
    paths
        .iter()
        .zip(tables)
        .map(|(path, t)| {
            let reference = t
                .provenance
                .timing_reference()
                .with_context(|| format!("{}: --per-level", path.display()))?;
            match reference {
                Some(r) => Ok(r.level_us),
                None => bail!(
                    "{}: no {} (the table was profiled without --reference): --per-level needs every table's reference level",
                    path.display(),
                    tunas_shared::table::REFERENCE_LEVEL_FIELD
                ),
            }
        })
        .collect()
}

/// The text `compare` prints: one line per pair, then the estimates.
fn comparison_text(report: &ComparisonReport) -> String {
    let mut text = String::new();
    for p in &report.pairs {
        let c = &p.keys;
        text.push_str(&format!(
            "{} vs {}: {} common keys ({} unmatched): median |difference| {:.2}%, p90 {:.2}%, max {:.2}%; constants {:.1} / {:.1} µs\n",
            p.a,
            p.b,
            c.common_keys,
            c.unmatched_keys,
            c.median_rel_diff_pct,
            c.p90_rel_diff_pct,
            c.max_rel_diff_pct,
            c.overhead_us.0,
            c.overhead_us.1
        ));
    }
    let e = &report.estimates;
    text.push_str(&format!(
        "estimates of {} random networks (seed {}) by {} tables: {:.1}% within ±3% of their median; spread median {:.2}%, p95 {:.2}%, max {:.2}%\n",
        e.networks,
        e.seed,
        e.tables,
        100.0 * e.within_3pct,
        e.median_spread_pct,
        e.p95_spread_pct,
        e.max_spread_pct
    ));
    if let Some(p) = &report.per_level {
        let levels: Vec<String> = p.levels_us.iter().map(|l| format!("{l:.2}")).collect();
        let e = &p.estimates;
        text.push_str(&format!(
            "divided by each table's reference level ({} µs): {:.1}% within ±3%; spread median {:.2}%, p95 {:.2}%, max {:.2}%\n",
            levels.join(", "),
            100.0 * e.within_3pct,
            e.median_spread_pct,
            e.p95_spread_pct,
            e.max_spread_pct
        ));
    }
    text
}
