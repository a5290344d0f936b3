//! Output paths, checked before any measuring starts: a run that times
//! every op and only then finds it cannot write its result has wasted the
//! whole run. Parent folders are never created: a mistyped folder is an
//! error, not a new folder.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// An output path that cannot be written.
#[derive(Debug, Error)]
pub enum OutputError {
    /// The extension is not one the writer supports.
    #[error("{path}: not a supported file type; {what} are written as {supported}")]
    Extension {
        /// The path.
        path: String,
        /// What is written there.
        what: &'static str,
        /// The supported extensions, e.g. `.svg or .png`.
        supported: String,
    },
    /// The folder the file would go in does not exist.
    #[error("{path}: the folder {folder} does not exist (folders are not created; make it first)")]
    NoFolder {
        /// The path.
        path: String,
        /// Its parent folder.
        folder: String,
    },
    /// A file was asked for and a folder is there.
    #[error("{path} is a folder; give the path of a file in it")]
    IsFolder {
        /// The path.
        path: String,
    },
    /// A folder was asked for and something else is there.
    #[error("{path} exists and is not a folder")]
    NotAFolder {
        /// The path.
        path: String,
    },
    /// The folder cannot be written.
    #[error("cannot write in {folder}")]
    Unwritable {
        /// The folder.
        folder: String,
        /// What the system said when a file was created there.
        #[source]
        source: std::io::Error,
    },
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates and removes a file in `folder`: the only sure test that it can
/// be written (permission bits say nothing of read-only mounts or /proc).
fn probe_writable(folder: &Path) -> Result<(), OutputError> {
    let probe = folder.join(format!(".tunas-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|source| OutputError::Unwritable {
            folder: folder.display().to_string(),
            source,
        })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn check_folder_exists(path: &Path, folder: &Path) -> Result<(), OutputError> {
    if folder.is_dir() {
        Ok(())
    } else {
        Err(OutputError::NoFolder {
            path: path.display().to_string(),
            folder: folder.display().to_string(),
        })
    }
}

/// Checks that a file can be written at `path`: its extension is one of
/// `extensions` (any, when empty), it is not a folder, and its folder
/// exists and can be written. Whether an existing file may be replaced is
/// the caller's decision.
pub fn check_output_file(
    path: &Path,
    what: &'static str,
    extensions: &[&str],
) -> Result<(), OutputError> {
    let text = || path.display().to_string();
    if !extensions.is_empty() {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !ext.is_some_and(|e| extensions.contains(&e.as_str())) {
            return Err(OutputError::Extension {
                path: text(),
                what,
                supported: extensions
                    .iter()
                    .map(|e| format!(".{e}"))
                    .collect::<Vec<_>>()
                    .join(" or "),
            });
        }
    }
    if path.is_dir() {
        return Err(OutputError::IsFolder { path: text() });
    }
    let folder = folder_of(path);
    check_folder_exists(path, &folder)?;
    probe_writable(&folder)
}

/// Checks that `path` is a folder that can be written, or can be made (its
/// own parent exists and can be written).
pub fn check_output_folder(path: &Path) -> Result<(), OutputError> {
    if path.is_dir() {
        return probe_writable(path);
    }
    if path.exists() {
        return Err(OutputError::NotAFolder {
            path: path.display().to_string(),
        });
    }
    let folder = folder_of(path);
    check_folder_exists(path, &folder)?;
    probe_writable(&folder)
}

/// `text` quoted for a POSIX shell, so a printed command can be pasted
/// whatever the path holds.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_checks_name_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(check_output_file(&d.join("t.csv"), "tables", &[]).is_ok());
        assert!(check_output_file(&d.join("p.SVG"), "charts", &["svg", "png"]).is_ok());
        let e = check_output_file(&d.join("p.txt"), "charts", &["svg", "png"]).unwrap_err();
        assert!(e.to_string().contains(".svg or .png"), "{e}");
        let e = check_output_file(d, "tables", &[]).unwrap_err();
        assert!(matches!(e, OutputError::IsFolder { .. }), "{e}");
        let e = check_output_file(&d.join("no/t.csv"), "tables", &[]).unwrap_err();
        assert!(matches!(e, OutputError::NoFolder { .. }), "{e}");
        assert!(!d.join("no").exists());
        let e = check_output_file(Path::new("/proc/t.csv"), "tables", &[]).unwrap_err();
        assert!(matches!(e, OutputError::Unwritable { .. }), "{e}");
        assert!(check_output_folder(&d.join("tables")).is_ok());
        assert!(!d.join("tables").exists());
        std::fs::write(d.join("f"), "").unwrap();
        assert!(check_output_folder(&d.join("f")).is_err());
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 1, "no probe is left");
    }

    #[test]
    fn quoted_paths_run_nothing() {
        assert_eq!(shell_quote("a/b.onnx"), "a/b.onnx");
        assert_eq!(shell_quote("a b;rm x"), "'a b;rm x'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
