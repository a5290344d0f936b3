//! The thermal-drift watch of a run: a one-op model kept open and re-timed
//! every few units (see [`crate::sentinel`]).

use std::collections::BTreeSet;

use tunas_shared::onnx::{RandomWeights, op_model};
use tunas_shared::table::SENTINEL_BASELINE_FIELD;
use tunas_shared::{LatencyTable, OpKey, Provenance};

use super::error::ProfileError;
use super::settings::{ProfileSettings, session_config};
use crate::runtime::{ModelSession, Runtime};
use crate::sentinel::Sentinel;
use crate::timing::{BenchmarkConfig, benchmark_session};

/// The sentinel op: the key with the median FLOP count, so its timing is
/// long enough to be stable and short enough to re-time often.
pub(crate) fn sentinel_key(keys: &BTreeSet<OpKey>) -> Option<OpKey> {
    let mut by_flops: Vec<OpKey> = keys.iter().copied().collect();
    by_flops.sort_by_key(|k| (k.flops(), *k));
    by_flops.get(by_flops.len() / 2).copied()
}

/// The sentinel's own loop: long enough for a stable median whatever the
/// op loop's settings.
pub(super) fn sentinel_loop() -> BenchmarkConfig {
    BenchmarkConfig {
        min_warmup_runs: 3,
        min_warmup_time: std::time::Duration::from_millis(10),
        min_runs: 30,
        min_time: std::time::Duration::from_millis(40),
        max_time: std::time::Duration::from_secs(10),
    }
}

/// Stop throwing rows away after this many drifts; later drifts are only
/// recorded (a device that never settles would otherwise never finish).
pub(super) const MAX_REMEASURES: usize = 5;

/// Re-times the sentinel op: its plain median (µs).
pub(super) type SentinelProbe = Box<dyn FnMut() -> Result<f64, ProfileError>>;

/// The sentinel of a run over `all_keys`, unless its settings turn it
/// off (`every` 0). Its baseline is timed now, or taken from the journal
/// being resumed (`resumed`), and recorded in `provenance` with its key.
pub(super) fn start_sentinel(
    runtime: &Runtime,
    s: &ProfileSettings,
    all_keys: &BTreeSet<OpKey>,
    resumed: Option<&LatencyTable>,
    provenance: &mut Provenance,
) -> Result<Option<Sentinel<SentinelProbe>>, ProfileError> {
    let Some(key) = sentinel_key(all_keys).filter(|_| s.sentinel.every > 0) else {
        return Ok(None);
    };
    let model = op_model(&key, &mut RandomWeights::new(3)).map_err(|e| ProfileError::Model {
        what: key.to_string(),
        source: e,
    })?;
    let mut session = ModelSession::new(runtime, &model, &session_config(&s.timing, None))?;
    let cfg = sentinel_loop();
    let measure: SentinelProbe = Box::new(move || -> Result<f64, ProfileError> {
        Ok(benchmark_session(&mut session, &cfg)?.plain_median_us())
    });
    let journal_baseline = match resumed {
        Some(table) => {
            table
                .provenance
                .sentinel_baseline_us()
                .map_err(|source| ProfileError::BadNote {
                    journal: table.path_text(),
                    source,
                })?
        }
        None => None,
    };
    let sentinel = Sentinel::new(s.sentinel.clone(), measure, journal_baseline)?;
    provenance.extra.insert(
        SENTINEL_BASELINE_FIELD.into(),
        sentinel.baseline_us().to_string(),
    );
    provenance
        .extra
        .insert("x-sentinel-key".into(), key.to_string());
    Ok(Some(sentinel))
}
