//! Reading tables, strictly: the signature, the provenance block, the CSV
//! header, then one row per op key. Every problem is an error naming the
//! file, the line and, where known, the op key.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::provenance::{KIND_SCALE_FIELD, PROVENANCE_FIELDS, parse_kind_scales};
use super::schema::{MAX_OP_US, TABLE_SIGNATURE, all_columns};
use super::{LatencyTable, OpStats, Provenance};
use crate::error::{OpKeyError, TableError};
use crate::opkey::{KEY_COLUMNS, OpKey};

/// Positions of the statistic columns in [`all_columns`] order.
const MEDIAN: usize = KEY_COLUMNS.len();
const P10: usize = MEDIAN + 1;
const P90: usize = MEDIAN + 2;
const MEAN: usize = MEDIAN + 3;
const STD: usize = MEDIAN + 4;
const RUNS: usize = MEDIAN + 5;
const MEASURED_AT: usize = MEDIAN + 6;

impl LatencyTable {
    /// Reads a table file.
    pub fn read(path: &Path) -> Result<Self, TableError> {
        let text = fs::read(path).map_err(|source| TableError::Io {
            path: path.display().to_string(),
            what: "read the latency table",
            source,
        })?;
        let text = String::from_utf8_lossy(&text);
        let mut table = Self::parse(&text, &path.display().to_string())?;
        table.path = Some(path.to_path_buf());
        Ok(table)
    }

    /// Parses table text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, TableError> {
        let text = unix_line_endings(text);
        TableParser {
            path: origin.to_string(),
            text: &text,
        }
        .parse()
    }
}

/// Windows line endings (a table opened and saved in a spreadsheet or
/// checked out with autocrlf) mean the same rows: read them as such.
fn unix_line_endings(text: &str) -> Cow<'_, str> {
    if text.contains("\r\n") {
        text.replace("\r\n", "\n").into()
    } else {
        text.into()
    }
}

/// The text of one table and the name errors give it.
struct TableParser<'t> {
    path: String,
    text: &'t str,
}

/// The provenance block: the fields, the line each was given on, and the
/// 1-based line of the header after it, if the file has one.
struct ProvenanceBlock {
    provenance: Provenance,
    seen: BTreeMap<String, usize>,
    header_line: Option<usize>,
}

impl TableParser<'_> {
    fn parse(&self) -> Result<LatencyTable, TableError> {
        self.check_signature()?;
        let block = self.read_provenance()?;
        if let Some(field) = PROVENANCE_FIELDS
            .iter()
            .find(|f| !block.seen.contains_key(**f))
        {
            return Err(TableError::MissingProvenance {
                path: self.path.clone(),
                field,
            });
        }
        let Some(header_no) = block.header_line else {
            return Err(TableError::MissingColumn {
                path: self.path.clone(),
                line: self.text.lines().count() + 1,
                column: KEY_COLUMNS[0].into(),
                expected: all_columns().join(","),
            });
        };
        let rows = self.read_rows(header_no, block.provenance.batch)?;
        Ok(LatencyTable {
            provenance: block.provenance,
            rows,
            path: None,
        })
    }

    fn check_signature(&self) -> Result<(), TableError> {
        match self.text.lines().next() {
            Some(first) if first.trim_end() == TABLE_SIGNATURE => Ok(()),
            _ => Err(TableError::NotATable {
                path: self.path.clone(),
                expected: TABLE_SIGNATURE.into(),
            }),
        }
    }

    fn bad_provenance(&self, line: usize, message: String) -> TableError {
        TableError::BadProvenance {
            path: self.path.clone(),
            line,
            message,
        }
    }

    /// The `# field = value` lines after the signature, up to the first line
    /// that does not start with `#` (the header).
    fn read_provenance(&self) -> Result<ProvenanceBlock, TableError> {
        let mut block = ProvenanceBlock {
            provenance: Provenance::default(),
            seen: BTreeMap::new(),
            header_line: None,
        };
        for (i, line) in self.text.lines().enumerate().skip(1) {
            let line_no = i + 1;
            let Some(body) = line.strip_prefix('#') else {
                block.header_line = Some(line_no);
                break;
            };
            let body = body.trim();
            if body.is_empty() {
                continue;
            }
            let Some((field, value)) = body.split_once('=') else {
                return Err(self.bad_provenance(
                    line_no,
                    format!("expected '# field = value', found '{line}'"),
                ));
            };
            let (field, value) = (field.trim(), value.trim());
            if let Some(first) = block.seen.insert(field.to_string(), line_no) {
                return Err(
                    self.bad_provenance(line_no, format!("field '{field}' repeats line {first}"))
                );
            }
            self.set_provenance_field(&mut block.provenance, line_no, field, value)?;
        }
        Ok(block)
    }

    /// Stores one provenance line: `x-` notes as they are (the kind scales
    /// checked), every other field parsed into its place.
    fn set_provenance_field(
        &self,
        provenance: &mut Provenance,
        line_no: usize,
        field: &str,
        value: &str,
    ) -> Result<(), TableError> {
        if field == KIND_SCALE_FIELD {
            parse_kind_scales(value).map_err(|message| self.bad_provenance(line_no, message))?;
        }
        if field.starts_with("x-") {
            provenance
                .extra
                .insert(field.to_string(), value.to_string());
            Ok(())
        } else {
            provenance
                .set_field(field, value)
                .map_err(|message| self.bad_provenance(line_no, message))
        }
    }
}

/// The 1-based file line of a CSV position: the reader counts from the
/// header line.
fn file_line(position: Option<&csv::Position>, header_no: usize) -> usize {
    position
        .map(|p| p.line() as usize + header_no - 1)
        .unwrap_or(header_no)
}

impl TableParser<'_> {
    /// The rows, from the header at line `header_no` on; every row must have
    /// the provenance's `batch`.
    fn read_rows(
        &self,
        header_no: usize,
        batch: u32,
    ) -> Result<BTreeMap<OpKey, OpStats>, TableError> {
        // The CSV body starts at the header line.
        let body_start = self
            .text
            .lines()
            .take(header_no - 1)
            .map(|l| l.len() + 1)
            .sum::<usize>()
            .min(self.text.len());
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(&self.text.as_bytes()[body_start..]);
        let columns = all_columns();
        let index = self.column_index(&mut reader, header_no, &columns)?;
        let mut rows = BTreeMap::new();
        let mut first_lines = BTreeMap::<OpKey, usize>::new();
        for record in reader.records() {
            let record = record.map_err(|e| self.csv_error(&e, header_no))?;
            let row = RowReader {
                path: &self.path,
                line: file_line(record.position(), header_no),
                record: &record,
                index: &index,
                columns: &columns,
            };
            let (key, stats) = row.read(batch)?;
            if let Some(first_line) = first_lines.insert(key, row.line) {
                return Err(TableError::DuplicateKey {
                    path: self.path.clone(),
                    line: row.line,
                    first_line,
                    key: key.to_string(),
                });
            }
            rows.insert(key, stats);
        }
        Ok(rows)
    }

    /// Where each of `columns` sits in the file's header: every column
    /// present, once, and no other.
    fn column_index(
        &self,
        reader: &mut csv::Reader<&[u8]>,
        header_no: usize,
        columns: &[&'static str],
    ) -> Result<Vec<usize>, TableError> {
        let headers = reader
            .headers()
            .map_err(|e| TableError::BadRow {
                path: self.path.clone(),
                line: header_no,
                message: e.to_string(),
            })?
            .clone();
        if let Some(h) = headers.iter().find(|h| !columns.contains(h)) {
            return Err(TableError::UnknownColumn {
                path: self.path.clone(),
                line: header_no,
                column: h.to_string(),
                expected: columns.join(","),
            });
        }
        let mut index = Vec::with_capacity(columns.len());
        for column in columns {
            match headers.iter().position(|h| h == *column) {
                Some(i) => index.push(i),
                None => {
                    return Err(TableError::MissingColumn {
                        path: self.path.clone(),
                        line: header_no,
                        column: column.to_string(),
                        expected: columns.join(","),
                    });
                }
            }
        }
        if headers.len() != columns.len() {
            return Err(TableError::BadRow {
                path: self.path.clone(),
                line: header_no,
                message: "the header names a column twice".into(),
            });
        }
        Ok(index)
    }

    /// A row the CSV reader refused. Its own text counts lines from the
    /// header; say it once, in the file's numbering.
    fn csv_error(&self, e: &csv::Error, header_no: usize) -> TableError {
        let message = match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!(
                "the row has {len} of the header's {expected_len} columns (a row cut short, e.g. by an interrupted copy, or a stray comma)"
            ),
            csv::ErrorKind::Utf8 { err, .. } => {
                format!(
                    "malformed CSV row: invalid UTF-8 in field {}",
                    err.field() + 1
                )
            }
            _ => format!("malformed CSV row: {e}"),
        };
        TableError::BadRow {
            path: self.path.clone(),
            line: file_line(e.position(), header_no),
            message,
        }
    }
}

/// One CSV record and where it is: reads its op key and statistics.
struct RowReader<'r> {
    path: &'r str,
    /// 1-based file line.
    line: usize,
    record: &'r csv::StringRecord,
    /// The record position of each of `columns`.
    index: &'r [usize],
    columns: &'r [&'static str],
}

impl<'r> RowReader<'r> {
    fn cell(&self, column: usize) -> &'r str {
        self.record.get(self.index[column]).unwrap_or("")
    }

    fn read(&self, batch: u32) -> Result<(OpKey, OpStats), TableError> {
        let key = self.key()?;
        if key.batch != batch {
            return Err(TableError::BadValue {
                path: self.path.to_string(),
                line: self.line,
                column: "batch".into(),
                value: key.batch.to_string(),
                message: format!("the provenance says batch = {batch}; every row must have it"),
                key_text: format!(" (op key {key})"),
            });
        }
        let runs = self.runs(&key)?;
        let stats = OpStats {
            median_us: self.number(MEDIAN, &key)?,
            p10_us: self.number(P10, &key)?,
            p90_us: self.number(P90, &key)?,
            mean_us: self.number(MEAN, &key)?,
            std_us: self.number(STD, &key)?,
            runs,
            measured_at: self.cell(MEASURED_AT).to_string(),
        };
        Ok((key, stats))
    }

    fn key(&self) -> Result<OpKey, TableError> {
        let cells: [&str; KEY_COLUMNS.len()] = std::array::from_fn(|c| self.cell(c));
        OpKey::from_cells(&cells).map_err(|e| match e {
            OpKeyError::BadField {
                field,
                value,
                expected,
            } => TableError::BadValue {
                path: self.path.to_string(),
                line: self.line,
                column: field.to_string(),
                value,
                message: format!("expected {expected}"),
                key_text: String::new(),
            },
            other => TableError::BadRow {
                path: self.path.to_string(),
                line: self.line,
                message: other.to_string(),
            },
        })
    }

    fn bad_value(&self, column: usize, key: &OpKey, message: &str) -> TableError {
        TableError::BadValue {
            path: self.path.to_string(),
            line: self.line,
            column: self.columns[column].to_string(),
            value: self.cell(column).to_string(),
            message: message.to_string(),
            key_text: format!(" (op key {key})"),
        }
    }

    /// A finite, non-negative number; latencies at most [`MAX_OP_US`].
    fn number(&self, column: usize, key: &OpKey) -> Result<f64, TableError> {
        let bad = |message: &str| self.bad_value(column, key, message);
        let v: f64 = self.cell(column).parse().map_err(|_| bad("not a number"))?;
        if !v.is_finite() {
            return Err(bad("must be finite"));
        }
        if v < 0.0 {
            return Err(bad("must not be negative"));
        }
        if self.columns[column].ends_with("_us") && v > MAX_OP_US {
            return Err(bad(
                "is more than 1,000 s for one op; latencies are in microseconds",
            ));
        }
        Ok(v)
    }

    /// The run count: a whole number of at least 1.
    fn runs(&self, key: &OpKey) -> Result<u64, TableError> {
        let runs = self.number(RUNS, key)?;
        if runs.fract() != 0.0 || runs < 1.0 {
            return Err(self.bad_value(RUNS, key, "must be a whole number of at least 1"));
        }
        Ok(runs as u64)
    }
}
