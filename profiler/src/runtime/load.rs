//! Loading the library once per process: the [`Runtime`] every session is
//! created from.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider as _};

use super::discovery::RuntimeLibrary;
use super::error::RuntimeError;
use super::provider::ExecutionProvider;

/// The loaded ONNX Runtime: library, version and the process's environment.
#[derive(Debug)]
pub struct Runtime {
    library: RuntimeLibrary,
    version: String,
    pub(super) environment: Environment,
}

impl Runtime {
    /// The library in use.
    pub fn library(&self) -> &RuntimeLibrary {
        &self.library
    }

    /// Release version, e.g. `1.31.1`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The execution providers this build of ONNX Runtime contains (CPU
    /// always). A listed provider can still fail to register, e.g. NNAPI on
    /// a device without it.
    pub(crate) fn available_providers(&self) -> Vec<ExecutionProvider> {
        ExecutionProvider::ALL
            .into_iter()
            .filter(|p| match p {
                ExecutionProvider::Cpu => true,
                ExecutionProvider::Xnnpack => ep::XNNPACK::is_available().unwrap_or(false),
                ExecutionProvider::Nnapi => ep::NNAPI::is_available().unwrap_or(false),
                ExecutionProvider::Qnn => ep::QNN::is_available().unwrap_or(false),
            })
            .collect()
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The version from a build-info string such as
/// `ORT Build Info: git-branch=rel-1.31.1, git-commit-id=..., build type=Release`.
pub(super) fn version_from_build_info(info: &str) -> Option<String> {
    let branch = info.split("git-branch=").nth(1)?;
    let branch = branch.split([',', ' ']).next()?;
    let version = branch.trim_start_matches("rel-").trim_start_matches('v');
    let numeric = version.split('.').count() >= 2
        && version
            .split('.')
            .all(|p| p.chars().all(|c| c.is_ascii_digit()));
    numeric.then(|| version.to_string())
}

/// The version from a file name such as `libonnxruntime.so.1.31.1` or
/// `libonnxruntime.1.31.1.dylib`.
pub(super) fn version_from_file_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let digits: Vec<&str> = name
        .split('.')
        .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .collect();
    (digits.len() >= 2).then(|| digits.join("."))
}

/// Loads `library` and creates the process's ONNX Runtime environment. Later
/// calls with the same library return the same [`Runtime`]; a different
/// library is an error (a process can load only one).
pub fn init_runtime(library: &RuntimeLibrary) -> Result<&'static Runtime, RuntimeError> {
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    if let Some(rt) = RUNTIME.get() {
        if canonical(&rt.library.path) == canonical(&library.path) {
            return Ok(rt);
        }
        return Err(RuntimeError::AlreadyLoaded {
            loaded: rt.library.path.clone(),
            requested: library.path.clone(),
        });
    }
    let builder = ort::init_from(&library.path).map_err(|e| RuntimeError::Load {
        path: library.path.clone(),
        source: Box::new(e),
    })?;
    let environment = builder
        .with_name("tunas-profiler")
        .with_telemetry(false)
        .build()
        .map_err(|e| RuntimeError::Load {
            path: library.path.clone(),
            source: format!("creating the environment: {e}").into(),
        })?;
    let build_info = ort::info().to_string();
    let version = version_from_build_info(&build_info)
        .or_else(|| version_from_file_name(&library.path))
        .unwrap_or_else(|| "unknown".to_string());
    let runtime = Runtime {
        library: library.clone(),
        version,
        environment,
    };
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// The runtime already loaded in this process, if any.
pub fn loaded_runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}
