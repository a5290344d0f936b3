//! Steady-state training-step throughput and peak memory of one path of a
//! supernet, on random input batches (no data set needed).
//!
//! A step is exactly the supernet's `train_step`: zero the gradients,
//! forward (keeping the tape, BN updating its running statistics), softmax
//! cross-entropy, backward, optimiser update; each phase is timed on its
//! own. The first `warmup_steps` steps (allocations, optimiser state, caches)
//! are not measured.
//!
//! Memory is the process's resident set, read from `/proc/self/status`:
//! `baseline_rss_mb` (`VmRSS`) once the network and the batch exist, before
//! the first step, and `peak_rss_mb` (`VmHWM`) over the steps. The peak is
//! reset first by writing `5` to `/proc/self/clear_refs` (Linux ≥ 4.0); where
//! that is not allowed, `peak_rss_reset` is false and the peak counts from
//! the start of the process. Minor page faults per measured step
//! (`/proc/self/stat`) show how much of a step goes to the kernel handing
//! out fresh zeroed pages for large temporary arrays.
//!
//! Every measurement of the command line runs in a fresh process
//! ([`bench_in_child`]) when several are asked for, so the baseline and peak
//! of one do not include what the allocator kept from another.
//!
//! ```
//! use tunas_searcher::bench::{BenchConfig, BenchVariant, bench};
//! use tunas_shared::{Architecture, builtin_space};
//!
//! let space = builtin_space("tiny28").unwrap();
//! let arch = Architecture::largest(&space);
//! let cfg = BenchConfig { batch: 2, steps: 2, warmup_steps: 1, seed: 0 };
//! let r = bench(&space, &arch, BenchVariant::SinglePath, &cfg);
//! assert!(r.images_per_s > 0.0);
//! ```

use std::path::Path;
use std::time::Instant;

use ndarray::Array4;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tunas_shared::{Architecture, DecisionKind, SearchSpace};

use crate::layers::loss::softmax_cross_entropy;
use crate::optim::{Optimizer, Sgd};
use crate::supernet::{BnMode, PathPlan, Supernet};

/// Which kind of path a benchmark trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BenchVariant {
    /// One architecture, every decision at its chosen value.
    SinglePath,
    /// Op warm-up: every kernel, squeeze-excite and skip decision runs all
    /// its values, with rematerialization (branches recomputed in backward).
    AllValuesRemat,
    /// Op warm-up without rematerialization (every branch's tape is kept).
    AllValuesNoRemat,
}

impl BenchVariant {
    /// The path plan of this variant for `arch`.
    pub(crate) fn plan(self, space: &SearchSpace, arch: &Architecture) -> PathPlan {
        match self {
            BenchVariant::SinglePath => PathPlan::single(arch.clone()),
            BenchVariant::AllValuesRemat => all_values_plan(space, arch, true),
            BenchVariant::AllValuesNoRemat => all_values_plan(space, arch, false),
        }
    }
}

/// The op-warm-up plan: every kernel, squeeze-excite and skip decision of
/// `space` runs all its values (docs/design.md, "One step"); filters and
/// expansion keep `arch`'s values.
pub(crate) fn all_values_plan(
    space: &SearchSpace,
    arch: &Architecture,
    rematerialize: bool,
) -> PathPlan {
    PathPlan {
        arch: arch.clone(),
        all_values: space
            .decisions
            .iter()
            .map(|d| {
                matches!(
                    d.kind,
                    DecisionKind::Kernel | DecisionKind::SqueezeExcite | DecisionKind::Skip
                )
            })
            .collect(),
        rematerialize,
    }
}

/// How long and on what a benchmark runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Images per step.
    pub batch: usize,
    /// Measured steps.
    pub steps: usize,
    /// Steps run first and not measured.
    pub warmup_steps: usize,
    /// Seed of the weights and the random batch.
    pub seed: u64,
}

/// Median, mean, min and max of a set of timings, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Timing {
    /// Median.
    pub(crate) median_ms: f64,
    /// Mean.
    pub(crate) mean_ms: f64,
    /// Fastest.
    pub(crate) min_ms: f64,
    /// Slowest.
    pub(crate) max_ms: f64,
}

impl Timing {
    fn of(seconds: &[f64]) -> Self {
        let mut ms: Vec<f64> = seconds.iter().map(|s| s * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len().max(1);
        let median = if ms.is_empty() {
            0.0
        } else if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        Timing {
            median_ms: median,
            mean_ms: ms.iter().sum::<f64>() / n as f64,
            min_ms: ms.first().copied().unwrap_or(0.0),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// The measurements of one benchmark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// Which path was trained.
    pub(crate) variant: BenchVariant,
    /// Space name.
    pub(crate) space: String,
    /// Compact architecture text.
    pub(crate) arch: String,
    /// Images per step.
    pub(crate) batch: usize,
    /// Rayon threads.
    pub(crate) threads: usize,
    /// Whether layers ran serially.
    pub(crate) serial: bool,
    /// Measured steps.
    pub(crate) steps: usize,
    /// Unmeasured steps before them.
    pub(crate) warmup_steps: usize,
    /// Steady-state throughput: `batch · steps / measured seconds`.
    pub images_per_s: f64,
    /// Whole training step.
    pub(crate) step: Timing,
    /// Zeroing the gradients.
    pub(crate) zero_grad: Timing,
    /// Forward pass with tape (and the loss).
    pub(crate) forward: Timing,
    /// Backward pass.
    pub(crate) backward: Timing,
    /// Optimiser update.
    pub(crate) update: Timing,
    /// Duration of the first (cold) step, in milliseconds.
    pub(crate) first_step_ms: f64,
    /// Resident set (MB) before the first step: network, optimiser-free
    /// weights and the batch.
    pub(crate) baseline_rss_mb: Option<f64>,
    /// Peak resident set (MB) over all steps.
    pub(crate) peak_rss_mb: Option<f64>,
    /// Whether the peak was reset before the steps (else it counts from
    /// process start).
    pub(crate) peak_rss_reset: bool,
    /// Minor page faults per measured step (fresh pages the kernel zeroed
    /// for new allocations), if `/proc/self/stat` is readable.
    pub(crate) minor_faults_per_step: Option<f64>,
    /// CPU time of all the process's threads per measured step, in
    /// milliseconds (from `/proc/self/task/*/schedstat`), if readable.
    /// Unlike wall time it hardly changes when other processes compete for
    /// the cores.
    pub(crate) cpu_ms_per_step: Option<f64>,
    /// `batch / cpu seconds per step`: throughput per core-second.
    pub(crate) images_per_cpu_s: Option<f64>,
}

/// A benchmark in a child process failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The child could not be started.
    #[error("cannot run {exe}: {message}")]
    Spawn {
        /// The executable.
        exe: String,
        /// The system's message.
        message: String,
    },
    /// The child failed.
    #[error("{exe} {args} failed ({status}): {stderr}")]
    Failed {
        /// The executable.
        exe: String,
        /// Its arguments.
        args: String,
        /// Exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The child's output is not a benchmark result.
    #[error("{exe} printed no benchmark JSON: {message}")]
    Parse {
        /// The executable.
        exe: String,
        /// The parser's message.
        message: String,
    },
}

/// A field of `/proc/self/status` in kB (`VmRSS`, `VmHWM`), if readable.
pub(crate) fn proc_status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Resets the process's peak resident set (`VmHWM`) to the current one.
/// Returns whether the kernel allowed it.
pub(crate) fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Minor page faults of this process so far (field 10 of
/// `/proc/self/stat`), if readable.
pub(crate) fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(7)?.parse().ok()
}

/// Runs `exe args…` (a `tunas-searcher bench … --json` command line for
/// one variant) in a fresh process and reads its result, so that its memory
/// figures start from a clean process.
pub fn bench_in_child(exe: &std::path::Path, args: &[String]) -> Result<BenchResult, BenchError> {
    let name = exe.display().to_string();
    let out = std::process::Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| BenchError::Spawn {
            exe: name.clone(),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(BenchError::Failed {
            exe: name,
            args: args.join(" "),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|e| BenchError::Parse {
        exe: name,
        message: e.to_string(),
    })
}

/// CPU time (ns) a thread has run: the first field of its `schedstat`
/// file under `/proc`, if readable.
pub(crate) fn schedstat_ns(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (ns) that the live threads of this process have run, summed
/// from `/proc/self/task/*/schedstat`, if readable.
pub(crate) fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        // A thread may end between listing and reading; it then counts 0.
        total += schedstat_ns(&task.ok()?.path().join("schedstat")).unwrap_or(0);
    }
    Some(total)
}

/// CPU time (ns) the calling thread has run, from
/// `/proc/thread-self/schedstat`, if readable: what a piece of work on a
/// one-thread pool costs, whatever else loads the machine.
pub fn thread_cpu_ns() -> Option<u64> {
    schedstat_ns(Path::new("/proc/thread-self/schedstat"))
}

fn mb(kb: Option<u64>) -> Option<f64> {
    kb.map(|k| k as f64 / 1024.0)
}

/// Trains `variant`'s path of `arch` on a fixed random batch for
/// `cfg.warmup_steps + cfg.steps` steps (SGD, Nesterov momentum 0.9, weight
/// decay 4e-5, learning rate 0.01, label smoothing 0.1) on the current rayon
/// pool and reports throughput, per-phase timings and memory.
pub fn bench(
    space: &SearchSpace,
    arch: &Architecture,
    variant: BenchVariant,
    cfg: &BenchConfig,
) -> BenchResult {
    let mut net = Supernet::new(space, cfg.seed);
    let plan = variant.plan(space, arch);
    let (x, labels) = random_batch(space, cfg);
    let optimizer = Optimizer::Sgd(Sgd {
        momentum: 0.9,
        weight_decay: 4e-5,
        nesterov: true,
    });
    let baseline = mb(proc_status_kb("VmRSS"));
    let reset = reset_peak_rss();
    let times = StepTimes::run(&mut net, &plan, &x, &labels, &optimizer, cfg);
    let peak = mb(proc_status_kb("VmHWM"));
    let cpu_ms = times
        .cpu_before
        .zip(process_cpu_ns())
        .map(|(a, b)| b.saturating_sub(a) as f64 / 1e6 / cfg.steps.max(1) as f64);
    let faults = times
        .faults_before
        .zip(minor_faults())
        .map(|(a, b)| b.saturating_sub(a) as f64 / cfg.steps.max(1) as f64);
    let phases = &times.phases;
    let measured: f64 = phases[0].iter().sum();
    BenchResult {
        variant,
        space: space.name.clone(),
        arch: arch.to_compact(),
        batch: cfg.batch,
        threads: rayon::current_num_threads(),
        serial: crate::layers::is_serial(),
        steps: cfg.steps,
        warmup_steps: cfg.warmup_steps,
        images_per_s: if measured > 0.0 {
            (cfg.batch * cfg.steps) as f64 / measured
        } else {
            0.0
        },
        step: Timing::of(&phases[0]),
        zero_grad: Timing::of(&phases[1]),
        forward: Timing::of(&phases[2]),
        backward: Timing::of(&phases[3]),
        update: Timing::of(&phases[4]),
        first_step_ms: times.first_step_ms,
        baseline_rss_mb: baseline,
        peak_rss_mb: peak,
        peak_rss_reset: reset,
        minor_faults_per_step: faults,
        cpu_ms_per_step: cpu_ms,
        images_per_cpu_s: cpu_ms
            .filter(|&c| c > 0.0)
            .map(|c| cfg.batch as f64 / (c / 1e3)),
    }
}

/// The fixed random batch a benchmark trains on: inputs uniform in
/// [-1, 1), labels uniform over the classes.
fn random_batch(space: &SearchSpace, cfg: &BenchConfig) -> (Array4<f32>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(1));
    let i = &space.input;
    let x = Array4::from_shape_simple_fn(
        (
            cfg.batch,
            i.channels as usize,
            i.height as usize,
            i.width as usize,
        ),
        || rng.random_range(-1.0f32..1.0),
    );
    let labels: Vec<usize> = (0..cfg.batch)
        .map(|_| rng.random_range(0..i.classes as usize))
        .collect();
    (x, labels)
}

/// What the steps of [`bench`] measured.
struct StepTimes {
    /// Seconds per measured step of the whole step, then of zero-grad,
    /// forward (with the loss), backward and update.
    phases: [Vec<f64>; 5],
    /// The first (warm-up) step, whole.
    first_step_ms: f64,
    /// Minor page faults when the measured steps began.
    faults_before: Option<u64>,
    /// Process CPU time when the measured steps began.
    cpu_before: Option<u64>,
}

impl StepTimes {
    /// Runs `cfg.warmup_steps + cfg.steps` training steps, timing each
    /// phase of the measured ones.
    fn run(
        net: &mut Supernet,
        plan: &PathPlan,
        x: &Array4<f32>,
        labels: &[usize],
        optimizer: &Optimizer,
        cfg: &BenchConfig,
    ) -> StepTimes {
        let mut times = StepTimes {
            phases: Default::default(),
            first_step_ms: 0.0,
            faults_before: None,
            cpu_before: None,
        };
        for s in 0..cfg.warmup_steps + cfg.steps {
            if s == cfg.warmup_steps {
                times.faults_before = minor_faults();
                times.cpu_before = process_cpu_ns();
            }
            let t0 = Instant::now();
            net.store.zero_grads();
            let t1 = Instant::now();
            let (logits, tape) = net.forward(x.clone(), plan, BnMode::BatchUpdateRunning, true);
            let (_, dlogits) = softmax_cross_entropy(logits.view(), labels, 0.1);
            let t2 = Instant::now();
            net.backward(tape.expect("tape was kept"), plan, dlogits);
            let t3 = Instant::now();
            net.store.step(optimizer, 0.01);
            let t4 = Instant::now();
            if s == 0 {
                times.first_step_ms = (t4 - t0).as_secs_f64() * 1e3;
            }
            if s >= cfg.warmup_steps {
                let d = [t4 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3];
                for (p, d) in times.phases.iter_mut().zip(d) {
                    p.push(d.as_secs_f64());
                }
            }
        }
        times
    }
}

/// One line of text for a result.
pub fn bench_text(r: &BenchResult) -> String {
    let rss = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.1} MB"));
    format!(
        "{:<20} batch {} threads {}: {:.1} images/s ({} per CPU-second), step {:.1} ms (forward {:.1}, backward {:.1}, update {:.1}, zero {:.1}), RSS baseline {}, peak {}{}, {} minor page faults per step",
        serde_json::to_value(r.variant)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        r.batch,
        r.threads,
        r.images_per_s,
        r.images_per_cpu_s
            .map_or("n/a".into(), |v| format!("{v:.1}")),
        r.step.median_ms,
        r.forward.median_ms,
        r.backward.median_ms,
        r.update.median_ms,
        r.zero_grad.median_ms,
        rss(r.baseline_rss_mb),
        rss(r.peak_rss_mb),
        if r.peak_rss_reset {
            ""
        } else {
            " (since process start)"
        },
        r.minor_faults_per_step
            .map_or("n/a".into(), |f| format!("{f:.0}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunas_shared::builtin_space;

    #[test]
    fn all_values_plan_marks_only_kernel_se_and_skip() {
        let space = builtin_space("tiny28").unwrap();
        let plan = all_values_plan(&space, &Architecture::largest(&space), true);
        for (d, all) in space.decisions.iter().zip(&plan.all_values) {
            let expected = matches!(
                d.kind,
                DecisionKind::Kernel | DecisionKind::SqueezeExcite | DecisionKind::Skip
            );
            assert_eq!(*all, expected, "{}", d.name);
        }
        assert!(plan.all_values.iter().any(|&a| a));
    }

    #[test]
    fn proc_status_is_read() {
        if std::path::Path::new("/proc/self/status").exists() {
            let rss = proc_status_kb("VmRSS").expect("VmRSS");
            assert!(rss > 0);
            assert!(proc_status_kb("VmHWM").unwrap() >= rss / 2);
        }
        assert_eq!(proc_status_kb("NoSuchField"), None);
        if std::path::Path::new("/proc/self/stat").exists() {
            let before = minor_faults().expect("minflt");
            let v = vec![1u8; 8 << 20];
            assert!(minor_faults().unwrap() > before, "{}", v[4096]);
            assert!(process_cpu_ns().unwrap() > 0);
        }
    }

    #[test]
    fn timing_statistics() {
        let t = Timing::of(&[0.003, 0.001, 0.002, 0.010]);
        assert_eq!(t.median_ms, 2.5);
        assert_eq!(t.min_ms, 1.0);
        assert_eq!(t.max_ms, 10.0);
        assert!((t.mean_ms - 4.0).abs() < 1e-9);
    }
}
