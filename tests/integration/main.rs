//! The one integration-test binary of the workspace. One module per area:
//!
//! - `spaces`: built-in spaces, TOML round-trips, counts, op-key sets.
//! - `tables`: the latency-table schema, strict reading, estimates.
//! - `cli`: the command-line tools as a user runs them.
//! - `search`: the search loop, kill and resume, export to ONNX.
//! - `benchmark`: searched against random networks, journal and resume.
//! - `reliability`: every numeric flag and bad file, refused before work.
//! - `fuzz_flags`: every value-taking flag of both tools, from their `--help`,
//!   set to NaN, −1, 0 and 1e300: no panic, no hang, an error or a meaning.
//! - `profiler`: profile / resume / errors with the real ONNX Runtime.
//! - `image_folders`: the user's own PNG/JPEG class folders as data: read
//!   back as the IDX subset, the decode cache, resizing, bad files.
//! - `rgb`: the whole flow on a 32×32×3 space, on CIFAR-10 batches and on a
//!   colour image folder: profile, search, export, measure, ONNX accuracy.
//! - `training`: stand-alone training, weight files, deterministic mode.
//! - `onnx_models`: every generated ONNX model passes the `onnx` checker.
//! - `devices`: adb (through the `fake-adb` test double), ssh (a real
//!   OpenSSH server on 127.0.0.1), the aarch64 build under qemu, refresh,
//!   and the thermal sentinel.

mod benchmark;
mod cli;
mod devices;
mod fuzz_flags;
mod image_folders;
mod onnx_models;
mod profiler;
mod reliability;
mod rgb;
mod search;
mod spaces;
mod tables;
mod training;
