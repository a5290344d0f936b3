//! Searched against random networks of the same latency, with weight
//! sharing's own rank correlation: the report that says whether the search
//! is worth running.
//!
//! For every target latency the benchmark runs S searches (seeds 1..=S unless
//! the first is given) and
//! draws N random architectures from the ±band around the target (TuNAS's
//! random-search baseline); every architecture is trained stand-alone with
//! one recipe (the searched ones with R training seeds, so that training
//! noise is measured), and every architecture of a target is also evaluated
//! with each search's shared weights, at the end of the warm-up and at the
//! end of the search, for Kendall τ between shared-weight and stand-alone
//! accuracy.
//!
//! The folder holds `benchmark.json` (everything that defines the
//! benchmark: a folder made for another space, table, data or recipe is
//! refused), `journal.jsonl` (one line per finished piece of work, flushed
//! as it finishes: a killed benchmark resumes without redoing any of it),
//! one search run folder per (target, seed), and the report
//! (`report.json`, one chart per target).

mod compare;
mod journal;
pub(crate) mod pool;
mod report;
mod reuse;
mod runner;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tunas_shared::{LatencyTable, SearchSpace};

pub use compare::{Comparison, FolderRow, Pooled, compare, comparison_text};
pub(crate) use journal::{Entry, SharedPhase};
pub use report::{
    BenchmarkReport, RandomCloud, RankCorrelation, SearchedArch, TargetReport, text as report_text,
};
pub(crate) use runner::minutes;
pub use runner::{RunSettings, run};

use crate::data::TrainTest;
use crate::search::{SearchConfig, SearchError, random_within_band};
use crate::train::{TrainConfig, TrainError};
use crate::weights::WeightsError;

/// The benchmark could not run, or its folder belongs to another one.
#[derive(Debug, Error)]
pub enum BenchmarkError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A journal line is not a journal entry.
    #[error("{}:{line}: not a benchmark journal entry ({message})", path.display())]
    Journal {
        /// The journal.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The folder holds a benchmark with other settings.
    #[error(
        "{}: the work in this folder was made with {key} = {stored}, this run has {given}; results of different settings are never mixed: use another folder, or the same settings",
        dir.display()
    )]
    Mismatch {
        /// The benchmark folder.
        dir: PathBuf,
        /// Dotted name of the first differing setting.
        key: String,
        /// Its value in the folder.
        stored: String,
        /// Its value now.
        given: String,
    },
    /// A folder to reuse trainings from was made with another space,
    /// images or recipe.
    #[error(
        "trainings from {}: they were made with {key} = {stored}, this benchmark has {given}; only trainings of the same space, images and recipe can be reused",
        dir.display()
    )]
    ForeignTrainings {
        /// The other folder.
        dir: PathBuf,
        /// Dotted name of the first differing setting.
        key: String,
        /// Its value there.
        stored: String,
        /// Its value here.
        given: String,
    },
    /// Folders given to `compare` do not measure the same thing.
    #[error(
        "{}: cannot be compared with {}: {key} is {value} there and {base_value} in the first folder; compare only folders of one space, table, images, recipe and target",
        dir.display(),
        base.display()
    )]
    Incomparable {
        /// The folder that differs.
        dir: PathBuf,
        /// The first folder given.
        base: PathBuf,
        /// Dotted name of the first differing setting.
        key: String,
        /// Its value in `dir`.
        value: String,
        /// Its value in `base`.
        base_value: String,
    },
    /// Another benchmark process works in the folder.
    #[error(
        "{}: another benchmark (process {pid}) is running in this folder; wait for it, or stop it",
        dir.display()
    )]
    Busy {
        /// The folder.
        dir: PathBuf,
        /// Its process id.
        pid: u32,
    },
    /// Too few random architectures lie in the band.
    #[error(
        "only {found} of {wanted} random architectures lie within ±{band_pct:.1}% of {target_ms:.4} ms (in {draws} uniform draws): widen the band or pick a target nearer the middle of the space's latencies"
    )]
    BandUnreachable {
        /// Target, ms.
        target_ms: f64,
        /// Found.
        found: usize,
        /// Wanted.
        wanted: usize,
        /// Band, percent.
        band_pct: f64,
        /// Draws tried.
        draws: usize,
    },
    /// A setting is out of range.
    #[error("{what}: {why}")]
    BadSetting {
        /// The setting.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// A search failed.
    #[error("search for target {target} seed {seed}: {source}")]
    Search {
        /// Target index.
        target: usize,
        /// Seed.
        seed: u64,
        /// The cause.
        #[source]
        source: SearchError,
    },
    /// A training failed.
    #[error("training {arch}: {source}")]
    Train {
        /// Architecture.
        arch: String,
        /// The cause.
        #[source]
        source: TrainError,
    },
    /// A one-thread worker pool could not be started.
    #[error("cannot start a worker thread: {0}")]
    Worker(#[source] TrainError),
    /// Shared weights could not be read.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The table could not estimate an architecture.
    #[error(transparent)]
    Table(#[from] tunas_shared::TableError),
}

/// How the target latencies are chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetChoice {
    /// These latencies, ms.
    Ms(Vec<f64>),
    /// These percentiles (0–100) of the estimated latency of uniform
    /// samples (see [`crate::search::latency_samples`]).
    Percentiles(Vec<f64>),
}

impl TargetChoice {
    /// Checks the values: positive finite latencies, percentiles in [0, 100].
    pub fn check(&self) -> Result<(), BenchmarkError> {
        let bad = |what, why: String| Err(BenchmarkError::BadSetting { what, why });
        match self {
            TargetChoice::Ms(v) if v.is_empty() => bad("targets-ms", "give at least one".into()),
            TargetChoice::Ms(v) if v.iter().any(|t| !(t.is_finite() && *t > 0.0)) => bad(
                "targets-ms",
                format!("{v:?}: every target must be a positive number of ms"),
            ),
            TargetChoice::Percentiles(v) if v.is_empty() => {
                bad("percentiles", "give at least one".into())
            }
            TargetChoice::Percentiles(v) if v.iter().any(|p| !(0.0..=100.0).contains(p)) => bad(
                "percentiles",
                format!("{v:?}: every percentile must lie in [0, 100]"),
            ),
            _ => Ok(()),
        }
    }

    /// The target latencies, ms.
    pub(crate) fn resolve(
        &self,
        space: &SearchSpace,
        table: &LatencyTable,
    ) -> Result<Vec<f64>, tunas_shared::TableError> {
        Ok(match self {
            TargetChoice::Ms(v) => v.clone(),
            TargetChoice::Percentiles(p) => {
                let sorted =
                    crate::search::latency_samples(space, table, TARGET_SAMPLES, TARGET_SEED)?;
                p.iter()
                    .map(|q| tunas_shared::table::quantile(&sorted, q / 100.0))
                    .collect()
            }
        })
    }
}

/// Uniform samples and seed of the percentile targets (as `targets` uses).
pub(crate) const TARGET_SAMPLES: usize = 1000;
/// See [`TARGET_SAMPLES`].
pub(crate) const TARGET_SEED: u64 = 1;

/// Everything that defines a benchmark (what `benchmark.json` records).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkSettings {
    /// How targets are chosen.
    pub targets: TargetChoice,
    /// Searches per target (seeds `first_search_seed` onwards).
    pub searches: usize,
    /// Seed of the first search of each target; the others follow it.
    #[serde(default = "default_first_search_seed")]
    pub first_search_seed: u64,
    /// Random architectures per target.
    pub random: usize,
    /// Relative band around the target for random architectures.
    pub band: f64,
    /// Seed of the random architectures.
    pub random_seed: u64,
    /// Uniform draws tried to fill each band.
    #[serde(default = "default_band_draws")]
    pub band_draws: usize,
    /// Training seeds of each searched architecture (0..train_seeds); random
    /// architectures are trained with seed 0.
    pub train_seeds: usize,
    /// The first this many random architectures of each target are also
    /// trained with every other training seed, so that the training noise
    /// rests on more architectures than the searched ones. A folder's value
    /// may grow on a later run (the added trainings are new work; nothing
    /// done changes meaning); it never shrinks.
    #[serde(default)]
    pub noise_random: usize,
    /// The stand-alone training recipe (its seed is replaced per training).
    pub recipe: TrainConfig,
    /// The search (its target and seed are replaced per search).
    pub search: SearchConfig,
    /// Held-out images of the search (default: `SearchData::default_holdout`).
    pub holdout: Option<usize>,
    /// Use only this many training images (searches and trainings): quick
    /// runs and tests.
    pub limit_train: Option<usize>,
    /// Held-out images a shared-weight accuracy is measured on.
    pub shared_eval_images: usize,
    /// Training batches of 256 that recalibrate BN before a shared-weight
    /// evaluation.
    pub calibration_batches: usize,
}

fn default_first_search_seed() -> u64 {
    1
}

fn default_band_draws() -> usize {
    crate::search::BandDraw::DEFAULT_MAX_DRAWS
}

impl BenchmarkSettings {
    /// The defaults: targets at the 25th and 75th percentiles, 2 searches
    /// and 20 random architectures per target in a ±3% band, 2 training
    /// seeds, 3 epochs of the stand-alone recipe, the default search.
    pub fn defaults() -> Self {
        let mut recipe = TrainConfig::new(crate::train::OptimizerKind::Sgd);
        recipe.epochs = 3;
        recipe.eval_every_epoch = false;
        BenchmarkSettings {
            targets: TargetChoice::Percentiles(vec![25.0, 75.0]),
            searches: 2,
            first_search_seed: default_first_search_seed(),
            random: 20,
            band: 0.03,
            random_seed: 1,
            band_draws: default_band_draws(),
            train_seeds: 2,
            noise_random: 0,
            recipe,
            search: SearchConfig::defaults(3000, 1.0),
            holdout: None,
            limit_train: None,
            shared_eval_images: 2000,
            calibration_batches: 10,
        }
    }

    /// The seeds of each target's searches.
    pub(crate) fn search_seeds(&self) -> std::ops::Range<u64> {
        self.first_search_seed..self.first_search_seed + self.searches as u64
    }

    /// Checks ranges before any work.
    pub fn check(&self) -> Result<(), BenchmarkError> {
        let bad = |what, why: String| Err(BenchmarkError::BadSetting { what, why });
        self.targets.check()?;
        if self.searches == 0 {
            bad("searches", "at least one search per target".into())?;
        }
        if self
            .first_search_seed
            .checked_add(self.searches as u64)
            .is_none()
        {
            bad(
                "first-search-seed",
                format!(
                    "{}: the seeds of {} searches would pass the largest seed",
                    self.first_search_seed, self.searches
                ),
            )?;
        }
        if self.random < 2 {
            bad(
                "random",
                "at least 2 random architectures per target".into(),
            )?;
        }
        if !(self.band.is_finite() && self.band > 0.0 && self.band < 1.0) {
            bad(
                "band",
                format!("{}: must lie in (0, 1), e.g. 0.03", self.band),
            )?;
        }
        if self.train_seeds == 0 {
            bad("train-seeds", "at least one training seed".into())?;
        }
        if self.noise_random > self.random {
            bad(
                "noise-random",
                format!(
                    "{}: at most the {} random architectures per target",
                    self.noise_random, self.random
                ),
            )?;
        }
        if self.noise_random > 0 && self.train_seeds < 2 {
            bad(
                "noise-random",
                "measuring noise on random architectures needs --train-seeds 2 or more".into(),
            )?;
        }
        if self.shared_eval_images == 0 || self.calibration_batches == 0 {
            bad(
                "shared-eval-images",
                "shared-weight evaluation needs at least one image and one BN batch".into(),
            )?;
        }
        Ok(())
    }
}

/// What a benchmark runs on besides its settings.
pub struct BenchmarkInputs {
    /// The space.
    pub space: SearchSpace,
    /// Its latency table.
    pub table: LatencyTable,
    /// Where the table came from.
    pub table_path: PathBuf,
    /// Content digest of the table file.
    pub table_digest: String,
    /// Training and test images.
    pub data: TrainTest,
    /// Where the images came from.
    pub data_origin: String,
}

/// `benchmark.json`: the settings and the identity of space, table and
/// data, resolved targets included.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Space name.
    pub(crate) space: String,
    /// Space content hash.
    pub(crate) space_hash: String,
    /// The table file (informational: the digest decides).
    pub(crate) table: String,
    /// Digest of the table file's content.
    pub(crate) table_digest: String,
    /// The images.
    pub(crate) data: String,
    /// Target latencies, ms.
    pub(crate) targets_ms: Vec<f64>,
    /// The settings.
    pub(crate) settings: BenchmarkSettings,
}

/// Keys of a manifest that may differ between runs of one folder.
const INFORMATIONAL_KEYS: [&str; 1] = ["table"];

/// Keys of a manifest compared before the others, in this order.
const LEADING_KEYS: [&str; 3] = ["space", "space_hash", "table_digest"];

impl Manifest {
    fn file(dir: &Path) -> PathBuf {
        BenchmarkDir {
            dir: dir.to_path_buf(),
        }
        .manifest()
    }

    /// The manifest stored in `dir`, if any.
    pub(crate) fn read(dir: &Path) -> Result<Option<Manifest>, BenchmarkError> {
        read_manifest(&Self::file(dir))
    }
}

/// The manifest stored at `path`, if any.
pub(crate) fn read_manifest<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Option<T>, BenchmarkError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(BenchmarkError::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| BenchmarkError::Journal {
            path: path.to_path_buf(),
            line: e.line(),
            message: e.to_string(),
        })
}

/// Writes `manifest` to `path` in `dir` (created) when there is none, or
/// checks that the stored one has the same settings: a folder is never
/// shared by work of different settings.
pub(crate) fn keep_or_check<T: Serialize + serde::de::DeserializeOwned>(
    dir: &Path,
    path: &Path,
    manifest: &T,
) -> Result<(), BenchmarkError> {
    match read_manifest::<T>(path)? {
        Some(stored) => {
            let mut a = serde_json::to_value(&stored).expect("serialises");
            let mut b = serde_json::to_value(manifest).expect("serialises");
            // Dropped before comparing: a moved table file with the same
            // content is the same table, and what differs after it still
            // counts.
            for v in [&mut a, &mut b] {
                if let Some(o) = v.as_object_mut() {
                    for k in INFORMATIONAL_KEYS {
                        o.remove(k);
                    }
                }
            }
            // The space first: a folder made for another space says so,
            // not which of the settings derived from it differs.
            let null = serde_json::Value::Null;
            let difference = LEADING_KEYS
                .iter()
                .find_map(|k| {
                    first_difference(a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null), k)
                })
                .or_else(|| first_difference(&a, &b, ""));
            match difference {
                Some((key, stored, given)) => Err(BenchmarkError::Mismatch {
                    dir: dir.to_path_buf(),
                    key,
                    stored,
                    given,
                }),
                None => Ok(()),
            }
        }
        None => {
            std::fs::create_dir_all(dir).map_err(|e| BenchmarkError::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
            let json = serde_json::to_string_pretty(manifest).expect("serialises") + "\n";
            tunas_shared::write_atomic(path, json.as_bytes()).map_err(|e| BenchmarkError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
    }
}

fn first_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
    prefix: &str,
) -> Option<(String, String, String)> {
    differences(a, b, prefix).into_iter().next()
}

/// Every leaf where `a` and `b` differ, as (dotted key, value in `a`,
/// value in `b`), in key order; objects are compared key by key.
pub(crate) fn differences(
    a: &serde_json::Value,
    b: &serde_json::Value,
    prefix: &str,
) -> Vec<(String, String, String)> {
    use serde_json::Value::Object;
    match (a, b) {
        (Object(x), Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .flat_map(|k| {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    let null = serde_json::Value::Null;
                    differences(x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), &key)
                })
                .collect()
        }
        _ if a == b => Vec::new(),
        // A number read back from JSON may differ in its last bit.
        (serde_json::Value::Number(x), serde_json::Value::Number(y))
            if x.as_f64()
                .zip(y.as_f64())
                .is_some_and(|(x, y)| (x - y).abs() <= 1e-12 * x.abs().max(y.abs())) =>
        {
            Vec::new()
        }
        _ => vec![(prefix.to_string(), a.to_string(), b.to_string())],
    }
}

/// The folder's files.
pub struct BenchmarkDir {
    /// The folder.
    pub dir: PathBuf,
}

impl BenchmarkDir {
    /// The manifest: the settings every piece of work was made with.
    pub(crate) fn manifest(&self) -> PathBuf {
        self.dir.join("benchmark.json")
    }
    /// The random architectures of every target, with their estimates.
    pub(crate) fn random(&self) -> PathBuf {
        self.dir.join("random.json")
    }
    /// The journal.
    pub(crate) fn journal(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }
    /// The run folder of search `seed` at target `target`.
    pub(crate) fn search_run(&self, target: usize, seed: u64) -> PathBuf {
        self.dir.join(format!("search-t{target}-s{seed}"))
    }
    /// The report.
    pub fn report(&self) -> PathBuf {
        self.dir.join("report.json")
    }
    /// The chart of target `target`.
    pub(crate) fn chart(&self, target: usize) -> PathBuf {
        self.dir.join(format!("target-{target}.svg"))
    }
    fn lock(&self) -> PathBuf {
        self.dir.join("lock")
    }
}

/// The plan: targets and the random architectures of each.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Target latencies, ms.
    pub(crate) targets_ms: Vec<f64>,
    /// Random architectures per target with their estimates (ms).
    pub(crate) random: Vec<Vec<(String, f64)>>,
}

impl Plan {
    /// Resolves the targets and draws the random architectures.
    pub(crate) fn new(
        space: &SearchSpace,
        table: &LatencyTable,
        settings: &BenchmarkSettings,
    ) -> Result<Self, BenchmarkError> {
        let targets_ms = settings.targets.resolve(space, table)?;
        let mut random = Vec::with_capacity(targets_ms.len());
        for &t in &targets_ms {
            let draw = crate::search::BandDraw {
                target: t,
                band: settings.band,
                n: settings.random,
                seed: settings.random_seed,
                max_draws: settings.band_draws,
            };
            let kept =
                random_within_band(space, Some(table), crate::search::Resource::Latency, &draw)
                    .map_err(|e| match e {
                        SearchError::Table(t) => BenchmarkError::Table(t),
                        other => BenchmarkError::BadSetting {
                            what: "band",
                            why: other.to_string(),
                        },
                    })?;
            if kept.len() < settings.random {
                return Err(BenchmarkError::BandUnreachable {
                    target_ms: t,
                    found: kept.len(),
                    wanted: settings.random,
                    band_pct: settings.band * 100.0,
                    draws: settings.band_draws,
                });
            }
            random.push(
                kept.into_iter()
                    .map(|(a, ms)| (a.to_compact(), ms))
                    .collect(),
            );
        }
        Ok(Plan { targets_ms, random })
    }
}

/// Creates or reopens the benchmark folder: writes `benchmark.json`, or
/// checks that the stored one matches. Returns the plan.
pub fn prepare(
    dir: &Path,
    inputs: &BenchmarkInputs,
    settings: &BenchmarkSettings,
) -> Result<(Plan, Manifest), BenchmarkError> {
    let (plan, manifest) = plan_and_manifest(inputs, settings)?;
    record_manifest(dir, &manifest)?;
    Ok((plan, manifest))
}

/// Checks the settings, resolves the targets and draws the random
/// architectures, writing nothing.
pub(crate) fn plan_and_manifest(
    inputs: &BenchmarkInputs,
    settings: &BenchmarkSettings,
) -> Result<(Plan, Manifest), BenchmarkError> {
    settings.check()?;
    let plan = Plan::new(&inputs.space, &inputs.table, settings)?;
    let manifest = Manifest {
        space: inputs.space.name.clone(),
        space_hash: inputs.space.content_hash(),
        table: inputs.table_path.display().to_string(),
        table_digest: inputs.table_digest.clone(),
        data: inputs.data_origin.clone(),
        targets_ms: plan.targets_ms.clone(),
        settings: settings.clone(),
    };
    Ok((plan, manifest))
}

/// Writes `manifest` into `dir`, or checks it against the stored one.
pub(crate) fn record_manifest(dir: &Path, manifest: &Manifest) -> Result<(), BenchmarkError> {
    let path = Manifest::file(dir);
    // `noise_random` may grow: the folder is checked with the stored
    // value, then its manifest records the larger one.
    if let Some(stored) = read_manifest::<Manifest>(&path)? {
        let (was, asked) = (stored.settings.noise_random, manifest.settings.noise_random);
        if asked > was {
            let mut as_stored = manifest.clone();
            as_stored.settings.noise_random = was;
            keep_or_check(dir, &path, &as_stored)?;
            let json = serde_json::to_string_pretty(manifest).expect("serialises") + "\n";
            return tunas_shared::write_atomic(&path, json.as_bytes()).map_err(|e| {
                BenchmarkError::Io {
                    path: path.clone(),
                    source: e,
                }
            });
        }
    }
    keep_or_check(dir, &path, manifest)
}

/// Writes the report from the journal as it stands (a running or stopped
/// benchmark included), without running anything.
pub fn report_only(dir: &Path) -> Result<BenchmarkReport, BenchmarkError> {
    let (manifest, plan, entries) = read_folder(dir, "report")?;
    let files = BenchmarkDir {
        dir: dir.to_path_buf(),
    };
    report::write(&files, &manifest, &plan, &entries, &manifest.settings)
}

/// A benchmark folder as it stands: its manifest, its plan and its
/// journal; `what` names the command that needs it in the error when the
/// folder holds no benchmark.
fn read_folder(
    dir: &Path,
    what: &'static str,
) -> Result<(Manifest, Plan, Vec<Entry>), BenchmarkError> {
    let manifest = Manifest::read(dir)?.ok_or_else(|| BenchmarkError::BadSetting {
        what,
        why: format!("{} holds no benchmark.json", dir.display()),
    })?;
    let files = BenchmarkDir {
        dir: dir.to_path_buf(),
    };
    let entries = journal::read_entries(&files.journal())?;
    let plan = plan_from_report_inputs(&manifest, &files)?;
    Ok((manifest, plan, entries))
}

/// The random architectures are recorded in `random.json` when a run
/// starts, so a report needs neither the table nor the space.
fn plan_from_report_inputs(
    manifest: &Manifest,
    files: &BenchmarkDir,
) -> Result<Plan, BenchmarkError> {
    let path = files.random();
    let text = std::fs::read_to_string(&path).map_err(|e| BenchmarkError::Io {
        path: path.clone(),
        source: e,
    })?;
    let random: Vec<Vec<(String, f64)>> =
        serde_json::from_str(&text).map_err(|e| BenchmarkError::Journal {
            path,
            line: e.line(),
            message: e.to_string(),
        })?;
    Ok(Plan {
        targets_ms: manifest.targets_ms.clone(),
        random,
    })
}

fn planned_work(s: &BenchmarkSettings, plan: &Plan) -> usize {
    planned_by_kind(s, plan).iter().sum()
}

/// Planned pieces of work: searches, trainings, shared-weight evaluations.
fn planned_by_kind(s: &BenchmarkSettings, plan: &Plan) -> [usize; 3] {
    let t = plan.targets_ms.len();
    let per_target_archs = s.random + s.searches;
    [
        t * s.searches,
        t * (s.random + (s.searches + s.noise_random) * s.train_seeds - s.noise_random),
        t * s.searches * 2 * per_target_archs,
    ]
}

/// Which of [`planned_by_kind`]'s kinds an entry is.
fn kind_index(e: &Entry) -> usize {
    match e {
        Entry::Search { .. } => 0,
        Entry::Train { .. } => 1,
        Entry::Shared { .. } => 2,
    }
}
