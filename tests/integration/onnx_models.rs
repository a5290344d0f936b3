//! The ONNX writer checked by the reference implementation: every model
//! kind, including the network the searcher exports for applications
//! (dynamic batch, normalisation nodes, metadata), goes through
//! `onnx.checker.check_model(..., full_check=True)` (which includes strict
//! shape inference) when Python's `onnx` package is present.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use tunas_searcher::data::BatchMaker;
use tunas_searcher::export::{ExportMetadata, export_app_onnx};
use tunas_searcher::supernet::Supernet;
use tunas_shared::onnx::{
    BatchDim, InputNormalization, NetworkOptions, RandomWeights, context_model, network_model,
    network_model_with, network_sites, op_model,
};
use tunas_shared::{Architecture, OpKey, builtin_space, space_op_keys};

const CHECKER: &str = r#"
import sys
try:
    import onnx
except Exception as e:
    print("skipped: python onnx not importable (%s)" % e)
    sys.exit(0)
failed = 0
for path in sys.argv[1:]:
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        print("ok " + path)
    except Exception as e:
        failed += 1
        print("FAILED " + path + ": " + str(e).replace("\n", " | "))
sys.exit(1 if failed else 0)
"#;

/// Runs the checker on `paths`; returns its output, or `None` when Python or
/// its `onnx` package is missing.
fn check_with_python(paths: &[PathBuf]) -> Option<String> {
    let output = match Command::new("python3")
        .arg("-c")
        .arg(CHECKER)
        .args(paths)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipped: python onnx not importable (no python3: {e})");
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if stdout.starts_with("skipped:") {
        eprintln!("{}", stdout.trim());
        return None;
    }
    assert!(
        output.status.success(),
        "the ONNX checker refused models:\n{}\n{}",
        stdout
            .lines()
            .filter(|l| l.starts_with("FAILED"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(stdout)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(format!("{}.onnx", name.replace('/', "_")));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// One key per distinct (kind, SE, residual, activation, stride) of a space.
fn representative_keys(space: &str) -> Vec<OpKey> {
    let space = match space {
        "tiny28-op-choice" => crate::search::op_choice_space(),
        name => builtin_space(name).unwrap(),
    };
    let mut seen = BTreeSet::new();
    space_op_keys(&space, 1)
        .into_iter()
        .filter(|k| seen.insert((k.op, k.se, k.residual, k.act, k.stride)))
        .collect()
}

#[test]
fn every_op_kind_and_largest_networks_pass_the_onnx_checker() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    let mut kinds = BTreeSet::new();
    let mut weights = RandomWeights::new(11);
    let tiny = builtin_space("tiny28").unwrap();
    for space in [
        "tiny28",
        "mobilenet-v3-like",
        "proxylessnas",
        "tiny28-op-choice",
    ] {
        for mut key in representative_keys(space) {
            kinds.insert(key.op);
            let bytes = op_model(&key, &mut weights).unwrap();
            paths.push(write(dir.path(), &format!("{space}-{key}"), &bytes));
            key.batch = 2;
            let bytes = op_model(&key, &mut weights).unwrap();
            paths.push(write(dir.path(), &format!("{space}-{key}"), &bytes));
        }
    }
    assert_eq!(kinds.len(), 7, "every op kind is covered: {kinds:?}");
    for space_name in ["tiny28", "proxylessnas", "mobilenet-v3-like"] {
        let space = builtin_space(space_name).unwrap();
        let arch = Architecture::largest(&space);
        let bytes = network_model(&space, &arch, &mut weights, 1).unwrap();
        paths.push(write(dir.path(), &format!("{space_name}-largest"), &bytes));
        let keys: Vec<OpKey> = network_sites(&space, &arch, 1)
            .into_iter()
            .map(|s| s.key)
            .collect();
        let bytes = context_model(&keys[1..4], &mut weights).unwrap();
        paths.push(write(dir.path(), &format!("{space_name}-context"), &bytes));
        let c = space.input.channels as usize;
        let app = NetworkOptions {
            batch: BatchDim::Dynamic,
            normalization: Some(InputNormalization {
                mean: vec![0.45; c],
                std: vec![0.25; c],
            }),
            metadata: vec![("input_layout".into(), "NCHW".into())],
            description: Some("dynamic batch, normalised inside".into()),
        };
        let bytes = network_model_with(&space, &arch, &mut weights, &app).unwrap();
        paths.push(write(dir.path(), &format!("{space_name}-app"), &bytes));
    }
    // The model `tunas-searcher export` writes, from a supernet's weights.
    let net = Supernet::new(&tiny, 0);
    let maker = BatchMaker {
        mean: vec![0.29],
        std: vec![0.35],
        pad_crop: 0,
        flip: false,
    };
    let meta = ExportMetadata {
        est_latency_ms: Some(0.5),
        latency_device: Some("local".into()),
        ..ExportMetadata::new(&maker)
    };
    for seed in 0..2 {
        let arch = Architecture::parse_spec(&tiny, &format!("random:{seed}")).unwrap();
        let bytes = export_app_onnx(&net, &arch, &meta).unwrap();
        paths.push(write(dir.path(), &format!("tiny28-exported{seed}"), &bytes));
    }
    for seed in 0..3 {
        let arch = Architecture::parse_spec(&tiny, &format!("random:{seed}")).unwrap();
        let bytes = network_model(&tiny, &arch, &mut weights, 4).unwrap();
        paths.push(write(dir.path(), &format!("tiny28-random{seed}"), &bytes));
    }
    if let Some(out) = check_with_python(&paths) {
        assert_eq!(
            out.lines().filter(|l| l.starts_with("ok ")).count(),
            paths.len(),
            "{out}"
        );
    }
}
