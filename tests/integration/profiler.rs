//! The profiler through its command line with the real ONNX Runtime: a run
//! killed with SIGKILL resumes without re-measuring or duplicating, the
//! table it writes is strict-readable and covers the space, and each
//! failure a user can hit says what is wrong. Calibration networks are
//! timed among the op units and journaled too, so the kill loses none.
//!
//! Timing loops are shortened (a few runs per op): these tests check
//! behaviour, never speed or accuracy; the figures come from
//! `tunas-profiler validate` (see the README).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{binary, run};
use tunas_shared::{LatencyTable, builtin_space, space_op_keys};

const FAST: [&str; 15] = [
    "--quiet",
    "--warmup-runs",
    "1",
    "--warmup-ms",
    "0",
    "--runs",
    "3",
    "--min-ms",
    "0",
    "--network-runs",
    "3",
    "--network-min-ms",
    "0",
    "--calibration-networks=6",
    // A drifting sentinel on this busy machine must not pause the test.
    "--cooldown-s=0",
];

/// `INDEX=US` pairs of an `x-calibration-e2e-us` value.
fn calibration_pairs(value: &str) -> BTreeMap<String, String> {
    value
        .split_whitespace()
        .filter_map(|p| p.split_once('='))
        .map(|(i, v)| (i.to_string(), v.to_string()))
        .collect()
}

/// Calibration networks a journal holds (timed among the op units).
fn journal_calibration(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("# x-calibration-e2e-us = "))
        .map(calibration_pairs)
        .unwrap_or_default()
}

fn runtime_available() -> bool {
    let ok = tunas_profiler::runtime::locate_runtime(None).is_ok();
    if !ok {
        eprintln!("skipped: no ONNX Runtime library (cargo xtask setup provisions one)");
    }
    ok
}

/// Complete journal rows: key text → measured_at.
fn journal_rows(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("op,"))
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[..12].join(","), cells[18].to_string())
        })
        .collect()
}

#[test]
fn killed_profile_resumes_without_remeasuring_or_duplicating() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny28.csv");
    let journal = dir.path().join("tiny28.csv.partial");
    let mut args = vec![
        "profile",
        "--space",
        "tiny28",
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "5",
    ];
    args.extend(FAST);
    let mut child = Command::new(binary("tunas-profiler"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Calibration networks are timed among the op units: wait for one.
    while journal_rows(&journal).len() < 60 || journal_calibration(&journal).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the profiler wrote no rows in 2 minutes"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("profile ended ({status}) before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = journal_rows(&journal);
    let calibrated_before = journal_calibration(&journal);
    assert!(!out.exists(), "a killed run must not leave a final table");

    // Without --resume the journal is not silently overwritten.
    let again = run("tunas-profiler", &args);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("pass --resume"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let mut resume = args.clone();
    resume.push("--resume");
    // Its networks came from seed 5: another seed would mix two profiles.
    let other_seed: Vec<&str> = resume
        .iter()
        .map(|a| if *a == "5" { "6" } else { *a })
        .collect();
    let mixed = run("tunas-profiler", &other_seed);
    assert!(!mixed.status.success());
    let said = String::from_utf8_lossy(&mixed.stderr);
    assert!(said.contains("x-calibration-seed"), "{said}");
    let done = run("tunas-profiler", &resume);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        !journal.exists(),
        "the journal is removed once the table is written"
    );
    let table = LatencyTable::read(&out).unwrap();
    let space = builtin_space("tiny28").unwrap();
    let expected: Vec<String> = space_op_keys(&space, 1)
        .iter()
        .map(|k| k.to_string())
        .collect();
    let got: Vec<String> = table.rows.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        got, expected,
        "the table covers exactly the space's op keys"
    );
    // Rows measured before the kill were kept, not measured again.
    for (key, measured_at) in &before {
        let row = table
            .rows
            .iter()
            .find(|(k, _)| k.cells().join(",") == *key)
            .unwrap_or_else(|| panic!("{key} vanished"));
        assert_eq!(&row.1.measured_at, measured_at, "{key} was re-measured");
    }
    // The table predicts, and the file says how it was made.
    assert!(
        table
            .provenance
            .extra
            .contains_key("x-calibration-mape-pct")
    );
    assert_eq!(table.provenance.space_hash, space.content_hash());
    let extra = &table.provenance.extra;
    assert_eq!(extra["x-calibration-seed"], "5");
    // Calibration networks timed before the kill were kept, not timed
    // again, and every one was timed once.
    let calibrated = calibration_pairs(&extra["x-calibration-e2e-us"]);
    assert_eq!(calibrated.len(), 6, "{calibrated:?}");
    for (i, us) in &calibrated_before {
        assert_eq!(calibrated.get(i), Some(us), "calibration network {i}");
    }
    assert!(
        extra["x-calibration-order"].contains("among the op units"),
        "{extra:?}"
    );
    assert!(
        extra["x-statistic"].starts_with("lower-mode"),
        "{:?}",
        extra.get("x-statistic")
    );
    assert!(extra.contains_key("x-kind-scale-fit"), "{extra:?}");
    assert!(table.kind_scales().is_ok());
}

#[test]
fn profiler_errors_say_what_is_wrong() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.csv");
    let out_s = out.to_str().unwrap();
    let stderr_of = |args: &[&str], env: Option<(&str, &str)>| {
        let mut c = Command::new(binary("tunas-profiler"));
        c.args(args);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let profile = ["profile", "--space", "tiny28", "--out", out_s, "--quiet"];

    let err = stderr_of(&[&profile[..], &["--ep", "tpu"]].concat(), None);
    assert!(err.contains("unknown execution provider 'tpu'"), "{err}");

    // This x86 build of ONNX Runtime has no XNNPACK: an error, never a
    // silent CPU fallback.
    let err = stderr_of(&[&profile[..], &["--ep", "xnnpack"]].concat(), None);
    assert!(err.to_lowercase().contains("xnnpack"), "{err}");

    let err = stderr_of(
        &[
            "profile",
            "--space",
            "tiny28",
            "--out",
            "/proc/no/such/dir/t.csv",
            "--quiet",
        ],
        None,
    );
    assert!(err.contains("/proc/no/such/dir"), "{err}");

    let err = stderr_of(
        &profile,
        Some(("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")),
    );
    assert!(err.contains("/nonexistent/libonnxruntime.so"), "{err}");
    assert!(err.contains("cargo xtask setup"), "{err}");

    // A file that is no ONNX model is named.
    let not_onnx = dir.path().join("notes.txt");
    std::fs::write(&not_onnx, "not a model\n").unwrap();
    let err = stderr_of(
        &["measure", "--model", not_onnx.to_str().unwrap(), "--quiet"],
        None,
    );
    assert!(err.contains(not_onnx.to_str().unwrap()), "{err}");
    assert!(err.contains("--model"), "{err}");

    // A table of another space is refused by validate.
    let tiny = crate::tables::synthetic_table(&builtin_space("tiny28").unwrap());
    tiny.write_atomic(&out).unwrap();
    let err = stderr_of(
        &[
            "validate",
            "--space",
            "proxylessnas",
            "--table",
            out_s,
            "--samples",
            "2",
            "--quiet",
        ],
        None,
    );
    assert!(err.contains("made for space 'tiny28'"), "{err}");

    // An existing table is not overwritten without --force.
    let err = stderr_of(&profile, None);
    assert!(err.contains("--force"), "{err}");
}

#[test]
fn resume_without_a_journal_never_overwrites_a_finished_table() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.csv");
    crate::tables::synthetic_table(&builtin_space("tiny28").unwrap())
        .write_atomic(&out)
        .unwrap();
    let before = std::fs::read(&out).unwrap();
    let out_s = out.to_str().unwrap();
    let mut args = vec!["profile", "--space", "tiny28", "--out", out_s];
    args.extend(["--max-keys", "3", "--resume"]);
    args.extend(FAST);
    let o = run("tunas-profiler", &args);
    assert!(!o.status.success(), "--resume overwrote {out_s}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{out_s} exists")), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), before, "the table changed");
    // With --force it is replaced.
    args.push("--force");
    let o = run("tunas-profiler", &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(LatencyTable::read(&out).unwrap().rows.len(), 3);
}

#[test]
fn every_numeric_flag_is_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.csv");
    let out_s = out.to_str().unwrap();
    let table = dir.path().join("missing.csv");
    let table_s = table.to_str().unwrap();
    let profile = ["profile", "--space", "tiny28", "--out", out_s];
    let refresh = ["refresh", "--table", table_s];
    let validate = ["validate", "--space", "tiny28", "--table", table_s];
    let measure = ["measure", "--space", "tiny28", "--arch", "largest"];
    let cases: Vec<(&[&str], &str, &str)> = vec![
        (&profile, "--calibration-networks", "0"),
        (&profile, "--calibration-networks", "2"),
        (&profile, "--contexts", "0"),
        (&profile, "--max-keys", "0"),
        (&profile, "--sentinel-every", "-1"),
        (&profile, "--drift-threshold", "0"),
        (&profile, "--drift-threshold", "NaN"),
        (&profile, "--drift-threshold", "inf"),
        (&profile, "--cooldown-s", "-1"),
        (&profile, "--cooldown-s", "1e30"),
        (&profile, "--cooldown-budget-s", "nan"),
        (&profile, "--threads", "0"),
        (&profile, "--batch", "0"),
        (&profile, "--batch", "1000000"),
        (&profile, "--warmup-runs", "-3"),
        (&profile, "--warmup-ms", "99999999999"),
        (&profile, "--runs", "0"),
        (&profile, "--min-ms", "1.5"),
        (&profile, "--network-runs", "0"),
        (&profile, "--network-min-ms", "-1"),
        (&refresh, "--calibration-networks", "0"),
        (&refresh, "--contexts", "0"),
        (&refresh, "--older-than", "-1"),
        (&refresh, "--older-than", "nan"),
        (&validate, "--samples", "1"),
        (&validate, "--runs", "0"),
        (&measure, "--network-runs", "0"),
        (&["ops", "--space", "tiny28"], "--batch", "0"),
    ];
    for (command, flag, value) in &cases {
        let mut args = command.to_vec();
        let flag_value = format!("{flag}={value}");
        args.push(&flag_value);
        if command[0] != "ops" {
            args.push("--quiet");
        }
        if command[0] == "profile" && *flag != "--max-keys" {
            // Were the flag let through, the run would be short.
            args.push("--max-keys=2");
        }
        // Over a remote device too, before adb is ever started.
        for device in [None, Some("adb")] {
            let mut c = Command::new(binary("tunas-profiler"));
            c.args(&args).env("ADB", "/nonexistent/adb");
            if let Some(d) = device {
                if command[0] != "profile" && command[0] != "refresh" {
                    continue;
                }
                c.args(["--device", d]);
            }
            let o = c.output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?} {device:?}: {err}");
            assert!(
                err.contains(&format!("invalid value '{value}' for '{flag}")),
                "{args:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            assert!(!out.exists() && !dir.path().join("t.csv.partial").exists());
        }
    }
    // The limits are generous for real use: the defaults and FAST pass.
    let o = run(
        "tunas-profiler",
        &[&["ops", "--space", "tiny28", "--batch", "64"][..]].concat(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn output_paths_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.csv");
    crate::tables::synthetic_table(&builtin_space("tiny28").unwrap())
        .write_atomic(&table)
        .unwrap();
    let t = table.to_str().unwrap();
    let folder = dir.path().join("a folder");
    std::fs::create_dir(&folder).unwrap();
    let missing = dir.path().join("no such folder");
    let in_missing = missing.join("x.csv");
    let profile = ["profile", "--space", "tiny28", "--max-keys", "2"];
    let validate = [
        "validate",
        "--space",
        "tiny28",
        "--table",
        t,
        "--samples",
        "2",
    ];
    let refresh = ["refresh", "--table", t];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            [&validate[..], &["--plot", "/proc/x.svg"]].concat(),
            "cannot write in /proc",
        ),
        (
            [&validate[..], &["--plot", "v.txt"]].concat(),
            "v.txt: not a supported file type; charts are written as .svg or .png",
        ),
        (
            [
                &profile[..],
                &["--force", "--out", folder.to_str().unwrap()],
            ]
            .concat(),
            "is a folder",
        ),
        (
            [&profile[..], &["--out", in_missing.to_str().unwrap()]].concat(),
            "does not exist",
        ),
        (
            [&profile[..], &["--out", "/proc/x.csv"]].concat(),
            "cannot write in /proc",
        ),
        (
            [&refresh[..], &["--out", in_missing.to_str().unwrap()]].concat(),
            "does not exist",
        ),
        (
            [
                &profile[..],
                &["--device", "all-adb", "--out"],
                &[in_missing.to_str().unwrap()],
            ]
            .concat(),
            "does not exist",
        ),
        (
            [&profile[..], &["--device", "all-adb", "--out", t]].concat(),
            "is not a folder",
        ),
    ];
    for (args, needle) in &cases {
        // Validate has no calibration: the timing part of FAST only.
        let fast = if args[0] == "validate" {
            &FAST[..13]
        } else {
            &FAST[..]
        };
        let o = Command::new(binary("tunas-profiler"))
            .args(args)
            .args(fast)
            .env("ADB", "/nonexistent/adb")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        let flag = if args.contains(&"--plot") {
            "--plot"
        } else {
            "--out"
        };
        assert!(err.contains(flag), "{args:?} does not name {flag}: {err}");
        // Nothing was timed: the runtime was not even loaded.
        assert!(!err.contains("onnxruntime 1."), "{args:?}: {err}");
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
}

#[test]
fn progress_lines_are_spaced_never_repeat_and_say_rate_and_eta() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lines_of = |every: &str, name: &str| {
        let out = dir.path().join(name);
        let mut args = vec!["profile", "--space", "tiny28", "--max-keys", "40"];
        args.extend(["--progress-lines", "--progress-every", every]);
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(FAST);
        let started = Instant::now();
        let o = run("tunas-profiler", &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let lines: Vec<String> = String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.starts_with("progress: "))
            .map(String::from)
            .collect();
        (lines, started.elapsed())
    };
    // Every change, for the record: never the same line twice.
    let (all, _) = lines_of("0", "a.csv");
    assert!(all.len() >= 2, "{all:?}");
    for pair in all.windows(2) {
        assert_ne!(pair[0], pair[1], "a line repeats: {all:?}");
    }
    for line in &all {
        assert!(line.contains("%), ") && line.contains("/s, "), "{line}");
        assert!(line.contains("ETA ") || line.ends_with("done"), "{line}");
    }
    assert!(
        all.last()
            .unwrap()
            .starts_with("progress: ops 40/40 (100%)")
    );
    // The default: the first line, then one every 5 s at most, and the last.
    let (spaced, took) = lines_of("5", "b.csv");
    let most = 2 + (took.as_secs_f64() / 5.0) as usize;
    assert!(
        spaced.len() <= most,
        "{} lines in {took:?}: {spaced:?}",
        spaced.len()
    );
    assert!(spaced.last().unwrap().ends_with("done"), "{spaced:?}");
}

#[test]
fn measure_and_export_work_on_a_real_table() {
    if !runtime_available() {
        return;
    }
    let o = run(
        "tunas-profiler",
        &[
            "measure",
            "--space",
            "tiny28",
            "--arch",
            "random:4",
            "--json",
            "--quiet",
            "--runs",
            "5",
            "--network-runs",
            "5",
            "--network-min-ms",
            "0",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["median_ms"].as_f64().unwrap() > 0.0);
    assert!(v["runtime"].as_str().unwrap().starts_with("onnxruntime 1."));
    // measure says which statistic it reports: the one validate and the
    // table's rows use.
    assert_eq!(v["statistic"], "lower-mode");

    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.csv");
    crate::tables::synthetic_table(&builtin_space("tiny28").unwrap())
        .write_atomic(&table)
        .unwrap();
    let t = table.to_str().unwrap();
    let yaml = run(
        "tunas-profiler",
        &["export", "--table", t, "--format", "ofa-yaml"],
    );
    assert!(yaml.status.success());
    let text = String::from_utf8_lossy(&yaml.stdout);
    assert!(text.contains("expanded_conv-input:28x28x16-output:14x14x32-expand:96-kernel:7-stride:2-idskip:0-se:1-hs:0:"), "{}", &text[..400.min(text.len())]);
    let json = run(
        "tunas-profiler",
        &["export", "--table", t, "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["ops"].as_array().unwrap().len(), 572);
}

#[test]
fn an_op_choice_space_profiles_and_validates() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny28-ops.csv");
    let out_s = out.to_str().unwrap();
    let mut args = vec!["profile", "--space", "tiny28-ops", "--out", out_s];
    args.extend(FAST);
    let o = run("tunas-profiler", &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = LatencyTable::read(&out).unwrap();
    let space = builtin_space("tiny28-ops").unwrap();
    let keys = space_op_keys(&space, 1);
    assert!(keys.iter().all(|k| table.rows.contains_key(k)));
    let fused = keys.iter().filter(|k| k.op == tunas_shared::OpKind::Fused);
    assert!(fused.count() > 100, "the fused op's keys are profiled");
    let validate = [
        "validate",
        "--space",
        "tiny28-ops",
        "--table",
        out_s,
        "--samples",
        "4",
        "--quiet",
        "--json",
        "--network-runs",
        "3",
        "--network-min-ms",
        "0",
        "--rounds",
        "3",
    ];
    let o = run("tunas-profiler", &validate);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.to_string().contains("tiny28-ops"), "{v}");
    // Every network was timed in 3 rounds; its figure is their median.
    assert_eq!(v["rounds"], 3);
    assert!(
        v["statistic"]
            .as_str()
            .unwrap()
            .starts_with("median over 3 rounds")
    );
    for n in v["networks"].as_array().unwrap() {
        let mut rounds: Vec<f64> = n["rounds_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_f64().unwrap())
            .collect();
        assert_eq!(rounds.len(), 3, "{n}");
        rounds.sort_by(f64::total_cmp);
        assert_eq!(n["measured_ms"].as_f64().unwrap(), rounds[1], "{n}");
    }
}

#[test]
fn profile_off_a_terminal_prints_progress_lines_unless_quiet() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // FAST without its leading --quiet: the defaults a user's log gets.
    let loud: Vec<&str> = FAST.iter().copied().filter(|a| *a != "--quiet").collect();
    let profile = |name: &str, quiet: bool| {
        let out = dir.path().join(name);
        let mut args = vec!["profile", "--space", "tiny28", "--max-keys", "12"];
        args.extend(["--progress-every", "0", "--out", out.to_str().unwrap()]);
        args.extend(&loud);
        if quiet {
            args.push("--quiet");
        }
        let o = run("tunas-profiler", &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    // The test's stderr is a pipe, as in a log or CI.
    let err = profile("loud.csv", false);
    assert!(err.contains("progress: ops 12/12 (100%)"), "{err}");
    assert!(
        err.contains("calibration MAPE ? (not calibrated)) in"),
        "{err}"
    );
    let err = profile("quiet.csv", true);
    assert!(!err.contains("progress: "), "{err}");
}

#[test]
fn a_table_profiled_beside_a_reference_makes_validate_and_measure_time_alike() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ref.csv");
    let out_s = out.to_str().unwrap();
    let mut args = vec![
        "profile",
        "--space",
        "tiny28",
        "--out",
        out_s,
        "--reference",
    ];
    args.extend(FAST);
    let o = run("tunas-profiler", &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = LatencyTable::read(&out).unwrap();
    let reference = table
        .provenance
        .timing_reference()
        .unwrap()
        .expect("the table records its reference");
    assert!(reference.level_us > 0.0);
    let extra = &table.provenance.extra;
    assert_eq!(extra["x-sentinel"], "off", "{extra:?}");
    assert!(extra.contains_key("x-calibration-mape-pct"), "{extra:?}");
    assert_eq!(
        table.rows.len(),
        space_op_keys(&builtin_space("tiny28").unwrap(), 1).len()
    );
    let key = reference.key.to_string();

    // validate and measure take the table's reference and say so.
    let quick = [
        "--quiet",
        "--network-runs",
        "3",
        "--network-min-ms",
        "0",
        "--warmup-runs",
        "1",
        "--warmup-ms",
        "0",
    ];
    let mut v = vec![
        "validate",
        "--space",
        "tiny28",
        "--table",
        out_s,
        "--samples",
        "3",
        "--json",
    ];
    v.extend(quick);
    let o = run("tunas-profiler", &v);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let statistic = report["statistic"].as_str().unwrap();
    assert!(
        statistic.starts_with("lower-mode of runs scaled to the reference op")
            && statistic.contains(&key),
        "{statistic}"
    );
    assert!(report["networks"][0]["measured_ms"].as_f64().unwrap() > 0.0);
    let mut m = vec![
        "measure", "--space", "tiny28", "--arch", "random:4", "--table", out_s, "--json",
    ];
    m.extend(quick);
    let o = run("tunas-profiler", &m);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        report["statistic"].as_str().unwrap().contains(&key),
        "{report}"
    );
    assert!(report["estimate_ms"].as_f64().unwrap() > 0.0);

    // A table whose reference note is broken is refused, naming the note.
    let text = std::fs::read_to_string(&out).unwrap();
    let broken = dir.path().join("broken.csv");
    std::fs::write(
        &broken,
        text.replace(
            &format!("# x-reference-key = {key}"),
            "# x-reference-key = not-an-op",
        ),
    )
    .unwrap();
    let mut m = vec![
        "measure",
        "--space",
        "tiny28",
        "--arch",
        "random:4",
        "--table",
        broken.to_str().unwrap(),
    ];
    m.extend(quick);
    let o = run("tunas-profiler", &m);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("broken.csv") && err.contains("x-reference-key"),
        "{err}"
    );
}
