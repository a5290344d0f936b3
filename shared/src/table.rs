//! Latency tables: one row per op key with its timing statistics, plus the
//! provenance of the measurements (docs/design.md, "Latency tables").
//!
//! The file is CSV preceded by `# field = value` provenance lines:
//!
//! ```text
//! # tunas latency table v1
//! # device = local
//! # ...
//! op,input_h,input_w,cin,cout,mid,kernel,stride,se,act,residual,batch,median_us,p10_us,p90_us,mean_us,std_us,runs,measured_at
//! stem,28,28,1,8,1,3,1,0,relu,0,1,3.1,3.0,3.4,3.2,0.2,200,2026-11-28T01:00:00Z
//! ```
//!
//! Reading is strict: every problem is an error naming the file, the line
//! and, where known, the op key.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::arch::Architecture;
use crate::error::TableError;
use crate::opkey::{KEY_COLUMNS, OpKey, OpKind, architecture_ops};
use crate::space::SearchSpace;

/// The first line of every table file.
pub const TABLE_SIGNATURE: &str = "# tunas latency table v1";

/// Statistic columns, after the key columns.
pub const STAT_COLUMNS: [&str; 7] = [
    "median_us",
    "p10_us",
    "p90_us",
    "mean_us",
    "std_us",
    "runs",
    "measured_at",
];

/// Timing statistics of one op, in microseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct OpStats {
    /// Median: the value the estimator uses.
    pub median_us: f64,
    /// 10th percentile.
    pub p10_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Standard deviation.
    pub std_us: f64,
    /// Number of timed runs.
    pub runs: u64,
    /// When the row was measured (UTC, RFC 3339).
    pub measured_at: String,
}

impl OpStats {
    /// Statistics of samples recorded at a resolution of `step` µs: the
    /// quantiles are grouped-data quantiles ([`grouped_quantile`]), so the
    /// resolution does not round small ops to whole steps.
    pub fn from_quantized_samples(samples: &[f64], step: f64) -> Self {
        let mut stats = Self::from_samples(samples);
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        stats.median_us = grouped_quantile(&sorted, 0.5, step);
        stats.p10_us = grouped_quantile(&sorted, 0.1, step);
        stats.p90_us = grouped_quantile(&sorted, 0.9, step);
        stats
    }

    /// Statistics of samples recorded at a resolution of `step` µs (0 for
    /// wall-clock samples) whose `median_us` is `statistic`; p10, p90, mean
    /// and std still describe all samples, so a bimodal row shows its
    /// spread.
    pub fn with_statistic(samples: &[f64], step: f64, statistic: Statistic) -> Self {
        let mut stats = if step > 0.0 {
            Self::from_quantized_samples(samples, step)
        } else {
            Self::from_samples(samples)
        };
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        stats.median_us = statistic.of_sorted(&sorted, step);
        stats
    }

    /// Statistics of a set of samples (µs), measured now.
    pub fn from_samples(samples: &[f64]) -> Self {
        assert!(!samples.is_empty(), "statistics need at least one sample");
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let var = sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        OpStats {
            median_us: quantile(&sorted, 0.5),
            p10_us: quantile(&sorted, 0.1),
            p90_us: quantile(&sorted, 0.9),
            mean_us: mean,
            std_us: var.sqrt(),
            runs: sorted.len() as u64,
            measured_at: crate::time::utc_now_rfc3339(),
        }
    }
}

/// Which per-row statistic a table's `median_us` column holds (recorded in
/// the provenance as `x-statistic = NAME`; a table without the line holds
/// [`Statistic::Median`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    /// The (grouped-data) median of all samples.
    Median,
    /// The median of the faster cluster when the samples are clearly
    /// bimodal (a device flipping between speed modes), else the median
    /// (see [`lower_mode`]).
    LowerMode,
}

impl Statistic {
    /// The provenance name.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::Median => "median",
            Statistic::LowerMode => "lower-mode",
        }
    }

    /// Parses a provenance name.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "median" => Some(Statistic::Median),
            "lower-mode" => Some(Statistic::LowerMode),
            _ => None,
        }
    }

    /// The provenance line's value: the name and, for the lower mode, its
    /// thresholds, so a reader knows exactly what was computed.
    pub fn provenance_text(self) -> String {
        match self {
            Statistic::Median => "median".into(),
            Statistic::LowerMode => {
                let m = ModeSplit::default();
                format!(
                    "lower-mode (split when n >= {}, each cluster >= {:.0}% of samples, gap >= {} x the larger cluster IQR and >= {:.0}% of the faster median; else the median)",
                    m.min_samples,
                    m.min_share * 100.0,
                    m.min_gap_spreads,
                    m.min_gap_rel * 100.0
                )
            }
        }
    }

    /// The statistic of sorted samples recorded at a resolution of `step`
    /// µs (0 for wall-clock samples: the linear-interpolated quantile).
    pub fn of_sorted(self, sorted: &[f64], step: f64) -> f64 {
        let used = match self {
            Statistic::Median => sorted,
            Statistic::LowerMode => lower_mode(sorted, step, &ModeSplit::default()),
        };
        if step > 0.0 {
            grouped_quantile(used, 0.5, step)
        } else {
            quantile(used, 0.5)
        }
    }
}

/// When [`lower_mode`] splits a sample in two.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeSplit {
    /// Fewer samples are never split.
    pub min_samples: usize,
    /// Each cluster holds at least this share of the samples.
    pub min_share: f64,
    /// The gap between the clusters is at least this many times the larger
    /// cluster's interquartile range (or the recording step, if larger).
    pub min_gap_spreads: f64,
    /// And at least this fraction of the faster cluster's median (two modes
    /// closer than that are one speed).
    pub min_gap_rel: f64,
}

impl Default for ModeSplit {
    fn default() -> Self {
        ModeSplit {
            min_samples: 20,
            min_share: 0.2,
            min_gap_spreads: 3.0,
            min_gap_rel: 0.05,
        }
    }
}

/// The faster cluster of sorted samples when they are clearly bimodal, else
/// all of them. The split is at the widest gap between neighbouring samples
/// that leaves each side at least `min_share` of them; it is taken when the
/// gap is wide both against the clusters' spreads and against the faster
/// cluster's median.
pub fn lower_mode<'a>(sorted: &'a [f64], step: f64, m: &ModeSplit) -> &'a [f64] {
    let n = sorted.len();
    if n < m.min_samples.max(4) {
        return sorted;
    }
    let least = ((m.min_share * n as f64).ceil() as usize).max(2);
    if 2 * least > n {
        return sorted;
    }
    let Some(split) = (least..=n - least)
        .max_by(|&a, &b| (sorted[a] - sorted[a - 1]).total_cmp(&(sorted[b] - sorted[b - 1])))
    else {
        return sorted;
    };
    let (low, high) = sorted.split_at(split);
    let gap = high[0] - low[low.len() - 1];
    let iqr = |c: &[f64]| quantile(c, 0.75) - quantile(c, 0.25);
    let spread = iqr(low).max(iqr(high)).max(step);
    let low_median = quantile(low, 0.5);
    let wide = gap >= m.min_gap_spreads * spread && gap > 0.0;
    let far = gap >= m.min_gap_rel * low_median.abs();
    if wide && far { low } else { sorted }
}

/// Quantile of sorted samples that were recorded at a resolution of `step`
/// (ONNX Runtime's profiler reports whole microseconds). Each recorded value
/// `v` stands for the interval `v ± step/2`, and the quantile interpolates
/// inside the interval where the cumulative count crosses `q·n` (the
/// grouped-data median). A 4.4 µs op whose runs read 4 or 5 then reads about
/// 4.4, not 4 or 5 depending on which way a few runs fell.
pub fn grouped_quantile(sorted: &[f64], q: f64, step: f64) -> f64 {
    assert!(!sorted.is_empty(), "a quantile needs at least one sample");
    let target = q.clamp(0.0, 1.0) * sorted.len() as f64;
    let mut before = 0usize;
    let mut i = 0;
    while i < sorted.len() {
        let value = sorted[i];
        let mut j = i;
        while j < sorted.len() && sorted[j] == value {
            j += 1;
        }
        let count = j - i;
        if (j as f64) >= target {
            let inside = (target - before as f64) / count as f64;
            return value - step / 2.0 + inside.clamp(0.0, 1.0) * step;
        }
        before = j;
        i = j;
    }
    sorted[sorted.len() - 1] + step / 2.0
}

/// The provenance field of the per-kind scale factors.
pub const KIND_SCALE_FIELD: &str = "x-kind-scale";

/// Parses `x-kind-scale`: `KIND=FACTOR` pairs separated by spaces (e.g.
/// `bottleneck=1.0213 separable=0.97`), each kind at most once, each factor
/// a positive finite number. Kinds not named scale by 1.
pub fn parse_kind_scales(text: &str) -> Result<BTreeMap<OpKind, f64>, String> {
    let mut scales = BTreeMap::new();
    for pair in text.split_whitespace() {
        let (kind, factor) = pair
            .split_once('=')
            .ok_or_else(|| format!("{KIND_SCALE_FIELD}: '{pair}' is not KIND=FACTOR"))?;
        let kind = OpKind::from_name(kind).ok_or_else(|| {
            let known: Vec<&str> = OpKind::ALL.iter().map(|k| k.name()).collect();
            format!(
                "{KIND_SCALE_FIELD}: unknown op kind '{kind}'; known kinds: {}",
                known.join(", ")
            )
        })?;
        let factor: f64 = factor
            .parse()
            .ok()
            .filter(|f: &f64| f.is_finite() && *f > 0.0)
            .ok_or_else(|| {
                format!(
                    "{KIND_SCALE_FIELD}: factor '{factor}' of {} is not a positive number",
                    kind.name()
                )
            })?;
        if scales.insert(kind, factor).is_some() {
            return Err(format!("{KIND_SCALE_FIELD}: {} appears twice", kind.name()));
        }
    }
    Ok(scales)
}

/// The `x-kind-scale` value of `scales`: shortest round-trip decimals, so
/// writing and reading back is lossless.
pub fn kind_scales_text(scales: &BTreeMap<OpKind, f64>) -> String {
    scales
        .iter()
        .map(|(k, s)| format!("{}={s}", k.name()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Linear-interpolated quantile of sorted samples.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The largest latency a table may hold for one op or the constant, µs
/// (1,000 s): above it a value is a unit mistake, and sums of such values
/// lose all precision.
pub const MAX_OP_US: f64 = 1e9;

/// Where and how a table was measured.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Provenance {
    /// Device name (`local`, `adb:SERIAL`, `ssh:HOST`).
    pub device: String,
    /// CPU or SoC model.
    pub cpu: String,
    /// Operating system and kernel.
    pub os: String,
    /// Runtime name (`onnxruntime`).
    pub runtime: String,
    /// Runtime version.
    pub runtime_version: String,
    /// Execution provider (`cpu`, `xnnpack`, ...).
    pub execution_provider: String,
    /// Intra-op threads.
    pub threads: u32,
    /// Core pinning (`none` or a core list).
    pub pinning: String,
    /// Batch size of every op key.
    pub batch: u32,
    /// When the table was written (UTC, RFC 3339).
    pub date: String,
    /// Version of the profiler that wrote it.
    pub profiler_version: String,
    /// Space name.
    pub space: String,
    /// Space content hash.
    pub space_hash: String,
    /// How ops were timed, in a few words.
    pub method: String,
    /// Per-inference constant added once to every estimate (µs).
    pub overhead_us: f64,
    /// Extra notes, written as `# x-NAME = value` (thermal state, governor, ...).
    pub extra: BTreeMap<String, String>,
}

const PROVENANCE_FIELDS: [&str; 15] = [
    "device",
    "cpu",
    "os",
    "runtime",
    "runtime_version",
    "execution_provider",
    "threads",
    "pinning",
    "batch",
    "date",
    "profiler_version",
    "space",
    "space_hash",
    "method",
    "overhead_us",
];

impl Provenance {
    fn field_text(&self, field: &str) -> String {
        match field {
            "device" => self.device.clone(),
            "cpu" => self.cpu.clone(),
            "os" => self.os.clone(),
            "runtime" => self.runtime.clone(),
            "runtime_version" => self.runtime_version.clone(),
            "execution_provider" => self.execution_provider.clone(),
            "threads" => self.threads.to_string(),
            "pinning" => self.pinning.clone(),
            "batch" => self.batch.to_string(),
            "date" => self.date.clone(),
            "profiler_version" => self.profiler_version.clone(),
            "space" => self.space.clone(),
            "space_hash" => self.space_hash.clone(),
            "method" => self.method.clone(),
            "overhead_us" => format!("{}", self.overhead_us),
            _ => unreachable!("unknown provenance field {field}"),
        }
    }

    /// Sets a field from its text; the error says what was expected.
    fn set_field(&mut self, field: &str, value: &str) -> Result<(), String> {
        let int = |v: &str| {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("'{field}' must be a positive integer, found '{v}'"))
        };
        match field {
            "device" => self.device = value.into(),
            "cpu" => self.cpu = value.into(),
            "os" => self.os = value.into(),
            "runtime" => self.runtime = value.into(),
            "runtime_version" => self.runtime_version = value.into(),
            "execution_provider" => self.execution_provider = value.into(),
            "threads" => self.threads = int(value)?,
            "pinning" => self.pinning = value.into(),
            "batch" => self.batch = int(value)?,
            "date" => self.date = value.into(),
            "profiler_version" => self.profiler_version = value.into(),
            "space" => self.space = value.into(),
            "space_hash" => self.space_hash = value.into(),
            "method" => self.method = value.into(),
            "overhead_us" => {
                self.overhead_us = value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0 && *v <= MAX_OP_US)
                    .ok_or_else(|| {
                        format!(
                            "'overhead_us' must be a number of microseconds from 0 to 1e9, found '{value}'"
                        )
                    })?
            }
            _ => {
                return Err(format!(
                    "unknown field '{field}'; known fields: {} (free notes go in 'x-NAME' fields)",
                    PROVENANCE_FIELDS.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// A latency table: provenance and one [`OpStats`] per [`OpKey`].
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyTable {
    /// Where and how it was measured.
    pub provenance: Provenance,
    /// The rows.
    pub rows: BTreeMap<OpKey, OpStats>,
    /// The file it was read from (for error messages), if any.
    pub path: Option<PathBuf>,
}

fn all_columns() -> Vec<&'static str> {
    KEY_COLUMNS.iter().chain(&STAT_COLUMNS).copied().collect()
}

impl LatencyTable {
    /// An empty table with this provenance.
    pub fn new(provenance: Provenance) -> Self {
        LatencyTable {
            provenance,
            rows: BTreeMap::new(),
            path: None,
        }
    }

    fn path_text(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<latency table>".into())
    }

    /// Reads a table file.
    pub fn read(path: &Path) -> Result<Self, TableError> {
        let text = fs::read(path).map_err(|e| TableError::Io {
            path: path.display().to_string(),
            message: format!("cannot read the latency table: {e}"),
        })?;
        let text = String::from_utf8_lossy(&text);
        let mut table = Self::parse(&text, &path.display().to_string())?;
        table.path = Some(path.to_path_buf());
        Ok(table)
    }

    /// Parses table text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, TableError> {
        let path = origin.to_string();
        // Windows line endings (a table opened and saved in a spreadsheet or
        // checked out with autocrlf) mean the same rows: read them as such.
        let text: std::borrow::Cow<'_, str> = if text.contains("\r\n") {
            text.replace("\r\n", "\n").into()
        } else {
            text.into()
        };
        let text = text.as_ref();
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, first)) if first.trim_end() == TABLE_SIGNATURE => {}
            _ => {
                return Err(TableError::NotATable {
                    path,
                    expected: TABLE_SIGNATURE.into(),
                });
            }
        }
        let mut provenance = Provenance::default();
        let mut seen = BTreeMap::<String, usize>::new();
        let mut header_line = None;
        for (i, line) in lines.by_ref() {
            let line_no = i + 1;
            let Some(body) = line.strip_prefix('#') else {
                header_line = Some((line_no, line));
                break;
            };
            let body = body.trim();
            if body.is_empty() {
                continue;
            }
            let Some((field, value)) = body.split_once('=') else {
                return Err(TableError::BadProvenance {
                    path,
                    line: line_no,
                    message: format!("expected '# field = value', found '{line}'"),
                });
            };
            let (field, value) = (field.trim(), value.trim());
            if let Some(first) = seen.insert(field.to_string(), line_no) {
                return Err(TableError::BadProvenance {
                    path,
                    line: line_no,
                    message: format!("field '{field}' repeats line {first}"),
                });
            }
            if field == KIND_SCALE_FIELD {
                parse_kind_scales(value).map_err(|message| TableError::BadProvenance {
                    path: path.clone(),
                    line: line_no,
                    message,
                })?;
            }
            if field.starts_with("x-") {
                provenance
                    .extra
                    .insert(field.to_string(), value.to_string());
            } else {
                provenance.set_field(field, value).map_err(|message| {
                    TableError::BadProvenance {
                        path: path.clone(),
                        line: line_no,
                        message,
                    }
                })?;
            }
        }
        if let Some(field) = PROVENANCE_FIELDS.iter().find(|f| !seen.contains_key(**f)) {
            return Err(TableError::MissingProvenance { path, field });
        }
        let Some((header_no, _)) = header_line else {
            return Err(TableError::MissingColumn {
                path,
                line: text.lines().count() + 1,
                column: KEY_COLUMNS[0].into(),
                expected: all_columns().join(","),
            });
        };

        // The CSV body starts at the header line.
        let body_start = text
            .lines()
            .take(header_no - 1)
            .map(|l| l.len() + 1)
            .sum::<usize>()
            .min(text.len());
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(&text.as_bytes()[body_start..]);
        let headers = reader
            .headers()
            .map_err(|e| TableError::BadRow {
                path: path.clone(),
                line: header_no,
                message: e.to_string(),
            })?
            .clone();
        let expected = all_columns();
        for h in headers.iter() {
            if !expected.contains(&h) {
                return Err(TableError::UnknownColumn {
                    path,
                    line: header_no,
                    column: h.to_string(),
                    expected: expected.join(","),
                });
            }
        }
        let mut index = Vec::with_capacity(expected.len());
        for column in &expected {
            match headers.iter().position(|h| h == *column) {
                Some(i) => index.push(i),
                None => {
                    return Err(TableError::MissingColumn {
                        path,
                        line: header_no,
                        column: column.to_string(),
                        expected: expected.join(","),
                    });
                }
            }
        }
        if headers.len() != expected.len() {
            return Err(TableError::BadRow {
                path,
                line: header_no,
                message: "the header names a column twice".into(),
            });
        }

        let mut rows = BTreeMap::new();
        let mut first_lines = BTreeMap::<OpKey, usize>::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e
                    .position()
                    .map(|p| p.line() as usize + header_no - 1)
                    .unwrap_or(header_no);
                // The CSV reader's own text counts lines from the header;
                // say it once, in the file's numbering.
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!(
                        "the row has {len} of the header's {expected_len} columns (a row cut short, e.g. by an interrupted copy, or a stray comma)"
                    ),
                    csv::ErrorKind::Utf8 { err, .. } => {
                        format!("malformed CSV row: invalid UTF-8 in field {}", err.field() + 1)
                    }
                    _ => format!("malformed CSV row: {e}"),
                };
                TableError::BadRow {
                    path: path.clone(),
                    line,
                    message,
                }
            })?;
            let line = record
                .position()
                .map(|p| p.line() as usize + header_no - 1)
                .unwrap_or(header_no);
            let cell = |c: usize| record.get(index[c]).unwrap_or("");
            let key_cells: [&str; 12] = std::array::from_fn(cell);
            let key = OpKey::from_cells(&key_cells).map_err(|e| match e {
                crate::error::OpKeyError::BadField {
                    field,
                    value,
                    expected,
                } => TableError::BadValue {
                    path: path.clone(),
                    line,
                    column: field.to_string(),
                    value,
                    message: format!("expected {expected}"),
                    key_text: String::new(),
                },
                other => TableError::BadRow {
                    path: path.clone(),
                    line,
                    message: other.to_string(),
                },
            })?;
            if key.batch != provenance.batch {
                return Err(TableError::BadValue {
                    path,
                    line,
                    column: "batch".into(),
                    value: key.batch.to_string(),
                    message: format!(
                        "the provenance says batch = {}; every row must have it",
                        provenance.batch
                    ),
                    key_text: format!(" (op key {key})"),
                });
            }
            let number = |c: usize| -> Result<f64, TableError> {
                let text = cell(c);
                let bad = |message: &str| TableError::BadValue {
                    path: path.clone(),
                    line,
                    column: expected[c].to_string(),
                    value: text.to_string(),
                    message: message.to_string(),
                    key_text: format!(" (op key {key})"),
                };
                let v: f64 = text.parse().map_err(|_| bad("not a number"))?;
                if !v.is_finite() {
                    return Err(bad("must be finite"));
                }
                if v < 0.0 {
                    return Err(bad("must not be negative"));
                }
                if expected[c].ends_with("_us") && v > MAX_OP_US {
                    return Err(bad(
                        "is more than 1,000 s for one op; latencies are in microseconds",
                    ));
                }
                Ok(v)
            };
            let runs_f = number(17)?;
            if runs_f.fract() != 0.0 || runs_f < 1.0 {
                return Err(TableError::BadValue {
                    path,
                    line,
                    column: "runs".into(),
                    value: cell(17).to_string(),
                    message: "must be a whole number of at least 1".into(),
                    key_text: format!(" (op key {key})"),
                });
            }
            let stats = OpStats {
                median_us: number(12)?,
                p10_us: number(13)?,
                p90_us: number(14)?,
                mean_us: number(15)?,
                std_us: number(16)?,
                runs: runs_f as u64,
                measured_at: cell(18).to_string(),
            };
            if let Some(first_line) = first_lines.insert(key, line) {
                return Err(TableError::DuplicateKey {
                    path,
                    line,
                    first_line,
                    key: key.to_string(),
                });
            }
            rows.insert(key, stats);
        }
        Ok(LatencyTable {
            provenance,
            rows,
            path: None,
        })
    }

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
        write_atomic(path, self.to_text().as_bytes()).map_err(|e| TableError::Io {
            path: path.display().to_string(),
            message: format!("cannot write the latency table: {e}"),
        })
    }

    /// Refuses a table made for another space.
    pub fn check_space(&self, space: &SearchSpace) -> Result<(), TableError> {
        let hash = space.content_hash();
        if self.provenance.space_hash != hash {
            return Err(TableError::SpaceMismatch {
                path: self.path_text(),
                table_space: self.provenance.space.clone(),
                table_hash: self.provenance.space_hash.clone(),
                space: space.name.clone(),
                space_hash: hash,
            });
        }
        Ok(())
    }

    /// The statistic the table's `median_us` column holds, from its
    /// `x-statistic` line (none: [`Statistic::Median`]; an unknown name is
    /// `None`).
    pub fn statistic(&self) -> Option<Statistic> {
        match self.provenance.extra.get("x-statistic") {
            None => Some(Statistic::Median),
            Some(v) => Statistic::parse(v.split(" (").next().unwrap_or_default()),
        }
    }

    /// The per-kind scale factors of the estimate (`x-kind-scale`; none:
    /// every kind scales by 1, as in tables written before the line).
    pub fn kind_scales(&self) -> Result<BTreeMap<OpKind, f64>, TableError> {
        match self.provenance.extra.get(KIND_SCALE_FIELD) {
            None => Ok(BTreeMap::new()),
            Some(v) => parse_kind_scales(v).map_err(|message| TableError::BadProvenance {
                path: self.path_text(),
                line: 0,
                message,
            }),
        }
    }

    /// The median latency of one op.
    pub fn op_latency_us(&self, key: &OpKey) -> Result<f64, TableError> {
        self.rows
            .get(key)
            .map(|s| s.median_us)
            .ok_or_else(|| TableError::MissingOp {
                path: self.path_text(),
                key: key.to_string(),
            })
    }

    /// Estimated latency of an architecture (µs): the per-inference constant
    /// plus the median of every op it executes, each times its kind's
    /// factor from `x-kind-scale` (1 when the table has none).
    pub fn estimate_us(&self, space: &SearchSpace, arch: &Architecture) -> Result<f64, TableError> {
        let ops = architecture_ops(space, arch, self.provenance.batch);
        let scales = self.kind_scales()?;
        let mut total = self.provenance.overhead_us;
        for key in &ops {
            let latency = self.op_latency_us(key)?;
            total += match scales.get(&key.op) {
                Some(scale) => scale * latency,
                None => latency,
            };
        }
        Ok(total)
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

#[cfg(test)]
mod quantile_tests {
    use super::*;

    #[test]
    fn grouped_median_of_equal_samples_is_the_value() {
        assert_eq!(grouped_quantile(&[3.0; 9], 0.5, 1.0), 3.0);
    }

    #[test]
    fn grouped_median_interpolates_between_whole_steps() {
        // 6 runs read 4 µs and 4 read 5 µs: the median falls 5/6 of the way
        // through the interval [3.5, 4.5] that 4 stands for.
        let mut sorted = vec![4.0; 6];
        sorted.extend([5.0; 4]);
        let m = grouped_quantile(&sorted, 0.5, 1.0);
        assert!((m - (3.5 + 5.0 / 6.0)).abs() < 1e-12, "{m}");
        // The plain median rounds to a whole step.
        assert_eq!(quantile(&sorted, 0.5), 4.0);
    }

    #[test]
    fn grouped_quantiles_are_monotone_and_stay_within_half_a_step() {
        let sorted = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 7.0];
        let mut last = f64::NEG_INFINITY;
        for i in 0..=20 {
            let v = grouped_quantile(&sorted, i as f64 / 20.0, 1.0);
            assert!(v >= last, "quantile {i}/20 = {v} < {last}");
            assert!((0.5..=7.5).contains(&v));
            last = v;
        }
    }

    /// `n` samples around `centre`, spread evenly over ±`half`.
    fn cluster(centre: f64, half: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| centre - half + 2.0 * half * i as f64 / (n - 1).max(1) as f64)
            .collect()
    }

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn lower_mode_of_a_unimodal_sample_is_the_median() {
        let s = sorted(cluster(100.0, 3.0, 41));
        assert_eq!(Statistic::LowerMode.of_sorted(&s, 0.0), 100.0);
        assert_eq!(
            Statistic::LowerMode.of_sorted(&s, 1.0),
            grouped_quantile(&s, 0.5, 1.0)
        );
    }

    #[test]
    fn lower_mode_of_a_bimodal_sample_is_the_faster_median() {
        // 30 runs at 100 ± 1 µs, 20 at 150 ± 1 µs (a slow period): the
        // plain median falls in the fast cluster's upper edge or the gap;
        // the lower mode is the fast cluster's median, 100.
        let mut v = cluster(100.0, 1.0, 30);
        v.extend(cluster(150.0, 1.0, 20));
        let s = sorted(v);
        assert_eq!(lower_mode(&s, 0.0, &ModeSplit::default()).len(), 30);
        assert!((Statistic::LowerMode.of_sorted(&s, 0.0) - 100.0).abs() < 1e-9);
        // Mostly slow: the faster mode still wins, as long as it holds 20%.
        let mut v = cluster(100.0, 1.0, 12);
        v.extend(cluster(150.0, 1.0, 38));
        let s = sorted(v);
        assert!((Statistic::LowerMode.of_sorted(&s, 0.0) - 100.0).abs() < 1e-9);
        assert!(Statistic::Median.of_sorted(&s, 0.0) > 140.0);
    }

    #[test]
    fn lower_mode_does_not_split_near_equal_modes_or_few_outliers() {
        // Modes 2% apart are one speed.
        let mut v = cluster(100.0, 0.1, 25);
        v.extend(cluster(102.0, 0.1, 25));
        let s = sorted(v);
        assert_eq!(lower_mode(&s, 0.0, &ModeSplit::default()).len(), 50);
        // Whole-µs readings of a 4.4 µs op (4 or 5) are one mode.
        let s = sorted([vec![4.0; 30], vec![5.0; 20]].concat());
        assert_eq!(
            Statistic::LowerMode.of_sorted(&s, 1.0),
            grouped_quantile(&s, 0.5, 1.0)
        );
        // A few fast outliers (under 20%) are not a mode.
        let s = sorted([cluster(50.0, 1.0, 5), cluster(100.0, 1.0, 45)].concat());
        assert_eq!(lower_mode(&s, 0.0, &ModeSplit::default()).len(), 50);
        // Wide clusters with a gap narrower than 3 spreads are one mode.
        let s = sorted([cluster(100.0, 20.0, 25), cluster(150.0, 20.0, 25)].concat());
        assert_eq!(lower_mode(&s, 0.0, &ModeSplit::default()).len(), 50);
    }

    #[test]
    fn lower_mode_leaves_small_samples_alone() {
        let s = sorted([cluster(100.0, 1.0, 6), cluster(150.0, 1.0, 6)].concat());
        assert_eq!(lower_mode(&s, 0.0, &ModeSplit::default()).len(), 12);
        assert_eq!(Statistic::LowerMode.of_sorted(&s, 0.0), quantile(&s, 0.5));
        assert_eq!(Statistic::LowerMode.of_sorted(&[7.0], 0.0), 7.0);
    }

    #[test]
    fn op_stats_keep_the_spread_of_all_samples() {
        let v = [cluster(100.0, 1.0, 30), cluster(150.0, 1.0, 20)].concat();
        let s = OpStats::with_statistic(&v, 0.0, Statistic::LowerMode);
        let all = OpStats::from_samples(&v);
        assert!((s.median_us - 100.0).abs() < 1e-9);
        assert_eq!(
            (s.p90_us, s.mean_us, s.runs),
            (all.p90_us, all.mean_us, all.runs)
        );
    }

    #[test]
    fn statistic_names_round_trip_and_old_tables_are_medians() {
        for st in [Statistic::Median, Statistic::LowerMode] {
            assert_eq!(Statistic::parse(st.name()), Some(st));
        }
        let mut t = LatencyTable::new(Provenance::default());
        assert_eq!(t.statistic(), Some(Statistic::Median));
        t.provenance
            .extra
            .insert("x-statistic".into(), Statistic::LowerMode.provenance_text());
        assert_eq!(t.statistic(), Some(Statistic::LowerMode));
    }

    #[test]
    fn kind_scales_round_trip_losslessly_and_refuse_bad_text() {
        let scales: BTreeMap<OpKind, f64> = [
            (OpKind::Bottleneck, 1.0 / 3.0),
            (OpKind::Separable, 0.1 + 0.2),
        ]
        .into();
        assert_eq!(
            parse_kind_scales(&kind_scales_text(&scales)).unwrap(),
            scales
        );
        assert_eq!(parse_kind_scales("").unwrap(), BTreeMap::new());
        for bad in [
            "stem",
            "conv=1",
            "stem=0",
            "stem=-1",
            "stem=nan",
            "stem=1 stem=2",
        ] {
            assert!(parse_kind_scales(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn estimates_apply_kind_scales_and_old_tables_sum_as_before() {
        let space = crate::builtin_space("tiny28").unwrap();
        let mut t = LatencyTable::new(Provenance {
            batch: 1,
            overhead_us: 5.0,
            ..Provenance::default()
        });
        for key in crate::space_op_keys(&space, 1) {
            t.rows.insert(key, OpStats::from_samples(&[2.0]));
        }
        let arch = Architecture::largest(&space);
        let ops = architecture_ops(&space, &arch, 1);
        let bottlenecks = ops.iter().filter(|k| k.op == OpKind::Bottleneck).count() as f64;
        let plain = t.estimate_us(&space, &arch).unwrap();
        assert_eq!(plain, 5.0 + 2.0 * ops.len() as f64);
        t.provenance
            .extra
            .insert(KIND_SCALE_FIELD.into(), "bottleneck=1.5".into());
        let scaled = t.estimate_us(&space, &arch).unwrap();
        assert!((scaled - (plain + 0.5 * 2.0 * bottlenecks)).abs() < 1e-9);
        t.provenance
            .extra
            .insert(KIND_SCALE_FIELD.into(), "bottleneck=x".into());
        assert!(t.estimate_us(&space, &arch).is_err());
    }
}
