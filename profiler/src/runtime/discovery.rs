//! Finding a `libonnxruntime` on this machine: the path given, the
//! environment, beside the executable, the workspace's `target/`, or an
//! installed Python package.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::ORT_DYLIB_ENV;
use super::error::RuntimeError;

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
pub(super) fn is_runtime_library_name(name: &str) -> bool {
    if name.contains("providers") {
        return false;
    }
    name.starts_with("libonnxruntime.so")
        || (name.starts_with("libonnxruntime.") && name.ends_with(".dylib"))
        || name.eq_ignore_ascii_case("onnxruntime.dll")
}

/// Compares names like `libonnxruntime.so.1.9.0` and `...so.1.31.1` with
/// numeric parts compared as numbers.
pub(super) fn version_order(a: &str, b: &str) -> Ordering {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
