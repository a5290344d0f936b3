//! What can go wrong with ONNX Runtime.

use std::path::PathBuf;

use thiserror::Error;

use super::provider::ExecutionProvider;
use super::{ORT_DYLIB_ENV, ORT_RELEASE};

/// How to get a library, appended to "not found" errors.
fn how_to_get_one() -> String {
    format!(
        "get one with `cargo xtask setup` (writes <workspace>/target/onnxruntime/libonnxruntime.so.{ORT_RELEASE}); \
         or `pip download --no-deps --only-binary=:all: onnxruntime=={ORT_RELEASE} -d /tmp/ortwheel`, unzip the wheel \
         and pass `--ort-lib <unzipped>/onnxruntime/capi/libonnxruntime.so.{ORT_RELEASE}`; \
         or set {ORT_DYLIB_ENV} to a libonnxruntime.so you have (Android: jni/arm64-v8a/libonnxruntime.so from the \
         onnxruntime-android AAR)"
    )
}

/// Something went wrong with ONNX Runtime.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// No library was found anywhere.
    #[error(
        "no ONNX Runtime library found (looked in: {searched}); {}",
        how_to_get_one()
    )]
    NotFound {
        /// The places searched, in order.
        searched: String,
    },
    /// A path given explicitly (`--ort-lib` or `ORT_DYLIB_PATH`) holds no library.
    #[error(
        "{origin} points at {path}, which is not an ONNX Runtime library; {}",
        how_to_get_one()
    )]
    BadPath {
        /// `--ort-lib` or `ORT_DYLIB_PATH`.
        origin: String,
        /// The path given.
        path: PathBuf,
    },
    /// The library exists but could not be loaded.
    #[error(
        "cannot load ONNX Runtime from {path} (the ort crate needs ONNX Runtime 1.31 or newer built for this platform)"
    )]
    Load {
        /// Library path.
        path: PathBuf,
        /// What the loader said.
        #[source]
        source: Cause,
    },
    /// A different library was already loaded in this process.
    #[error(
        "ONNX Runtime is already loaded from {loaded}; cannot load {requested} as well (one library per process)"
    )]
    AlreadyLoaded {
        /// The library in use.
        loaded: PathBuf,
        /// The one asked for.
        requested: PathBuf,
    },
    /// An execution-provider name that is not known.
    #[error("unknown execution provider '{name}': use cpu, xnnpack, nnapi or qnn")]
    UnknownProvider {
        /// The name given.
        name: String,
    },
    /// The requested execution provider could not be registered.
    #[error(
        "execution provider {provider} could not be registered (providers in this ONNX Runtime build: {available}); use a build with {provider} or choose another provider"
    )]
    Provider {
        /// The provider asked for.
        provider: ExecutionProvider,
        /// What ONNX Runtime said.
        #[source]
        source: Cause,
        /// Providers the loaded library was built with.
        available: String,
    },
    /// Creating a session failed.
    #[error("cannot create an ONNX Runtime session ({what})")]
    Session {
        /// The step that failed.
        what: &'static str,
        /// What ONNX Runtime said.
        #[source]
        source: Cause,
    },
    /// `run()` failed.
    #[error("ONNX Runtime run failed")]
    Run {
        /// What ONNX Runtime said.
        #[source]
        source: Cause,
    },
    /// A profile file could not be read or parsed.
    #[error("profile {path}: {message}")]
    Profile {
        /// Profile file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The cause of a runtime error: what ONNX Runtime or its loader said.
pub(crate) type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An ort error as a cause, without the value it hands back for recovery
/// (session builders).
pub(crate) fn without_recovery<R>(e: ort::Error<R>) -> Cause {
    Box::new(ort::Error::new_with_code(e.code(), e.message()))
}
