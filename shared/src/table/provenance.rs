//! Where and how a table was measured: the `# field = value` lines before
//! the CSV header, and the `x-` notes the estimate reads (`x-statistic`,
//! `x-kind-scale`).

use std::collections::BTreeMap;

use super::LatencyTable;
use super::schema::MAX_OP_US;
use crate::error::TableError;
use crate::opkey::OpKind;

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

pub(super) const PROVENANCE_FIELDS: [&str; 15] = [
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
    pub(super) fn field_text(&self, field: &str) -> String {
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
    pub(super) fn set_field(&mut self, field: &str, value: &str) -> Result<(), String> {
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

/// The provenance field of the per-kind scale factors.
pub const KIND_SCALE_FIELD: &str = "x-kind-scale";

/// Parses `x-kind-scale`: `KIND=FACTOR` pairs separated by spaces (e.g.
/// `bottleneck=1.0213 separable=0.97`), each kind at most once, each factor
/// a positive finite number. Kinds not named scale by 1.
pub(crate) fn parse_kind_scales(text: &str) -> Result<BTreeMap<OpKind, f64>, String> {
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

impl LatencyTable {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
