//! The search loop on the repo's Fashion-MNIST subset: outputs, kill and
//! resume, export to ONNX and agreement of the exported network (fed plain
//! pixels) with the searcher's own evaluation, at any batch, with its
//! description in `metadata_props`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;
use tunas_searcher::data::{BatchMaker, Dataset, load_idx_dir};
use tunas_searcher::export::{ExportMetadata, export_app_onnx, metadata_keys, recalibrate_bn};
use tunas_searcher::search::{
    Resource, RunOptions, SearchConfig, SearchData, SearchResult, search,
};
use tunas_searcher::supernet::{BnMode, PathPlan, Supernet, evaluate};
use tunas_searcher::weights::load_store;
use tunas_shared::onnx::ModelProto;
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
        steps_done: None,
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
    // Every step is timed once, by phase, in wall and CPU time.
    let t = &result.phase_times;
    assert_eq!(t.warmup_steps + t.search_steps, 12, "{t:?}");
    assert!(t.warmup_steps > 0 && t.search_steps > 0, "{t:?}");
    for phase in [
        &t.warmup_training,
        &t.search_training,
        &t.validation,
        &t.batches,
    ] {
        assert!(phase.wall_s > 0.0 && phase.cpu_s > 0.0, "{t:?}");
    }
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
    // The phase times come through the checkpoint: the steps redone after
    // the kill are counted once.
    let steps = |r: &SearchResult| r.phase_times.warmup_steps + r.phase_times.search_steps;
    assert_eq!((steps(&a), steps(&b)), (24, 24));
    let log = |d: &Path| std::fs::read_to_string(d.join("steps.csv")).unwrap();
    assert_eq!(log(whole.path()), log(killed.path()));
    let weights = |d: &Path| std::fs::read(d.join("supernet.weights")).unwrap();
    assert!(
        weights(whole.path()) == weights(killed.path()),
        "final weights differ"
    );
}

/// What an application feeds the exported model: byte / 255, no
/// normalisation, NCHW.
fn plain_pixels(data: &Dataset, idx: &[usize]) -> ndarray::Array4<f32> {
    let plain = BatchMaker {
        mean: vec![0.0; data.channels],
        std: vec![1.0; data.channels],
        pad_crop: 0,
        flip: false,
    };
    plain.batch(data, idx, &mut rand::rng()).0
}

fn onnx_runtime() -> Option<&'static tunas_profiler::runtime::Runtime> {
    let runtime = tunas_profiler::runtime::locate_runtime(None)
        .ok()
        .and_then(|lib| tunas_profiler::runtime::init_runtime(&lib).ok());
    if runtime.is_none() {
        eprintln!("skipped: no ONNX Runtime library (cargo xtask setup provisions one)");
    }
    runtime
}

fn session(
    runtime: &'static tunas_profiler::runtime::Runtime,
    onnx: &[u8],
) -> tunas_profiler::runtime::ModelSession {
    let cfg = tunas_profiler::runtime::SessionConfig::default();
    tunas_profiler::runtime::ModelSession::new(runtime, onnx, &cfg).unwrap()
}

#[test]
fn exported_onnx_agrees_with_the_searchers_evaluation() {
    let Some(runtime) = onnx_runtime() else {
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
    assert_export_agrees(runtime, &mut net, &arch, &tt, Some(&result));
}

/// Recalibrates BN for `arch`, exports it, and checks that ONNX Runtime's
/// accuracy on 300 test images (plain pixels in) is the searcher's own.
fn assert_export_agrees(
    runtime: &'static tunas_profiler::runtime::Runtime,
    net: &mut Supernet,
    arch: &Architecture,
    tt: &tunas_searcher::data::TrainTest,
    result: Option<&tunas_searcher::search::SearchResult>,
) {
    let maker = BatchMaker::plain(&tt.train);
    recalibrate_bn(net, arch, &tt.train, &maker, 10, 128);
    let mut meta = ExportMetadata::new(&maker);
    if let Some(result) = result {
        meta = meta.with_search_result(result, arch);
    }
    let onnx = export_app_onnx(net, arch, &meta).unwrap();
    let mut session = session(runtime, &onnx);
    let n = 300;
    let idx: Vec<usize> = (0..n).collect();
    let (x, y) = maker.batch(&tt.test, &idx, &mut rand::rng());
    let ours = evaluate(
        net,
        x.clone(),
        &y,
        &PathPlan::single(arch.clone()),
        BnMode::Running,
    ) as f64;
    // The app's input: plain pixels; the model normalises them itself.
    let pixels = plain_pixels(&tt.test, &idx);
    let mut correct = 0;
    for (i, &label) in y.iter().enumerate() {
        let image: Vec<f32> = pixels
            .index_axis(ndarray::Axis(0), i)
            .iter()
            .copied()
            .collect();
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
        "{}: ONNX accuracy {onnx_acc} vs searcher {ours}",
        arch.to_compact()
    );
}

/// A supernet with BN recalibrated for a fixed architecture of tiny28 (no
/// training: the logits only need to be the network's), with the export
/// metadata of its batches.
fn recalibrated(seed: u64) -> (Supernet, Architecture, Dataset, ExportMetadata) {
    let space = builtin_space("tiny28").unwrap();
    let tt = load_idx_dir(&subset_dir()).unwrap();
    let arch = Architecture::parse_spec(&space, &format!("random:{seed}")).unwrap();
    let mut net = Supernet::new(&space, seed);
    let maker = BatchMaker::plain(&tt.train);
    recalibrate_bn(&mut net, &arch, &tt.train, &maker, 3, 64);
    (net, arch, tt.test, ExportMetadata::new(&maker))
}

#[test]
fn exported_onnx_gives_the_same_logits_at_batch_1_and_7() {
    let Some(runtime) = onnx_runtime() else {
        return;
    };
    let (net, arch, test, meta) = recalibrated(3);
    let onnx = export_app_onnx(&net, &arch, &meta).unwrap();
    let mut session = session(runtime, &onnx);
    assert_eq!(session.input_shape(), [1, 1, 28, 28]);
    let idx: Vec<usize> = (10..17).collect();
    let pixels = plain_pixels(&test, &idx);
    let all: Vec<f32> = pixels.iter().copied().collect();
    let (shape, batched) = session.run_shaped(&[7, 1, 28, 28], &all).unwrap();
    assert_eq!(shape, [7, 10]);
    let scale = batched.iter().fold(1f32, |m, v| m.max(v.abs()));
    for i in 0..7 {
        let image: Vec<f32> = pixels
            .index_axis(ndarray::Axis(0), i)
            .iter()
            .copied()
            .collect();
        let (shape, one) = session.run_with(&image).unwrap();
        assert_eq!(shape, [1, 10]);
        let row = &batched[i * 10..(i + 1) * 10];
        for (c, (a, b)) in one.iter().zip(row).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * scale,
                "image {i} class {c}: batch 1 gives {a}, batch 7 gives {b}"
            );
        }
    }
}

#[test]
fn exported_onnx_describes_itself_in_metadata_props() {
    let (net, arch, _, mut meta) = recalibrated(4);
    let names: Vec<String> = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let read = |meta: &ExportMetadata| {
        let onnx = export_app_onnx(&net, &arch, meta).unwrap();
        let model = ModelProto::decode(onnx.as_slice()).unwrap();
        let props: BTreeMap<String, String> = model
            .metadata_props
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        assert_eq!(props.len(), model.metadata_props.len(), "keys are unique");
        (model, props)
    };
    // Defaults: classes by number, no latency.
    let (model, props) = read(&meta);
    let classes: Vec<String> = serde_json::from_str(&props[metadata_keys::CLASS_NAMES]).unwrap();
    assert_eq!(classes, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    assert!(!props.contains_key(metadata_keys::EST_LATENCY_MS));
    assert!(!props.contains_key(metadata_keys::LATENCY_DEVICE));
    let input = &model.graph.as_ref().unwrap().input[0];
    let batch_axis = &input
        .r#type
        .as_ref()
        .unwrap()
        .tensor_type
        .as_ref()
        .unwrap()
        .shape
        .as_ref()
        .unwrap()
        .dim[0];
    assert_eq!(batch_axis.dim_param.as_deref(), Some("batch"));
    assert!(model.doc_string.contains("plain pixels in [0, 1]"));

    meta.class_names = Some(names.clone());
    meta.est_latency_ms = Some(1.23456);
    meta.latency_device = Some("local (Test CPU, onnxruntime 1.31.1, cpu, 1 threads)".into());
    let (_, props) = read(&meta);
    let space = &net.space;
    let classes: Vec<String> = serde_json::from_str(&props[metadata_keys::CLASS_NAMES]).unwrap();
    assert_eq!(classes, names);
    assert_eq!(props[metadata_keys::INPUT_LAYOUT], "NCHW");
    assert_eq!(props[metadata_keys::INPUT_SHAPE], "[batch, 1, 28, 28]");
    assert_eq!(props[metadata_keys::INPUT_RANGE], "[0,1] pixels, value/255");
    assert!(props[metadata_keys::NORMALIZATION].contains("inside the graph"));
    let mean: Vec<f32> = serde_json::from_str(&props[metadata_keys::NORMALIZATION_MEAN]).unwrap();
    let std: Vec<f32> = serde_json::from_str(&props[metadata_keys::NORMALIZATION_STD]).unwrap();
    assert_eq!((mean, std), (meta.mean.clone(), meta.std.clone()));
    assert_eq!(props[metadata_keys::SPACE], "tiny28");
    assert_eq!(props[metadata_keys::SPACE_HASH], space.content_hash());
    assert_eq!(props[metadata_keys::ARCHITECTURE], arch.to_compact());
    assert_eq!(
        Architecture::parse(space, &props[metadata_keys::ARCHITECTURE]).unwrap(),
        arch
    );
    assert_eq!(props[metadata_keys::EST_LATENCY_MS], "1.2346");
    assert_eq!(
        props[metadata_keys::LATENCY_DEVICE],
        "local (Test CPU, onnxruntime 1.31.1, cpu, 1 threads)"
    );
}

/// tiny28 with an op choice {bottleneck, separable, fused} on the first
/// layer of stage 2 (strided, widening) and the second of stage 3
/// (residual).
pub(crate) fn op_choice_space() -> tunas_shared::SearchSpace {
    use tunas_shared::{Choice, Decision, DecisionKind, LayerOp, Param};
    let mut space = builtin_space("tiny28").unwrap();
    for (stage, layer) in [(1, 0), (2, 1)] {
        let name = format!("stage{}/layer{}/op", stage + 1, layer + 1);
        space.decisions.push(Decision {
            name: name.clone(),
            kind: DecisionKind::Op,
            values: [LayerOp::Bottleneck, LayerOp::Separable, LayerOp::Fused]
                .map(Choice::Op)
                .to_vec(),
        });
        space.stages[stage].layers[layer].op = Param::Decision(name);
    }
    space.name = "tiny28-op-choice".into();
    space.validate().unwrap();
    space
}

#[test]
fn a_searched_op_choice_trains_every_op_and_each_exports_as_evaluated() {
    let space = op_choice_space();
    let tt = load_idx_dir(&subset_dir()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = SearchData::split(&tt.train, 500, 1);
    let result = search(&space, &[], &d, &small_config(30), dir.path(), &quiet(None))
        .unwrap()
        .unwrap();
    let mut net = Supernet::new(&space, 0);
    load_store(&dir.path().join("supernet.weights"), &mut net.store).unwrap();
    // The op warm-up trained every op of both layers: none kept its
    // initial weights.
    let initial = Supernet::new(&space, 0);
    for scope in ["stage2/layer1", "stage3/layer2"] {
        for op in ["bottleneck", "separable", "fused"] {
            let prefix = format!("{scope}/{op}/");
            let moved = (net.store.tensors.iter().zip(&initial.store.tensors))
                .filter(|(t, _)| t.name.starts_with(&prefix))
                .any(|(t, t0)| t.value != t0.value);
            assert!(moved, "{prefix} never trained");
        }
    }
    let Some(runtime) = onnx_runtime() else {
        return;
    };
    let searched = Architecture::parse(&space, &result.arch).unwrap();
    assert_export_agrees(runtime, &mut net.clone(), &searched, &tt, Some(&result));
    let ops: Vec<usize> = (space.decisions.iter().enumerate())
        .filter(|(_, d)| d.kind == tunas_shared::DecisionKind::Op)
        .map(|(i, _)| i)
        .collect();
    for value in 0..3 {
        let mut arch = Architecture::largest(&space);
        for &i in &ops {
            arch.indices[i] = value;
        }
        assert_export_agrees(runtime, &mut net.clone(), &arch, &tt, None);
    }
}
