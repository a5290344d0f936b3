//! The measurement journal: rows are appended and flushed as they are
//! measured, so a killed `profile` resumes without re-measuring or
//! duplicating. The journal is `FILE.partial` beside the final table; it has
//! the table's own format, so it can be read with the strict reader once a
//! torn last line is dropped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use tunas_shared::table::TABLE_SIGNATURE;
use tunas_shared::{LatencyTable, OpKey, OpStats, TableError};

/// An open journal.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
}

/// The journal path of a table path: `FILE.partial`.
pub(crate) fn journal_path(table: &Path) -> PathBuf {
    let mut name = table.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

impl Journal {
    /// Starts a new journal with the table's provenance and header.
    pub(crate) fn create(path: &Path, table: &LatencyTable) -> Result<Self, TableError> {
        let io = |source: std::io::Error| TableError::Io {
            path: path.display().to_string(),
            what: "write the measurement journal",
            source,
        };
        let mut file = File::create(path).map_err(io)?;
        let mut head = table.provenance_text();
        head.push_str(&LatencyTable::header_line());
        head.push('\n');
        file.write_all(head.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Reopens an existing journal: returns its rows (a torn last line, left
    /// by a kill mid-write, is dropped and cut from the file) and a handle
    /// that appends after them.
    pub(crate) fn resume(path: &Path) -> Result<(Self, LatencyTable), TableError> {
        let io = |source: std::io::Error| TableError::Io {
            path: path.display().to_string(),
            what: "reopen the measurement journal",
            source,
        };
        let bytes = std::fs::read(path).map_err(io)?;
        let text = String::from_utf8_lossy(&bytes);
        let whole = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        if !whole.starts_with(TABLE_SIGNATURE) {
            return Err(TableError::NotATable {
                path: path.display().to_string(),
                expected: TABLE_SIGNATURE.into(),
            });
        }
        let mut table = LatencyTable::parse(whole, &path.display().to_string())?;
        table.path = Some(path.to_path_buf());
        let file = OpenOptions::new().write(true).open(path).map_err(io)?;
        file.set_len(whole.len() as u64).map_err(io)?;
        let mut journal = Journal {
            path: path.to_path_buf(),
            file,
        };
        use std::io::Seek;
        journal.file.seek(std::io::SeekFrom::End(0)).map_err(io)?;
        Ok((journal, table))
    }

    /// Appends one row and flushes it to disk.
    pub(crate) fn append(&mut self, key: &OpKey, stats: &OpStats) -> Result<(), TableError> {
        let mut line = LatencyTable::row_line(key, stats);
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|source| TableError::Io {
                path: self.path.display().to_string(),
                what: "append to the measurement journal",
                source,
            })
    }

    /// Replaces the journal's content with `table` (provenance and rows),
    /// atomically, and keeps appending after it. Used when rows measured
    /// while the device drifted are thrown away to be measured again.
    pub(crate) fn rewrite(self, table: &LatencyTable) -> Result<Self, TableError> {
        let path = self.path.clone();
        drop(self.file);
        table.write_atomic(&path)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| TableError::Io {
                path: path.display().to_string(),
                what: "reopen the measurement journal",
                source,
            })?;
        Ok(Journal { path, file })
    }

    /// Deletes the journal once the final table is written.
    pub(crate) fn finish(self) -> std::io::Result<()> {
        drop(self.file);
        std::fs::remove_file(&self.path)
    }
}
