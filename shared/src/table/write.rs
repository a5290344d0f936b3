//! Writing tables: the provenance lines, the header and one line per row,
//! always through a temporary file so that a crash leaves no half table.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::provenance::PROVENANCE_FIELDS;
use super::schema::{TABLE_SIGNATURE, all_columns};
use super::{LatencyTable, OpStats};
use crate::error::TableError;
use crate::opkey::OpKey;

impl LatencyTable {
    /// The provenance lines, signature first.
    pub fn provenance_text(&self) -> String {
        let mut out = format!("{TABLE_SIGNATURE}\n");
        for field in PROVENANCE_FIELDS {
            out.push_str(&format!(
                "# {field} = {}\n",
                self.provenance.field_text(field).replace('\n', " ")
            ));
        }
        for (k, v) in &self.provenance.extra {
            out.push_str(&format!("# {k} = {}\n", v.replace('\n', " ")));
        }
        out
    }

    /// The CSV header line.
    pub fn header_line() -> String {
        all_columns().join(",")
    }

    /// One CSV row for a key and its statistics.
    pub fn row_line(key: &OpKey, stats: &OpStats) -> String {
        let mut cells: Vec<String> = key.cells().to_vec();
        cells.extend([
            format!("{:.3}", stats.median_us),
            format!("{:.3}", stats.p10_us),
            format!("{:.3}", stats.p90_us),
            format!("{:.3}", stats.mean_us),
            format!("{:.3}", stats.std_us),
            stats.runs.to_string(),
            stats.measured_at.clone(),
        ]);
        cells.join(",")
    }

    /// The whole file's text.
    pub fn to_text(&self) -> String {
        let mut out = self.provenance_text();
        out.push_str(&Self::header_line());
        out.push('\n');
        for (key, stats) in &self.rows {
            out.push_str(&Self::row_line(key, stats));
            out.push('\n');
        }
        out
    }

    /// Writes the table atomically: a temporary file beside `path`, flushed,
    /// then renamed over it.
    pub fn write_atomic(&self, path: &Path) -> Result<(), TableError> {
        write_atomic(path, self.to_text().as_bytes()).map_err(|source| TableError::Io {
            path: path.display().to_string(),
            what: "write the latency table",
            source,
        })
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder,
/// synced and renamed, so a crash never leaves a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
