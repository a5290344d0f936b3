//! The search loop on the repo's Fashion-MNIST subset: outputs, kill and
//! resume, export to ONNX and agreement of the exported network with the
//! searcher's own evaluation.

use std::path::{Path, PathBuf};

use tunas_searcher::data::{BatchMaker, load_idx_dir};
use tunas_searcher::export::{export_onnx, recalibrate_bn};
use tunas_searcher::search::{Resource, RunOptions, SearchConfig, SearchData, search};
use tunas_searcher::supernet::{BnMode, PathPlan, Supernet, evaluate};
use tunas_searcher::weights::load_store;
use tunas_shared::{Architecture, builtin_space};

fn subset_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../searcher/testdata/fashion-mnist-subset")
}

fn small_config(steps: usize) -> SearchConfig {
    // FLOPs as the resource: no latency table needed, and the loop is the
    // same. Target 4 M multiply-adds, about the median of tiny28.
    let mut c = SearchConfig::defaults(steps, 4.0);
    c.resource = Resource::Flops;
    c.batch = 16;
    c.validation_batch = 32;
    c.checkpoint_every = 5;
    c.record_every = 1;
    c.rl_learning_rate = 0.05;
    c
}

fn data() -> SearchData {
    let tt = load_idx_dir(&subset_dir()).expect("the repo carries the subset");
    SearchData::split(&tt.train, 500, 1)
}

fn quiet(stop_after: Option<usize>) -> RunOptions {
    RunOptions {
        progress: false,
        stop_after,
    }
}

#[test]
fn search_writes_result_log_charts_and_checkpoints() {
    let space = builtin_space("tiny28").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(12);
    let result = search(&space, &[], &data(), &config, dir.path(), &quiet(None))
        .unwrap()
        .expect("ran to the end");
    let arch = Architecture::parse(&space, &result.arch).unwrap();
    assert_eq!(
        result.flops,
        tunas_shared::architecture_flops(&space, &arch)
    );
    assert!((0.0..=1.0).contains(&result.validation_accuracy));
    let log = std::fs::read_to_string(dir.path().join("steps.csv")).unwrap();
    assert_eq!(log.lines().count(), 1 + 12);
    assert!(log.lines().nth(1).unwrap().starts_with("0,warmup,"));
    assert!(log.lines().last().unwrap().starts_with("11,search,"));
    for f in [
        "result.json",
        "supernet.weights",
        "checkpoint.json",
        "probabilities.svg",
        "curves.svg",
    ] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
}

#[test]
fn killed_search_resumes_to_the_same_end() {
    let space = builtin_space("tiny28").unwrap();
    let data = data();
    let config = small_config(24);
    let whole = tempfile::tempdir().unwrap();
    let a = search(&space, &[], &data, &config, whole.path(), &quiet(None))
        .unwrap()
        .unwrap();
    // Killed at step 17: the last checkpoint is at 15, steps 15 and 16 are
    // logged but lost, and must be redone identically.
    let killed = tempfile::tempdir().unwrap();
    let stopped = search(&space, &[], &data, &config, killed.path(), &quiet(Some(17))).unwrap();
    assert!(stopped.is_none());
    let b = search(&space, &[], &data, &config, killed.path(), &quiet(None))
        .unwrap()
        .unwrap();
    assert_eq!(a.arch, b.arch);
    let log = |d: &Path| std::fs::read_to_string(d.join("steps.csv")).unwrap();
    assert_eq!(log(whole.path()), log(killed.path()));
    let weights = |d: &Path| std::fs::read(d.join("supernet.weights")).unwrap();
    assert!(
        weights(whole.path()) == weights(killed.path()),
        "final weights differ"
    );
}

#[test]
fn exported_onnx_agrees_with_the_searchers_evaluation() {
    let Some(runtime) = tunas_profiler::runtime::locate_runtime(None)
        .ok()
        .and_then(|lib| tunas_profiler::runtime::init_runtime(&lib).ok())
    else {
        eprintln!("skipped: no ONNX Runtime library (cargo xtask setup provisions one)");
        return;
    };
    let space = builtin_space("tiny28").unwrap();
    let tt = load_idx_dir(&subset_dir()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(30);
    let d = SearchData::split(&tt.train, 500, 1);
    let result = search(&space, &[], &d, &config, dir.path(), &quiet(None))
        .unwrap()
        .unwrap();
    let arch = Architecture::parse(&space, &result.arch).unwrap();
    let mut net = Supernet::new(&space, 0);
    load_store(&dir.path().join("supernet.weights"), &mut net.store).unwrap();
    let maker = BatchMaker::plain(&tt.train);
    recalibrate_bn(&mut net, &arch, &tt.train, &maker, 10, 128);
    let onnx = export_onnx(&net, &arch, 1).unwrap();
    let cfg = tunas_profiler::runtime::SessionConfig::default();
    let mut session = tunas_profiler::runtime::ModelSession::new(runtime, &onnx, &cfg).unwrap();
    let n = 300;
    let idx: Vec<usize> = (0..n).collect();
    let (x, y) = maker.batch(&tt.test, &idx, &mut rand::rng());
    let ours = evaluate(
        &mut net,
        x.clone(),
        &y,
        &PathPlan::single(arch.clone()),
        BnMode::Running,
    ) as f64;
    let mut correct = 0;
    for (i, &label) in y.iter().enumerate() {
        let image: Vec<f32> = x.index_axis(ndarray::Axis(0), i).iter().copied().collect();
        let (shape, logits) = session.run_with(&image).unwrap();
        assert_eq!(shape, vec![1, 10]);
        let best = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        correct += usize::from(best == label);
    }
    let onnx_acc = correct as f64 / n as f64;
    assert!(
        (onnx_acc - ours).abs() <= 0.001 + 1e-9,
        "ONNX accuracy {onnx_acc} vs searcher {ours}"
    );
}
