//! The whole flow on a 32×32×3 space, as a user with colour photos runs it:
//! `profile --space rgb32` → `search` → `export` → `measure --model`, once
//! on CIFAR-10 binary batches and once on a folder of colour PNGs; the
//! exported network, fed plain [0, 1] pixels, scores in ONNX Runtime what
//! the searcher's own evaluation said, and its metadata names the classes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{Rgb, RgbImage};
use tunas_searcher::data::{
    DataFormat, Dataset, FolderOptions, ImageShape, load_any, load_idx_dir,
};

use crate::cli::binary;

fn subset_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../searcher/testdata/fashion-mnist-subset")
}

const RGB32: ImageShape = ImageShape {
    height: 32,
    width: 32,
    channels: 3,
};

/// Image `i` of `d` (28×28 grey) as a 32×32 colour image: padded by 2
/// pixels and tinted by a colour that depends on `i`, not on the label.
fn tinted(d: &Dataset, i: usize) -> RgbImage {
    let tint = [(i * 37) % 100, (i * 61) % 100, (i * 89) % 100].map(|t| 0.4 + t as f32 / 166.0);
    RgbImage::from_fn(32, 32, |x, y| {
        if !(2..30).contains(&x) || !(2..30).contains(&y) {
            return Rgb([0, 0, 0]);
        }
        let v = d.pixels[i * 784 + (y as usize - 2) * 28 + x as usize - 2] as f32;
        Rgb(tint.map(|t| (v * t).round() as u8))
    })
}

/// CIFAR-10's record: the label byte, then the red, green and blue planes.
fn cifar_records(d: &Dataset, range: std::ops::Range<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    for i in range {
        out.push(d.labels[i]);
        let img = tinted(d, i);
        for c in 0..3 {
            out.extend(img.pixels().map(|p| p[c]));
        }
    }
    out
}

fn write_cifar(dir: &Path, train: &Dataset, test: &Dataset, per_batch: usize, tests: usize) {
    fs::create_dir_all(dir).unwrap();
    for b in 0..5 {
        let records = cifar_records(train, b * per_batch..(b + 1) * per_batch);
        fs::write(dir.join(format!("data_batch_{}.bin", b + 1)), records).unwrap();
    }
    fs::write(dir.join("test_batch.bin"), cifar_records(test, 0..tests)).unwrap();
}

/// `DIR/train/<class>/` and `DIR/test/<class>/` of 40×36 PNGs (the loader
/// resizes the shorter side to 32 and crops the centre).
fn write_folder(dir: &Path, train: &Dataset, test: &Dataset, trains: usize, tests: usize) {
    for (split, d, n) in [("train", train, trains), ("test", test, tests)] {
        for i in 0..n {
            let class = dir.join(split).join(format!("class{}", d.labels[i]));
            fs::create_dir_all(&class).unwrap();
            let small = tinted(d, i);
            let big =
                image::imageops::resize(&small, 40, 36, image::imageops::FilterType::Triangle);
            big.save(class.join(format!("{i:05}.png"))).unwrap();
        }
    }
}

fn run(exe: &str, args: &[&str]) -> Output {
    Command::new(binary(exe)).args(args).output().unwrap()
}

fn ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Accuracy of the ONNX file on `test`, fed plain pixels (byte / 255, NCHW)
/// in batches of 50.
fn onnx_accuracy(onnx: &[u8], test: &Dataset) -> f64 {
    let lib = tunas_profiler::runtime::locate_runtime(None).unwrap();
    let runtime = tunas_profiler::runtime::init_runtime(&lib).unwrap();
    let cfg = tunas_profiler::runtime::SessionConfig::default();
    let mut session = tunas_profiler::runtime::ModelSession::new(runtime, onnx, &cfg).unwrap();
    let (h, w, c) = (test.height, test.width, test.channels);
    let mut correct = 0;
    for start in (0..test.len()).step_by(50) {
        let n = 50.min(test.len() - start);
        let mut x = vec![0f32; n * c * h * w];
        for b in 0..n {
            let img = &test.pixels[(start + b) * h * w * c..(start + b + 1) * h * w * c];
            for (p, &v) in img.iter().enumerate() {
                let (pixel, ch) = (p / c, p % c);
                x[((b * c + ch) * h * w) + pixel] = f32::from(v) / 255.0;
            }
        }
        let shape = [n as i64, c as i64, h as i64, w as i64];
        let (out_shape, logits) = session.run_shaped(&shape, &x).unwrap();
        assert_eq!(out_shape, [n as i64, 10]);
        for b in 0..n {
            let row = &logits[b * 10..(b + 1) * 10];
            let best = (0..10).max_by(|&i, &j| row[i].total_cmp(&row[j])).unwrap();
            correct += usize::from(best == test.labels[start + b] as usize);
        }
    }
    correct as f64 / test.len() as f64
}

/// Searches, exports and measures on `data`; returns the run's result.json.
fn flow(root: &Path, table: &Path, data: &Path, format: &str, extra: &[&str]) -> serde_json::Value {
    let est = ok(&run(
        "tunas-searcher",
        &[
            "estimate",
            "--space",
            "rgb32",
            "--table",
            s(table),
            "--arch",
            "random:3",
            "--json",
        ],
    ));
    let target = format!("{:.6}", est["latency_ms"].as_f64().unwrap());
    let out_dir = root.join(format!("run-{format}"));
    let mut args = vec![
        "search",
        "--table",
        s(table),
        "--target-ms",
        &target,
        "--steps",
        "60",
        "--batch",
        "32",
        "--validation-batch",
        "32",
        "--holdout",
        "64",
        "--quiet",
        "--json",
        "--data-format",
        format,
        "--data",
        s(data),
        "--out",
        s(&out_dir),
    ];
    args.extend_from_slice(extra);
    let result = ok(&run("tunas-searcher", &args));
    let onnx_path = root.join(format!("{format}.onnx"));
    let exported = ok(&run(
        "tunas-searcher",
        &[
            "export",
            "--quiet",
            "--json",
            "--calibration-batches",
            "2",
            "--run",
            s(&out_dir),
            "--onnx",
            s(&onnx_path),
        ],
    ));
    let onnx = fs::read(&onnx_path).unwrap();
    let loaded = load_any(
        data,
        format.parse::<DataFormat>().unwrap(),
        RGB32,
        &FolderOptions::default(),
    )
    .unwrap();
    let test = &loaded.data.test;
    let ours = exported["test_accuracy"].as_f64().unwrap();
    let theirs = onnx_accuracy(&onnx, test);
    // The same network in another engine: float sums in another order may
    // flip one near tie, never more.
    assert!(
        (theirs - ours).abs() <= 1.0 / test.len() as f64 + 1e-9,
        "{format}: ONNX Runtime scores {theirs} on plain pixels, the searcher {ours}"
    );
    let text = String::from_utf8_lossy(&onnx);
    assert!(text.contains("rgb32"), "space name in the metadata");
    for name in &loaded.classes {
        assert!(
            text.contains(name.as_str()),
            "class name {name} in the metadata"
        );
    }
    let measured = ok(&run(
        "tunas-profiler",
        &[
            "measure",
            "--json",
            "--quiet",
            "--runs=3",
            "--min-ms=0",
            "--warmup-runs=1",
            "--warmup-ms=0",
            "--model",
            s(&onnx_path),
            "--table",
            s(table),
        ],
    ));
    let estimate = measured["estimate_ms"].as_f64().unwrap();
    assert!((estimate - result["est_latency_ms"].as_f64().unwrap()).abs() < 1e-9);
    assert!(measured["median_ms"].as_f64().unwrap() > 0.0);
    result
}

#[test]
fn rgb32_profile_search_export_measure_on_cifar_batches_and_a_folder() {
    if tunas_profiler::runtime::locate_runtime(None).is_err() {
        eprintln!("skipped: no ONNX Runtime library (cargo xtask setup provisions one)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let table = root.path().join("rgb32.csv");
    let mut profile = vec![
        "profile",
        "--space",
        "rgb32",
        "--threads=1",
        "--out",
        s(&table),
    ];
    profile.extend_from_slice(&crate::devices::FAST);
    ok(&run("tunas-profiler", &profile));

    let idx = load_idx_dir(&subset_dir()).unwrap();
    let cifar = root.path().join("cifar");
    write_cifar(&cifar, &idx.train, &idx.test, 80, 200);
    let result = flow(root.path(), &table, &cifar, "cifar10", &[]);
    assert_eq!(result["classes"][0], "airplane");
    assert_eq!(result["normalization"]["mean"].as_array().unwrap().len(), 3);
    // RGB searches augment their training batches by default.
    assert_eq!(result["config"]["augment"]["pad_crop"], 4);
    assert_eq!(result["config"]["augment"]["flip"], true);

    let photos = root.path().join("photos");
    write_folder(&photos, &idx.train, &idx.test, 400, 150);
    let result = flow(
        root.path(),
        &table,
        &photos,
        "folder",
        &["--pad-crop", "0", "--no-flip"],
    );
    assert_eq!(result["config"]["augment"]["pad_crop"], 0);
    assert_eq!(result["config"]["augment"]["flip"], false);

    // A resumed run keeps its augmentation.
    let resumed = run(
        "tunas-searcher",
        &[
            "search",
            "--resume",
            s(&root.path().join("run-folder")),
            "--pad-crop",
            "2",
        ],
    );
    assert!(!resumed.status.success());
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(err.contains("--pad-crop"), "{err}");
}
