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

mod command;
mod demo;
mod device;
mod machine;
mod paths;
mod setup;
mod tables;
mod test;

use std::env;

use anyhow::{Result, bail};

use setup::ORT_VERSION;

fn main() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("setup") => setup::setup(),
        Some("test") => test::test(),
        Some("demo") => demo::demo(),
        Some("tables") => tables::reference_tables(),
        Some("cross") => device::cross(&args[1..]),
        Some("android") => device::android(&args[1..]),
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
