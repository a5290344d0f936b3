//! `cargo xtask setup`: provision what the tools need on this machine (ONNX
//! Runtime library from PyPI, the Fashion-MNIST Debian package, the device
//! tools, Python `onnx` for the model checker). Idempotent; every step says
//! what it does.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::command::{quiet_ok, run};
use crate::machine::is_root;
use crate::paths::target_dir;

/// ONNX Runtime release matching the `ort` crate's API level (1.31):
/// `onnxruntime.version` at the workspace root, which the profiler reads too.
pub(crate) const ORT_VERSION: &str = include_str!("../../onnxruntime.version").trim_ascii();
const DATASET_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The provisioned ONNX Runtime library, if present.
pub(crate) fn provisioned_ort() -> PathBuf {
    target_dir()
        .join("onnxruntime")
        .join(format!("libonnxruntime.so.{ORT_VERSION}"))
}

/// The aarch64 Linux ONNX Runtime (for the cross-built profiler under qemu
/// and for ssh boards).
pub(crate) fn provisioned_ort_aarch64() -> PathBuf {
    target_dir()
        .join("onnxruntime-aarch64")
        .join(format!("libonnxruntime.so.{ORT_VERSION}"))
}

fn setup_onnxruntime() -> Result<()> {
    provision_ort(&provisioned_ort(), &[], "this machine")
}

fn setup_onnxruntime_aarch64() -> Result<()> {
    provision_ort(
        &provisioned_ort_aarch64(),
        &[
            "--platform",
            "manylinux_2_28_aarch64",
            "--python-version",
            "3.11",
        ],
        "aarch64 Linux",
    )
}

/// Downloads the onnxruntime wheel from PyPI (`platform` selects another
/// machine's wheel) and unpacks its shared libraries next to `lib`.
fn provision_ort(lib: &Path, platform: &[&str], what: &str) -> Result<()> {
    if lib.exists() {
        eprintln!(
            "xtask: ONNX Runtime {ORT_VERSION} for {what} already at {}",
            lib.display()
        );
        return Ok(());
    }
    let dir = lib.parent().expect("has a parent");
    std::fs::create_dir_all(dir)?;
    let wheels = dir.join("wheel");
    let mut pip = Command::new("python3");
    pip.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(platform)
        .arg("-d")
        .arg(&wheels)
        .arg(format!("onnxruntime=={ORT_VERSION}"));
    run(
        pip,
        &format!("download the onnxruntime {ORT_VERSION} wheel for {what} from PyPI"),
    )
    .context(
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

/// `apt-get ARGS` (through sudo when not root), non-interactive.
fn apt(args: &[&str]) -> Command {
    let mut all: Vec<&str> = if is_root() { vec![] } else { vec!["sudo"] };
    all.push("apt-get");
    all.extend_from_slice(args);
    let mut c = Command::new(all[0]);
    c.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// Runs `apt-get update` once per setup.
fn apt_update(updated: &mut bool) -> Result<()> {
    if !*updated {
        run(apt(&["update", "-qq"]), "apt-get update")?;
        *updated = true;
    }
    Ok(())
}

fn setup_dataset(updated: &mut bool) -> Result<()> {
    if Path::new(DATASET_DIR)
        .join("train-images-idx3-ubyte.gz")
        .exists()
    {
        eprintln!("xtask: Fashion-MNIST already in {DATASET_DIR}");
        return Ok(());
    }
    let installed = apt_update(updated).and_then(|_| {
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

/// Debian packages the device tests and cross builds need, each with a
/// file that shows it is installed.
const DEVICE_PACKAGES: [(&str, &str); 8] = [
    ("openssh-server", "/usr/sbin/sshd"),
    ("openssh-client", "/usr/bin/ssh"),
    ("qemu-user", "/usr/bin/qemu-aarch64"),
    ("gcc-aarch64-linux-gnu", "/usr/bin/aarch64-linux-gnu-gcc"),
    ("libc6-arm64-cross", "/usr/aarch64-linux-gnu/lib/libc.so.6"),
    // The C start files and libdl/libc link stubs: only a recommendation of
    // gcc-aarch64-linux-gnu, so an image built without recommends lacks them
    // and the link fails on Scrt1.o / crti.o.
    ("libc6-dev-arm64-cross", "/usr/aarch64-linux-gnu/lib/crti.o"),
    (
        "libstdc++6-arm64-cross",
        "/usr/aarch64-linux-gnu/lib/libstdc++.so.6",
    ),
    ("adb", "/usr/bin/adb"),
];

/// The Rust targets of the device builds.
const DEVICE_TARGETS: [&str; 2] = ["aarch64-unknown-linux-gnu", "aarch64-linux-android"];

fn setup_device_tools(updated: &mut bool) -> Result<()> {
    install_device_packages(updated)?;
    add_device_targets()
}

/// Installs the [`DEVICE_PACKAGES`] whose file is missing.
fn install_device_packages(updated: &mut bool) -> Result<()> {
    let missing: Vec<&str> = DEVICE_PACKAGES
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        eprintln!(
            "xtask: device tools present (sshd, ssh, qemu-aarch64, aarch64 gcc and libraries, adb)"
        );
        return Ok(());
    }
    apt_update(updated)?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    run(
        apt(&args),
        &format!("install Debian packages {}", missing.join(" ")),
    )
    .context("the device tests (ssh, qemu) and `cargo xtask cross` need these packages")
}

/// Adds the [`DEVICE_TARGETS`] rustup lacks; without rustup, says which
/// to add.
fn add_device_targets() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    match installed {
        Ok(list) => {
            let missing: Vec<&str> = DEVICE_TARGETS
                .iter()
                .filter(|t| !list.lines().any(|l| l.trim() == **t))
                .copied()
                .collect();
            if !missing.is_empty() {
                let mut c = Command::new("rustup");
                c.args(["target", "add"]).args(&missing);
                run(c, &format!("rustup target add {}", missing.join(" ")))?;
            }
        }
        Err(e) => eprintln!(
            "xtask: warning: cannot run rustup ({e}); add the Rust targets {} yourself",
            DEVICE_TARGETS.join(", ")
        ),
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

/// `cargo xtask setup`: every step, each skipped when already done.
pub(crate) fn setup() -> Result<()> {
    let mut apt_updated = false;
    setup_onnxruntime()?;
    setup_onnxruntime_aarch64()?;
    setup_dataset(&mut apt_updated)?;
    setup_device_tools(&mut apt_updated)?;
    setup_python_onnx()?;
    Ok(())
}
