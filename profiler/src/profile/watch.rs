//! The thermal-drift watch of a run: a one-op model kept open and re-timed
//! every few units (see [`crate::sentinel`]).

use std::collections::BTreeSet;

use tunas_shared::table::{SENTINEL_BASELINE_FIELD, TimingReference};
use tunas_shared::{LatencyTable, OpKey, Provenance};

use super::error::ProfileError;
use super::measure::reference_model;
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
/// off (`every` 0, or runs scaled by a reference). Its baseline is timed
/// now, or taken from the journal being resumed (`resumed`), and recorded
/// in `provenance` with its key.
pub(super) fn start_sentinel(
    runtime: &Runtime,
    s: &ProfileSettings,
    all_keys: &BTreeSet<OpKey>,
    resumed: Option<&LatencyTable>,
    provenance: &mut Provenance,
) -> Result<Option<Sentinel<SentinelProbe>>, ProfileError> {
    // Runs scaled by a reference keep one speed: pausing would only cost
    // time.
    let scaled = s.reference || s.timing.reference.is_some();
    let Some(key) = sentinel_key(all_keys).filter(|_| s.sentinel.every > 0 && !scaled) else {
        return Ok(None);
    };
    let model = reference_model(&key)?;
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

/// The reference every run of a profile is scaled by, recorded in
/// `provenance`: the table's own when refreshing one (already in
/// `s.timing`), the interrupted run's when resuming, else, with
/// `--reference`, the sentinel op timed now (its row statistic is the
/// level). A journal measured with a reference resumes only with one, and
/// one measured without only without.
pub(super) fn start_reference(
    runtime: &Runtime,
    s: &ProfileSettings,
    all_keys: &BTreeSet<OpKey>,
    resumed: Option<&LatencyTable>,
    provenance: &mut Provenance,
) -> Result<Option<TimingReference>, ProfileError> {
    let reference = match (&s.timing.reference, resumed) {
        (Some(r), _) => Some(*r),
        (None, Some(table)) => {
            let journal = table.path_text();
            let found =
                table
                    .provenance
                    .timing_reference()
                    .map_err(|source| ProfileError::BadNote {
                        journal: journal.clone(),
                        source,
                    })?;
            if found.is_some() != s.reference {
                let says = |on: bool| if on { "on" } else { "off" }.to_string();
                return Err(ProfileError::ResumeMismatch {
                    journal,
                    field: "--reference",
                    found: says(found.is_some()),
                    wanted: says(s.reference),
                });
            }
            found
        }
        (None, None) if s.reference => {
            let Some(key) = sentinel_key(all_keys) else {
                return Ok(None);
            };
            let model = reference_model(&key)?;
            let mut session = ModelSession::new(runtime, &model, &session_config(&s.timing, None))?;
            let level_us = benchmark_session(&mut session, &sentinel_loop())?
                .stats()
                .median_us;
            Some(TimingReference { key, level_us })
        }
        (None, None) => None,
    };
    if let Some(r) = &reference {
        provenance.set_timing_reference(r);
    }
    Ok(reference)
}
