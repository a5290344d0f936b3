//! Device builds of the profiler: `cargo xtask cross aarch64-linux-gnu`
//! for 64-bit Arm Linux boards, `cargo xtask android` for phones.

use std::env;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::command::{cargo, run};
use crate::paths::target_dir;
use crate::setup::provisioned_ort_aarch64;

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
pub(crate) fn cross(args: &[String]) -> Result<()> {
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
pub(crate) fn android(args: &[String]) -> Result<()> {
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
