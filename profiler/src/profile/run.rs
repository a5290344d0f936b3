//! One `profile` or `refresh` run: the journal, the context networks and
//! one-op models that measure the plan's keys, the sentinel checks and
//! calibration networks interleaved with them, and the table written at
//! the end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tunas_shared::progress::ProgressLines;
use tunas_shared::table::{REFERENCE_START_FIELD, TimingReference};
use tunas_shared::{
    Architecture, LatencyTable, OpKey, OpStats, Provenance, SearchSpace, architecture_ops,
    space_op_keys,
};

use super::calibration::{CalibrationSet, leave_uncalibrated};
use super::error::ProfileError;
use super::measure::{measure_architecture, op_node_count, row_stats, time_in_context, time_op};
use super::resume::{journal_calibration_times, resume_journal};
use super::settings::{ProfileSettings, ReferenceLog, TimingSettings, new_provenance};
use super::watch::{MAX_REMEASURES, SentinelProbe, start_reference, start_sentinel};
use crate::device;
use crate::interleave::{CALIBRATION_E2E_FIELD, Interleave, calibration_times_text};
use crate::partial::{Journal, journal_path};
use crate::runtime::Runtime;
use crate::sentinel::{Check, Sentinel};
use crate::timing::fast_mode_us;

/// What one `profile` or `refresh` run measures.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Keys to measure now.
    pub to_measure: BTreeSet<OpKey>,
    /// Rows kept from an earlier table, as raw (uncalibrated) timings.
    pub kept_raw: BTreeMap<OpKey, OpStats>,
    /// Extra provenance fields to carry (refresh history).
    pub extra: BTreeMap<String, String>,
}

/// Profiles every op key of `space` (or the first `max_keys`) and writes
/// the table (see the module docs for the method). Rows go to a journal as
/// they are measured.
pub fn profile(
    runtime: &Runtime,
    space: &SearchSpace,
    s: &ProfileSettings,
) -> Result<LatencyTable, ProfileError> {
    let mut to_measure = space_op_keys(space, s.timing.batch);
    if let Some(n) = s.max_keys {
        to_measure = to_measure.into_iter().take(n.max(1)).collect();
    }
    run_plan(
        runtime,
        space,
        s,
        Plan {
            to_measure,
            ..Plan::default()
        },
    )
}

/// Measures what `plan` asks for, merges it with the kept rows, calibrates
/// when the table covers the whole space, and writes it.
pub fn run_plan(
    runtime: &Runtime,
    space: &SearchSpace,
    s: &ProfileSettings,
    plan: Plan,
) -> Result<LatencyTable, ProfileError> {
    let out = &s.out;
    if s.calibration_networks == 0 {
        return Err(ProfileError::BadSettings {
            what: "calibration needs at least one network (three for a fit of its three unknowns)"
                .into(),
        });
    }
    // --resume continues a journal; it never stands in for --force: a
    // finished table is data and is only replaced when asked to.
    if out.exists() && !s.force {
        return Err(ProfileError::OutputExists {
            path: out.display().to_string(),
        });
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let unwritable = |source: std::io::Error| ProfileError::Unwritable {
        path: dir.display().to_string(),
        source,
    };
    // The folder is not created: a mistyped one is an error, not a new folder.
    if !dir.is_dir() {
        return Err(unwritable(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such folder",
        )));
    }
    let scratch = dir.join(format!(".tunas-profile-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(unwritable)?;
    let result = profile_into(runtime, space, s, &scratch, plan);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Mixed into the calibration seed for the context networks, so that they
/// are not the calibration networks themselves.
const CONTEXT_SEED_SALT: u64 = 0x5eed;

/// Random networks drawn for each context network; the one covering the
/// most unmeasured keys is timed (more candidates: fewer networks to time,
/// more time spent drawing).
const CONTEXT_CANDIDATES: usize = 32;

/// Mixed into the calibration seed for the order of the run's units.
const INTERLEAVE_SEED_SALT: u64 = 0x1a7e;

/// The bar (on a terminal) and the plain lines (`--progress-lines`) of a
/// run of `total` keys with `done` already measured.
fn run_progress(s: &ProfileSettings, total: usize, done: usize) -> (ProgressBar, ProgressLines) {
    let progress = bar(total as u64, s.progress, "profile", "units");
    progress.set_position(done as u64);
    let lines = ProgressLines::new(s.progress_lines, "ops", total, done, s.progress_every);
    (progress, lines)
}

/// A progress bar of `len` `unit`s labelled `what`; hidden unless `show`.
fn bar(len: u64, show: bool, what: &str, unit: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    tunas_shared::progress::terminal_bar(what, len, unit)
}

/// Runs `plan` with its scratch files in `scratch`; the device's thermal
/// state is recorded before and after.
fn profile_into(
    runtime: &Runtime,
    space: &SearchSpace,
    s: &ProfileSettings,
    scratch: &Path,
    plan: Plan,
) -> Result<LatencyTable, ProfileError> {
    let sysfs = device::Sysfs::system();
    let before = sysfs.snapshot();
    let mut run = ProfileRun::start(runtime, space, s, scratch, plan)?;
    run.measure_keys()?;
    run.finish(&sysfs, &before)
}

/// The journal is taken out of a run only to be rewritten or finished.
const JOURNAL_OPEN: &str = "the journal is open until the run ends";

/// The state of a run between its start and its table. A unit is one
/// context network or one one-op key; after each the sentinel may be
/// checked and a calibration network may be timed.
struct ProfileRun<'a> {
    runtime: &'a Runtime,
    space: &'a SearchSpace,
    s: &'a ProfileSettings,
    /// `s.timing` with the run's reference, if it has one.
    timing: TimingSettings,
    scratch: &'a Path,
    plan: Plan,
    /// Every op key of the space.
    all_keys: BTreeSet<OpKey>,
    /// The journal's path.
    jpath: PathBuf,
    /// Open while the run lasts (a rewrite replaces it).
    journal: Option<Journal>,
    /// Rows measured so far, with the provenance the journal holds.
    measured: LatencyTable,
    sentinel: Option<Sentinel<SentinelProbe>>,
    /// Calibration networks (empty when the table will not be complete).
    cal_archs: Vec<Architecture>,
    /// Their end-to-end times so far, by index.
    cal_times: BTreeMap<usize, f64>,
    /// Calibration networks timed since the last steady sentinel check.
    cal_since_check: Vec<usize>,
    /// When a calibration network is due among the op units.
    schedule: Interleave,
    progress: ProgressBar,
    lines: ProgressLines,
    /// Draws the candidate context networks.
    rng: StdRng,
    /// Samples of keys seen in fewer contexts than wanted, and how many.
    pooled: BTreeMap<OpKey, (usize, Vec<f64>)>,
    /// Rows journaled since the last steady sentinel check.
    since_check: Vec<OpKey>,
    /// Contexts per key.
    wanted: usize,
    /// What this run timed, for the profiling cost on record.
    timed: TimedCounts,
}

/// How many models a run timed (a resumed run counts its own; sentinel
/// re-timings, one op each, are not counted).
#[derive(Clone, Copy, Debug)]
struct TimedCounts {
    /// Random networks timed with per-node profiling.
    context_networks: usize,
    /// One-op models, for keys no network reached.
    one_op_models: usize,
    /// Calibration networks timed end to end.
    calibration_networks: usize,
    /// When the run started.
    started: std::time::Instant,
}

impl TimedCounts {
    /// The `x-profiling-cost` note.
    fn text(&self) -> String {
        format!(
            "{} networks timed ({} context networks, {} calibration networks) and {} one-op models in {:.0} s{}",
            self.context_networks + self.calibration_networks,
            self.context_networks,
            self.calibration_networks,
            self.one_op_models,
            self.started.elapsed().as_secs_f64(),
            " (this run; a resumed run counts only its own work)"
        )
    }
}

impl<'a> ProfileRun<'a> {
    /// Opens (or resumes) the journal, takes the sentinel's baseline and
    /// draws the calibration networks.
    fn start(
        runtime: &'a Runtime,
        space: &'a SearchSpace,
        s: &'a ProfileSettings,
        scratch: &'a Path,
        plan: Plan,
    ) -> Result<Self, ProfileError> {
        let t = &s.timing;
        let mut provenance = new_provenance(runtime, space, t);
        provenance.extra.insert(
            tunas_shared::table::CALIBRATION_SEED_FIELD.into(),
            s.calibration_seed.to_string(),
        );
        let all_keys = space_op_keys(space, t.batch);
        let jpath = journal_path(&s.out);
        let resumed = resume_journal(&jpath, s, &provenance)?;
        let sentinel = start_sentinel(
            runtime,
            s,
            &all_keys,
            resumed.as_ref().map(|(_, table)| table),
            &mut provenance,
        )?;
        let reference = start_reference(
            runtime,
            s,
            &all_keys,
            resumed.as_ref().map(|(_, table)| table),
            &mut provenance,
        )?;
        let timing = TimingSettings {
            // A level this run set (not a refreshed table's) moves to the
            // reference's fast mode over the run at the end.
            reference_log: reference
                .filter(|_| s.timing.reference.is_none())
                .map(|_| ReferenceLog::default()),
            reference,
            ..s.timing.clone()
        };
        let (journal, mut measured) = match resumed {
            Some(r) => r,
            None => {
                let table = LatencyTable::new(provenance);
                (Journal::create(&jpath, &table)?, table)
            }
        };
        // Rows from a journal that the plan does not ask for are ignored.
        measured.rows.retain(|k, _| plan.to_measure.contains(k));
        let cal_archs = calibration_networks(space, s, &all_keys, &plan);
        // Their times so far come from the journal.
        let mut cal_times = journal_calibration_times(&jpath, &measured.provenance, s)?;
        cal_times.retain(|i, _| *i < cal_archs.len());
        let schedule = Interleave::new(
            s.calibration_seed
                ^ INTERLEAVE_SEED_SALT
                ^ (measured.rows.len() + cal_times.len()) as u64,
        );
        let (progress, lines) = run_progress(s, plan.to_measure.len(), measured.rows.len());
        // Context networks: the best of several random candidates at
        // covering keys not yet measured. Seeded by how many rows exist, so
        // a resumed run picks new networks.
        let rng = StdRng::seed_from_u64(
            s.calibration_seed ^ CONTEXT_SEED_SALT ^ measured.rows.len() as u64,
        );
        Ok(ProfileRun {
            runtime,
            space,
            s,
            timing,
            scratch,
            plan,
            all_keys,
            jpath,
            journal: Some(journal),
            measured,
            sentinel,
            cal_archs,
            cal_times,
            cal_since_check: Vec::new(),
            schedule,
            progress,
            lines,
            rng,
            pooled: BTreeMap::new(),
            since_check: Vec::new(),
            wanted: s.contexts_per_key.max(1),
            timed: TimedCounts {
                context_networks: 0,
                one_op_models: 0,
                calibration_networks: 0,
                started: std::time::Instant::now(),
            },
        })
    }

    /// Plan keys without a row yet.
    fn missing(&self) -> usize {
        self.plan
            .to_measure
            .iter()
            .filter(|k| !self.measured.rows.contains_key(k))
            .count()
    }

    /// Measures every key of the plan: context networks, then one-op
    /// models for the keys none reached; again while a drift threw rows
    /// away.
    fn measure_keys(&mut self) -> Result<(), ProfileError> {
        while self.missing() > 0 {
            self.time_context_networks()?;
            self.keep_pooled()?;
            self.time_unreached_keys()?;
        }
        self.progress.finish_and_clear();
        Ok(())
    }

    /// Times context networks until every key has a row, or until
    /// `max_networks_without_progress` in a row reach no new key.
    fn time_context_networks(&mut self) -> Result<(), ProfileError> {
        let mut misses = 0;
        while self.missing() > 0 && misses < self.s.max_networks_without_progress {
            let (score, arch) = self.best_candidate();
            if score == 0 {
                misses += 1;
                continue;
            }
            let found =
                time_in_context(self.runtime, self.space, &arch, &self.timing, self.scratch)?;
            self.timed.context_networks += 1;
            let rows_before = self.measured.rows.len();
            let progressed = self.pool_runs(found)?;
            self.lines.update(self.measured.rows.len());
            if progressed {
                misses = 0;
            } else {
                misses += 1;
            }
            self.schedule
                .unit(self.measured.rows.len().saturating_sub(rows_before));
            if !self.unit_done()? {
                self.calibrate_if_due()?;
            }
        }
        Ok(())
    }

    /// The best of [`CONTEXT_CANDIDATES`] random networks at covering keys
    /// not yet measured,
    /// with its score.
    fn best_candidate(&mut self) -> (usize, Architecture) {
        let (space, batch) = (self.space, self.s.timing.batch);
        let (plan, measured, pooled) = (&self.plan, &self.measured, &self.pooled);
        let rng = &mut self.rng;
        (0..CONTEXT_CANDIDATES)
            .map(|_| {
                let arch = Architecture::sample_uniform(space, &mut *rng);
                let new = architecture_ops(space, &arch, batch)
                    .into_iter()
                    .filter(|k| plan.to_measure.contains(k) && !measured.rows.contains_key(k))
                    .collect::<BTreeSet<_>>();
                // Keys never seen count double: coverage first.
                let score: usize = new
                    .iter()
                    .map(|k| if pooled.contains_key(k) { 1 } else { 2 })
                    .sum();
                (score, arch)
            })
            .max_by_key(|(score, _)| *score)
            .expect("at least one candidate")
    }

    /// Pools one context network's runs into the keys it reached that
    /// still lack a row; a key seen in enough contexts becomes a row.
    /// Returns whether it reached any such key.
    fn pool_runs(&mut self, found: Vec<(OpKey, Vec<f64>)>) -> Result<bool, ProfileError> {
        let mut progressed = false;
        for (key, runs) in found {
            if !self.plan.to_measure.contains(&key) || self.measured.rows.contains_key(&key) {
                continue;
            }
            let entry = self.pooled.entry(key).or_default();
            entry.0 += 1;
            entry.1.extend(runs);
            progressed = true;
            if entry.0 >= self.wanted {
                let stats = row_stats(&entry.1, &self.timing);
                self.pooled.remove(&key);
                self.record_row(key, stats)?;
            }
        }
        Ok(progressed)
    }

    /// Keys seen in fewer contexts than wanted keep what they have.
    fn keep_pooled(&mut self) -> Result<(), ProfileError> {
        for (key, (_, runs)) in std::mem::take(&mut self.pooled) {
            self.record_row(key, row_stats(&runs, &self.timing))?;
        }
        Ok(())
    }

    /// Keys no network reached: one-op models. Stops early when a drift
    /// threw rows away (back to the context networks).
    fn time_unreached_keys(&mut self) -> Result<(), ProfileError> {
        let left: Vec<OpKey> = self
            .plan
            .to_measure
            .iter()
            .filter(|k| !self.measured.rows.contains_key(k))
            .copied()
            .collect();
        for key in left {
            self.progress.set_message("one-op");
            let stats = time_op(self.runtime, &key, &self.timing, self.scratch)?;
            self.timed.one_op_models += 1;
            self.record_row(key, stats)?;
            self.lines.update(self.measured.rows.len());
            self.schedule.unit(1);
            if self.unit_done()? {
                // Rows were thrown away: back to the context networks.
                break;
            }
            self.calibrate_if_due()?;
        }
        Ok(())
    }

    /// Journals a finished row.
    fn record_row(&mut self, key: OpKey, stats: OpStats) -> Result<(), ProfileError> {
        self.journal_mut().append(&key, &stats)?;
        self.measured.rows.insert(key, stats);
        self.since_check.push(key);
        self.progress.inc(1);
        Ok(())
    }

    /// One unit is done: maybe check the sentinel, and on drift throw away
    /// what was measured since the last steady check. Returns whether rows
    /// were thrown away.
    fn unit_done(&mut self) -> Result<bool, ProfileError> {
        let Some(sentinel) = self.sentinel.as_mut() else {
            return Ok(false);
        };
        match sentinel.tick()? {
            Check::Skipped => Ok(false),
            Check::Steady => {
                self.since_check.clear();
                self.cal_since_check.clear();
                Ok(false)
            }
            Check::Drifted(event) => {
                eprintln!(
                    "sentinel drifted {:+.1}% after {} units: {}",
                    event.drift_pct(),
                    event.after_units,
                    event.outcome()
                );
                let remeasure = sentinel.events.len() <= MAX_REMEASURES;
                let n = if remeasure {
                    self.throw_away_since_check()?
                } else {
                    self.since_check.clear();
                    self.cal_since_check.clear();
                    0
                };
                if let Some(last) = self.sentinel.as_mut().and_then(|s| s.events.last_mut()) {
                    last.remeasured_rows = n;
                }
                Ok(n > 0)
            }
        }
    }

    /// Drops the rows and calibration times measured since the last steady
    /// sentinel check (and the pooled samples), and rewrites the journal
    /// without them. Returns how many rows were dropped.
    fn throw_away_since_check(&mut self) -> Result<usize, ProfileError> {
        let affected: Vec<OpKey> = self.since_check.drain(..).collect();
        for k in &affected {
            self.measured.rows.remove(k);
        }
        for i in self.cal_since_check.drain(..) {
            self.cal_times.remove(&i);
        }
        self.record_calibration_times();
        self.pooled.clear();
        self.rewrite_journal()?;
        self.progress.set_position(self.measured.rows.len() as u64);
        Ok(affected.len())
    }

    /// After an op unit: maybe time the next calibration network.
    fn calibrate_if_due(&mut self) -> Result<(), ProfileError> {
        let left: Vec<usize> = (0..self.cal_archs.len())
            .filter(|i| !self.cal_times.contains_key(i))
            .collect();
        if let Some(&i) = left.first()
            && self.schedule.due(left.len(), self.missing())
        {
            self.time_calibration(i)?;
            self.unit_done()?;
        }
        Ok(())
    }

    /// Times calibration network `i` and journals its time.
    fn time_calibration(&mut self, i: usize) -> Result<(), ProfileError> {
        let e2e = measure_architecture(self.runtime, self.space, &self.cal_archs[i], &self.timing)?
            .median_us;
        self.timed.calibration_networks += 1;
        self.cal_times.insert(i, e2e);
        self.cal_since_check.push(i);
        self.record_calibration_times();
        self.rewrite_journal()
    }

    /// The calibration times so far, into the journal's provenance.
    fn record_calibration_times(&mut self) {
        self.measured.provenance.extra.insert(
            CALIBRATION_E2E_FIELD.into(),
            calibration_times_text(&self.cal_times),
        );
    }

    fn journal_mut(&mut self) -> &mut Journal {
        self.journal.as_mut().expect(JOURNAL_OPEN)
    }

    /// Replaces the journal's content with the rows and provenance measured so far.
    fn rewrite_journal(&mut self) -> Result<(), ProfileError> {
        let journal = self.journal.take().expect(JOURNAL_OPEN);
        self.journal = Some(journal.rewrite(&self.measured)?);
        Ok(())
    }

    /// Times the calibration networks not timed among the op units (and
    /// journals them); returns how many were timed among them.
    fn time_missing_calibration_networks(&mut self) -> Result<usize, ProfileError> {
        let interleaved = self.cal_times.len();
        let n = self.cal_archs.len();
        let cal = bar(n as u64, self.s.progress, "calibration", "networks");
        let mut lines = ProgressLines::new(
            self.s.progress_lines,
            "calibration",
            n,
            0,
            self.s.progress_every,
        );
        for i in 0..n {
            if !self.cal_times.contains_key(&i) {
                self.time_calibration(i)?;
            }
            cal.inc(1);
            lines.update(i + 1);
        }
        cal.finish_and_clear();
        Ok(interleaved)
    }

    /// With a reference whose level this run timed at its start (which may
    /// have caught the device in a slow mode): rows and calibration times
    /// move to the reference's fast mode over every run of the profile, so
    /// that tables of one device agree whatever mode each began in. The
    /// level timed at the start is recorded too.
    fn move_to_fast_level(
        &mut self,
        raw: &mut BTreeMap<OpKey, OpStats>,
        provenance: &mut Provenance,
    ) {
        let (Some(log), Some(reference)) = (&self.timing.reference_log, self.timing.reference)
        else {
            return;
        };
        let readings = log.readings();
        let Some(level_us) = fast_mode_us(&readings) else {
            return;
        };
        let factor = level_us / reference.level_us;
        for row in raw.values_mut() {
            *row = row.scaled(factor);
        }
        for time in self.cal_times.values_mut() {
            *time *= factor;
        }
        provenance.set_timing_reference(&TimingReference {
            level_us,
            ..reference
        });
        provenance.extra.insert(
            REFERENCE_START_FIELD.into(),
            format!(
                "{} (the level timed at the start; runs moved by x{factor:.4} to the fast mode over {} reference readings)",
                reference.level_us,
                readings.len()
            ),
        );
    }

    /// The calibration networks (all timed, `interleaved` of them among
    /// the op units) with the raw op sums of each.
    fn calibration_set(
        &self,
        raw: &BTreeMap<OpKey, OpStats>,
        interleaved: usize,
    ) -> CalibrationSet {
        let (rows, ops) = (0..self.cal_archs.len())
            .map(|i| {
                let ops = architecture_ops(self.space, &self.cal_archs[i], self.s.timing.batch);
                let sum: f64 = ops.iter().map(|k| raw[k].median_us).sum();
                let nodes: usize = ops.iter().map(op_node_count).sum();
                let e2e = self.cal_times[&i];
                ((sum, nodes as f64, e2e), (ops, e2e))
            })
            .unzip();
        CalibrationSet {
            rows,
            ops,
            interleaved,
            seed: self.s.calibration_seed,
            times: self.cal_times.clone(),
        }
    }

    /// Merges the measured rows with the kept ones, calibrates a table that
    /// covers the space, records the device's state and the sentinel,
    /// writes the table and deletes the journal.
    fn finish(
        mut self,
        sysfs: &device::Sysfs,
        before: &device::ThermalSnapshot,
    ) -> Result<LatencyTable, ProfileError> {
        // Raw rows of the whole table: measured now, and kept from before.
        let mut raw = self.plan.kept_raw.clone();
        raw.extend(self.measured.rows.iter().map(|(k, v)| (*k, v.clone())));
        let complete = self.all_keys.iter().all(|k| raw.contains_key(k));

        let mut table = LatencyTable::new(Provenance {
            date: tunas_shared::time::utc_now_rfc3339(),
            ..self.measured.provenance.clone()
        });
        let op_loop = &self.s.timing.op_loop;
        let e = &mut table.provenance.extra;
        e.extend(self.plan.extra.clone());
        e.insert(
            "x-op-loop".into(),
            format!(
                "warm-up >= {} runs and {:?}; timed >= {} runs and {:?}",
                op_loop.min_warmup_runs,
                op_loop.min_warmup_time,
                op_loop.min_runs,
                op_loop.min_time
            ),
        );
        if complete {
            // Calibration on end-to-end networks: those not timed among the
            // op units are timed now (and journaled).
            let interleaved = self.time_missing_calibration_networks()?;
            self.move_to_fast_level(&mut raw, &mut table.provenance);
            self.calibration_set(&raw, interleaved)
                .calibrate(&mut table, &raw);
        } else {
            leave_uncalibrated(&mut table, raw, self.all_keys.len());
        }
        let after = sysfs.snapshot();
        let e = &mut table.provenance.extra;
        before.record("before", e);
        after.record("after", e);
        if let Some(sentinel) = &self.sentinel {
            e.insert("x-sentinel".into(), sentinel.summary());
            e.insert("x-sentinel-drifts".into(), sentinel.events_text());
        } else {
            e.remove(tunas_shared::table::SENTINEL_BASELINE_FIELD);
            e.insert("x-sentinel".into(), "off".into());
        }
        e.insert("x-profiling-cost".into(), self.timed.text());
        table.write_atomic(&self.s.out)?;
        let journal = self.journal.take().expect(JOURNAL_OPEN);
        journal
            .finish()
            .map_err(|source| ProfileError::Unwritable {
                path: self.jpath.display().to_string(),
                source,
            })?;
        table.path = Some(self.s.out.clone());
        Ok(table)
    }
}

/// The calibration networks of a run whose table will cover the whole
/// space (kept rows and measured ones); none otherwise.
fn calibration_networks(
    space: &SearchSpace,
    s: &ProfileSettings,
    all_keys: &BTreeSet<OpKey>,
    plan: &Plan,
) -> Vec<Architecture> {
    let calibrate = all_keys
        .iter()
        .all(|k| plan.to_measure.contains(k) || plan.kept_raw.contains_key(k));
    if !calibrate {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(s.calibration_seed);
    (0..s.calibration_networks)
        .map(|_| Architecture::sample_uniform(space, &mut rng))
        .collect()
}
