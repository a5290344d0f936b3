//! A family of networks: one search per target latency (a size ladder),
//! side by side, resumable, with the front they make (validation accuracy
//! against estimated latency) as JSON and a chart.
//!
//! The folder holds `sweep.json` (space, table digest, data, targets and
//! the search settings: a folder made with others is refused), one search
//! run folder per target (`target-N/`, resumed from its checkpoint when the
//! sweep runs again), `front.json` and `front.svg`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tunas_shared::plot::{CloudChart, RangePoint, cloud_chart};

use crate::benchmark::minutes;
use crate::benchmark::{BenchmarkError, BenchmarkInputs, TargetChoice, keep_or_check, pool};
use crate::search::{RunFiles, RunOptions, Running, SearchConfig, SearchData, SearchResult};

/// Everything that defines a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepSettings {
    /// The targets.
    pub targets: TargetChoice,
    /// The search of every target (its target is replaced).
    pub search: SearchConfig,
    /// Held-out images of each search.
    pub holdout: Option<usize>,
    /// Use only this many training images.
    pub limit_train: Option<usize>,
}

/// `sweep.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SweepManifest {
    space: String,
    space_hash: String,
    table: String,
    table_digest: String,
    data: String,
    targets_ms: Vec<f64>,
    settings: SweepSettings,
}

/// One point of the front.
#[derive(Clone, Debug, Serialize)]
pub struct FrontPoint {
    /// Target, ms.
    pub target_ms: f64,
    /// The run folder.
    pub(crate) run: String,
    /// The searched architecture.
    pub arch: String,
    /// Its estimated latency, ms.
    pub(crate) est_latency_ms: f64,
    /// Miss of the target, percent.
    pub(crate) latency_error_pct: f64,
    /// Validation accuracy with shared weights.
    pub(crate) validation_accuracy: f64,
    /// Multiply-adds.
    pub(crate) flops: u64,
    /// Parameters.
    pub(crate) params: u64,
}

/// The front (`front.json`).
#[derive(Clone, Debug, Serialize)]
pub struct SweepReport {
    /// Space.
    pub(crate) space: String,
    /// One point per target, in target order.
    pub points: Vec<FrontPoint>,
}

/// The files of a sweep folder.
pub(crate) struct SweepDir<'a>(pub(crate) &'a Path);

impl SweepDir<'_> {
    /// The manifest: the settings every run was made with.
    pub(crate) fn manifest(&self) -> PathBuf {
        self.0.join("sweep.json")
    }
    /// The run folder of target `index`.
    pub(crate) fn run(&self, index: usize) -> PathBuf {
        self.0.join(format!("target-{index}"))
    }
    /// The front, as JSON.
    pub(crate) fn front(&self) -> PathBuf {
        self.0.join("front.json")
    }
    /// The front's chart.
    pub(crate) fn chart(&self) -> PathBuf {
        self.0.join("front.svg")
    }
}

struct Job(usize);

impl pool::Prioritised for Job {
    fn priority(&self) -> u8 {
        0
    }
}

/// How a sweep reports while it runs.
#[derive(Clone, Copy, Debug)]
pub struct SweepProgress {
    /// A line per search started and finished.
    pub lines: bool,
    /// Seconds between lines on the running searches' steps (0: none).
    pub every_s: u64,
}

/// Runs (or resumes) one search per target, `jobs` side by side on one
/// thread each, then writes the front.
pub fn run(
    dir: &Path,
    inputs: &BenchmarkInputs,
    settings: &SweepSettings,
    jobs: usize,
    progress: SweepProgress,
) -> Result<SweepReport, BenchmarkError> {
    let targets_ms = checked_targets(inputs, settings)?;
    let manifest = SweepManifest {
        space: inputs.space.name.clone(),
        space_hash: inputs.space.content_hash(),
        table: inputs.table_path.display().to_string(),
        table_digest: inputs.table_digest.clone(),
        data: inputs.data_origin.clone(),
        targets_ms: targets_ms.clone(),
        settings: settings.clone(),
    };
    keep_or_check(dir, &SweepDir(dir).manifest(), &manifest)?;
    let sweep = Sweep {
        dir,
        inputs,
        settings,
        progress: progress.lines,
        running: Mutex::new(vec![None; targets_ms.len()]),
        done: AtomicUsize::new(0),
        data: SearchData::prepare(
            &inputs.data.train,
            settings.limit_train,
            settings.holdout,
            settings.search.seed,
        ),
        targets_ms,
    };
    let results: Mutex<Vec<Option<SearchResult>>> = Mutex::new(vec![None; sweep.targets_ms.len()]);
    let todo: Vec<Job> = (0..sweep.targets_ms.len()).map(Job).collect();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        if progress.lines && progress.every_s > 0 {
            scope.spawn(|| sweep.heartbeat(&stop, Duration::from_secs(progress.every_s)));
        }
        let outcome = pool::run(jobs, todo, |Job(i)| -> Result<Vec<Job>, BenchmarkError> {
            let result = sweep.target(i)?;
            results.lock().expect("results")[i] = Some(result);
            sweep.done.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        });
        stop.store(true, Ordering::SeqCst);
        outcome
    })?;
    let report = SweepReport {
        space: inputs.space.name.clone(),
        points: sweep.front(results.into_inner().expect("results")),
    };
    write_front(dir, &report)?;
    Ok(report)
}

/// Checks the settings against the inputs before any work and resolves
/// the targets, in ms.
fn checked_targets(
    inputs: &BenchmarkInputs,
    settings: &SweepSettings,
) -> Result<Vec<f64>, BenchmarkError> {
    settings.targets.check()?;
    let bad = |e: crate::search::SearchError| BenchmarkError::BadSetting {
        what: "search",
        why: e.to_string(),
    };
    let mut probe = settings.search.clone();
    probe.target = 1.0;
    probe.check().map_err(bad)?;
    inputs.table.check_space(&inputs.space)?;
    Ok(settings.targets.resolve(&inputs.space, &inputs.table)?)
}

/// What every search of a sweep shares.
struct Sweep<'a> {
    dir: &'a Path,
    inputs: &'a BenchmarkInputs,
    settings: &'a SweepSettings,
    progress: bool,
    /// The searches running: since when, and their steps done.
    running: Mutex<Vec<Option<Running>>>,
    /// Targets finished.
    done: AtomicUsize,
    data: SearchData,
    targets_ms: Vec<f64>,
}

impl Sweep<'_> {
    /// The result of target `i`: read back if its run finished, else
    /// searched (or resumed from its checkpoint).
    fn target(&self, i: usize) -> Result<SearchResult, BenchmarkError> {
        let run = SweepDir(self.dir).run(i);
        let files = RunFiles { dir: run.clone() };
        let result = match std::fs::read_to_string(files.result())
            .ok()
            .and_then(|t| serde_json::from_str::<SearchResult>(&t).ok())
        {
            Some(done) => done,
            None => self.search(i, &run, &files)?,
        };
        if self.progress {
            eprintln!(
                "sweep: target {:.4} ms → {} at {:.4} ms, validation {:.2}%",
                self.targets_ms[i],
                result.arch,
                result.est_latency_ms.unwrap_or(f64::NAN),
                result.validation_accuracy * 100.0
            );
        }
        Ok(result)
    }

    /// Searches at target `i` in `run`, on one thread.
    fn search(
        &self,
        i: usize,
        run: &Path,
        files: &RunFiles,
    ) -> Result<SearchResult, BenchmarkError> {
        let inputs = self.inputs;
        let mut config = self.settings.search.clone();
        config.target = self.targets_ms[i];
        std::fs::create_dir_all(run).map_err(|e| BenchmarkError::Io {
            path: run.to_path_buf(),
            source: e,
        })?;
        tunas_shared::write_atomic(&files.space(), inputs.space.to_toml().as_bytes()).map_err(
            |e| BenchmarkError::Io {
                path: files.space(),
                source: e,
            },
        )?;
        let running = Running::now();
        let steps = running.steps.clone();
        self.running.lock().expect("running")[i] = Some(running);
        let opts = RunOptions {
            steps_done: Some(steps),
            ..RunOptions::default()
        };
        if self.progress {
            eprintln!(
                "sweep: searching at {:.4} ms in {}",
                self.targets_ms[i],
                run.display()
            );
        }
        let result = crate::train::in_thread_pool(Some(1), || {
            crate::search::search(
                &inputs.space,
                &[&inputs.table],
                &self.data,
                &config,
                run,
                &opts,
            )
        })
        .map_err(BenchmarkError::Worker);
        self.running.lock().expect("running")[i] = None;
        let result = result?
            .map_err(|source| BenchmarkError::Search {
                target: i,
                seed: config.seed,
                source,
            })?
            .expect("runs to the end without stop_after");
        Ok(result)
    }

    /// A line every `every` until `stop`: targets done, and each running
    /// search's step and time left at its rate so far (also when stderr is
    /// not a terminal).
    fn heartbeat(&self, stop: &AtomicBool, every: Duration) {
        let steps = self.settings.search.steps;
        let mut last = Instant::now();
        // When this loop first saw each search, at which step: the rate
        // counts only steps made since then (a resumed search's earlier
        // steps and its start-up do not skew it).
        let mut first: Vec<Option<(Instant, usize)>> = vec![None; self.targets_ms.len()];
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            if last.elapsed() < every {
                continue;
            }
            last = Instant::now();
            let running: Vec<String> = self
                .running
                .lock()
                .expect("running")
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    r.as_ref()
                        .map(|r| (i, r.since.elapsed(), r.steps.load(Ordering::Relaxed)))
                })
                .map(|(i, elapsed, n)| {
                    let (t0, n0) = *first[i].get_or_insert((Instant::now(), n));
                    let secs = elapsed.as_secs_f64();
                    let eta = if n > n0 {
                        let per_step = t0.elapsed().as_secs_f64() / (n - n0) as f64;
                        format!(
                            ", ETA ~{}",
                            minutes(steps.saturating_sub(n) as f64 * per_step)
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        "{:.4} ms step {n}/{steps} ({}{eta})",
                        self.targets_ms[i],
                        minutes(secs)
                    )
                })
                .collect();
            eprintln!(
                "sweep: {}/{} targets done; running: {}",
                self.done.load(Ordering::SeqCst),
                self.targets_ms.len(),
                running.join("; ")
            );
        }
    }

    /// One point per target, from every target's result.
    fn front(&self, results: Vec<Option<SearchResult>>) -> Vec<FrontPoint> {
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let r = r.expect("every job finished");
                let est = r.est_latency_ms.unwrap_or(f64::NAN);
                FrontPoint {
                    target_ms: self.targets_ms[i],
                    run: SweepDir(self.dir).run(i).display().to_string(),
                    arch: r.arch,
                    est_latency_ms: est,
                    latency_error_pct: (est / self.targets_ms[i] - 1.0) * 100.0,
                    validation_accuracy: r.validation_accuracy,
                    flops: r.flops,
                    params: r.params,
                }
            })
            .collect()
    }
}

/// Writes `front.json` and, if it can be drawn, `front.svg`.
fn write_front(dir: &Path, report: &SweepReport) -> Result<(), BenchmarkError> {
    let path = SweepDir(dir).front();
    let json = serde_json::to_string_pretty(report).expect("serialises") + "\n";
    tunas_shared::write_atomic(&path, json.as_bytes())
        .map_err(|e| BenchmarkError::Io { path, source: e })?;
    if let Err(e) = cloud_chart(&SweepDir(dir).chart(), &front_chart(report)) {
        eprintln!("warning: {e}");
    }
    Ok(())
}

fn front_chart(r: &SweepReport) -> CloudChart {
    CloudChart {
        title: format!("{}: one search per target", r.space),
        x_label: "estimated latency (ms)".into(),
        y_label: "validation accuracy, shared weights (%)".into(),
        cloud_name: "searched networks".into(),
        cloud: r
            .points
            .iter()
            .map(|p| (p.est_latency_ms, p.validation_accuracy * 100.0))
            .collect(),
        levels: Vec::new(),
        highlighted: r
            .points
            .iter()
            .map(|p| RangePoint {
                name: format!(
                    "target {:.4} ms ({:+.1}%)",
                    p.target_ms, p.latency_error_pct
                ),
                x: p.est_latency_ms,
                y: p.validation_accuracy * 100.0,
                y_low: p.validation_accuracy * 100.0,
                y_high: p.validation_accuracy * 100.0,
            })
            .collect(),
        vertical: None,
    }
}

/// The front as a table for a person.
pub fn text(r: &SweepReport) -> String {
    let mut out =
        String::from("target ms  estimate ms    miss  val. acc.  M MACs  M params  architecture\n");
    for p in &r.points {
        out += &format!(
            "{:>9.4}  {:>11.4}  {:>+5.1}%  {:>8.2}%  {:>6.2}  {:>8.3}  {}\n",
            p.target_ms,
            p.est_latency_ms,
            p.latency_error_pct,
            p.validation_accuracy * 100.0,
            p.flops as f64 / 1e6,
            p.params as f64 / 1e6,
            p.arch
        );
    }
    out
}
