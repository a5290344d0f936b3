//! Project automation, run as `cargo xtask <command>`:
//!
//! - `setup`: provision what the tools need on this machine (ONNX Runtime
//!   library from PyPI, the Fashion-MNIST Debian package, Python `onnx` for
//!   the model checker). Idempotent; every step says what it does.
//! - `test`: setup, format check, clippy with warnings denied, build, all tests.
//! - `demo`: the main job on the embedded defaults.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// ONNX Runtime release matching the `ort` crate's API level (1.31).
const ORT_VERSION: &str = "1.31.1";
const DATASET_DIR: &str = "/usr/share/datasets/fashion-mnist";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start: {what}"))?;
    if !status.success() {
        bail!("failed ({status}): {what}");
    }
    Ok(())
}

fn quiet_ok(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The provisioned ONNX Runtime library, if present.
fn provisioned_ort() -> PathBuf {
    target_dir()
        .join("onnxruntime")
        .join(format!("libonnxruntime.so.{ORT_VERSION}"))
}

fn setup_onnxruntime() -> Result<()> {
    let lib = provisioned_ort();
    if lib.exists() {
        eprintln!(
            "xtask: ONNX Runtime {ORT_VERSION} already at {}",
            lib.display()
        );
        return Ok(());
    }
    let dir = lib.parent().expect("has a parent");
    std::fs::create_dir_all(dir)?;
    let wheels = dir.join("wheel");
    let mut pip = Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
    ])
    .arg(&wheels)
    .arg(format!("onnxruntime=={ORT_VERSION}"));
    run(pip, &format!("download the onnxruntime {ORT_VERSION} wheel from PyPI")).context(
        "could not download ONNX Runtime; with no PyPI access, point ORT_DYLIB_PATH (or --ort-lib) at a libonnxruntime.so you have",
    )?;
    // Unpack only the shared libraries, with Python's zipfile (always there
    // where pip is).
    let script = r#"
import sys, zipfile, pathlib, glob
wheel = sorted(glob.glob(sys.argv[1] + '/onnxruntime-*.whl'))[-1]
out = pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = name.rsplit('/', 1)[-1]
        if name.startswith('onnxruntime/capi/libonnxruntime') and '.so' in base:
            (out / base).write_bytes(z.read(name))
            print('unpacked', base)
"#;
    let mut py = Command::new("python3");
    py.arg("-c").arg(script).arg(&wheels).arg(dir);
    run(py, "unpack libonnxruntime.so from the wheel")?;
    std::fs::remove_dir_all(&wheels).ok();
    if !lib.exists() {
        bail!(
            "the wheel did not contain {}; set ORT_DYLIB_PATH to a libonnxruntime.so",
            lib.display()
        );
    }
    Ok(())
}

fn setup_dataset() -> Result<()> {
    if Path::new(DATASET_DIR)
        .join("train-images-idx3-ubyte.gz")
        .exists()
    {
        eprintln!("xtask: Fashion-MNIST already in {DATASET_DIR}");
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let sudo: &[&str] = if is_root { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        let mut c = Command::new(all[0]);
        c.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    let installed = run(apt(&["update", "-qq"]), "apt-get update").and_then(|_| {
        run(
            apt(&["install", "-y", "-qq", "dataset-fashion-mnist"]),
            "install Debian package dataset-fashion-mnist",
        )
    });
    if let Err(e) = installed {
        eprintln!(
            "xtask: warning: {e:#}. Install it yourself with `apt-get install dataset-fashion-mnist`, or pass --data DIR with the IDX files to the searcher; tests use the subset in the repo."
        );
    }
    Ok(())
}

fn setup_python_onnx() -> Result<()> {
    if quiet_ok("python3", &["-c", "import onnx"]) {
        eprintln!("xtask: Python onnx (model checker) present");
        return Ok(());
    }
    let mut pip = Command::new("python3");
    pip.args(["-m", "pip", "install", "--quiet", "onnx"]);
    if let Err(e) = run(
        pip,
        "pip install onnx (the ONNX model checker used by tests)",
    ) {
        eprintln!("xtask: warning: {e:#}; the ONNX checker test will say it skipped");
    }
    Ok(())
}

fn setup() -> Result<()> {
    setup_onnxruntime()?;
    setup_dataset()?;
    setup_python_onnx()?;
    Ok(())
}

fn test() -> Result<()> {
    setup()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run(fmt, "cargo fmt --check")?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy, "cargo clippy -D warnings")?;
    let mut build = cargo();
    build.args(["build", "--workspace", "--bins"]);
    run(build, "build the binaries the CLI tests run")?;
    let mut test = cargo();
    test.args(["test", "--workspace"])
        .env("ORT_DYLIB_PATH", provisioned_ort());
    run(test, "cargo test --workspace")?;
    Ok(())
}

fn release_binary(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

fn demo() -> Result<()> {
    setup()?;
    let mut build = cargo();
    build.args(["build", "--release", "--workspace", "--bins"]);
    run(build, "build the release binaries")?;
    let profiler = release_binary("tunas-profiler");
    let searcher = release_binary("tunas-searcher");

    let mut spaces = Command::new(&profiler);
    spaces.arg("spaces");
    run(spaces, "tunas-profiler spaces")?;

    let mut estimate = Command::new(&searcher);
    estimate.args(["estimate", "--space", "tiny28", "--arch", "largest"]);
    run(
        estimate,
        "tunas-searcher estimate --space tiny28 --arch largest",
    )?;
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("test") => test(),
        Some("demo") => demo(),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  setup   provision ONNX Runtime ({ORT_VERSION}, from PyPI), Fashion-MNIST (Debian package) and Python onnx\n  test    setup, then fmt check, clippy -D warnings, build, all tests\n  demo    the main job on the embedded defaults"
            );
            if args.is_empty() {
                Ok(())
            } else {
                bail!("unknown command '{}'", args[0])
            }
        }
    }
}
