//! The searcher as a hostile user runs it: every numeric flag set to NaN,
//! −1, 0 and 1e300 ends in a clear error or a documented meaning (never a
//! panic or a hang), bad combinations are refused before work, and a
//! search resumes from its folder alone.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::cli::run;

fn subset_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../searcher/testdata/fashion-mnist-subset")
        .display()
        .to_string()
}

fn reference_table() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tables/x86_64-amd-epyc-1t/tiny28.csv")
        .display()
        .to_string()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A run ended either well, or with an error message and no panic.
fn ended_cleanly(o: &Output, case: &str) -> bool {
    let e = err(o);
    assert!(!e.contains("panicked"), "{case}: panicked:\n{e}");
    if !o.status.success() {
        assert!(
            e.contains("error"),
            "{case}: failed without an error message:\n{e}"
        );
    }
    o.status.success()
}

/// `args` with the value of `flag` replaced (or appended).
fn with(args: &[String], flag: &str, value: &str) -> Vec<String> {
    let mut out = args.to_vec();
    match out.iter().position(|a| a == flag) {
        Some(i) => out[i + 1] = value.to_string(),
        None => out.extend([flag.to_string(), value.to_string()]),
    }
    out
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn run_s(args: &[String]) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run("tunas-searcher", &refs)
}

const HOSTILE: [&str; 4] = ["NaN", "-1", "0", "1e300"];

/// `search --resume DIR --quiet`.
fn resume_search(dir: &Path) -> Vec<String> {
    strings(&["search", "--resume", &dir.display().to_string(), "--quiet"])
}

/// `args` fail, and stderr says `needle`.
fn assert_refused(args: &[String], needle: &str) {
    let o = run_s(args);
    assert!(!o.status.success(), "{args:?} accepted");
    assert!(err(&o).contains(needle), "{}", err(&o));
}

fn search_base(out: &Path) -> Vec<String> {
    strings(&[
        "search",
        "--table",
        &reference_table(),
        "--target-ms",
        "0.09",
        "--data",
        &subset_dir(),
        "--steps",
        "4",
        "--limit-train",
        "300",
        "--batch",
        "8",
        "--validation-batch",
        "8",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ])
}

#[test]
fn every_numeric_search_flag_ends_cleanly_on_hostile_values() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--target-ms",
        "--steps",
        "--batch",
        "--validation-batch",
        "--samples-per-step",
        "--beta",
        "--rl-lr",
        "--lr",
        "--warmup",
        "--holdout",
        "--limit-train",
        "--seed",
        "--threads",
        "--checkpoint-every",
    ];
    let mut cases = 0;
    let mut accepted = Vec::new();
    for flag in flags {
        for value in HOSTILE {
            cases += 1;
            let out = dir.path().join(format!("run{cases}"));
            let args = with(&search_base(&out), flag, value);
            if ended_cleanly(&run_s(&args), &format!("search {flag} {value}")) {
                accepted.push(format!("{flag} {value}"));
            }
        }
    }
    assert_eq!(cases, 56);
    // What is accepted has a meaning: a β below zero, no warm-up, seed 0.
    assert_eq!(
        accepted,
        ["--beta -1", "--warmup 0", "--seed 0"],
        "accepted"
    );
}

#[test]
fn search_refuses_bad_combinations_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let base = search_base(&dir.path().join("r"));
    for (args, needle) in [
        (with(&base, "--target", "5"), "--target is for --resource"),
        (with(&base, "--target-ms", "inf"), "--target-ms"),
        (with(&base, "--target-ms", "1e-300"), "--target-ms"),
        (with(&base, "--validation-batch", "0"), "--validation-batch"),
        (with(&base, "--checkpoint-every", "0"), "--checkpoint-every"),
        (with(&base, "--warmup", "1.5"), "--warmup"),
        (with(&base, "--holdout", "0"), "--validation-batch"),
    ] {
        let o = run_s(&args);
        assert!(!o.status.success(), "{args:?} accepted");
        assert!(err(&o).contains(needle), "{needle}: {}", err(&o));
    }
    assert!(
        !dir.path().join("r").exists(),
        "nothing is written before the settings are checked"
    );
}

#[test]
fn search_resumes_from_its_folder_alone_to_the_same_end() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let killed = dir.path().join("killed");
    let mut base = search_base(&whole);
    base = with(&base, "--steps", "8");
    base = with(&base, "--checkpoint-every", "3");
    base.push("--deterministic".into());
    assert!(run_s(&base).status.success());
    let mut stopped = with(&base, "--out", &killed.display().to_string());
    stopped.extend(strings(&["--stop-after", "5"]));
    assert!(run_s(&stopped).status.success());
    let resume = resume_search(&killed);
    let o = run_s(&resume);
    assert!(o.status.success(), "{}", err(&o));
    let log = |d: &PathBuf| std::fs::read_to_string(d.join("steps.csv")).unwrap();
    assert_eq!(log(&whole), log(&killed));

    // A setting given on resume that differs names both values.
    assert_refused(
        &with(&resume, "--steps", "9"),
        "--steps 9 differs from the 8",
    );
    assert_refused(
        &with(&resume, "--skip-warmup", "sampled"),
        "--skip-warmup Sampled differs from the AllValues",
    );
    let o = run_s(&with(&resume, "--limit-train", "200"));
    assert!(
        err(&o).contains("--limit-train 200 differs from the 300"),
        "{}",
        err(&o)
    );
    // A table whose content changed is refused.
    let table = dir.path().join("changed.csv");
    let text = std::fs::read_to_string(reference_table()).unwrap();
    std::fs::write(
        &table,
        text.replacen(
            "x-calibration-mape-pct = 2.45",
            "x-calibration-mape-pct = 2.46",
            1,
        ),
    )
    .unwrap();
    let o = run_s(&with(&resume, "--table", &table.display().to_string()));
    assert!(!o.status.success());
    assert!(err(&o).contains("content differs"), "{}", err(&o));
    // --out beside --resume is a usage error.
    let mut both = resume.clone();
    both.extend(strings(&["--out", "x"]));
    assert!(!run_s(&both).status.success());
}

#[test]
fn a_probability_q_search_logs_its_q_and_keeps_it_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let quality = |out: &PathBuf| -> Vec<f64> {
        let log = std::fs::read_to_string(out.join("steps.csv")).unwrap();
        let mut lines = log.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == "quality").unwrap();
        lines
            .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
            .collect()
    };
    let accuracy_run = dir.path().join("accuracy");
    let probability_run = dir.path().join("probability");
    let base = with(&search_base(&accuracy_run), "--steps", "6");
    assert!(run_s(&base).status.success());
    let mut probability = with(&base, "--out", &probability_run.display().to_string());
    probability.extend(strings(&[
        "--quality",
        "probability",
        "--stop-after",
        "4",
        "--checkpoint-every",
        "2",
    ]));
    let o = run_s(&probability);
    assert!(o.status.success(), "{}", err(&o));
    // The accuracy on 8 validation images is a multiple of 1/8; the mean
    // probability of the true class is not, and both lie in [0, 1].
    let on_eighths = |q: f64| ((q * 8.0) - (q * 8.0).round()).abs() < 1e-4;
    let (acc, prob) = (quality(&accuracy_run), quality(&probability_run));
    assert_eq!((acc.len(), prob.len()), (6, 4));
    assert!(acc.iter().all(|&q| on_eighths(q)), "{acc:?}");
    assert!(prob.iter().all(|&q| (0.0..=1.0).contains(&q)), "{prob:?}");
    assert!(prob.iter().any(|&q| !on_eighths(q)), "{prob:?}");
    // A resumed run keeps its measure; another one is refused by name.
    let resume = resume_search(&probability_run);
    assert_refused(
        &with(&resume, "--quality", "accuracy"),
        "--quality Accuracy differs from the Probability",
    );
    let o = run_s(&resume);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(quality(&probability_run).len(), 6);
}

#[test]
fn random_targets_and_export_refuse_hostile_values() {
    let table = reference_table();
    let mut cases = 0;
    for (flag, values) in [
        ("--target-ms", &["NaN", "inf", "-1", "0"][..]),
        ("--band", &["NaN", "inf", "-1", "0", "1.5"][..]),
        ("--n", &["0", "-1"][..]),
    ] {
        for v in values {
            cases += 1;
            let args = with(
                &strings(&["random", "--table", &table, "--target-ms", "0.09"]),
                flag,
                v,
            );
            let o = run_s(&args);
            assert!(
                !ended_cleanly(&o, &format!("random {flag} {v}")),
                "{flag} {v} accepted"
            );
        }
    }
    // An unreachable band is an error, not "only 0 of 5" and exit 0.
    let o = run_s(&strings(&[
        "random",
        "--table",
        &table,
        "--target-ms",
        "0.001",
    ]));
    assert!(!o.status.success());
    assert!(err(&o).contains("only 0 of 5"), "{}", err(&o));
    for v in ["0", "-1", "NaN"] {
        cases += 1;
        let o = run_s(&strings(&["targets", "--table", &table, "--samples", v]));
        assert!(!ended_cleanly(&o, "targets --samples"));
    }
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("m.onnx").display().to_string();
    for (flag, v, needle) in [
        ("--calibration-batches", "0", "--calibration-batches"),
        ("--onnx", "/proc/x.onnx", "--onnx"),
        ("--onnx", "m.txt", ".onnx"),
    ] {
        cases += 1;
        let args = with(
            &strings(&["export", "--run", "/nonexistent", "--onnx", &onnx]),
            flag,
            v,
        );
        let o = run_s(&args);
        assert!(!o.status.success());
        assert!(err(&o).contains(needle), "{flag} {v}: {}", err(&o));
    }
    assert_eq!(cases, 17);
}

#[test]
fn targets_take_the_space_the_table_names() {
    let space = tunas_shared::builtin_space("proxylessnas").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    crate::tables::synthetic_table(&space)
        .write_atomic(&path)
        .unwrap();
    let o = run_s(&strings(&[
        "targets",
        "--table",
        &path.display().to_string(),
        "--json",
    ]));
    assert!(o.status.success(), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["space"], "proxylessnas");
}

#[test]
fn benchmark_flags_are_checked_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b").display().to_string();
    let base = strings(&[
        "benchmark",
        "--table",
        &reference_table(),
        "--data",
        &subset_dir(),
        "--out",
        &out,
    ]);
    for (flag, v) in [
        ("--band", "0"),
        ("--band", "NaN"),
        ("--random", "1"),
        ("--searches", "0"),
        ("--train-seeds", "0"),
        ("--noise-random", "21"),
        ("--jobs", "0"),
        ("--epochs", "0"),
        ("--percentiles", "150"),
        ("--targets-ms", "0"),
        ("--steps", "2"),
        ("--beta", "0"),
        ("--shared-eval-images", "0"),
        ("--first-search-seed", "18446744073709551615"),
        ("--warmup", "1"),
        ("--rl-lr", "0"),
        ("--lr", "0"),
        ("--lr", "inf"),
        ("--trainings-from", "/nonexistent-benchmark"),
    ] {
        let o = run_s(&with(&base, flag, v));
        assert!(
            !ended_cleanly(&o, &format!("benchmark {flag} {v}")),
            "{flag} {v} accepted"
        );
        assert!(err(&o).contains(flag), "{flag} {v}: {}", err(&o));
    }
    assert!(
        !Path::new(&out).exists(),
        "nothing written before the checks"
    );
}

#[test]
fn every_numeric_train_and_bench_flag_ends_cleanly_on_hostile_values() {
    let dir = tempfile::tempdir().unwrap();
    let train = strings(&[
        "train",
        "--space",
        "tiny28",
        "--arch",
        &"0".repeat(30),
        "--data",
        &subset_dir(),
        "--epochs",
        "1",
        "--limit-train",
        "64",
        "--batch",
        "32",
        "--quiet",
        "--out",
        &dir.path().join("t").display().to_string(),
    ]);
    let mut accepted = Vec::new();
    let mut cases = 0;
    for flag in [
        "--epochs",
        "--batch",
        "--lr",
        "--weight-decay",
        "--momentum",
        "--label-smoothing",
        "--warmup",
        "--pad-crop",
        "--seed",
        "--threads",
        "--limit-train",
        "--recalibrate-bn",
    ] {
        for value in HOSTILE {
            cases += 1;
            if ended_cleanly(
                &run_s(&with(&train, flag, value)),
                &format!("train {flag} {value}"),
            ) {
                accepted.push(format!("{flag} {value}"));
            }
        }
    }
    let bench = strings(&[
        "bench",
        "--arch",
        &"0".repeat(30),
        "--batch",
        "2",
        "--steps",
        "1",
    ]);
    for flag in [
        "--batch",
        "--threads",
        "--steps",
        "--warmup-steps",
        "--seed",
    ] {
        for value in HOSTILE {
            cases += 1;
            if ended_cleanly(
                &run_s(&with(&bench, flag, value)),
                &format!("bench {flag} {value}"),
            ) {
                accepted.push(format!("bench {flag} {value}"));
            }
        }
    }
    assert_eq!(cases, 68);
    // Zero is a meaning for these: no decay, no momentum, no smoothing, no
    // warm-up, no padding, seed 0, training's own BN averages, no warm-up steps.
    assert_eq!(
        accepted,
        [
            "--weight-decay 0",
            "--momentum 0",
            "--label-smoothing 0",
            "--warmup 0",
            "--pad-crop 0",
            "--seed 0",
            "--recalibrate-bn 0",
            "bench --warmup-steps 0",
            "bench --seed 0",
        ]
    );
}

#[test]
fn device_reward_adds_or_takes_the_worst_miss() {
    use tunas_searcher::controller::RewardKind;
    use tunas_searcher::search::{MultiDevice, device_reward};
    let one = device_reward(RewardKind::Abs, MultiDevice::Sum, 0.9, &[1.1], &[1.0], -0.5);
    assert!((one - RewardKind::Abs.reward(0.9, 1.1, 1.0, -0.5)).abs() < 1e-12);
    // Misses of 10% and 20%.
    let sum = device_reward(
        RewardKind::Abs,
        MultiDevice::Sum,
        0.9,
        &[1.1, 1.6],
        &[1.0, 2.0],
        -0.5,
    );
    assert!((sum - (0.9 - 0.5 * 0.3)).abs() < 1e-12, "{sum}");
    let max = device_reward(
        RewardKind::Abs,
        MultiDevice::Max,
        0.9,
        &[1.1, 1.6],
        &[1.0, 2.0],
        -0.5,
    );
    assert!((max - (0.9 - 0.5 * 0.2)).abs() < 1e-12, "{max}");
}

#[test]
fn a_search_for_two_devices_reports_both_and_resumes() {
    let space = tunas_shared::builtin_space("tiny28").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let second = dir.path().join("second.csv");
    let table = crate::tables::synthetic_table(&space);
    table.write_atomic(&second).unwrap();
    let second_ms = tunas_searcher::search::latency_samples(&space, &table, 200, 1).unwrap()[100];
    let second = second.display().to_string();
    let out = dir.path().join("run");
    let mut args = search_base(&out);
    args.extend(strings(&[
        "--table",
        &second,
        "--target-ms",
        &second_ms.to_string(),
    ]));
    args = with(&args, "--steps", "8");
    args.extend(strings(&["--checkpoint-every", "3", "--stop-after", "4"]));
    let o = run_s(&args);
    assert!(o.status.success(), "{}", err(&o));
    let mut resume = resume_search(&out);
    resume.push("--json".into());
    let o = run_s(&resume);
    assert!(o.status.success(), "{}", err(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let devices = r["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[1]["device"], "test-fixture");
    assert!((devices[1]["target_ms"].as_f64().unwrap() - second_ms).abs() < 1e-12);

    // Pairs, duplicates, another space, bad second targets: refused, naming the flag or file.
    let base = search_base(&dir.path().join("bad"));
    let mut unpaired = base.clone();
    unpaired.extend(strings(&["--table", &second]));
    let mut twice = base.clone();
    twice.extend(strings(&[
        "--table",
        &reference_table(),
        "--target-ms",
        "0.1",
    ]));
    let other = dir.path().join("proxyless.csv");
    crate::tables::synthetic_table(&tunas_shared::builtin_space("proxylessnas").unwrap())
        .write_atomic(&other)
        .unwrap();
    let mut foreign = base.clone();
    foreign.extend(strings(&[
        "--table",
        &other.display().to_string(),
        "--target-ms",
        "1",
    ]));
    let mut nan = base.clone();
    nan.extend(strings(&["--table", &second, "--target-ms", "NaN"]));
    let mut negative = base.clone();
    negative.extend(strings(&["--table", &second, "--target-ms", "-1"]));
    for (args, needle) in [
        (unpaired, "come in pairs"),
        (twice, "are the same table"),
        (foreign, "proxyless.csv"),
        (nan, "--target-ms"),
        (
            negative,
            "--target-ms: -1: every device's target must be a positive number",
        ),
    ] {
        let o = run_s(&args);
        assert!(!o.status.success(), "{needle}: accepted");
        assert!(err(&o).contains(needle), "{needle}: {}", err(&o));
    }
}
