//! Where a search's time goes: wall and CPU time per phase of the step,
//! summed over the run (kept in the checkpoint, so a resumed run counts
//! every process's share) and written to `result.json`.
//!
//! CPU time is that of the threads of the rayon pool the search runs on
//! (and of the caller, outside a pool), not the whole process's: `sweep`
//! and `benchmark` run several searches side by side in one process, each
//! on a pool of its own. So the breakdown means something also on a
//! machine that other work loads: wall time stretches with the load, CPU
//! time much less.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Reads the CPU time of the threads that run a search: those of the
/// rayon pool it runs on, and the caller outside a pool. The threads are
/// found once; reading their clocks later wakes none of them.
#[derive(Clone, Debug, Default)]
pub(crate) struct PoolClock {
    /// `/proc/PID/task/TID/schedstat` of each thread.
    schedstats: Vec<PathBuf>,
}

impl PoolClock {
    /// The threads of the current rayon pool (and the caller, if it is
    /// not one of them). Empty where `/proc/thread-self` is not there: CPU
    /// times then stay 0.
    pub(crate) fn of_current_pool() -> Self {
        let this_thread = || {
            std::fs::read_link("/proc/thread-self")
                .ok()
                .map(|task| Path::new("/proc").join(task).join("schedstat"))
        };
        let mut schedstats: Vec<PathBuf> = rayon::broadcast(|_| this_thread())
            .into_iter()
            .flatten()
            .collect();
        if rayon::current_thread_index().is_none() {
            schedstats.extend(this_thread());
        }
        PoolClock { schedstats }
    }

    /// Nanoseconds these threads have run, if readable.
    pub(crate) fn cpu_ns(&self) -> Option<u64> {
        if self.schedstats.is_empty() {
            return None;
        }
        self.schedstats
            .iter()
            .map(|path| crate::bench::schedstat_ns(path))
            .sum()
    }
}

/// One phase of a search step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The shared weights' training step during the warm-up (op warm-up:
    /// decisions over all their values with probability p, filter warm-up).
    WarmupTraining,
    /// The training step after the warm-up: one path.
    SearchTraining,
    /// Q: the sampled path's forward pass on a validation batch.
    Validation,
    /// Training and validation batches (decoding, augmentation).
    Batches,
    /// Sampling, cost estimates, REINFORCE update.
    Controller,
    /// The step log, checkpoints and end-of-warm-up weights.
    Saving,
}

/// Wall and CPU seconds of one phase, summed over the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTime {
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// CPU seconds of all the process's threads.
    pub cpu_s: f64,
}

/// Time per phase of a search, summed over its steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Warm-up steps timed.
    pub warmup_steps: usize,
    /// Steps after the warm-up timed.
    pub search_steps: usize,
    /// See [`Phase::WarmupTraining`].
    pub warmup_training: PhaseTime,
    /// See [`Phase::SearchTraining`].
    pub search_training: PhaseTime,
    /// See [`Phase::Validation`].
    pub validation: PhaseTime,
    /// See [`Phase::Batches`].
    pub batches: PhaseTime,
    /// See [`Phase::Controller`].
    pub controller: PhaseTime,
    /// See [`Phase::Saving`].
    pub saving: PhaseTime,
}

impl PhaseTimes {
    fn slot(&mut self, phase: Phase) -> &mut PhaseTime {
        match phase {
            Phase::WarmupTraining => &mut self.warmup_training,
            Phase::SearchTraining => &mut self.search_training,
            Phase::Validation => &mut self.validation,
            Phase::Batches => &mut self.batches,
            Phase::Controller => &mut self.controller,
            Phase::Saving => &mut self.saving,
        }
    }

    /// Runs `work` and adds its wall time and `clock`'s CPU time to `phase`.
    pub(crate) fn time<T>(
        &mut self,
        clock: &PoolClock,
        phase: Phase,
        work: impl FnOnce() -> T,
    ) -> T {
        let start = (Instant::now(), clock.cpu_ns());
        let out = work();
        self.add_since(clock, phase, start);
        out
    }

    /// Adds the wall and CPU time since `start` (an instant and
    /// `clock.cpu_ns()`) to `phase`.
    pub(crate) fn add_since(
        &mut self,
        clock: &PoolClock,
        phase: Phase,
        (wall, cpu): (Instant, Option<u64>),
    ) {
        let slot = self.slot(phase);
        slot.wall_s += wall.elapsed().as_secs_f64();
        if let (Some(a), Some(b)) = (cpu, clock.cpu_ns()) {
            slot.cpu_s += b.saturating_sub(a) as f64 * 1e-9;
        }
    }

    /// Counts one finished step.
    pub(crate) fn count_step(&mut self, in_warmup: bool) {
        if in_warmup {
            self.warmup_steps += 1;
        } else {
            self.search_steps += 1;
        }
    }

    /// Milliseconds per step of each phase, as lines for the summary
    /// (training phases per step of their part of the run, the others per
    /// step of the whole run).
    pub fn summary_lines(&self) -> Vec<String> {
        let steps = self.warmup_steps + self.search_steps;
        let rows = [
            ("warm-up training", &self.warmup_training, self.warmup_steps),
            ("search training", &self.search_training, self.search_steps),
            ("validation (Q)", &self.validation, steps),
            ("batches", &self.batches, steps),
            ("controller", &self.controller, steps),
            ("saving", &self.saving, steps),
        ];
        let total: f64 = rows.iter().map(|(_, t, _)| t.wall_s).sum();
        rows.iter()
            .filter(|(_, _, n)| *n > 0)
            .map(|(name, t, n)| {
                format!(
                    "{name:<17} {:>8.1} ms wall {:>8.1} ms CPU per step ({:>4.1}% of the wall time)",
                    t.wall_s * 1e3 / *n as f64,
                    t.cpu_s * 1e3 / *n as f64,
                    if total > 0.0 {
                        100.0 * t.wall_s / total
                    } else {
                        0.0
                    }
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_adds_to_the_phase_it_names_only() {
        let mut times = PhaseTimes::default();
        let clock = PoolClock::of_current_pool();
        let v = times.time(&clock, Phase::Validation, || {
            // 50 ms of busy work: long enough for the kernel to have
            // accounted the running thread's CPU time (it does so at ticks
            // and switches).
            let start = Instant::now();
            let mut a = 0u64;
            while start.elapsed().as_millis() < 50 {
                a = std::hint::black_box(a.wrapping_add(1));
            }
            a
        });
        assert!(v > 0);
        assert!(times.validation.wall_s > 0.0);
        assert!(times.validation.cpu_s > 0.0);
        assert_eq!(times.batches, PhaseTime::default());
        assert_eq!(times.warmup_training, PhaseTime::default());
        times.count_step(true);
        times.count_step(false);
        times.count_step(false);
        assert_eq!((times.warmup_steps, times.search_steps), (1, 2));
        let lines = times.summary_lines();
        assert_eq!(lines.len(), 6, "{lines:?}");
        assert!(lines[2].starts_with("validation (Q)"), "{lines:?}");
        assert!(lines[2].contains("100.0% of the wall time"), "{lines:?}");
        // A part of the run with no steps has no line.
        let mut warmup_only = PhaseTimes::default();
        warmup_only.count_step(true);
        let lines = warmup_only.summary_lines();
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(lines.iter().all(|l| !l.starts_with("search training")));
    }
}
