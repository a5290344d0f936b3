//! ONNX Runtime: finding the shared library, loading it once, sessions
//! configured for timing, and per-node profiles.
//!
//! The `ort` crate is built with `load-dynamic`: nothing is linked at build
//! time and nothing is downloaded. [`locate_runtime`] finds a
//! `libonnxruntime` on this machine and [`init_runtime`] loads it for the
//! rest of the process.
//!
//! ```no_run
//! use tunas_profiler::runtime::{ModelSession, SessionConfig, init_runtime, locate_runtime};
//! use tunas_shared::onnx::{RandomWeights, op_model};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = init_runtime(&locate_runtime(None)?)?;
//! eprintln!("ONNX Runtime {} from {}", runtime.version(), runtime.library().path.display());
//! let space = tunas_shared::builtin_space("tiny28")?;
//! let key = tunas_shared::space_op_keys(&space, 1).into_iter().next().unwrap();
//! let model = op_model(&key, &mut RandomWeights::new(0))?;
//! let mut session = ModelSession::new(runtime, &model, &SessionConfig::default())?;
//! let (shape, _values) = session.run_output()?;
//! assert_eq!(shape[0], 1);
//! # Ok(()) }
//! ```

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::ep::{self, ArbitrarilyConfigurableExecutionProvider, ExecutionProvider as _};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use rand::{Rng, SeedableRng};
use thiserror::Error;

/// ONNX Runtime release that `cargo xtask setup` provisions and that the
/// `ort` crate's API level (1.31) needs at least.
pub const ORT_RELEASE: &str = "1.31.1";

/// Environment variable naming the library (also read by `ort` itself).
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

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
        "cannot load ONNX Runtime from {path}: {message} (the ort crate needs ONNX Runtime 1.31 or newer built for this platform)"
    )]
    Load {
        /// Library path.
        path: PathBuf,
        /// The loader's message.
        message: String,
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
        "execution provider {provider} could not be registered: {message} (providers in this ONNX Runtime build: {available}); use a build with {provider} or choose another provider"
    )]
    Provider {
        /// The provider asked for.
        provider: ExecutionProvider,
        /// ONNX Runtime's message.
        message: String,
        /// Providers the loaded library was built with.
        available: String,
    },
    /// Creating a session failed.
    #[error("cannot create an ONNX Runtime session ({what}): {message}")]
    Session {
        /// The step that failed.
        what: &'static str,
        /// ONNX Runtime's message.
        message: String,
    },
    /// `run()` failed.
    #[error("ONNX Runtime run failed: {message}")]
    Run {
        /// ONNX Runtime's message.
        message: String,
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

/// Where a library was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LibrarySource {
    /// `--ort-lib PATH`.
    Explicit,
    /// The `ORT_DYLIB_PATH` environment variable.
    Environment,
    /// Next to the running executable (as pushed to a phone).
    ExecutableDir,
    /// `<workspace>/target/onnxruntime/`, as `cargo xtask setup` provisions.
    Workspace,
    /// An installed Python `onnxruntime` package.
    Python,
}

impl fmt::Display for LibrarySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LibrarySource::Explicit => "--ort-lib",
            LibrarySource::Environment => ORT_DYLIB_ENV,
            LibrarySource::ExecutableDir => "executable directory",
            LibrarySource::Workspace => "workspace target/onnxruntime",
            LibrarySource::Python => "python onnxruntime package",
        })
    }
}

/// An ONNX Runtime shared library on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeLibrary {
    /// The library file.
    pub path: PathBuf,
    /// How it was found.
    pub source: LibrarySource,
}

/// Whether a file name looks like the main ONNX Runtime library (not a
/// provider plug-in).
fn is_runtime_library_name(name: &str) -> bool {
    if name.contains("providers") {
        return false;
    }
    name.starts_with("libonnxruntime.so")
        || (name.starts_with("libonnxruntime.") && name.ends_with(".dylib"))
        || name.eq_ignore_ascii_case("onnxruntime.dll")
}

/// Compares names like `libonnxruntime.so.1.9.0` and `...so.1.31.1` with
/// numeric parts compared as numbers.
fn version_order(a: &str, b: &str) -> Ordering {
    let parts = |s: &str| -> Vec<(u64, String)> {
        s.split('.')
            .map(|p| match p.parse::<u64>() {
                Ok(n) => (n, String::new()),
                Err(_) => (0, p.to_string()),
            })
            .collect()
    };
    parts(a).cmp(&parts(b))
}

/// The newest runtime library directly inside `dir`.
fn library_in_dir(dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_runtime_library_name(n))
        .collect();
    names.sort_by(|a, b| version_order(a, b));
    names.pop().map(|n| dir.join(n))
}

/// A path given by the user: a library file, or a directory holding one.
fn given_path(path: &Path, source: LibrarySource) -> Result<RuntimeLibrary, RuntimeError> {
    let found = if path.is_dir() {
        library_in_dir(path)
    } else if path.is_file() {
        Some(path.to_path_buf())
    } else {
        None
    };
    found
        .map(|path| RuntimeLibrary { path, source })
        .ok_or_else(|| RuntimeError::BadPath {
            origin: source.to_string(),
            path: path.to_path_buf(),
        })
}

/// Directories where `cargo xtask setup` may have put the library, most
/// specific first.
fn workspace_library_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(target).join("onnxruntime"));
    }
    if let Ok(exe) = std::env::current_exe() {
        let exe = exe.canonicalize().unwrap_or(exe);
        // target/<profile>/deps/test-binary, target/<triple>/<profile>/tool, ...
        for dir in exe.ancestors().skip(1) {
            if dir.file_name().is_some_and(|n| n == "target") {
                dirs.push(dir.join("onnxruntime"));
            }
            if dir.join("Cargo.toml").is_file() {
                dirs.push(dir.join("target").join("onnxruntime"));
            }
        }
    }
    if let Some(target) = option_env!("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(target).join("onnxruntime"));
    }
    // The workspace this crate was built from (useful for `cargo run`).
    if let Some(root) = Path::new(env!("CARGO_MANIFEST_DIR")).parent() {
        dirs.push(root.join("target").join("onnxruntime"));
    }
    let mut unique = Vec::new();
    for d in dirs {
        if !unique.contains(&d) {
            unique.push(d);
        }
    }
    unique
}

/// The `capi` directory of an installed Python `onnxruntime`, if any.
fn python_capi_dir() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(dir.trim()).join("capi"))
}

/// Finds an ONNX Runtime library. Order: `explicit` (`--ort-lib`, a file or
/// a directory), `ORT_DYLIB_PATH`, the executable's own directory,
/// `<workspace>/target/onnxruntime/` (found from `CARGO_TARGET_DIR` and by
/// walking up from the executable), then an installed Python
/// `onnxruntime`. An explicit path or `ORT_DYLIB_PATH` that holds no library
/// is an error, not a reason to look elsewhere.
pub fn locate_runtime(explicit: Option<&Path>) -> Result<RuntimeLibrary, RuntimeError> {
    if let Some(path) = explicit {
        return given_path(path, LibrarySource::Explicit);
    }
    if let Some(path) = std::env::var_os(ORT_DYLIB_ENV).filter(|p| !p.is_empty()) {
        return given_path(Path::new(&path), LibrarySource::Environment);
    }
    let mut searched = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        if let Some(path) = library_in_dir(&dir) {
            return Ok(RuntimeLibrary {
                path,
                source: LibrarySource::ExecutableDir,
            });
        }
        searched.push(dir.display().to_string());
    }
    for dir in workspace_library_dirs() {
        if let Some(path) = library_in_dir(&dir) {
            return Ok(RuntimeLibrary {
                path,
                source: LibrarySource::Workspace,
            });
        }
        searched.push(dir.display().to_string());
    }
    match python_capi_dir() {
        Some(dir) => {
            if let Some(path) = library_in_dir(&dir) {
                return Ok(RuntimeLibrary {
                    path,
                    source: LibrarySource::Python,
                });
            }
            searched.push(dir.display().to_string());
        }
        None => searched.push("python3 onnxruntime (not importable)".to_string()),
    }
    Err(RuntimeError::NotFound {
        searched: format!("{ORT_DYLIB_ENV} (unset), {}", searched.join(", ")),
    })
}

/// The loaded ONNX Runtime: library, version and the process's environment.
#[derive(Debug)]
pub struct Runtime {
    library: RuntimeLibrary,
    version: String,
    build_info: String,
    environment: Environment,
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

    /// ONNX Runtime's build-info string (branch, commit, build type, flags).
    pub fn build_info(&self) -> &str {
        &self.build_info
    }

    /// The execution providers this build of ONNX Runtime contains (CPU
    /// always). A listed provider can still fail to register, e.g. NNAPI on
    /// a device without it.
    pub fn available_providers(&self) -> Vec<ExecutionProvider> {
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
fn version_from_build_info(info: &str) -> Option<String> {
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
fn version_from_file_name(path: &Path) -> Option<String> {
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
        message: e.to_string(),
    })?;
    let environment = builder
        .with_name("tunas-profiler")
        .with_telemetry(false)
        .build()
        .map_err(|e| RuntimeError::Load {
            path: library.path.clone(),
            message: format!("creating the environment: {e}"),
        })?;
    let build_info = ort::info().to_string();
    let version = version_from_build_info(&build_info)
        .or_else(|| version_from_file_name(&library.path))
        .unwrap_or_else(|| "unknown".to_string());
    let runtime = Runtime {
        library: library.clone(),
        version,
        build_info,
        environment,
    };
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// The runtime already loaded in this process, if any.
pub fn loaded_runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// Where ONNX Runtime executes the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum ExecutionProvider {
    /// ONNX Runtime's own CPU kernels.
    #[default]
    Cpu,
    /// XNNPACK (ARM and x86 CPUs).
    Xnnpack,
    /// Android NNAPI.
    Nnapi,
    /// Qualcomm QNN (HTP backend).
    Qnn,
}

impl ExecutionProvider {
    /// Every provider.
    pub const ALL: [ExecutionProvider; 4] = [
        ExecutionProvider::Cpu,
        ExecutionProvider::Xnnpack,
        ExecutionProvider::Nnapi,
        ExecutionProvider::Qnn,
    ];

    /// Lower-case name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Xnnpack => "xnnpack",
            ExecutionProvider::Nnapi => "nnapi",
            ExecutionProvider::Qnn => "qnn",
        }
    }
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExecutionProvider {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExecutionProvider::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| RuntimeError::UnknownProvider {
                name: s.to_string(),
            })
    }
}

/// How a timing session is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionConfig {
    /// Intra-op threads (inter-op is always 1, execution sequential, graph
    /// optimisation at the highest level).
    pub intra_threads: usize,
    /// Where the graph runs. A provider that cannot be registered is an
    /// error, never a silent fallback to CPU.
    pub provider: ExecutionProvider,
    /// When set, ONNX Runtime profiles every node; the file is written as
    /// `<prefix>_<date>.json` by [`ModelSession::end_profiling`].
    pub profile_prefix: Option<PathBuf>,
    /// Seed of the session's fixed random input.
    pub input_seed: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            intra_threads: 1,
            provider: ExecutionProvider::Cpu,
            profile_prefix: None,
            input_seed: 0,
        }
    }
}

/// A session over one model with its input tensor allocated and filled once
/// (uniform random in [−1, 1), fixed by [`SessionConfig::input_seed`]).
/// A symbolic input axis, such as the dynamic batch of an exported network,
/// is given size 1 in that input (and in [`ModelSession::input_shape`]).
#[derive(Debug)]
pub struct ModelSession {
    session: Session,
    input: Tensor<f32>,
    input_shape: Vec<i64>,
    provider: ExecutionProvider,
}

fn session_error(
    what: &'static str,
) -> impl Fn(ort::Error<ort::session::builder::SessionBuilder>) -> RuntimeError {
    move |e| RuntimeError::Session {
        what,
        message: e.to_string(),
    }
}

impl ModelSession {
    /// Creates a session for the serialised ONNX `model`.
    pub fn new(
        runtime: &Runtime,
        model: &[u8],
        config: &SessionConfig,
    ) -> Result<Self, RuntimeError> {
        let threads = config.intra_threads.max(1);
        let mut builder = Session::builder(&runtime.environment)
            .map_err(|e| RuntimeError::Session {
                what: "session options",
                message: e.to_string(),
            })?
            .with_intra_threads(threads)
            .map_err(session_error("intra-op threads"))?
            .with_inter_threads(1)
            .map_err(session_error("inter-op threads"))?
            .with_parallel_execution(false)
            .map_err(session_error("sequential execution"))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(session_error("graph optimisation level"))?;
        let dispatch = match config.provider {
            ExecutionProvider::Cpu => None,
            ExecutionProvider::Xnnpack => Some(
                ep::XNNPACK::default()
                    .with_intra_op_num_threads(NonZeroUsize::new(threads).expect("threads ≥ 1"))
                    .build(),
            ),
            ExecutionProvider::Nnapi => Some(ep::NNAPI::default().build()),
            ExecutionProvider::Qnn => Some(
                ep::QNN::default()
                    .with_arbitrary_config("backend_path", "libQnnHtp.so")
                    .build(),
            ),
        };
        if let Some(dispatch) = dispatch {
            builder = builder
                .with_execution_providers([dispatch.error_on_failure()])
                .map_err(|e| RuntimeError::Provider {
                    provider: config.provider,
                    message: e.to_string(),
                    available: runtime
                        .available_providers()
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
        }
        if let Some(prefix) = &config.profile_prefix {
            builder = builder
                .with_profiling(prefix)
                .map_err(session_error("profiling"))?;
        }
        let session = builder
            .commit_from_memory(model)
            .map_err(|e| RuntimeError::Session {
                what: "loading the model",
                message: e.to_string(),
            })?;
        let declared: Vec<i64> = session
            .inputs()
            .first()
            .and_then(|i| i.dtype().tensor_shape())
            .map(|s| s.to_vec())
            .ok_or_else(|| RuntimeError::Session {
                what: "reading the input shape",
                message: "the model has no tensor input".to_string(),
            })?;
        if session.inputs().len() != 1 || declared.contains(&0) {
            return Err(RuntimeError::Session {
                what: "reading the input shape",
                message: format!(
                    "expected one input without empty axes, found {} inputs, the first of shape {declared:?}",
                    session.inputs().len()
                ),
            });
        }
        // A symbolic axis (reported as -1), such as the batch of an exported
        // network, is timed and run at 1.
        let input_shape: Vec<i64> = declared.iter().map(|&d| d.max(1)).collect();
        let len = input_shape.iter().product::<i64>() as usize;
        let mut rng = rand::rngs::StdRng::seed_from_u64(config.input_seed);
        let values: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
        let input = Tensor::from_array((input_shape.clone(), values)).map_err(|e| {
            RuntimeError::Session {
                what: "allocating the input",
                message: e.to_string(),
            }
        })?;
        Ok(ModelSession {
            session,
            input,
            input_shape,
            provider: config.provider,
        })
    }

    /// Shape of the model's input.
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// The provider the session was created with.
    pub fn provider(&self) -> ExecutionProvider {
        self.provider
    }

    /// One inference on the fixed input; the outputs are dropped.
    pub fn run(&mut self) -> Result<(), RuntimeError> {
        self.session
            .run(ort::inputs![&self.input])
            .map(drop)
            .map_err(|e| RuntimeError::Run {
                message: e.to_string(),
            })
    }

    /// One inference; returns the first output's shape and values.
    pub fn run_output(&mut self) -> Result<(Vec<i64>, Vec<f32>), RuntimeError> {
        let run_error = |e: ort::Error| RuntimeError::Run {
            message: e.to_string(),
        };
        let outputs = self
            .session
            .run(ort::inputs![&self.input])
            .map_err(run_error)?;
        let (shape, values) = outputs[0].try_extract_tensor::<f32>().map_err(run_error)?;
        Ok((shape.to_vec(), values.to_vec()))
    }

    /// One inference on the given input values (the session's input shape,
    /// row-major); returns the first output's shape and values. Used to check
    /// an exported network's accuracy on real data.
    pub fn run_with(&mut self, values: &[f32]) -> Result<(Vec<i64>, Vec<f32>), RuntimeError> {
        let run_error = |e: ort::Error| RuntimeError::Run {
            message: e.to_string(),
        };
        let shape: Vec<i64> = self.input_shape.clone();
        let expected: i64 = shape.iter().product();
        if values.len() as i64 != expected {
            return Err(RuntimeError::Run {
                message: format!(
                    "input has {} values, the model's input {:?} needs {expected}",
                    values.len(),
                    shape
                ),
            });
        }
        let tensor = Tensor::from_array((shape, values.to_vec())).map_err(run_error)?;
        let outputs = self.session.run(ort::inputs![&tensor]).map_err(run_error)?;
        let (shape, out) = outputs[0].try_extract_tensor::<f32>().map_err(run_error)?;
        Ok((shape.to_vec(), out.to_vec()))
    }

    /// One inference on `values` of shape `shape` (row-major), for a model
    /// with a symbolic axis (e.g. its batch) run at another size than the
    /// session's [`input_shape`](Self::input_shape); returns the first
    /// output's shape and values.
    pub fn run_shaped(
        &mut self,
        shape: &[i64],
        values: &[f32],
    ) -> Result<(Vec<i64>, Vec<f32>), RuntimeError> {
        let run_error = |e: ort::Error| RuntimeError::Run {
            message: e.to_string(),
        };
        let expected: i64 = shape.iter().product();
        if values.len() as i64 != expected {
            return Err(RuntimeError::Run {
                message: format!(
                    "input has {} values, the shape {shape:?} needs {expected}",
                    values.len()
                ),
            });
        }
        let tensor = Tensor::from_array((shape.to_vec(), values.to_vec())).map_err(run_error)?;
        let outputs = self.session.run(ort::inputs![&tensor]).map_err(run_error)?;
        let (shape, out) = outputs[0].try_extract_tensor::<f32>().map_err(run_error)?;
        Ok((shape.to_vec(), out.to_vec()))
    }

    /// Ends profiling and returns the path of the JSON profile ONNX Runtime
    /// wrote. Only meaningful with [`SessionConfig::profile_prefix`] set.
    pub fn end_profiling(&mut self) -> Result<PathBuf, RuntimeError> {
        self.session
            .end_profiling()
            .map(PathBuf::from)
            .map_err(|e| RuntimeError::Session {
                what: "ending profiling",
                message: e.to_string(),
            })
    }
}

/// Mean execution time of one node over the profiled runs.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeTiming {
    /// Node name as ONNX Runtime reports it: after its fusions and layout
    /// changes a node may carry a suffix (`stem/act_nchwc`) or the name of
    /// another node it absorbed, but it keeps the op's scope prefix.
    pub name: String,
    /// Operator as executed, e.g. `FusedConv`.
    pub op_type: String,
    /// Execution provider that ran it.
    pub provider: String,
    /// Mean kernel time per run, µs.
    pub mean_us: f64,
    /// Runs in which the node was seen.
    pub runs: usize,
}

/// Per-node timings of a profiled session.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeProfile {
    /// Runs used (after skipping warm-up).
    pub runs: usize,
    /// Mean `model_run` time, µs: the whole inference as ONNX Runtime sees it.
    pub mean_run_us: f64,
    /// Nodes in execution order of their first appearance.
    pub nodes: Vec<NodeTiming>,
    /// Per node (same order as `nodes`), its time in each kept run, µs
    /// (0 where the node did not run).
    pub node_runs: Vec<Vec<f64>>,
}

impl NodeProfile {
    /// Sum of the mean node times whose name starts with `prefix` (e.g. an
    /// op scope such as `stage1/layer2/`).
    pub fn scope_us(&self, prefix: &str) -> f64 {
        self.nodes
            .iter()
            .filter(|n| n.name.starts_with(prefix))
            .map(|n| n.mean_us)
            .sum()
    }

    /// Per run, the summed time of the nodes each scope claims: `result[i][r]`
    /// is scope `i` in run `r` (see [`NodeProfile::attribute`] for the rule).
    pub fn attribute_per_run(&self, scopes: &[&str]) -> Vec<Vec<f64>> {
        let mut out = vec![vec![0.0; self.runs]; scopes.len()];
        for (node, runs) in self.nodes.iter().zip(&self.node_runs) {
            let owner = scopes.iter().position(|s| {
                node.name
                    .strip_prefix(s)
                    .is_some_and(|rest| rest.starts_with('/'))
            });
            if let Some(i) = owner {
                for (acc, d) in out[i].iter_mut().zip(runs) {
                    *acc += d;
                }
            }
        }
        out
    }

    /// Splits the node times among op scopes (node names are
    /// `{scope}/{part}`, possibly with a suffix ONNX Runtime adds such as
    /// `_nchwc`). Returns the time per scope, in the order given, and the
    /// time of nodes no scope claims: layout reorders (`ReorderInput`,
    /// `ReorderOutput`) and other nodes the runtime inserts.
    pub fn attribute(&self, scopes: &[&str]) -> (Vec<f64>, f64) {
        let mut per_scope = vec![0.0; scopes.len()];
        let mut unattributed = 0.0;
        for node in &self.nodes {
            let owner = scopes.iter().position(|s| {
                node.name
                    .strip_prefix(s)
                    .is_some_and(|rest| rest.starts_with('/'))
            });
            match owner {
                Some(i) => per_scope[i] += node.mean_us,
                None => unattributed += node.mean_us,
            }
        }
        (per_scope, unattributed)
    }
}

/// Parses an ONNX Runtime profile (Chrome trace JSON). Runs are delimited by
/// the `model_run` session events; the first `skip_runs` runs (warm-up) are
/// ignored. Node times are the `<node>_kernel_time` events' `dur` (µs).
pub fn parse_profile(json: &str, skip_runs: usize) -> Result<NodeProfile, String> {
    let events: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("not a JSON event list: {e}"))?;
    let num = |e: &serde_json::Value, f: &str| e.get(f).and_then(|v| v.as_f64());
    let text = |e: &serde_json::Value, f: &str| {
        e.get(f)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let mut runs: Vec<(f64, f64)> = events
        .iter()
        .filter(|e| text(e, "cat") == "Session" && text(e, "name") == "model_run")
        .filter_map(|e| Some((num(e, "ts")?, num(e, "dur")?)))
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    if runs.len() <= skip_runs {
        return Err(format!(
            "{} runs recorded, but {skip_runs} are to be skipped as warm-up",
            runs.len()
        ));
    }
    let kept = &runs[skip_runs..];
    let run_of = |ts: f64| {
        kept.iter()
            .position(|&(start, dur)| ts >= start && ts <= start + dur)
    };
    // name → (op, provider, total µs, runs seen)
    let mut order: Vec<String> = Vec::new();
    let mut acc: BTreeMap<String, (String, String, f64, BTreeMap<usize, ()>)> = BTreeMap::new();
    let mut per_run: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for e in &events {
        if text(e, "cat") != "Node" {
            continue;
        }
        let name = text(e, "name");
        let Some(node) = name.strip_suffix("_kernel_time") else {
            continue;
        };
        let (Some(ts), Some(dur)) = (num(e, "ts"), num(e, "dur")) else {
            continue;
        };
        let Some(run) = run_of(ts) else {
            continue;
        };
        let args = e.get("args");
        let arg = |f: &str| {
            args.and_then(|a| a.get(f))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let entry = acc.entry(node.to_string()).or_insert_with(|| {
            order.push(node.to_string());
            (arg("op_name"), arg("provider"), 0.0, BTreeMap::new())
        });
        entry.2 += dur;
        entry.3.insert(run, ());
        per_run
            .entry(node.to_string())
            .or_insert_with(|| vec![0.0; kept.len()])[run] += dur;
    }
    let n = kept.len() as f64;
    let node_runs = order
        .iter()
        .map(|name| {
            per_run
                .remove(name)
                .unwrap_or_else(|| vec![0.0; kept.len()])
        })
        .collect();
    let nodes = order
        .into_iter()
        .map(|name| {
            let (op_type, provider, total, seen) = acc.remove(&name).expect("recorded above");
            NodeTiming {
                name,
                op_type,
                provider,
                mean_us: total / n,
                runs: seen.len(),
            }
        })
        .collect();
    Ok(NodeProfile {
        runs: kept.len(),
        mean_run_us: kept.iter().map(|r| r.1).sum::<f64>() / n,
        nodes,
        node_runs,
    })
}

/// Reads and parses a profile file (see [`parse_profile`]).
pub fn read_profile(path: &Path, skip_runs: usize) -> Result<NodeProfile, RuntimeError> {
    let profile_error = |message: String| RuntimeError::Profile {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| profile_error(e.to_string()))?;
    parse_profile(&text, skip_runs).map_err(profile_error)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tunas_shared::onnx::{RandomWeights, network_model, op_model};
    use tunas_shared::{Architecture, OpKind, architecture_ops, builtin_space};

    /// The runtime, or `None` (after printing why the test is skipped).
    pub(crate) fn test_runtime() -> Option<&'static Runtime> {
        match locate_runtime(None) {
            Ok(lib) => Some(init_runtime(&lib).expect("the located library loads")),
            Err(e) => {
                eprintln!("skipped: no ONNX Runtime library ({e})");
                None
            }
        }
    }

    #[test]
    fn library_names_and_versions() {
        assert!(is_runtime_library_name("libonnxruntime.so.1.31.1"));
        assert!(is_runtime_library_name("libonnxruntime.so"));
        assert!(is_runtime_library_name("libonnxruntime.1.31.1.dylib"));
        assert!(!is_runtime_library_name(
            "libonnxruntime_providers_shared.so"
        ));
        assert!(!is_runtime_library_name("libonnxruntime4j_jni.so"));
        assert_eq!(
            version_order("libonnxruntime.so.1.9.0", "libonnxruntime.so.1.31.1"),
            Ordering::Less
        );
        assert_eq!(
            version_from_build_info(
                "ORT Build Info: git-branch=rel-1.31.1, git-commit-id=abc, build type=Release"
            )
            .as_deref(),
            Some("1.31.1")
        );
        assert_eq!(
            version_from_build_info("ORT Build Info: git-branch=main, x"),
            None
        );
        assert_eq!(
            version_from_file_name(Path::new("/x/libonnxruntime.so.1.31.1")).as_deref(),
            Some("1.31.1")
        );
        assert_eq!(
            version_from_file_name(Path::new("/x/libonnxruntime.so")),
            None
        );
    }

    #[test]
    fn explicit_paths_that_hold_no_library_are_errors_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let err = locate_runtime(Some(dir.path())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--ort-lib"), "{text}");
        assert!(text.contains("cargo xtask setup"), "{text}");
        assert!(text.contains("ORT_DYLIB_PATH"), "{text}");
        std::fs::write(dir.path().join("libonnxruntime.so.1.2.3"), b"").unwrap();
        std::fs::write(dir.path().join("libonnxruntime.so.1.31.1"), b"").unwrap();
        std::fs::write(dir.path().join("libonnxruntime_providers_shared.so"), b"").unwrap();
        let lib = locate_runtime(Some(dir.path())).unwrap();
        assert_eq!(lib.path, dir.path().join("libonnxruntime.so.1.31.1"));
        assert_eq!(lib.source, LibrarySource::Explicit);
    }

    #[test]
    fn provider_names_parse() {
        for p in ExecutionProvider::ALL {
            assert_eq!(p.name().parse::<ExecutionProvider>().unwrap(), p);
        }
        assert_eq!(
            "XNNPACK".parse::<ExecutionProvider>().unwrap(),
            ExecutionProvider::Xnnpack
        );
        let err = "cuda".parse::<ExecutionProvider>().unwrap_err();
        assert!(err.to_string().contains("cpu, xnnpack, nnapi or qnn"));
    }

    const PROFILE: &str = r#"[
{"cat":"Session","pid":1,"tid":1,"dur":500,"ts":10,"ph":"X","name":"session_initialization","args":{}},
{"cat":"Node","pid":1,"tid":1,"dur":90,"ts":1001,"ph":"X","name":"op/conv_kernel_time","args":{"op_name":"FusedConv","provider":"CPUExecutionProvider"}},
{"cat":"Session","pid":1,"tid":1,"dur":100,"ts":1000,"ph":"X","name":"model_run","args":{}},
{"cat":"Node","pid":1,"tid":1,"dur":0,"ts":2000,"ph":"X","name":"op/conv_fence_before","args":{"op_name":"FusedConv"}},
{"cat":"Node","pid":1,"tid":1,"dur":10,"ts":2001,"ph":"X","name":"op/conv_kernel_time","args":{"op_name":"FusedConv","provider":"CPUExecutionProvider"}},
{"cat":"Node","pid":1,"tid":1,"dur":4,"ts":2012,"ph":"X","name":"op/pool_kernel_time","args":{"op_name":"GlobalAveragePool","provider":"CPUExecutionProvider"}},
{"cat":"Session","pid":1,"tid":1,"dur":20,"ts":2000,"ph":"X","name":"model_run","args":{}},
{"cat":"Node","pid":1,"tid":1,"dur":12,"ts":3001,"ph":"X","name":"op/conv_kernel_time","args":{"op_name":"FusedConv","provider":"CPUExecutionProvider"}},
{"cat":"Node","pid":1,"tid":1,"dur":6,"ts":3013,"ph":"X","name":"op/pool_kernel_time","args":{"op_name":"GlobalAveragePool","provider":"CPUExecutionProvider"}},
{"cat":"Session","pid":1,"tid":1,"dur":22,"ts":3000,"ph":"X","name":"model_run","args":{}}
]"#;

    #[test]
    fn profiles_skip_warm_up_runs_and_average_nodes() {
        let p = parse_profile(PROFILE, 1).unwrap();
        assert_eq!(p.runs, 2);
        assert_eq!(p.mean_run_us, 21.0);
        assert_eq!(p.nodes.len(), 2);
        assert_eq!(p.nodes[0].name, "op/conv");
        assert_eq!(p.nodes[0].op_type, "FusedConv");
        assert_eq!(p.nodes[0].mean_us, 11.0);
        assert_eq!(p.nodes[1].mean_us, 5.0);
        assert_eq!(p.scope_us("op/"), 16.0);
        assert_eq!(p.attribute(&["op"]), (vec![16.0], 0.0));
        assert_eq!(p.attribute(&["o", "x"]), (vec![0.0, 0.0], 16.0));
        let all = parse_profile(PROFILE, 0).unwrap();
        assert_eq!(all.nodes[0].mean_us, (90.0 + 10.0 + 12.0) / 3.0);
        assert!(parse_profile(PROFILE, 3).is_err());
        assert!(parse_profile("{", 0).is_err());
    }

    #[test]
    fn one_op_models_of_tiny28_run_with_the_right_output_shape() {
        let Some(rt) = test_runtime() else { return };
        eprintln!(
            "ONNX Runtime {} ({})",
            rt.version(),
            rt.library().path.display()
        );
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        for batch in [1, 2] {
            for key in architecture_ops(&space, &arch, batch) {
                if !matches!(
                    key.op,
                    OpKind::Stem | OpKind::Bottleneck | OpKind::HeadConv | OpKind::Classifier
                ) {
                    continue;
                }
                let model = op_model(&key, &mut RandomWeights::new(3)).unwrap();
                let mut session = ModelSession::new(rt, &model, &SessionConfig::default()).unwrap();
                assert_eq!(
                    session.input_shape(),
                    tunas_shared::onnx::network::input_dims(&key)
                );
                let (shape, values) = session.run_output().unwrap();
                assert_eq!(
                    shape,
                    tunas_shared::onnx::network::output_dims(&key),
                    "{key}"
                );
                assert!(values.iter().all(|v| v.is_finite()), "{key}");
            }
        }
    }

    #[test]
    fn a_network_runs_and_profiles_per_node() {
        let Some(rt) = test_runtime() else { return };
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let model = network_model(&space, &arch, &mut RandomWeights::new(1), 1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = SessionConfig {
            profile_prefix: Some(dir.path().join("tiny28")),
            ..SessionConfig::default()
        };
        let mut session = ModelSession::new(rt, &model, &config).unwrap();
        let (shape, logits) = session.run_output().unwrap();
        assert_eq!(shape, [1, 10]);
        assert!(
            logits.iter().all(|v| v.is_finite() && v.abs() < 1e4),
            "{logits:?}"
        );
        for _ in 0..4 {
            session.run().unwrap();
        }
        let path = session.end_profiling().unwrap();
        let profile = read_profile(&path, 1).unwrap();
        assert_eq!(profile.runs, 4);
        assert!(profile.scope_us("stem/") > 0.0, "{profile:?}");
        assert!(profile.scope_us("stage2/layer1/") > 0.0, "{profile:?}");
        assert!(profile.scope_us("classifier/") > 0.0, "{profile:?}");
        let nodes: f64 = profile.nodes.iter().map(|n| n.mean_us).sum();
        assert!(nodes <= profile.mean_run_us * 1.01, "{profile:?}");
        let scopes: Vec<String> = tunas_shared::onnx::network_sites(&space, &arch, 1)
            .into_iter()
            .map(|s| s.scope)
            .collect();
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let (per_scope, unattributed) = profile.attribute(&scopes);
        assert!(per_scope.iter().all(|&t| t > 0.0), "{per_scope:?}");
        let total = per_scope.iter().sum::<f64>() + unattributed;
        assert!((total - nodes).abs() < 1e-6 * nodes.max(1.0));
    }

    #[test]
    fn a_network_with_a_symbolic_batch_runs_at_1_and_at_other_sizes() {
        let Some(rt) = test_runtime() else { return };
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let options = tunas_shared::onnx::NetworkOptions {
            batch: tunas_shared::onnx::BatchDim::Dynamic,
            ..tunas_shared::onnx::NetworkOptions::fixed(1)
        };
        let model = tunas_shared::onnx::network_model_with(
            &space,
            &arch,
            &mut RandomWeights::new(1),
            &options,
        )
        .unwrap();
        let mut session = ModelSession::new(rt, &model, &SessionConfig::default()).unwrap();
        assert_eq!(session.input_shape(), [1, 1, 28, 28]);
        assert_eq!(session.run_output().unwrap().0, [1, 10]);
        let (shape, _) = session
            .run_shaped(&[3, 1, 28, 28], &vec![0.5; 3 * 28 * 28])
            .unwrap();
        assert_eq!(shape, [3, 10]);
        assert!(session.run_shaped(&[3, 1, 28, 28], &[0.5; 10]).is_err());
    }

    #[test]
    fn a_provider_that_cannot_register_is_an_error() {
        let Some(rt) = test_runtime() else { return };
        let available = rt.available_providers();
        let key = architecture_ops(
            &builtin_space("tiny28").unwrap(),
            &Architecture::largest(&builtin_space("tiny28").unwrap()),
            1,
        )[0];
        let model = op_model(&key, &mut RandomWeights::new(0)).unwrap();
        eprintln!("providers in this build: {available:?}");
        for provider in [
            ExecutionProvider::Xnnpack,
            ExecutionProvider::Nnapi,
            ExecutionProvider::Qnn,
        ] {
            if available.contains(&provider) {
                continue;
            }
            let config = SessionConfig {
                provider,
                ..SessionConfig::default()
            };
            let err = ModelSession::new(rt, &model, &config).unwrap_err();
            assert!(
                matches!(err, RuntimeError::Provider { .. }),
                "{provider}: {err}"
            );
            assert!(err.to_string().contains(provider.name()), "{err}");
            eprintln!("{err}");
        }
    }
}
