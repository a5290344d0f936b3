//! `cargo xtask test`: setup, format check, clippy with warnings denied,
//! build, the device builds (aarch64 Linux, and a check for Android), all
//! tests.

use anyhow::Result;

use crate::command::{cargo, run};
use crate::device::cross;
use crate::setup::{provisioned_ort, setup};

/// Every check CI runs, in order, stopping at the first failure.
pub(crate) fn test() -> Result<()> {
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
