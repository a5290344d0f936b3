//! Running the benchmark: a pool of workers over its pieces of work
//! (searches, trainings, shared-weight evaluations), each finished piece
//! journaled at once, with progress lines on stderr.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tunas_shared::{Architecture, SearchSpace};

use super::journal::{Journal, search_key, shared_key, train_key};
use super::reuse::ReusableTrainings;
use super::{
    BenchmarkDir, BenchmarkError, BenchmarkInputs, BenchmarkReport, BenchmarkSettings, Entry, Plan,
    SharedPhase, kind_index, plan_and_manifest, planned_by_kind, planned_work, pool,
    record_manifest, report,
};
use crate::data::Dataset;
use crate::search::{RunOptions, Running, SearchData};
use crate::supernet::{PathPlan, Supernet};

/// How the benchmark runs (nothing here changes its results).
pub struct RunSettings {
    /// Pieces of work side by side, one thread each.
    pub jobs: usize,
    /// Seconds between progress lines on stderr (0: none).
    pub progress_every_s: u64,
    /// Benchmark folders of the same space, images and recipe whose
    /// finished trainings are reused instead of run again.
    pub trainings_from: Vec<PathBuf>,
}

/// One piece of work.
#[derive(Clone, Debug)]
enum Task {
    Search {
        target: usize,
        seed: u64,
    },
    Train {
        arch: String,
        seed: u64,
        searched: bool,
    },
    Shared {
        target: usize,
        seed: u64,
        phase: SharedPhase,
        arch: String,
    },
}

impl Task {
    /// Its kind, as [`kind_index`] numbers the journal's entries.
    fn kind_index(&self) -> usize {
        match self {
            Task::Search { .. } => 0,
            Task::Train { .. } => 1,
            Task::Shared { .. } => 2,
        }
    }

    fn key(&self) -> String {
        match self {
            Task::Search { target, seed } => search_key(*target, *seed),
            Task::Train { arch, seed, .. } => train_key(arch, *seed),
            Task::Shared {
                target,
                seed,
                phase,
                arch,
            } => shared_key(*target, *seed, *phase, arch),
        }
    }

    fn describe(&self, targets_ms: &[f64]) -> String {
        match self {
            Task::Search { target, seed } => {
                format!("search at {:.4} ms, seed {seed}", targets_ms[*target])
            }
            Task::Train {
                arch,
                seed,
                searched,
            } => format!(
                "train {} {arch} seed {seed}",
                if *searched { "searched" } else { "random" }
            ),
            Task::Shared {
                target,
                seed,
                phase,
                arch,
            } => format!(
                "shared-weight accuracy of {arch} ({phase:?} weights of search {}/{seed})",
                target, // index keeps it short
            ),
        }
    }
}

impl pool::Prioritised for Task {
    fn priority(&self) -> u8 {
        match self {
            Task::Search { .. } => 0,
            Task::Shared { .. } => 1,
            Task::Train { searched: true, .. } => 2,
            Task::Train {
                searched: false, ..
            } => 3,
        }
    }
}

/// Removes the folder's lock file when the run ends, however it ends.
struct LockGuard(PathBuf);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn take_lock(dir: &BenchmarkDir) -> Result<LockGuard, BenchmarkError> {
    let path = dir.lock();
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(pid) = text.trim().parse::<u32>()
        && pid != std::process::id()
        && Path::new(&format!("/proc/{pid}")).exists()
    {
        return Err(BenchmarkError::Busy {
            dir: dir.dir.clone(),
            pid,
        });
    }
    std::fs::write(&path, std::process::id().to_string()).map_err(|e| BenchmarkError::Io {
        path: path.clone(),
        source: e,
    })?;
    Ok(LockGuard(path))
}

/// State shared by the workers.
struct Runner<'a> {
    inputs: &'a BenchmarkInputs,
    settings: &'a BenchmarkSettings,
    plan: &'a Plan,
    files: BenchmarkDir,
    journal: Mutex<Journal>,
    reusable: ReusableTrainings,
    queued: Mutex<HashSet<String>>,
    /// What runs: its description, since when, and (searches) its steps.
    running: Mutex<HashMap<String, (String, usize, Running)>>,
    search_data: Mutex<HashMap<u64, Arc<SearchData>>>,
    total: usize,
    started: Instant,
}

/// Runs (or resumes) the benchmark in `dir` and writes its report.
pub fn run(
    dir: &Path,
    inputs: &BenchmarkInputs,
    settings: &BenchmarkSettings,
    how: &RunSettings,
) -> Result<BenchmarkReport, BenchmarkError> {
    let (plan, manifest) = plan_and_manifest(inputs, settings)?;
    // Before anything is written: a folder to reuse from is checked too.
    let reusable = ReusableTrainings::load(dir, &how.trainings_from, &manifest)?;
    record_manifest(dir, &manifest)?;
    let files = BenchmarkDir {
        dir: dir.to_path_buf(),
    };
    let _lock = take_lock(&files)?;
    let journal = Journal::open(&files.journal())?;
    if !how.trainings_from.is_empty() {
        eprintln!(
            "benchmark: {} finished trainings in {} may be reused",
            reusable.len(),
            how.trainings_from
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let runner = Runner {
        inputs,
        settings,
        plan: &plan,
        journal: Mutex::new(journal),
        reusable,
        queued: Mutex::new(HashSet::new()),
        running: Mutex::new(HashMap::new()),
        search_data: Mutex::new(HashMap::new()),
        total: planned_work(settings, &plan),
        files,
        started: Instant::now(),
    };
    let initial = runner.initial_tasks()?;
    let done_before = runner.journal.lock().expect("journal").entries().count();
    if done_before > 0 {
        eprintln!(
            "benchmark: resuming {}: {done_before} of about {} pieces of work already done",
            dir.display(),
            runner.total
        );
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let outcome = std::thread::scope(|scope| {
        if how.progress_every_s > 0 {
            scope.spawn(|| runner.heartbeat(&stop, how.progress_every_s, how.jobs));
        }
        let r = pool::run(how.jobs, initial, |t| runner.execute(t));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        r
    });
    outcome?;
    let journal = runner.journal.into_inner().expect("journal");
    let entries: Vec<Entry> = journal.entries().cloned().collect();
    report::write(&runner.files, &manifest, &plan, &entries, settings)
}

impl Runner<'_> {
    fn initial_tasks(&self) -> Result<Vec<Task>, BenchmarkError> {
        let random_json = serde_json::to_string(&self.plan.random).expect("serialises");
        let path = self.files.random();
        tunas_shared::write_atomic(&path, random_json.as_bytes())
            .map_err(|e| BenchmarkError::Io { path, source: e })?;
        let mut tasks = Vec::new();
        for target in 0..self.plan.targets_ms.len() {
            for seed in self.settings.search_seeds() {
                let search = Task::Search { target, seed };
                if self
                    .journal
                    .lock()
                    .expect("journal")
                    .get(&search.key())
                    .is_some()
                {
                    tasks.extend(self.after_search(target, seed)?);
                } else {
                    tasks.extend(self.enqueue(search)?);
                }
            }
            for (i, (arch, _)) in self.plan.random[target].iter().enumerate() {
                let seeds = if i < self.settings.noise_random {
                    self.settings.train_seeds as u64
                } else {
                    1
                };
                for seed in 0..seeds {
                    tasks.extend(self.enqueue(Task::Train {
                        arch: arch.clone(),
                        seed,
                        searched: false,
                    })?);
                }
            }
        }
        Ok(tasks)
    }

    /// `task`, unless it is done or already queued. A training another
    /// folder has finished is journaled here as reused, not run.
    fn enqueue(&self, task: Task) -> Result<Option<Task>, BenchmarkError> {
        let key = task.key();
        let mut journal = self.journal.lock().expect("journal");
        if journal.get(&key).is_some() {
            return Ok(None);
        }
        if let Some(entry) = self.reusable.get(&key) {
            let line = summary_line(entry);
            journal.append(entry.clone())?;
            let done = journal.entries().count();
            eprintln!("benchmark: [{done}/{}] {line}", self.total);
            return Ok(None);
        }
        Ok(self
            .queued
            .lock()
            .expect("queue")
            .insert(key)
            .then_some(task))
    }

    fn searched_arch(&self, target: usize, seed: u64) -> Option<String> {
        match self
            .journal
            .lock()
            .expect("journal")
            .get(&search_key(target, seed))
        {
            Some(Entry::Search { arch, .. }) => Some(arch.clone()),
            _ => None,
        }
    }

    /// The work a finished search makes ready: its architecture's
    /// trainings, and shared-weight accuracies of every architecture of the
    /// target on every finished search of the target.
    fn after_search(&self, target: usize, seed: u64) -> Result<Vec<Task>, BenchmarkError> {
        let arch = self
            .searched_arch(target, seed)
            .expect("the search is journaled");
        let mut tasks = Vec::new();
        for s in 0..self.settings.train_seeds as u64 {
            tasks.extend(self.enqueue(Task::Train {
                arch: arch.clone(),
                seed: s,
                searched: true,
            })?);
        }
        let finished: Vec<(u64, String)> = self
            .settings
            .search_seeds()
            .filter_map(|s| self.searched_arch(target, s).map(|a| (s, a)))
            .collect();
        let mut archs: Vec<String> = self.plan.random[target]
            .iter()
            .map(|r| r.0.clone())
            .collect();
        archs.extend(finished.iter().map(|f| f.1.clone()));
        for phase in [SharedPhase::Warmup, SharedPhase::Final] {
            // This search's weights on every architecture of the target...
            for a in &archs {
                tasks.extend(self.enqueue(Task::Shared {
                    target,
                    seed,
                    phase,
                    arch: a.clone(),
                })?);
            }
            // ...and this search's architecture on the other searches' weights.
            for (s, _) in &finished {
                tasks.extend(self.enqueue(Task::Shared {
                    target,
                    seed: *s,
                    phase,
                    arch: arch.clone(),
                })?);
            }
        }
        Ok(tasks)
    }

    fn search_data(&self, seed: u64) -> Arc<SearchData> {
        let mut cache = self.search_data.lock().expect("cache");
        cache
            .entry(seed)
            .or_insert_with(|| {
                Arc::new(SearchData::prepare(
                    &self.inputs.data.train,
                    self.settings.limit_train,
                    self.settings.holdout,
                    seed,
                ))
            })
            .clone()
    }

    fn execute(&self, task: Task) -> Result<Vec<Task>, BenchmarkError> {
        let key = task.key();
        let what = task.describe(&self.plan.targets_ms);
        let running = Running::now();
        let steps = running.steps.clone();
        self.running
            .lock()
            .expect("running")
            .insert(key.clone(), (what.clone(), task.kind_index(), running));
        let started = Instant::now();
        let outcome = crate::train::in_thread_pool(Some(1), || {
            let cpu0 = crate::bench::thread_cpu_ns();
            self.perform(&task, started, steps).map(|mut e| {
                let cpu = cpu0
                    .zip(crate::bench::thread_cpu_ns())
                    .map_or(f64::NAN, |(a, b)| (b - a) as f64 / 1e9);
                e.set_cpu_seconds(cpu);
                e
            })
        })
        .map_err(BenchmarkError::Worker)
        .and_then(|r| r);
        self.running.lock().expect("running").remove(&key);
        let entry = outcome?;
        let line = summary_line(&entry);
        let done = {
            let mut journal = self.journal.lock().expect("journal");
            journal.append(entry)?;
            journal.entries().count()
        };
        eprintln!("benchmark: [{done}/{}] {line}", self.total);
        match task {
            Task::Search { target, seed } => self.after_search(target, seed),
            _ => Ok(Vec::new()),
        }
    }

    /// Does `task`; a search keeps `steps` at its steps done.
    fn perform(
        &self,
        task: &Task,
        started: Instant,
        steps: Arc<AtomicUsize>,
    ) -> Result<Entry, BenchmarkError> {
        match task {
            Task::Search { target, seed } => self.perform_search(*target, *seed, started, steps),
            Task::Train { arch, seed, .. } => self.perform_train(arch, *seed, started),
            Task::Shared {
                target,
                seed,
                phase,
                arch,
            } => self.perform_shared(*target, *seed, *phase, arch, started),
        }
    }

    /// Searches at target `target` with `seed`, in the search's own run
    /// folder.
    fn perform_search(
        &self,
        target: usize,
        seed: u64,
        started: Instant,
        steps: Arc<AtomicUsize>,
    ) -> Result<Entry, BenchmarkError> {
        let space = &self.inputs.space;
        let mut config = self.settings.search.clone();
        config.target = self.plan.targets_ms[target];
        config.seed = seed;
        let data = self.search_data(seed);
        let opts = RunOptions {
            steps_done: Some(steps),
            ..RunOptions::default()
        };
        let run_dir = self.files.search_run(target, seed);
        let fail = |source| BenchmarkError::Search {
            target,
            seed,
            source,
        };
        std::fs::create_dir_all(&run_dir).map_err(|e| BenchmarkError::Io {
            path: run_dir.clone(),
            source: e,
        })?;
        let run_files = crate::search::RunFiles {
            dir: run_dir.clone(),
        };
        tunas_shared::write_atomic(&run_files.space(), space.to_toml().as_bytes()).map_err(
            |e| BenchmarkError::Io {
                path: run_dir.clone(),
                source: e,
            },
        )?;
        let result = crate::search::search(
            space,
            &[&self.inputs.table],
            &data,
            &config,
            &run_dir,
            &opts,
        )
        .map_err(fail)?
        .expect("runs to the end without stop_after");
        Ok(Entry::Search {
            target,
            seed,
            arch: result.arch,
            est_latency_ms: result.est_latency_ms.unwrap_or(f64::NAN),
            validation_accuracy: result.validation_accuracy,
            seconds: started.elapsed().as_secs_f64(),
            cpu_seconds: 0.0,
        })
    }

    /// Trains `arch` stand-alone with `seed` and tests it.
    fn perform_train(
        &self,
        arch: &str,
        seed: u64,
        started: Instant,
    ) -> Result<Entry, BenchmarkError> {
        let space = &self.inputs.space;
        let a = parse_arch(space, arch)?;
        let mut cfg = self.settings.recipe.clone();
        cfg.seed = seed;
        cfg.limit_train = self.settings.limit_train;
        let mut net = Supernet::new(space, seed);
        let report = crate::train::train_architecture(&mut net, &a, &self.inputs.data, &cfg, true)
            .map_err(|source| BenchmarkError::Train {
                arch: arch.to_string(),
                source,
            })?;
        Ok(Entry::Train {
            arch: arch.to_string(),
            seed,
            test_accuracy: f64::from(report.test_accuracy),
            seconds: started.elapsed().as_secs_f64(),
            cpu_seconds: 0.0,
            reused_from: None,
        })
    }

    /// The accuracy of `arch` with the shared weights a search kept at
    /// `phase`.
    fn perform_shared(
        &self,
        target: usize,
        seed: u64,
        phase: SharedPhase,
        arch: &str,
        started: Instant,
    ) -> Result<Entry, BenchmarkError> {
        let space = &self.inputs.space;
        let a = parse_arch(space, arch)?;
        let files = crate::search::RunFiles {
            dir: self.files.search_run(target, seed),
        };
        let weights = match phase {
            SharedPhase::Warmup => files.warmup_weights(),
            SharedPhase::Final => files.weights(),
        };
        let data = self.search_data(seed);
        let accuracy = shared_weight_accuracy(
            space,
            &weights,
            &a,
            &data,
            self.settings.calibration_batches,
            self.settings.shared_eval_images,
        )?;
        Ok(Entry::Shared {
            target,
            seed,
            phase,
            arch: arch.to_string(),
            accuracy,
            seconds: started.elapsed().as_secs_f64(),
            cpu_seconds: 0.0,
        })
    }

    /// A progress line every `every` seconds: done, running, ETA (also when
    /// stderr is not a terminal).
    fn heartbeat(&self, stop: &std::sync::atomic::AtomicBool, every: u64, jobs: usize) {
        let mut last = Instant::now();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            if last.elapsed() < Duration::from_secs(every) {
                continue;
            }
            last = Instant::now();
            let (done, left_s) = {
                let j = self.journal.lock().expect("journal");
                let mut count = [0usize; 3];
                let mut seconds = [0f64; 3];
                for e in j.entries() {
                    count[kind_index(e)] += 1;
                    seconds[kind_index(e)] += e.seconds();
                }
                let running: Vec<(usize, f64)> = (self.running.lock().expect("running").values())
                    .map(|(_, kind, r)| (*kind, r.since.elapsed().as_secs_f64()))
                    .collect();
                let planned = planned_by_kind(self.settings, self.plan);
                let left_s = time_left_s(planned, count, seconds, &running);
                (count.iter().sum::<usize>(), left_s)
            };
            let running: Vec<String> = self
                .running
                .lock()
                .expect("running")
                .values()
                .map(|(what, _, r)| {
                    let elapsed = minutes(r.since.elapsed().as_secs_f64());
                    match r.steps.load(Ordering::Relaxed) {
                        0 => format!("{what} ({elapsed})"),
                        n => format!(
                            "{what} ({elapsed}, step {n}/{})",
                            self.settings.search.steps
                        ),
                    }
                })
                .collect();
            let eta = if left_s.is_finite() {
                minutes(left_s / jobs.max(1) as f64)
            } else {
                "unknown until every kind of work has finished once".into()
            };
            eprintln!(
                "benchmark: {done}/{} done ({:.0}%), {} elapsed, ETA ~{eta}; running: {}",
                self.total,
                100.0 * done as f64 / self.total.max(1) as f64,
                minutes(self.started.elapsed().as_secs_f64()),
                running.join("; ")
            );
        }
    }
}

/// An architecture of the plan, parsed against `space`.
fn parse_arch(space: &SearchSpace, arch: &str) -> Result<Architecture, BenchmarkError> {
    Architecture::parse(space, arch).map_err(|e| BenchmarkError::BadSetting {
        what: "architecture",
        why: e.to_string(),
    })
}

/// Work-seconds left: per kind of work, what is left of it times its mean
/// so far (NaN until every kind left has finished once), less what the
/// running pieces (`(kind, seconds so far)`) have already done, each at
/// most its kind's mean.
fn time_left_s(
    planned: [usize; 3],
    count: [usize; 3],
    seconds: [f64; 3],
    running: &[(usize, f64)],
) -> f64 {
    let mean = |k: usize| seconds[k] / count[k] as f64;
    let queued: f64 = (0..3)
        .map(|k| {
            let left = planned[k].saturating_sub(count[k]) as f64;
            match (left > 0.0, count[k] > 0) {
                (false, _) => 0.0,
                (true, true) => left * mean(k),
                (true, false) => f64::NAN,
            }
        })
        .sum();
    if queued.is_nan() {
        return f64::NAN;
    }
    let under_way: f64 = running
        .iter()
        .filter(|(k, _)| count[*k] > 0)
        .map(|&(k, elapsed)| elapsed.min(mean(k)))
        .sum();
    (queued - under_way).max(0.0)
}

pub(crate) fn minutes(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

fn summary_line(e: &Entry) -> String {
    match e {
        Entry::Search {
            seed,
            arch,
            est_latency_ms,
            validation_accuracy,
            seconds,
            ..
        } => format!(
            "search seed {seed}: {arch} at {est_latency_ms:.4} ms, validation {:.2}% ({})",
            validation_accuracy * 100.0,
            minutes(*seconds)
        ),
        Entry::Train {
            arch,
            seed,
            test_accuracy,
            seconds,
            reused_from,
            ..
        } => format!(
            "{} {arch} seed {seed}: {:.2}% test accuracy ({}{})",
            if reused_from.is_some() {
                "reused training of"
            } else {
                "trained"
            },
            test_accuracy * 100.0,
            minutes(*seconds),
            reused_from
                .as_ref()
                .map(|d| format!(" in {d}"))
                .unwrap_or_default()
        ),
        Entry::Shared {
            arch,
            phase,
            seed,
            accuracy,
            seconds,
            ..
        } => format!(
            "{arch} on search {seed}'s {phase:?} weights: {:.2}% ({})",
            accuracy * 100.0,
            minutes(*seconds)
        ),
    }
}

/// Accuracy of `arch` with the shared weights in `weights`: BN statistics
/// recalibrated on `calibration_batches` training batches of 256, then
/// measured on the first `images` held-out images.
pub(crate) fn shared_weight_accuracy(
    space: &SearchSpace,
    weights: &Path,
    arch: &Architecture,
    data: &SearchData,
    calibration_batches: usize,
    images: usize,
) -> Result<f64, BenchmarkError> {
    let mut net = Supernet::new(space, 0);
    crate::weights::load_store(weights, &mut net.store)?;
    crate::export::recalibrate_bn(
        &mut net,
        arch,
        &data.train,
        &data.maker,
        calibration_batches,
        256,
    );
    let n = images.min(data.validation.len());
    let held_out: Dataset = data.validation.subset(&(0..n).collect::<Vec<_>>());
    let plan = PathPlan::single(arch.clone());
    Ok(f64::from(crate::train::evaluate_dataset(
        &mut net,
        &plan,
        &held_out,
        &data.maker,
        500,
    )))
}

#[cfg(test)]
mod tests {
    use super::time_left_s;

    #[test]
    fn time_left_counts_down_while_work_runs() {
        // 4 trainings planned, 2 done in 600 s each, 2 running.
        let planned = [0, 4, 0];
        let (count, seconds) = ([0, 2, 0], [0.0, 1200.0, 0.0]);
        assert_eq!(time_left_s(planned, count, seconds, &[]), 1200.0);
        let running = [(1, 100.0), (1, 250.0)];
        assert_eq!(time_left_s(planned, count, seconds, &running), 850.0);
        // A piece running longer than the mean counts as nearly done, never
        // as negative time.
        let running = [(1, 900.0), (1, 900.0)];
        assert_eq!(time_left_s(planned, count, seconds, &running), 0.0);
        // A kind not yet finished once leaves the time unknown.
        assert!(time_left_s([1, 4, 0], count, seconds, &running).is_nan());
    }
}
