//! Stand-alone training, weight files and the `train` / `bench` commands, on
//! the Fashion-MNIST subset the repo carries (3,000 train / 1,000 test).
//!
//! Runs are short (a few hundred steps of a small architecture at most) so
//! the module stays well under a minute in the test profile.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tunas_searcher::data::{TrainTest, load_idx_dir};
use tunas_searcher::supernet::{BnMode, PathPlan, Supernet};
use tunas_searcher::train::{
    Normalization, OptimizerKind, TrainConfig, evaluate_weights, save_run, saved_normalization,
    train_architecture,
};
use tunas_searcher::weights::{WeightsError, load_supernet, read_meta};
use tunas_shared::{Architecture, SearchSpace, builtin_space};

use crate::cli::run;

/// `set_serial` is process-wide: tests that switch it hold this lock.
static SERIAL_SWITCH: Mutex<()> = Mutex::new(());

fn subset_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../searcher/testdata/fashion-mnist-subset")
}

fn subset() -> TrainTest {
    load_idx_dir(&subset_dir()).expect("the repo's Fashion-MNIST subset")
}

/// A small tiny28 network (narrowest widths, kernel 3, expansion 1,
/// squeeze-excite in stage 2, its last layer skipped): cheap enough to train
/// for a few hundred steps here.
fn small_arch(space: &SearchSpace) -> Architecture {
    let mut arch = Architecture::parse(space, &"0".repeat(space.decisions.len())).unwrap();
    for (i, d) in space.decisions.iter().enumerate() {
        let stage2 = d.name.starts_with("stage2/");
        arch.indices[i] = match d.kind {
            tunas_shared::DecisionKind::SqueezeExcite if stage2 => 1,
            tunas_shared::DecisionKind::Skip if d.name == "stage2/layer3/skip" => 1,
            _ => 0,
        };
    }
    arch
}

fn config(epochs: usize, limit: Option<usize>) -> TrainConfig {
    let mut cfg = TrainConfig::new(OptimizerKind::Sgd);
    cfg.epochs = epochs;
    cfg.batch = 30;
    cfg.limit_train = limit;
    cfg.seed = 7;
    cfg.warmup_fraction = 0.05;
    cfg
}

/// Logits of the first `n` test images with running BN statistics.
fn test_logits(
    net: &mut Supernet,
    arch: &Architecture,
    data: &TrainTest,
    norm: &Normalization,
    n: usize,
) -> Vec<f32> {
    let indices: Vec<usize> = (0..n).collect();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let (x, _) = norm.maker().batch(&data.test, &indices, &mut rng);
    net.forward(x, &PathPlan::single(arch.clone()), BnMode::Running, false)
        .0
        .iter()
        .copied()
        .collect()
}

#[test]
fn short_training_learns_and_saved_weights_evaluate_identically() {
    let data = subset();
    let space = builtin_space("tiny28").unwrap();
    let arch = small_arch(&space);
    let mut net = Supernet::new(&space, 7);
    // 3 epochs of 50 steps; BN statistics recalibrated before the final
    // evaluation, as 150 steps are too few for running averages with
    // momentum 0.99 to settle.
    let mut cfg = config(3, Some(1500));
    cfg.eval_every_epoch = false;
    cfg.bn_recalibration_batches = 10;
    let report = train_architecture(&mut net, &arch, &data, &cfg, true).unwrap();
    assert_eq!(report.steps, 150);
    let losses: Vec<f32> = report.history.iter().map(|e| e.train_loss).collect();
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]) && losses[2] < 0.8 * losses[0],
        "training loss should fall every epoch: {losses:?}"
    );
    assert!(
        report.test_accuracy > 0.6,
        "test accuracy {} after 150 steps (chance is 0.1); history {:#?}",
        report.test_accuracy,
        report.history
    );

    let dir = tempfile::tempdir().unwrap();
    let (weights, result) = save_run(dir.path(), &net, &arch, &report).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
    assert_eq!(
        json["test_accuracy"].as_f64().unwrap() as f32,
        report.test_accuracy
    );
    assert_eq!(json["arch"], arch.to_compact());

    let meta = read_meta(&weights).unwrap();
    assert_eq!(meta.arch.as_deref(), Some(arch.to_compact().as_str()));
    let norm = saved_normalization(&meta.extra).expect("normalisation is saved");
    assert_eq!(norm, report.normalization);
    let mut loaded = Supernet::new(&space, 12345);
    load_supernet(&weights, &mut loaded).unwrap();
    let eval = evaluate_weights(&mut loaded, &arch, &data.test, &norm, 500).unwrap();
    assert_eq!(eval.test_accuracy, report.test_accuracy);
    assert_eq!(
        test_logits(&mut loaded, &arch, &data, &norm, 64),
        test_logits(&mut net, &arch, &data, &norm, 64),
        "reloaded weights give other logits"
    );
}

#[test]
fn deterministic_runs_give_bit_identical_weights() {
    let _guard = SERIAL_SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let mut data = subset();
    data.test = data.test.subset(&(0..100).collect::<Vec<_>>());
    let space = builtin_space("tiny28").unwrap();
    let arch = small_arch(&space);
    let train_once = || {
        let mut net = Supernet::new(&space, 3);
        let report =
            train_architecture(&mut net, &arch, &data, &config(1, Some(300)), true).unwrap();
        (net, report)
    };
    tunas_searcher::layers::set_serial(true);
    let (a, ra) = train_once();
    let (b, rb) = train_once();
    tunas_searcher::layers::set_serial(false);
    assert_eq!(ra.steps, 10);
    for (x, y) in a.store.tensors.iter().zip(&b.store.tensors) {
        assert!(
            x.value
                .iter()
                .zip(y.value.iter())
                .all(|(p, q)| p.to_bits() == q.to_bits()),
            "tensor {} differs between two serial runs with one seed",
            x.name
        );
    }
    assert_eq!(
        ra.history[0].train_loss.to_bits(),
        rb.history[0].train_loss.to_bits()
    );
    // Parallel layers promise the same bits (fixed reduction order).
    let (c, _) = train_once();
    for (x, y) in a.store.tensors.iter().zip(&c.store.tensors) {
        assert!(
            x.value
                .iter()
                .zip(y.value.iter())
                .all(|(p, q)| p.to_bits() == q.to_bits()),
            "tensor {} differs between a serial and a parallel run",
            x.name
        );
    }
}

#[test]
fn damaged_weight_files_are_refused_naming_the_file() {
    let space = builtin_space("tiny28").unwrap();
    let net = Supernet::new(&space, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.bin");
    tunas_searcher::weights::save_supernet(&path, &net, None, serde_json::Value::Null).unwrap();
    let good = std::fs::read(&path).unwrap();
    let name = path.display().to_string();
    let load = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        let mut fresh = Supernet::new(&space, 2);
        let err = load_supernet(&path, &mut fresh).unwrap_err();
        assert!(err.to_string().contains(&name), "{err}");
        err
    };
    let err = load(&good[..good.len() / 2]);
    assert!(
        matches!(
            &err,
            WeightsError::Truncated {
                tensor: Some(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("is cut off"), "{err}");
    let err = load(&good[..12]);
    assert!(matches!(err, WeightsError::Truncated { .. }), "{err}");
    let mut corrupt = good.clone();
    let at = good.len() - 100;
    corrupt[at] = corrupt[at].wrapping_add(1);
    assert!(matches!(load(&corrupt), WeightsError::Checksum { .. }));
    assert!(matches!(load(b"hello"), WeightsError::NotWeights { .. }));
    let missing = std::fs::remove_file(&path).map(|_| {
        let mut fresh = Supernet::new(&space, 2);
        load_supernet(&path, &mut fresh).unwrap_err()
    });
    let err = missing.unwrap();
    assert!(matches!(err, WeightsError::Io { .. }) && err.to_string().contains(&name));
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn train_command_saves_weights_that_evaluate_to_the_same_accuracy() {
    let space = builtin_space("tiny28").unwrap();
    let arch = small_arch(&space).to_compact();
    let dir = tempfile::tempdir().unwrap();
    let data = subset_dir();
    let out_dir = dir.path().join("run");
    let args = [
        "train",
        "--space",
        "tiny28",
        "--arch",
        &arch,
        "--epochs",
        "1",
        "--batch",
        "50",
        "--limit-train",
        "500",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
        "--quiet",
        "--threads",
        "1",
    ];
    let out = run("tunas-searcher", &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let trained: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in [
        "test_accuracy",
        "epochs",
        "seconds",
        "images_per_s",
        "arch",
        "space",
    ] {
        assert!(!trained[field].is_null(), "no {field} in {trained}");
    }
    assert_eq!(trained["epochs"], 1);
    let weights = out_dir.join("weights.bin");
    assert!(out_dir.join("result.json").exists());
    let eval = run(
        "tunas-searcher",
        &[
            "train",
            "--weights",
            weights.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(eval.status.success(), "{}", text(&eval.stderr));
    let evaluated: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(evaluated["test_accuracy"], trained["test_accuracy"]);
    assert_eq!(evaluated["arch"], trained["arch"]);

    std::fs::write(&weights, b"TUNASWT1 and then nothing useful").unwrap();
    let bad = run(
        "tunas-searcher",
        &[
            "train",
            "--weights",
            weights.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains(weights.to_str().unwrap()),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn bench_command_reports_throughput_and_memory() {
    let small = small_arch(&builtin_space("tiny28").unwrap()).to_compact();
    let out = run(
        "tunas-searcher",
        &[
            "bench",
            "--batch",
            "4",
            "--steps",
            "2",
            "--warmup-steps",
            "1",
            "--threads",
            "1",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["images_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["peak_rss_mb"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["variant"], "single-path");

    let out = run(
        "tunas-searcher",
        &[
            "bench",
            "--arch",
            &small,
            "--batch",
            "2",
            "--steps",
            "1",
            "--warmup-steps",
            "0",
            "--all-values",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["all_values_remat"]["variant"], "all-values-remat");
    assert_eq!(v["all_values_no_remat"]["variant"], "all-values-no-remat");
    assert!(v["all_values_no_remat"]["images_per_s"].as_f64().unwrap() > 0.0);
}
