//! Latency tables: round-trip, one test per malformed case asserting the
//! specific error, the estimator, and a reader that never panics.

use std::path::Path;

use proptest::prelude::*;
use tunas_shared::{
    Architecture, LatencyTable, OpStats, Provenance, SearchSpace, TableError, builtin_space,
    space_op_keys,
};

/// A table for `space` whose numbers are made up from FLOPs (a test
/// fixture, not a measurement): median = 1 µs + flops / 1000.
pub fn synthetic_table(space: &SearchSpace) -> LatencyTable {
    let mut table = LatencyTable::new(Provenance {
        device: "test-fixture".into(),
        cpu: "none (synthetic numbers)".into(),
        os: "test".into(),
        runtime: "none".into(),
        runtime_version: "0".into(),
        execution_provider: "cpu".into(),
        threads: 1,
        pinning: "none".into(),
        batch: 1,
        date: "2026-11-28T00:00:00Z".into(),
        profiler_version: "test".into(),
        space: space.name.clone(),
        space_hash: space.content_hash(),
        method: "synthetic: 1 us + flops/1000".into(),
        overhead_us: 5.0,
        extra: [("x-note".to_string(), "made by the test suite".to_string())].into(),
    });
    for key in space_op_keys(space, 1) {
        let median = 1.0 + key.flops() as f64 / 1000.0;
        table.rows.insert(
            key,
            OpStats {
                median_us: median,
                p10_us: median * 0.9,
                p90_us: median * 1.1,
                mean_us: median,
                std_us: median * 0.05,
                runs: 100,
                measured_at: "2026-11-28T00:00:00Z".into(),
            },
        );
    }
    table
}

fn tiny_table_text() -> String {
    synthetic_table(&builtin_space("tiny28").unwrap()).to_text()
}

fn parse_err(text: &str) -> TableError {
    LatencyTable::parse(text, "t.csv").unwrap_err()
}

/// The line number (1-based) of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn table_round_trips_through_a_file() {
    let space = builtin_space("tiny28").unwrap();
    let table = synthetic_table(&space);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny28.csv");
    table.write_atomic(&path).unwrap();
    let back = LatencyTable::read(&path).unwrap();
    assert_eq!(back.provenance, table.provenance);
    assert_eq!(back.rows.len(), table.rows.len());
    for (key, stats) in &table.rows {
        let b = &back.rows[key];
        assert!((b.median_us - stats.median_us).abs() < 1e-3, "{key}");
        assert_eq!(b.runs, stats.runs);
    }
    // Nothing but the table is left in the folder.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn estimate_is_the_overhead_plus_the_sum_of_medians() {
    let space = builtin_space("tiny28").unwrap();
    let table = synthetic_table(&space);
    let arch = Architecture::largest(&space);
    let ops = tunas_shared::architecture_ops(&space, &arch, 1);
    let expected: f64 = 5.0 + ops.iter().map(|k| table.rows[k].median_us).sum::<f64>();
    assert_eq!(table.estimate_us(&space, &arch).unwrap(), expected);
}

#[test]
fn missing_op_names_the_key_and_the_table() {
    let space = builtin_space("tiny28").unwrap();
    let mut table = synthetic_table(&space);
    table.path = Some("tables/x.csv".into());
    let arch = Architecture::largest(&space);
    let key = tunas_shared::architecture_ops(&space, &arch, 1)[3];
    table.rows.remove(&key);
    let err = table.estimate_us(&space, &arch).unwrap_err();
    assert!(matches!(err, TableError::MissingOp { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains(&key.to_string()) && msg.contains("tables/x.csv"),
        "{msg}"
    );
}

#[test]
fn table_for_another_space_is_refused() {
    let table = synthetic_table(&builtin_space("tiny28").unwrap());
    let other = builtin_space("proxylessnas").unwrap();
    let err = table.check_space(&other).unwrap_err();
    assert!(matches!(err, TableError::SpaceMismatch { .. }), "{err}");
    assert!(err.to_string().contains("made for space 'tiny28'"), "{err}");
}

#[test]
fn not_a_table() {
    let err = parse_err("op,input_h\n");
    assert!(matches!(err, TableError::NotATable { .. }), "{err}");
    assert!(err.to_string().starts_with("t.csv:1:"), "{err}");
}

#[test]
fn missing_provenance_field() {
    let text = tiny_table_text().replace("# cpu = none (synthetic numbers)\n", "");
    let err = parse_err(&text);
    assert!(
        matches!(err, TableError::MissingProvenance { field: "cpu", .. }),
        "{err}"
    );
}

#[test]
fn unknown_provenance_field() {
    let text = tiny_table_text().replace("# cpu =", "# cpuu =");
    let err = parse_err(&text);
    assert!(
        matches!(err, TableError::BadProvenance { line: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("unknown field 'cpuu'"), "{err}");
}

#[test]
fn bad_provenance_number() {
    let text = tiny_table_text().replace("# threads = 1", "# threads = many");
    let err = parse_err(&text);
    assert!(matches!(err, TableError::BadProvenance { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("'threads' must be a positive integer")
    );
}

#[test]
fn missing_column() {
    let text = tiny_table_text().replace(",p90_us,", ",");
    let err = parse_err(&text);
    assert!(matches!(err, TableError::MissingColumn { .. }), "{err}");
    assert!(
        err.to_string().contains("column 'p90_us' is missing"),
        "{err}"
    );
}

#[test]
fn unknown_column() {
    let text = tiny_table_text().replace(",runs,", ",runz,");
    let err = parse_err(&text);
    assert!(matches!(err, TableError::UnknownColumn { .. }), "{err}");
    assert!(err.to_string().contains("unknown column 'runz'"), "{err}");
}

#[test]
fn duplicate_key() {
    let text = tiny_table_text();
    let row = text.lines().find(|l| l.starts_with("bottleneck,")).unwrap();
    let first = line_of(&text, row);
    let doubled = format!("{text}{row}\n");
    let last = doubled.lines().count();
    let err = parse_err(&doubled);
    match &err {
        TableError::DuplicateKey {
            line, first_line, ..
        } => {
            assert_eq!((*line, *first_line), (last, first));
        }
        other => panic!("expected DuplicateKey, got {other}"),
    }
    assert!(err.to_string().contains("bottleneck-"), "{err}");
}

#[test]
fn negative_latency() {
    let text = tiny_table_text();
    let row = text.lines().find(|l| l.starts_with("stem,")).unwrap();
    let mut cells: Vec<&str> = row.split(',').collect();
    cells[12] = "-1.0";
    let bad = text.replace(row, &cells.join(","));
    let err = parse_err(&bad);
    match &err {
        TableError::BadValue { line, column, .. } => {
            assert_eq!(*line, line_of(&text, row));
            assert_eq!(column, "median_us");
        }
        other => panic!("expected BadValue, got {other}"),
    }
    assert!(err.to_string().contains("must not be negative"), "{err}");
    assert!(err.to_string().contains("op key stem-"), "{err}");
}

#[test]
fn non_finite_latency() {
    for value in ["NaN", "inf"] {
        let text = tiny_table_text();
        let row = text.lines().find(|l| l.starts_with("head_conv,")).unwrap();
        let mut cells: Vec<&str> = row.split(',').collect();
        cells[14] = value;
        let err = parse_err(&text.replace(row, &cells.join(",")));
        assert!(
            matches!(&err, TableError::BadValue { column, .. } if column == "p90_us"),
            "{err}"
        );
        assert!(err.to_string().contains("must be finite"), "{err}");
    }
}

#[test]
fn huge_latency_is_a_unit_mistake() {
    let text = tiny_table_text();
    let row = text.lines().find(|l| l.starts_with("stem,")).unwrap();
    let mut cells: Vec<&str> = row.split(',').collect();
    cells[12] = "1e308";
    let err = parse_err(&text.replace(row, &cells.join(",")));
    assert!(
        matches!(&err, TableError::BadValue { column, .. } if column == "median_us"),
        "{err}"
    );
    assert!(err.to_string().contains("microseconds"), "{err}");
}

#[test]
fn bad_key_cell() {
    let text = tiny_table_text();
    let row = text.lines().find(|l| l.starts_with("classifier,")).unwrap();
    let bad = text.replace(row, &row.replacen("classifier", "softmax", 1));
    let err = parse_err(&bad);
    assert!(
        matches!(&err, TableError::BadValue { column, .. } if column == "op"),
        "{err}"
    );
}

#[test]
fn ragged_row() {
    let text = format!("{}stem,28\n", tiny_table_text());
    let err = parse_err(&text);
    assert!(matches!(err, TableError::BadRow { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("t.csv:{}", text.lines().count()))
    );
}

#[test]
fn table_cut_mid_row_names_one_line() {
    let good = tiny_table_text();
    let cut = &good[..good.len() - 30];
    assert!(!cut.ends_with('\n'));
    let err = parse_err(cut).to_string();
    let last = cut.lines().count();
    assert!(err.starts_with(&format!("t.csv:{last}: ")), "{err}");
    assert!(err.contains("cut short"), "{err}");
    // No second line number (the CSV reader's own, counted from the header).
    assert!(!err.contains("line:"), "{err}");
}

#[test]
fn windows_line_endings_read_as_the_same_table() {
    let good = tiny_table_text();
    let crlf = good.replace('\n', "\r\n");
    let a = LatencyTable::parse(&good, "t.csv").unwrap();
    let b = LatencyTable::parse(&crlf, "t.csv").unwrap();
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.provenance, b.provenance);
    // Errors keep the file's line numbers.
    let bad = crlf.replacen(",0,1,", ",0,1,-", 1);
    let err = parse_err(&bad).to_string();
    let line = line_of(&bad, ",0,1,-");
    assert!(err.contains(&format!("t.csv:{line}:")), "{err}");
}

#[test]
fn unreadable_file_names_the_path() {
    let err = LatencyTable::read(Path::new("/nonexistent/table.csv")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/table.csv"), "{err}");
}

#[test]
fn atomic_write_to_a_missing_folder_fails_cleanly() {
    let table = synthetic_table(&builtin_space("tiny28").unwrap());
    let err = table
        .write_atomic(Path::new("/nonexistent/dir/t.csv"))
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/dir/t.csv"), "{err}");
}

/// A synthetic tiny28 table with every time (rows and constant) multiplied
/// by `scale`, recorded as profiled beside a reference at `level_us`.
fn table_at_level(space: &SearchSpace, scale: f64, level_us: Option<f64>) -> LatencyTable {
    let mut t = synthetic_table(space);
    t.provenance.overhead_us *= scale;
    for s in t.rows.values_mut() {
        s.median_us *= scale;
    }
    if let Some(level_us) = level_us {
        let key = space_op_keys(space, 1).into_iter().next().unwrap();
        t.provenance
            .set_timing_reference(&tunas_shared::table::TimingReference { key, level_us });
    }
    t
}

#[test]
fn compare_per_level_takes_out_the_speed_each_profile_ran_at() {
    let space = builtin_space("tiny28").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    // The second profile ran 10% slower throughout, and its reference saw
    // the same 10%: the tables have one shape at two speeds.
    table_at_level(&space, 1.0, Some(40.0))
        .write_atomic(Path::new(&path("a.csv")))
        .unwrap();
    table_at_level(&space, 1.1, Some(44.0))
        .write_atomic(Path::new(&path("b.csv")))
        .unwrap();
    table_at_level(&space, 1.0, None)
        .write_atomic(Path::new(&path("plain.csv")))
        .unwrap();
    let args = [
        "compare",
        &path("a.csv"),
        &path("b.csv"),
        "--networks",
        "20",
        "--per-level",
        "--json",
    ];
    let o = crate::cli::run("tunas-profiler", &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Raw: each estimate lies 1.1/1.05 − 1 = 4.76% from the median of two
    // (tables store rounded times, hence the tolerances).
    let raw = &report["estimates"];
    assert_eq!(raw["within_3pct"], 0.0, "{report}");
    let raw_spread = raw["max_spread_pct"].as_f64().unwrap();
    assert!(
        (raw_spread - (1.1 / 1.05 - 1.0) * 100.0).abs() < 1e-3,
        "{report}"
    );
    let per_level = &report["per_level"];
    assert_eq!(per_level["levels_us"], serde_json::json!([40.0, 44.0]));
    assert_eq!(per_level["estimates"]["within_3pct"], 1.0, "{report}");
    assert!(per_level["estimates"]["max_spread_pct"].as_f64().unwrap() < 1e-3);
    // The text says the levels; without the flag there is no per-level line.
    let text = crate::cli::run("tunas-profiler", &args[..6]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("reference level (40.00, 44.00 µs): 100.0% within ±3%"),
        "{text}"
    );
    let plain = crate::cli::run("tunas-profiler", &args[..4]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("reference level"));
    // A table without a level is refused by name, before any estimate.
    let o = crate::cli::run(
        "tunas-profiler",
        &["compare", &path("a.csv"), &path("plain.csv"), "--per-level"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("plain.csv")
            && err.contains("x-reference-level-us")
            && err.contains("--per-level"),
        "{err}"
    );
}

proptest! {
    #[test]
    fn table_reader_never_panics_on_random_text(text in "(# [a-z_]{1,12} = [ -~]{0,20}\n){0,18}[ -~\n]{0,300}") {
        let _ = LatencyTable::parse(&format!("# tunas latency table v1\n{text}"), "fuzz.csv");
    }

    #[test]
    fn table_reader_never_panics_on_mutated_tables(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = tiny_table_text().into_bytes();
        for (pos, byte) in edits {
            let i = pos % bytes.len();
            bytes[i] = byte;
        }
        let _ = LatencyTable::parse(&String::from_utf8_lossy(&bytes), "fuzz.csv");
    }
}
