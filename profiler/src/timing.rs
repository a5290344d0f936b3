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
    /// Per timed run, the reference's level over its time beside that run
    /// ([`benchmark_beside`]); empty when no reference was timed.
    pub reference_scales: Vec<f64>,
    /// The reference's own times (µs) beside the timed runs, one more
    /// than the runs; empty when no reference was timed.
    pub reference_us: Vec<f64>,
}

impl Measurement {
    /// [`ROW_STATISTIC`] (as `median_us`), p10, p90, mean, std and count
    /// of the samples.
    pub fn stats(&self) -> OpStats {
        OpStats::with_statistic(&self.scaled(&self.samples_us), 0.0, ROW_STATISTIC)
    }

    /// Per-run values (one per timed run, e.g. a node's times) at the
    /// reference's level: each multiplied by its run's reference scale, or
    /// as they are when no reference was timed.
    pub(crate) fn scaled(&self, per_run: &[f64]) -> Vec<f64> {
        if self.reference_scales.is_empty() {
            return per_run.to_vec();
        }
        per_run
            .iter()
            .zip(&self.reference_scales)
            .map(|(v, s)| v * s)
            .collect()
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
        reference_scales: Vec::new(),
        reference_us: Vec::new(),
    })
}

/// Like [`benchmark`], with a reference timed before the first run and
/// after every run: R, T, R, T, R, … Each timed run's reference scale is
/// `level_us` over the mean of the two reference runs beside it, so a
/// device that changes speed between runs (a shared VM flipping between
/// modes, a phone throttling) changes the run and its scale alike, and the
/// scaled run reads as if the reference had taken `level_us`.
pub(crate) fn benchmark_beside<E>(
    config: &BenchmarkConfig,
    mut run: impl FnMut() -> Result<(), E>,
    mut reference: impl FnMut() -> Result<(), E>,
    level_us: f64,
) -> Result<Measurement, E> {
    fn timed<E>(f: &mut impl FnMut() -> Result<(), E>) -> Result<f64, E> {
        let t = Instant::now();
        f()?;
        Ok(t.elapsed().as_secs_f64() * 1e6)
    }
    let mut own = Vec::new();
    let mut beside = vec![timed(&mut reference)?];
    let mut m = benchmark(config, || {
        own.push(timed(&mut run)?);
        beside.push(timed(&mut reference)?);
        Ok(())
    })?;
    // The warm-up's runs come first; the timed ones are the rest.
    let first = m.warmup_runs;
    m.samples_us = own[first..].to_vec();
    m.reference_scales = reference_scales(&beside[first..], level_us);
    m.reference_us = beside[first..].to_vec();
    Ok(m)
}

/// The reference's fast mode over a run's readings (µs): the median of the
/// readings within 20% of the 1st percentile. A device that was in its
/// fast mode for a few percent of the run gives that mode's time, however
/// long it spent slow; one that never left a mode gives that mode.
pub(crate) fn fast_mode_us(readings: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = readings.iter().copied().filter(|r| r.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let floor = tunas_shared::table::quantile(&sorted, 0.01);
    let fast: Vec<f64> = sorted
        .into_iter()
        .take_while(|r| *r <= 1.2 * floor)
        .collect();
    Some(tunas_shared::table::quantile(&fast, 0.5))
}

/// The scale of each run between reference times `beside_us` (one more
/// than the runs): the level over the mean of the two beside it.
fn reference_scales(beside_us: &[f64], level_us: f64) -> Vec<f64> {
    beside_us
        .windows(2)
        .map(|pair| 2.0 * level_us / (pair[0] + pair[1]))
        .collect()
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
    fn the_reference_runs_before_the_first_run_and_after_every_run() {
        let calls = std::cell::RefCell::new(String::new());
        let m = benchmark_beside::<()>(
            &BenchmarkConfig::quick(),
            || {
                calls.borrow_mut().push('T');
                Ok(())
            },
            || {
                calls.borrow_mut().push('R');
                Ok(())
            },
            40.0,
        )
        .unwrap();
        // 1 warm-up run and 5 timed ones.
        assert_eq!(calls.into_inner(), "RTRTRTRTRTRTR");
        assert_eq!(m.samples_us.len(), 5);
        assert_eq!(m.reference_scales.len(), 5);
        assert!(m.reference_scales.iter().all(|s| s.is_finite() && *s > 0.0));
    }

    #[test]
    fn runs_scaled_by_the_reference_keep_one_speed_on_a_bimodal_device() {
        // A device that flips between a fast and a 1.5x slower mode: runs
        // 1, 2 and 5 fast, 3 and 4 slow. The reference beside each run
        // flips with it (two readings per run: before and after).
        let fast_ref = 20.0;
        let beside = [20.0, 20.0, 20.0, 30.0, 30.0, 20.0];
        let runs = [100.0, 100.0, 150.0, 150.0, 100.0];
        let scales = reference_scales(&beside, fast_ref);
        assert_eq!(scales.len(), runs.len());
        let m = Measurement {
            warmup_runs: 0,
            warmup_time: Duration::ZERO,
            samples_us: runs.to_vec(),
            capped: false,
            reference_scales: scales,
            reference_us: beside.to_vec(),
        };
        let scaled = m.scaled(&m.samples_us);
        // Runs beside which the mode changed are scaled by the mean of the
        // two reference readings, so those two land between the modes.
        let expected = [100.0, 100.0, 150.0 * 0.8, 100.0, 100.0 * 0.8];
        for (got, want) in scaled.iter().zip(expected) {
            assert!((got - want).abs() < 1e-9, "{scaled:?}");
        }
        // Unscaled, the sample is bimodal and its median is the slow mode's
        // half the time; scaled, the statistic reads the fast mode.
        let stats = m.stats();
        assert!((stats.median_us - 100.0).abs() < 1e-9, "{stats:?}");
        // Without a reference the samples are read as they are.
        let plain = Measurement {
            reference_scales: Vec::new(),
            ..m
        };
        assert_eq!(plain.scaled(&plain.samples_us), runs.to_vec());
    }

    #[test]
    fn the_fast_mode_is_found_however_rarely_the_device_was_in_it() {
        // Readings at 40 µs ± 1 in the fast mode and 60 ± 1 in the slow
        // one, the fast mode 3%, 30% or 100% of the time.
        let readings = |fast_share: f64| -> Vec<f64> {
            (0..2000)
                .map(|i| {
                    let jitter = (i % 21) as f64 / 10.0 - 1.0;
                    if (i as f64) < fast_share * 2000.0 {
                        40.0 + jitter
                    } else {
                        60.0 + jitter
                    }
                })
                .collect()
        };
        for share in [0.03, 0.3, 1.0] {
            let level = fast_mode_us(&readings(share)).unwrap();
            assert!((level - 40.0).abs() < 0.3, "{share}: {level}");
        }
        // Never fast: the slow mode.
        let level = fast_mode_us(&readings(0.0)).unwrap();
        assert!((level - 60.0).abs() < 0.3, "{level}");
        assert_eq!(fast_mode_us(&[]), None);
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
