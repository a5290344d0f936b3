//! Output paths checked before any work starts, so a long measurement or
//! training never ends in "cannot write".

use std::path::{Path, PathBuf};

use thiserror::Error;

/// An output file that could not be written.
#[derive(Debug, Error)]
pub enum OutputError {
    /// The extension is not one the writer supports.
    #[error("{}: the file must end in {}", path.display(), expected.join(" or "))]
    Extension {
        /// The path.
        path: PathBuf,
        /// Accepted extensions, with their dot.
        expected: Vec<String>,
    },
    /// The path is a folder.
    #[error("{}: is a folder; give a file name", path.display())]
    IsFolder {
        /// The path.
        path: PathBuf,
    },
    /// The parent folder does not exist (it is not created for you).
    #[error("{}: the folder {} does not exist; create it first", path.display(), parent.display())]
    NoFolder {
        /// The path.
        path: PathBuf,
        /// Its parent.
        parent: PathBuf,
    },
    /// A file cannot be created in the parent folder.
    #[error("{}: cannot write there: {source}", path.display())]
    NotWritable {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Checks that `path` can be written: its extension is one of `extensions`
/// (without dots; empty accepts any), it is not a folder, its folder exists
/// and a file can be created there. Nothing is left behind.
pub fn check_output_file(path: &Path, extensions: &[&str]) -> Result<(), OutputError> {
    if !extensions.is_empty() {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !ext.is_some_and(|e| extensions.contains(&e.as_str())) {
            return Err(OutputError::Extension {
                path: path.to_path_buf(),
                expected: extensions.iter().map(|e| format!(".{e}")).collect(),
            });
        }
    }
    if path.is_dir() {
        return Err(OutputError::IsFolder {
            path: path.to_path_buf(),
        });
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(OutputError::NoFolder {
            path: path.to_path_buf(),
            parent,
        });
    }
    let probe = parent.join(format!(".tunas-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|source| OutputError::NotWritable {
            path: path.to_path_buf(),
            source,
        })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
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
    fn bad_outputs_are_named_before_work() {
        let dir = std::env::temp_dir();
        assert!(matches!(
            check_output_file(&dir.join("x.txt"), &["svg", "png"]),
            Err(OutputError::Extension { .. })
        ));
        assert!(matches!(
            check_output_file(&dir, &[]),
            Err(OutputError::IsFolder { .. })
        ));
        assert!(matches!(
            check_output_file(Path::new("/nonexistent-tunas/x.csv"), &["csv"]),
            Err(OutputError::NoFolder { .. })
        ));
        assert!(!Path::new("/nonexistent-tunas").exists());
        check_output_file(&dir.join("fine.svg"), &["svg"]).unwrap();
    }

    #[test]
    fn quoted_paths_run_nothing() {
        assert_eq!(shell_quote("a/b.onnx"), "a/b.onnx");
        assert_eq!(shell_quote("a b;rm x"), "'a b;rm x'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
