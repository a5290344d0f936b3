//! Resuming an interrupted run: its journal must have been measured with
//! this run's settings, and lends the calibration times it holds.

use std::collections::BTreeMap;
use std::path::Path;

use tunas_shared::table::{CALIBRATION_SEED_FIELD, STATISTIC_FIELD};
use tunas_shared::{LatencyTable, Provenance, TableError};

use super::error::ProfileError;
use super::settings::ProfileSettings;
use crate::interleave::{CALIBRATION_E2E_FIELD, parse_calibration_times};
use crate::partial::Journal;

/// The calibration times a journal holds; a journal timed with another
/// calibration seed cannot lend them.
pub(super) fn journal_calibration_times(
    journal: &Path,
    found: &Provenance,
    s: &ProfileSettings,
) -> Result<BTreeMap<usize, f64>, ProfileError> {
    let Some(text) = found.extra.get(CALIBRATION_E2E_FIELD) else {
        return Ok(BTreeMap::new());
    };
    let bad_note = |source| ProfileError::BadNote {
        journal: journal.display().to_string(),
        source,
    };
    let seed = found.calibration_seed().map_err(bad_note)?;
    if seed != Some(s.calibration_seed) {
        return Err(ProfileError::ResumeMismatch {
            journal: journal.display().to_string(),
            field: CALIBRATION_SEED_FIELD,
            found: seed.map(|v| v.to_string()).unwrap_or_default(),
            wanted: s.calibration_seed.to_string(),
        });
    }
    parse_calibration_times(text).map_err(|message| {
        ProfileError::Table(TableError::BadProvenance {
            path: journal.display().to_string(),
            line: 0,
            message: format!("{CALIBRATION_E2E_FIELD}: {message}"),
        })
    })
}

fn check_resumable(
    journal: &Path,
    found: &Provenance,
    wanted: &Provenance,
) -> Result<(), ProfileError> {
    let pairs = [
        ("device", &found.device, &wanted.device),
        ("space_hash", &found.space_hash, &wanted.space_hash),
        (
            "execution_provider",
            &found.execution_provider,
            &wanted.execution_provider,
        ),
        (
            "runtime_version",
            &found.runtime_version,
            &wanted.runtime_version,
        ),
    ];
    for (field, a, b) in pairs {
        if a != b {
            return Err(ProfileError::ResumeMismatch {
                journal: journal.display().to_string(),
                field,
                found: a.clone(),
                wanted: b.clone(),
            });
        }
    }
    let (a, b) = (found.statistic_name(), wanted.statistic_name());
    if a != b {
        return Err(ProfileError::ResumeMismatch {
            journal: journal.display().to_string(),
            field: STATISTIC_FIELD,
            found: a.to_string(),
            wanted: b.to_string(),
        });
    }
    for (field, a, b) in [
        ("threads", found.threads, wanted.threads),
        ("batch", found.batch, wanted.batch),
    ] {
        if a != b {
            return Err(ProfileError::ResumeMismatch {
                journal: journal.display().to_string(),
                field,
                found: a.to_string(),
                wanted: b.to_string(),
            });
        }
    }
    Ok(())
}

/// The journal of an interrupted run and its rows, if there is one: only
/// with `--resume`, and only when it was measured with this run's
/// settings (`provenance`).
pub(super) fn resume_journal(
    jpath: &Path,
    s: &ProfileSettings,
    provenance: &Provenance,
) -> Result<Option<(Journal, LatencyTable)>, ProfileError> {
    if !jpath.exists() {
        return Ok(None);
    }
    let (journal, table) = Journal::resume(jpath)?;
    if !s.resume {
        return Err(ProfileError::JournalExists {
            journal: jpath.display().to_string(),
            rows: table.rows.len(),
        });
    }
    check_resumable(jpath, &table.provenance, provenance)?;
    eprintln!(
        "resuming {}: {} rows already measured",
        jpath.display(),
        table.rows.len()
    );
    Ok(Some((journal, table)))
}
