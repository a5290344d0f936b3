//! The benchmark loop, after TFLite's `benchmark_model`: warm up until both
//! a minimum number of runs and a minimum time are reached, then time runs
//! until both a minimum number and a minimum time are reached, never longer
//! than a cap.

use std::time::{Duration, Instant};

use tunas_shared::{OpStats, Statistic};

/// The statistic every timing of the profiler reports as its `median_us`
/// (op rows, calibration networks, `validate`, `measure`): the lower mode,
/// so a device that flips between speed modes is read at its fast mode
/// everywhere alike. Tables record it as `x-statistic`.
pub const ROW_STATISTIC: Statistic = Statistic::LowerMode;

use crate::runtime::{ModelSession, RuntimeError};

/// How long to warm up and how much to measure.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchmarkConfig {
    /// Warm-up runs, at least.
    pub min_warmup_runs: usize,
    /// Warm-up time, at least.
    pub min_warmup_time: Duration,
    /// Timed runs, at least.
    pub min_runs: usize,
    /// Timed time, at least.
    pub min_time: Duration,
    /// Cap on each phase (warm-up, timed): stop once it is reached, even if a
    /// minimum is not, but never before one run.
    pub max_time: Duration,
}

impl Default for BenchmarkConfig {
    /// TFLite `benchmark_model` defaults: ≥1 warm-up run and ≥0.5 s, then
    /// ≥50 runs and ≥1 s, at most 150 s.
    fn default() -> Self {
        BenchmarkConfig {
            min_warmup_runs: 1,
            min_warmup_time: Duration::from_millis(500),
            min_runs: 50,
            min_time: Duration::from_secs(1),
            max_time: Duration::from_secs(150),
        }
    }
}

impl BenchmarkConfig {
    /// A short loop for tests and smoke runs: 1 warm-up run, 5 timed runs,
    /// no minimum times, 10 s cap.
    #[cfg(test)]
    pub(crate) fn quick() -> Self {
        BenchmarkConfig {
            min_warmup_runs: 1,
            min_warmup_time: Duration::ZERO,
            min_runs: 5,
            min_time: Duration::ZERO,
            max_time: Duration::from_secs(10),
        }
    }
}

/// The outcome of one benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Warm-up runs done.
    pub warmup_runs: usize,
    /// Wall time of the warm-up.
    pub warmup_time: Duration,
    /// Wall time of each timed run, µs, in order.
    pub samples_us: Vec<f64>,
    /// Whether [`BenchmarkConfig::max_time`] cut a phase short of a minimum.
    pub capped: bool,
}

impl Measurement {
    /// [`ROW_STATISTIC`] (as `median_us`), p10, p90, mean, std and count
    /// of the samples.
    pub fn stats(&self) -> OpStats {
        OpStats::with_statistic(&self.samples_us, 0.0, ROW_STATISTIC)
    }

    /// The plain median of the samples (the sentinel watches drift, so it
    /// must see a slow mode).
    pub(crate) fn plain_median_us(&self) -> f64 {
        OpStats::from_samples(&self.samples_us).median_us
    }
}

/// Runs `run` as the config says, timing each timed call with
/// [`Instant`]. The first error stops the loop and is returned.
pub(crate) fn benchmark<E>(
    config: &BenchmarkConfig,
    mut run: impl FnMut() -> Result<(), E>,
) -> Result<Measurement, E> {
    let mut capped = false;
    let warmup_start = Instant::now();
    let mut warmup_runs = 0;
    loop {
        let elapsed = warmup_start.elapsed();
        let enough = warmup_runs >= config.min_warmup_runs && elapsed >= config.min_warmup_time;
        if enough {
            break;
        }
        if warmup_runs > 0 && elapsed >= config.max_time {
            capped = true;
            break;
        }
        run()?;
        warmup_runs += 1;
    }
    let warmup_time = warmup_start.elapsed();

    let mut samples_us = Vec::with_capacity(config.min_runs.max(1));
    let timed_start = Instant::now();
    loop {
        let elapsed = timed_start.elapsed();
        let enough = samples_us.len() >= config.min_runs.max(1) && elapsed >= config.min_time;
        if enough {
            break;
        }
        if !samples_us.is_empty() && elapsed >= config.max_time {
            capped = true;
            break;
        }
        let t = Instant::now();
        run()?;
        samples_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(Measurement {
        warmup_runs,
        warmup_time,
        samples_us,
        capped,
    })
}

/// Benchmarks `session.run()` on its fixed input.
pub(crate) fn benchmark_session(
    session: &mut ModelSession,
    config: &BenchmarkConfig,
) -> Result<Measurement, RuntimeError> {
    benchmark(config, || session.run())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::tests::test_runtime;
    use crate::runtime::{ModelSession, SessionConfig};
    use tunas_shared::onnx::{RandomWeights, network_model};
    use tunas_shared::{Architecture, builtin_space};

    #[test]
    fn counts_are_met_with_zero_minimum_times() {
        let mut calls = 0;
        let m = benchmark::<()>(&BenchmarkConfig::quick(), || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(m.warmup_runs, 1);
        assert_eq!(m.samples_us.len(), 5);
        assert_eq!(calls, 6);
        assert!(!m.capped);
        assert_eq!(m.stats().runs, 5);
    }

    #[test]
    fn minimum_times_keep_the_loop_going() {
        let config = BenchmarkConfig {
            min_warmup_runs: 0,
            min_warmup_time: Duration::from_millis(20),
            min_runs: 1,
            min_time: Duration::from_millis(30),
            max_time: Duration::from_secs(5),
        };
        let m = benchmark::<()>(&config, || {
            std::thread::sleep(Duration::from_millis(5));
            Ok(())
        })
        .unwrap();
        assert!(m.warmup_runs >= 4, "{m:?}");
        assert!(m.warmup_time >= Duration::from_millis(20));
        assert!(m.samples_us.len() >= 6, "{m:?}");
        assert!(m.samples_us.iter().all(|&s| s >= 5000.0), "{m:?}");
    }

    #[test]
    fn the_cap_stops_both_phases_after_at_least_one_run() {
        let config = BenchmarkConfig {
            min_warmup_runs: 100,
            min_warmup_time: Duration::ZERO,
            min_runs: 100,
            min_time: Duration::ZERO,
            max_time: Duration::from_millis(10),
        };
        let m = benchmark::<()>(&config, || {
            std::thread::sleep(Duration::from_millis(4));
            Ok(())
        })
        .unwrap();
        assert!(m.capped);
        assert!((1..10).contains(&m.warmup_runs), "{m:?}");
        assert!((1..10).contains(&m.samples_us.len()), "{m:?}");
    }

    #[test]
    fn errors_stop_the_loop() {
        let mut calls = 0;
        let r = benchmark(&BenchmarkConfig::quick(), || {
            calls += 1;
            if calls == 3 { Err("boom") } else { Ok(()) }
        });
        assert_eq!(r.unwrap_err(), "boom");
        assert_eq!(calls, 3);
    }

    #[test]
    fn a_tiny28_network_benchmarks() {
        let Some(rt) = test_runtime() else { return };
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let model = network_model(&space, &arch, &mut RandomWeights::new(0), 1).unwrap();
        let mut session = ModelSession::new(rt, &model, &SessionConfig::default()).unwrap();
        let m = benchmark_session(&mut session, &BenchmarkConfig::quick()).unwrap();
        let stats = m.stats();
        assert_eq!(stats.runs, 5);
        assert!(stats.median_us > 0.0);
        eprintln!(
            "tiny28 largest, 1 thread: median {:.1} µs, p10 {:.1}, p90 {:.1}",
            stats.median_us, stats.p10_us, stats.p90_us
        );
    }
}
