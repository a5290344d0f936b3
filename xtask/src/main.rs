//! Project automation, run as `cargo xtask <command>`:
//!
//! - `setup`: provision what the tools need on this machine (ONNX Runtime
//!   library from PyPI, the Fashion-MNIST Debian package, Python `onnx` for
//!   the model checker). Idempotent; every step says what it does.
//! - `test`: setup, format check, clippy with warnings denied, build, the
//!   device builds (aarch64 Linux, and a check for Android), all tests.
//! - `demo`: the main job on the embedded defaults.
//! - `android`: the profiler for Android phones (needs `ANDROID_NDK_HOME`).
//! - `cross aarch64-linux-gnu`: the profiler for 64-bit Arm Linux boards.

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

/// The aarch64 Linux ONNX Runtime (for the cross-built profiler under qemu
/// and for ssh boards).
fn provisioned_ort_aarch64() -> PathBuf {
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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
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
    let missing: Vec<&str> = DEVICE_PACKAGES
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        eprintln!(
            "xtask: device tools present (sshd, ssh, qemu-aarch64, aarch64 gcc and libraries, adb)"
        );
    } else {
        apt_update(updated)?;
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&missing);
        run(
            apt(&args),
            &format!("install Debian packages {}", missing.join(" ")),
        )
        .context("the device tests (ssh, qemu) and `cargo xtask cross` need these packages")?;
    }
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

fn setup() -> Result<()> {
    let mut apt_updated = false;
    setup_onnxruntime()?;
    setup_onnxruntime_aarch64()?;
    setup_dataset(&mut apt_updated)?;
    setup_device_tools(&mut apt_updated)?;
    setup_python_onnx()?;
    Ok(())
}

/// `cargo build` of the profiler for a device target, without the chart
/// feature; `env` sets the linker.
fn device_build(triple: &str, release: bool, env: &[(String, String)]) -> Result<PathBuf> {
    let mut c = cargo();
    c.args([
        "build",
        "-p",
        "tunas-profiler",
        "--bin",
        "tunas-profiler",
        "--no-default-features",
        "--target",
        triple,
    ]);
    if release {
        c.arg("--release");
    }
    for (k, v) in env {
        c.env(k, v);
    }
    run(
        c,
        &format!(
            "build tunas-profiler for {triple} ({})",
            if release { "release" } else { "debug" }
        ),
    )?;
    let out = target_dir()
        .join(triple)
        .join(if release { "release" } else { "debug" })
        .join("tunas-profiler");
    eprintln!("xtask: built {}", out.display());
    Ok(out)
}

/// `cargo xtask cross aarch64-linux-gnu [--release]`.
fn cross(args: &[String]) -> Result<()> {
    let release = args.iter().any(|a| a == "--release");
    let target = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(String::as_str)
        .unwrap_or("");
    if target != "aarch64-linux-gnu" {
        bail!(
            "cargo xtask cross: supported target is aarch64-linux-gnu (64-bit Arm Linux), got '{target}'; for Android use `cargo xtask android`"
        );
    }
    if !Path::new("/usr/bin/aarch64-linux-gnu-gcc").exists() {
        bail!(
            "the linker aarch64-linux-gnu-gcc is missing: install Debian's gcc-aarch64-linux-gnu (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross), or run `cargo xtask setup`"
        );
    }
    if !Path::new("/usr/aarch64-linux-gnu/lib/crti.o").exists() {
        bail!(
            "the aarch64 C library's link files (/usr/aarch64-linux-gnu/lib/crti.o) are missing: install Debian's libc6-dev-arm64-cross (apt-get install libc6-dev-arm64-cross), or run `cargo xtask setup`"
        );
    }
    let triple = "aarch64-unknown-linux-gnu";
    let bin = device_build(
        triple,
        release,
        &[(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER".into(),
            "aarch64-linux-gnu-gcc".into(),
        )],
    )?;
    eprintln!(
        "xtask: profile a board with: tunas-profiler profile --device ssh:USER@HOST --device-binary {} --device-ort-lib {} --space tiny28 --out board.csv",
        bin.display(),
        provisioned_ort_aarch64().display()
    );
    Ok(())
}

/// `cargo xtask android [--release] [--api N]`: needs the NDK.
fn android(args: &[String]) -> Result<()> {
    let release = args.iter().any(|a| a == "--release");
    let api = args
        .iter()
        .position(|a| a == "--api")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .unwrap_or("24");
    let Some(ndk) = env::var_os("ANDROID_NDK_HOME").filter(|v| !v.is_empty()) else {
        bail!(
            "ANDROID_NDK_HOME is not set: download the Android NDK (r26 or newer) from https://developer.android.com/ndk/downloads, unzip it, and set ANDROID_NDK_HOME to its folder; the README's \"Profile your phone\" section has the one-time steps"
        );
    };
    let bin_dir = Path::new(&ndk).join("toolchains/llvm/prebuilt/linux-x86_64/bin");
    let clang = bin_dir.join(format!("aarch64-linux-android{api}-clang"));
    if !clang.exists() {
        bail!(
            "ANDROID_NDK_HOME={} has no {}; is it an NDK folder (r23 or newer, for linux-x86_64)? Pick another API level with --api N",
            Path::new(&ndk).display(),
            clang.display()
        );
    }
    let s = |p: &Path| p.display().to_string();
    let bin = device_build(
        "aarch64-linux-android",
        release,
        &[
            (
                "CARGO_TARGET_AARCH64_LINUX_ANDROID_LINKER".into(),
                s(&clang),
            ),
            ("CC_aarch64_linux_android".into(), s(&clang)),
            (
                "AR_aarch64_linux_android".into(),
                s(&bin_dir.join("llvm-ar")),
            ),
        ],
    )?;
    eprintln!(
        "xtask: profile the phone with: tunas-profiler profile --device adb --device-binary {} --device-ort-lib PATH/TO/jni/arm64-v8a/libonnxruntime.so --space tiny28 --out phone.csv",
        bin.display()
    );
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
    // Device builds: the aarch64 Linux profiler (run under qemu by the
    // tests), and Android checked (linking needs the NDK, which CI lacks).
    cross(&["aarch64-linux-gnu".to_string()])?;
    let mut check = cargo();
    check.args([
        "check",
        "--target",
        "aarch64-linux-android",
        "-p",
        "tunas-profiler",
        "--no-default-features",
    ]);
    run(
        check,
        "cargo check --target aarch64-linux-android -p tunas-profiler",
    )?;
    let mut test = cargo();
    test.args(["test", "--workspace"])
        .env("ORT_DYLIB_PATH", provisioned_ort())
        .env("TUNAS_REQUIRE_DEVICE_TESTS", "1");
    run(test, "cargo test --workspace")?;
    Ok(())
}

fn release_binary(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

fn output_json(mut cmd: Command, what: &str) -> Result<serde_json::Value> {
    eprintln!("xtask: {what}");
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start: {what}"))?;
    if !out.status.success() {
        bail!("failed ({}): {what}", out.status);
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{what}: output is not JSON"))
}

/// The demo's table is reused when it was measured on this CPU less than a
/// day ago.
fn fresh_table(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let young = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age.as_secs() < 24 * 3600);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let cpu_line = text
        .lines()
        .find(|l| l.starts_with("# cpu = "))
        .unwrap_or("");
    let here = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    young && cpu_line.contains(&here)
}

fn demo() -> Result<()> {
    setup()?;
    let mut build = cargo();
    build.args(["build", "--release", "--workspace", "--bins"]);
    run(build, "build the release binaries")?;
    let profiler = release_binary("tunas-profiler");
    let searcher = release_binary("tunas-searcher");
    let dir = target_dir().join("demo");
    std::fs::create_dir_all(&dir)?;
    let table = dir.join("tiny28.csv");
    let table_s = table.to_str().context("UTF-8 path")?.to_string();
    let started = std::time::Instant::now();

    // 1. The latency table of this machine.
    if fresh_table(&table) {
        eprintln!(
            "xtask: reusing {} (measured on this CPU today)",
            table.display()
        );
    } else {
        let mut p = Command::new(&profiler);
        // A workstation seldom heats up the way a phone does, and the demo
        // has five minutes: one minute of cool-down at most. On a shared
        // host whose speed keeps changing, the sentinel still re-measures
        // drifted rows; it just stops waiting.
        p.args([
            "profile",
            "--space",
            "tiny28",
            "--out",
            &table_s,
            "--force",
            "--cooldown-budget-s=60",
            // An interrupted demo left a journal: continue it (the profiler
            // says so); without one this starts afresh.
            "--resume",
        ]);
        run(
            p,
            "tunas-profiler profile --space tiny28 (every op, timed through ONNX Runtime)",
        )?;
    }
    let mut v = Command::new(&profiler);
    let plot = dir.join("validate.svg");
    v.args([
        "validate",
        "--space",
        "tiny28",
        "--table",
        &table_s,
        "--samples",
        "30",
        "--seed",
        "11",
        "--quiet",
        "--plot",
    ])
    .arg(&plot);
    run(
        v,
        "tunas-profiler validate: does the table predict whole networks?",
    )?;

    // 2. A short search at the median latency of uniform architectures.
    let mut t = Command::new(&searcher);
    t.args(["targets", "--table", &table_s, "--json"]);
    let targets = output_json(t, "tunas-searcher targets")?;
    let target = targets["p50_ms"].as_f64().context("targets: no p50_ms")?;
    let run_dir = dir.join("run");
    std::fs::remove_dir_all(&run_dir).ok();
    let mut s = Command::new(&searcher);
    s.args([
        "search",
        "--table",
        &table_s,
        "--target-ms",
        &format!("{target:.5}"),
        "--steps",
        "400",
        "--limit-train",
        "20000",
        "--out",
    ])
    .arg(&run_dir);
    run(
        s,
        &format!(
            "tunas-searcher search (400 steps, target {target:.4} ms = median of uniform samples)"
        ),
    )?;

    // 3. Export the result and time it on this machine.
    let onnx = dir.join("searched.onnx");
    let mut e = Command::new(&searcher);
    e.args(["export", "--json", "--run"])
        .arg(&run_dir)
        .arg("--onnx")
        .arg(&onnx);
    let exported = output_json(e, "tunas-searcher export")?;
    let mut m = Command::new(&profiler);
    m.args(["measure", "--json", "--quiet", "--model"])
        .arg(&onnx);
    let measured = output_json(m, "tunas-profiler measure --model searched.onnx")?;

    let est = exported["est_latency_ms"].as_f64().unwrap_or(f64::NAN);
    let real = measured["median_ms"].as_f64().unwrap_or(f64::NAN);
    let result = std::fs::read_to_string(run_dir.join("result.json"))?;
    let result: serde_json::Value = serde_json::from_str(&result)?;
    println!();
    println!(
        "searched architecture  {}",
        result["arch"].as_str().unwrap_or("?")
    );
    print!("{}", result["readable"].as_str().unwrap_or(""));
    println!("target latency         {target:.4} ms");
    println!(
        "estimated (table)      {est:.4} ms ({:+.1}% vs target)",
        (est / target - 1.0) * 100.0
    );
    println!(
        "measured (ONNX, here)  {real:.4} ms (estimate {:+.1}% vs measured)",
        (est / real - 1.0) * 100.0
    );
    println!(
        "test accuracy          {:.2}% (shared weights after a 400-step search; train it with `tunas-searcher train`)",
        exported["test_accuracy"].as_f64().unwrap_or(f64::NAN) * 100.0
    );
    println!(
        "files                  {} (table, validate.svg, run/, searched.onnx)",
        dir.display()
    );
    println!("demo took {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `tables/<arch>-<cpu>-1t/`: a folder name for this machine's tables.
fn device_folder() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_lowercase())
        .unwrap_or_else(|| "cpu".into());
    let slug: String = model
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!("{}-{slug}-1t", std::env::consts::ARCH)
}

/// Reference tables of this machine with their validation reports: the
/// figures the README quotes. Takes a few minutes on 2 cores; run it on an
/// otherwise idle machine.
fn reference_tables() -> Result<()> {
    setup()?;
    let mut build = cargo();
    build.args(["build", "--release", "--workspace", "--bins"]);
    run(build, "build the release binaries")?;
    let profiler = release_binary("tunas-profiler");
    let dir = workspace_root().join("tables").join(device_folder());
    std::fs::create_dir_all(&dir)?;
    for (space, samples) in [("tiny28", "200"), ("proxylessnas", "50")] {
        let table = dir.join(format!("{space}.csv"));
        let mut p = Command::new(&profiler);
        p.args(["profile", "--space", space, "--force", "--out"])
            .arg(&table);
        run(p, &format!("profile {space}"))?;
        let mut v = Command::new(&profiler);
        v.args([
            "validate",
            "--space",
            space,
            "--samples",
            samples,
            "--seed",
            "1",
            "--json",
            "--table",
        ])
        .arg(&table)
        .arg("--plot")
        .arg(dir.join(format!("{space}.validate.svg")));
        let report = output_json(v, &format!("validate {space} on {samples} networks"))?;
        std::fs::write(
            dir.join(format!("{space}.validate.json")),
            serde_json::to_string_pretty(&report)? + "\n",
        )?;
        eprintln!(
            "{space}: {:.1}% within ±10%, MAPE {:.2}%, Kendall τ {:.3}",
            report["within_10pct"].as_f64().unwrap_or(f64::NAN) * 100.0,
            report["mape"].as_f64().unwrap_or(f64::NAN),
            report["kendall_tau"].as_f64().unwrap_or(f64::NAN)
        );
    }
    // Repeatability: a second tiny28 table compared key by key.
    let second = target_dir().join("tiny28.repeat.csv");
    let mut p = Command::new(&profiler);
    p.args([
        "profile", "--space", "tiny28", "--force", "--quiet", "--out",
    ])
    .arg(&second);
    run(p, "profile tiny28 again (repeatability)")?;
    let mut c = Command::new(&profiler);
    c.args(["compare", "--json"])
        .arg(dir.join("tiny28.csv"))
        .arg(&second);
    let cmp = output_json(c, "compare the two tiny28 tables")?;
    std::fs::write(
        dir.join("tiny28.repeatability.json"),
        serde_json::to_string_pretty(&cmp)? + "\n",
    )?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("test") => test(),
        Some("demo") => demo(),
        Some("tables") => reference_tables(),
        Some("cross") => cross(&args[1..]),
        Some("android") => android(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  setup   provision ONNX Runtime ({ORT_VERSION}, from PyPI), Fashion-MNIST (Debian package) and Python onnx\n  test    setup, then fmt check, clippy -D warnings, build, all tests\n  demo    the main job on the embedded defaults\n  tables  re-measure this machine's reference tables and validation reports (tables/)\n  android [--release] [--api N]             the profiler for Android phones (needs ANDROID_NDK_HOME)\n  cross aarch64-linux-gnu [--release]       the profiler for 64-bit Arm Linux boards (Debian's gcc-aarch64-linux-gnu)"
            );
            if args.is_empty() {
                Ok(())
            } else {
                bail!("unknown command '{}'", args[0])
            }
        }
    }
}
