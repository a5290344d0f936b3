//! Every value-taking flag of every subcommand of both tools, read from
//! their own `--help`, set to NaN, −1, 0 and 1e300: each run ends within a
//! time limit, without a panic, either well or with an error message. The
//! base arguments make an accepted value end quickly (a missing table or an
//! output folder that does not exist stops it, or the work is tiny); the
//! targeted tests in `reliability` and `profiler` check the messages.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::binary;

/// Flags whose values are paths, names or choices, not numbers.
const NOT_NUMERIC: [&str; 31] = [
    "space",
    "trainings-from",
    "out",
    "table",
    "data",
    "arch",
    "model",
    "run",
    "onnx",
    "resume",
    "plot",
    "chart",
    "weights",
    "device",
    "remote-dir",
    "device-binary",
    "device-ort-lib",
    "ssh-option",
    "ort-lib",
    "ep",
    "pin",
    "format",
    "data-format",
    "reward",
    "resource",
    "multi",
    "variant",
    "optimizer",
    "show",
    "stop-after",
    "help",
];

const HOSTILE: [&str; 4] = ["NaN", "-1", "0", "1e300"];

/// The value-taking flags `--help` of `tool sub` lists.
fn value_flags(tool: &str, sub: &str) -> Vec<String> {
    let out = Command::new(binary(tool))
        .args([sub, "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    help.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l.strip_prefix("--")?;
            let (name, value) = rest.split_once(' ')?;
            value.starts_with('<').then(|| name.to_string())
        })
        .filter(|n| !NOT_NUMERIC.contains(&n.as_str()))
        .collect()
}

/// Runs `tool args` in `cwd` and checks it ends cleanly within `limit`.
fn ends_cleanly(tool: &str, args: &[String], cwd: &Path, limit: Duration) {
    let mut child = Command::new(binary(tool))
        .args(args)
        .current_dir(cwd)
        .env("ADB", "/nonexistent/adb")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("{tool} {args:?} still ran after {limit:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        !err.contains("panicked"),
        "{tool} {args:?} panicked:\n{err}"
    );
    if !status.success() {
        assert!(
            err.contains("error"),
            "{tool} {args:?} failed without an error message:\n{err}"
        );
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_numeric_flag_of_both_tools_ends_cleanly_on_hostile_values() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let table = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tables/x86_64-amd-epyc-1t/tiny28.csv")
        .display()
        .to_string();
    let missing = "/nonexistent-tunas/t.csv";
    let tiny_arch = "0".repeat(30);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("tunas-profiler", strings(&["ops", "--space", "tiny28"])),
        (
            "tunas-profiler",
            strings(&["profile", "--space", "tiny28", "--quiet", "--out", missing]),
        ),
        (
            "tunas-profiler",
            strings(&["refresh", "--quiet", "--table", missing]),
        ),
        (
            "tunas-profiler",
            strings(&["measure", "--quiet", "--model", "/nonexistent-tunas/m.onnx"]),
        ),
        (
            "tunas-profiler",
            strings(&[
                "validate", "--space", "tiny28", "--quiet", "--table", missing,
            ]),
        ),
        ("tunas-profiler", strings(&["compare", missing, missing])),
        ("tunas-profiler", strings(&["export", "--table", missing])),
        (
            "tunas-searcher",
            strings(&["estimate", "--space", "tiny28", "--arch", "largest"]),
        ),
        (
            "tunas-searcher",
            strings(&[
                "train",
                "--space",
                "tiny28",
                "--arch",
                "largest",
                "--quiet",
                "--data",
                "/nonexistent-tunas",
            ]),
        ),
        (
            "tunas-searcher",
            strings(&[
                "bench",
                "--arch",
                &tiny_arch,
                "--batch",
                "2",
                "--steps",
                "1",
                "--warmup-steps",
                "0",
            ]),
        ),
        (
            "tunas-searcher",
            strings(&[
                "search",
                "--table",
                missing,
                "--target-ms",
                "0.09",
                "--quiet",
                "--out",
                "run",
            ]),
        ),
        (
            "tunas-searcher",
            strings(&["export", "--run", "/nonexistent-tunas", "--onnx", "m.onnx"]),
        ),
        (
            "tunas-searcher",
            strings(&[
                "random",
                "--table",
                &table,
                "--target-ms",
                "0.09",
                "--n",
                "2",
            ]),
        ),
        (
            "tunas-searcher",
            strings(&["targets", "--table", &table, "--samples", "10"]),
        ),
        (
            "tunas-searcher",
            strings(&["benchmark", "--table", missing, "--out", "bench"]),
        ),
        (
            "tunas-searcher",
            strings(&["sweep", "--table", missing, "--out", "sweep"]),
        ),
        ("tunas-searcher", strings(&["compare", missing])),
    ];
    let mut count = 0;
    for (tool, base) in &cases {
        let flags = value_flags(tool, &base[0]);
        for flag in &flags {
            for value in HOSTILE {
                let mut args = base.clone();
                match args.iter().position(|a| a == &format!("--{flag}")) {
                    Some(i) => {
                        args.remove(i + 1);
                        args[i] = format!("--{flag}={value}");
                    }
                    None => args.push(format!("--{flag}={value}")),
                }
                ends_cleanly(tool, &args, cwd, Duration::from_secs(120));
                count += 1;
            }
        }
    }
    eprintln!("{count} hostile flag values ended cleanly");
    // Every subcommand above has numeric flags; the count moves when flags
    // are added or removed (then this floor may rise).
    assert!(count >= 300, "only {count} cases");
}
