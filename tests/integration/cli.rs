//! The command-line tools as a user runs them. The binaries are built by
//! `cargo xtask test` (or `cargo build`) next to this test binary.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::tables::synthetic_table;
use tunas_shared::builtin_space;

/// Path of a workspace binary in the same target folder as this test.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo xtask test` (it builds the binaries first) or `cargo build --workspace`",
        path.display()
    );
    path
}

/// Runs a workspace binary with arguments.
pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(binary(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn spaces_json_lists_the_built_in_spaces_with_their_counts() {
    let out = run("tunas-profiler", &["spaces", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let list = list.as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "tiny28",
            "tiny28-ops",
            "proxylessnas",
            "proxylessnas-enlarged",
            "mobilenet-v3-like",
            "rgb32",
            "rgb32-deep",
            "rgb96"
        ]
    );
    let space = |name: &str| &list[names.iter().position(|n| *n == name).unwrap()];
    assert_eq!(space("tiny28")["decisions"], 30);
    assert_eq!(space("tiny28-ops")["decisions"], 37);
    assert_eq!(space("proxylessnas")["decisions"], 58);
    let log10 = |name: &str| space(name)["log10_networks"].as_f64().unwrap();
    assert!((log10("tiny28") - 1.23e11f64.log10()).abs() < 0.01);
    assert!((log10("proxylessnas") - 6.6e17f64.log10()).abs() < 0.01);
    assert!(space("tiny28")["op_keys"].as_u64().unwrap() > 100);
}

#[test]
fn spaces_show_prints_toml_that_loads_back() {
    let out = run("tunas-profiler", &["spaces", "--show", "mobilenet-v3-like"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(&path, stdout(&out)).unwrap();
    let ops = run(
        "tunas-profiler",
        &["ops", "--space", path.to_str().unwrap()],
    );
    assert!(ops.status.success(), "{}", stderr(&ops));
    let text = stdout(&ops);
    assert!(text.starts_with("op,input_h,input_w,cin,cout,mid,kernel"));
    let expected = tunas_shared::space_op_keys(&builtin_space("mobilenet-v3-like").unwrap(), 1);
    assert_eq!(text.lines().count(), expected.len() + 1);
}

#[test]
fn unknown_space_fails_with_the_known_names() {
    let out = run("tunas-profiler", &["ops", "--space", "resnet50"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown search space 'resnet50'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn estimate_reads_a_table_written_by_the_test_suite() {
    let space = builtin_space("tiny28").unwrap();
    let table = synthetic_table(&space);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny28.csv");
    table.write_atomic(&path).unwrap();
    let path = path.to_str().unwrap();
    let args = [
        "estimate", "--space", "tiny28", "--table", path, "--arch", "largest", "--json",
    ];
    let out = run("tunas-searcher", &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let arch = tunas_shared::Architecture::largest(&space);
    let expected_ms = table.estimate_us(&space, &arch).unwrap() / 1000.0;
    assert!((v["latency_ms"].as_f64().unwrap() - expected_ms).abs() < 1e-9);
    assert_eq!(v["flops"], tunas_shared::architecture_flops(&space, &arch));
    assert_eq!(
        v["params"],
        tunas_shared::architecture_params(&space, &arch)
    );

    let text = run(
        "tunas-searcher",
        &[
            "estimate", "--space", "tiny28", "--table", path, "--arch", "random:3",
        ],
    );
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(stdout(&text).contains("latency     "), "{}", stdout(&text));
}

#[test]
fn estimate_fails_clearly_on_each_malformed_table() {
    let space = builtin_space("tiny28").unwrap();
    let good = synthetic_table(&space).to_text();
    let row = good
        .lines()
        .find(|l| l.starts_with("stem,"))
        .unwrap()
        .to_string();
    let cases: Vec<(String, &str)> = vec![
        (good.replace(",std_us,", ","), "column 'std_us' is missing"),
        (
            good.replace(",std_us,", ",stdev_us,"),
            "unknown column 'stdev_us'",
        ),
        (format!("{good}{row}\n"), "appears again"),
        (
            good.replace(&row, &row.replacen(",0,1,", ",0,1,-", 1)),
            "must not be negative",
        ),
        (
            good.replace("# space_hash = ", "# space_hash = 00"),
            "made for space 'tiny28'",
        ),
        (
            good.replace("# os = test\n", ""),
            "provenance field 'os' is missing",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (text, needle)) in cases.iter().enumerate() {
        assert_ne!(*text, good, "case {i} did not change the table");
        let path = dir.path().join(format!("bad{i}.csv"));
        std::fs::write(&path, text).unwrap();
        let p = path.to_str().unwrap();
        let out = run(
            "tunas-searcher",
            &[
                "estimate", "--space", "tiny28", "--table", p, "--arch", "largest",
            ],
        );
        assert!(!out.status.success(), "case {i} ({needle}) was accepted");
        let err = stderr(&out);
        assert!(err.contains(needle), "case {i}: '{err}' lacks '{needle}'");
        assert!(err.contains(p), "case {i}: '{err}' does not name the file");
    }
}

#[test]
fn estimate_names_a_missing_op() {
    let space = builtin_space("tiny28").unwrap();
    let mut table = synthetic_table(&space);
    let arch = tunas_shared::Architecture::largest(&space);
    let key = tunas_shared::architecture_ops(&space, &arch, 1)[2];
    table.rows.remove(&key);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    table.write_atomic(&path).unwrap();
    let out = run(
        "tunas-searcher",
        &[
            "estimate",
            "--space",
            "tiny28",
            "--table",
            path.to_str().unwrap(),
            "--arch",
            "largest",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("no latency for op {key}")),
        "{}",
        stderr(&out)
    );
    // The advice is the tool that adds missing rows, not a profile that
    // would start over.
    let advice = format!("tunas-profiler refresh --table {}", path.display());
    assert!(stderr(&out).contains(&advice), "{}", stderr(&out));
    assert!(!stderr(&out).contains("--resume"), "{}", stderr(&out));
}

#[test]
fn bad_architecture_names_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    synthetic_table(&builtin_space("tiny28").unwrap())
        .write_atomic(&path)
        .unwrap();
    let out = run(
        "tunas-searcher",
        &[
            "estimate",
            "--space",
            "tiny28",
            "--table",
            path.to_str().unwrap(),
            "--arch",
            "9",
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--arch"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has 30 decisions"),
        "{}",
        stderr(&out)
    );
}
