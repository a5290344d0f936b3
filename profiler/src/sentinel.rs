//! The sentinel: one fixed op re-timed every few measurements, so that a
//! phone heating up (latency can double over half an hour of profiling)
//! shows as drift instead of silently inflating the rows measured while it
//! was hot. On drift the profiler re-times the sentinel at once (a blip is
//! not a reason to wait); if it is still slower, it pauses to cool down
//! (within a total budget) and re-times it; a faster level becomes the new
//! baseline. Either way the rows taken since the last steady check are
//! measured again.
//!
//! The decision logic here is independent of ONNX Runtime: the sentinel's
//! timing is a closure, so it is tested with made-up readings.

use std::time::Duration;

/// When and how the sentinel is checked.
#[derive(Clone, Debug, PartialEq)]
pub struct SentinelSettings {
    /// Check after every this many measurement units (context networks or
    /// one-op keys); 0 turns the sentinel off.
    pub every: usize,
    /// Relative drift from the baseline that counts as drift (0.10 = 10%).
    pub threshold: f64,
    /// Pause before re-timing the sentinel after drift.
    pub cooldown: Duration,
    /// Pauses before giving up on the baseline: the device did not come
    /// back, the new reading becomes the baseline and this is recorded.
    pub max_cooldowns: usize,
    /// Total pausing allowed over the whole run. A device whose speed keeps
    /// changing for reasons heat does not explain (a shared host, a
    /// neighbour on the same core) would otherwise pause forever; once the
    /// budget is spent, drift still resets the baseline and re-measures
    /// rows, without pausing.
    pub cooldown_budget: Duration,
}

impl Default for SentinelSettings {
    /// What `profile` runs with by default.
    fn default() -> Self {
        crate::request::RunRequest::default().sentinel()
    }
}

/// One drift the sentinel saw and what was done about it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DriftEvent {
    /// Measurement units done when it was seen.
    pub after_units: usize,
    /// Baseline at the time (µs).
    pub baseline_us: f64,
    /// The drifted reading (µs).
    pub reading_us: f64,
    /// Cool-down pauses taken.
    pub cooldowns: usize,
    /// The last reading after cooling (µs).
    pub settled_us: f64,
    /// Whether the sentinel came back within the threshold (else the
    /// baseline was reset to `settled_us`).
    pub recovered: bool,
    /// Rows thrown away and measured again (filled in by the caller).
    pub remeasured_rows: usize,
    /// The cool-down budget ran out before the sentinel came back.
    pub budget_spent: bool,
}

impl DriftEvent {
    /// Drift of the first reading, in percent.
    pub(crate) fn drift_pct(&self) -> f64 {
        (self.reading_us / self.baseline_us - 1.0) * 100.0
    }

    /// Whether the drifted reading was faster than the baseline.
    pub(crate) fn faster(&self) -> bool {
        self.reading_us < self.baseline_us
    }

    /// Whether the device settled faster than the baseline (a baseline
    /// timed before the device warmed up), which no cool-down can fix.
    pub(crate) fn settled_faster(&self) -> bool {
        self.settled_us < self.baseline_us
    }

    /// What was done, in words.
    pub(crate) fn outcome(&self) -> String {
        match (self.recovered, self.cooldowns) {
            (true, 0) => format!(
                "{} once, back within the threshold on re-timing",
                if self.faster() { "faster" } else { "slower" }
            ),
            (true, n) => format!("cooled down {n} time(s), back within the threshold"),
            (false, 0) if self.settled_faster() => {
                "faster than the first timing: no cool-down, new baseline".into()
            }
            (false, n) if self.settled_faster() => {
                format!(
                    "cooled down {n} time(s), settled faster than the first timing: new baseline"
                )
            }
            (false, 0) if self.budget_spent => {
                "still slower on re-timing, no cool-down budget left: new baseline".into()
            }
            (false, _) => format!(
                "cooled down {} time(s), not back{}: new baseline",
                self.cooldowns,
                if self.budget_spent {
                    " (cool-down budget spent)"
                } else {
                    ""
                }
            ),
        }
    }
}

/// What a call to [`Sentinel::tick`] found.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Check {
    /// Not a checking unit.
    Skipped,
    /// Checked and within the threshold: rows measured so far are good.
    Steady,
    /// Drifted; the device was cooled down (see the event). Rows measured
    /// since the last steady check should be measured again.
    Drifted(DriftEvent),
}

/// The sentinel's state; `measure` returns the sentinel op's median (µs).
pub(crate) struct Sentinel<F> {
    settings: SentinelSettings,
    measure: F,
    sleep: fn(Duration),
    /// Says a pause is starting, before it starts: a run that goes quiet
    /// for minutes must say why.
    announce: Box<dyn FnMut(&str)>,
    baseline_us: f64,
    units: usize,
    checks: usize,
    /// Every drift seen, in order.
    pub events: Vec<DriftEvent>,
}

impl<F, E> Sentinel<F>
where
    F: FnMut() -> Result<f64, E>,
{
    /// Takes the baseline now (or uses `baseline_us`, e.g. from a journal
    /// being resumed, so a device still hot from the first run is caught).
    pub fn new(
        settings: SentinelSettings,
        mut measure: F,
        baseline_us: Option<f64>,
    ) -> Result<Self, E> {
        let baseline_us = match baseline_us {
            Some(b) if b.is_finite() && b > 0.0 => b,
            _ => measure()?,
        };
        Ok(Sentinel {
            settings,
            measure,
            sleep: std::thread::sleep,
            announce: Box::new(|line| eprintln!("{line}")),
            baseline_us,
            units: 0,
            checks: 0,
            events: Vec::new(),
        })
    }

    /// Replaces `std::thread::sleep` (tests).
    #[cfg(test)]
    pub(crate) fn with_sleep(mut self, sleep: fn(Duration)) -> Self {
        self.sleep = sleep;
        self
    }

    /// Replaces the announcement of pauses on stderr (tests).
    #[cfg(test)]
    pub(crate) fn with_announce(mut self, announce: impl FnMut(&str) + 'static) -> Self {
        self.announce = Box::new(announce);
        self
    }

    /// The current baseline (µs).
    pub(crate) fn baseline_us(&self) -> f64 {
        self.baseline_us
    }

    /// Checks done so far.
    #[cfg(test)]
    pub(crate) fn checks(&self) -> usize {
        self.checks
    }

    fn drifted(&self, reading: f64) -> bool {
        // A NaN reading counts as drift.
        let within = (reading / self.baseline_us - 1.0).abs() <= self.settings.threshold;
        !within
    }

    /// Counts one measurement unit; every `every` units re-times the
    /// sentinel and, on drift, re-times it once more, then cools down until
    /// it is back (or gives up after `max_cooldowns` pauses or when the
    /// budget is spent, and takes the new level as baseline).
    pub(crate) fn tick(&mut self) -> Result<Check, E> {
        self.units += 1;
        if self.settings.every == 0 || !self.units.is_multiple_of(self.settings.every) {
            return Ok(Check::Skipped);
        }
        self.checks += 1;
        let reading = (self.measure)()?;
        if !self.drifted(reading) {
            return Ok(Check::Steady);
        }
        let mut event = DriftEvent {
            after_units: self.units,
            baseline_us: self.baseline_us,
            reading_us: reading,
            cooldowns: 0,
            settled_us: reading,
            recovered: false,
            remeasured_rows: 0,
            budget_spent: false,
        };
        // One immediate re-timing tells a blip (a scheduling hiccup) from a
        // new level before anything waits.
        event.settled_us = (self.measure)()?;
        event.recovered = !self.drifted(event.settled_us);
        // Heat only slows a device down, so pausing cannot bring a faster
        // sentinel back: its baseline was timed before the device (clock
        // ramp, caches) had settled, and the faster level becomes the new
        // baseline. A slower one is cooled down, within the budget.
        while !event.recovered
            && !event.settled_faster()
            && event.cooldowns < self.settings.max_cooldowns.max(1)
        {
            let paused = self.settings.cooldown * (self.pauses_taken() + event.cooldowns) as u32;
            if paused + self.settings.cooldown > self.settings.cooldown_budget {
                event.budget_spent = true;
                break;
            }
            let left = self.settings.cooldown_budget.saturating_sub(paused);
            (self.announce)(&format!(
                "sentinel {:+.1}% against its baseline ({:.1} us) after {} units, {:+.1}% on re-timing: \
                 pausing {} s to let the device cool down (pause {} of at most {}; {} s of the \
                 {} s cool-down budget left; --cooldown-s and --cooldown-budget-s change these)",
                event.drift_pct(),
                event.baseline_us,
                event.after_units,
                (event.settled_us / event.baseline_us - 1.0) * 100.0,
                self.settings.cooldown.as_secs_f64(),
                event.cooldowns + 1,
                self.settings.max_cooldowns.max(1),
                left.as_secs_f64(),
                self.settings.cooldown_budget.as_secs_f64(),
            ));
            (self.sleep)(self.settings.cooldown);
            event.cooldowns += 1;
            event.settled_us = (self.measure)()?;
            event.recovered = !self.drifted(event.settled_us);
        }
        if !event.recovered {
            self.baseline_us = event.settled_us;
        }
        self.events.push(event.clone());
        Ok(Check::Drifted(event))
    }

    /// Cool-down pauses taken over the run (finished events).
    fn pauses_taken(&self) -> usize {
        self.events.iter().map(|e| e.cooldowns).sum()
    }

    /// One line for the provenance and the summary.
    pub(crate) fn summary(&self) -> String {
        let drifts = self.events.len();
        format!(
            "{} checks every {} units, baseline {:.1} us, threshold {:.0}%: {}",
            self.checks,
            self.settings.every,
            self.baseline_us,
            self.settings.threshold * 100.0,
            if drifts == 0 {
                "steady".to_string()
            } else {
                format!(
                    "{drifts} drift(s), {} cool-down pause(s) of {} s, {} rows re-measured{}{}",
                    self.pauses_taken(),
                    self.settings.cooldown.as_secs_f64(),
                    self.events.iter().map(|e| e.remeasured_rows).sum::<usize>(),
                    if self
                        .events
                        .iter()
                        .any(|e| !e.recovered && !e.settled_faster())
                    {
                        "; the device did not always come back: baseline reset"
                    } else if self.events.iter().any(|e| !e.recovered) {
                        "; the first timing was slow: baseline reset to the faster level"
                    } else {
                        ""
                    },
                    if self.events.iter().any(|e| e.budget_spent) {
                        format!(
                            "; cool-down budget of {} s spent (the speed kept changing: a shared or busy machine?)",
                            self.settings.cooldown_budget.as_secs_f64()
                        )
                    } else {
                        String::new()
                    }
                )
            }
        )
    }

    /// Every drift, for the provenance.
    pub(crate) fn events_text(&self) -> String {
        if self.events.is_empty() {
            return "none".into();
        }
        self.events
            .iter()
            .map(|e| {
                format!(
                    "after unit {}: {:.1} us vs baseline {:.1} us ({:+.1}%), {}, settled at {:.1} us, {} rows re-measured",
                    e.after_units,
                    e.reading_us,
                    e.baseline_us,
                    e.drift_pct(),
                    e.outcome(),
                    e.settled_us,
                    e.remeasured_rows
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_sleep(_: Duration) {}

    fn sentinel(readings: Vec<f64>, every: usize) -> Sentinel<impl FnMut() -> Result<f64, ()>> {
        sentinel_with_budget(readings, every, Duration::from_secs(600))
    }

    fn sentinel_with_budget(
        readings: Vec<f64>,
        every: usize,
        cooldown_budget: Duration,
    ) -> Sentinel<impl FnMut() -> Result<f64, ()>> {
        let mut it = readings.into_iter();
        Sentinel::new(
            SentinelSettings {
                every,
                threshold: 0.10,
                cooldown: Duration::from_secs(60),
                max_cooldowns: 2,
                cooldown_budget,
            },
            move || Ok(it.next().expect("enough readings")),
            None,
        )
        .unwrap()
        .with_sleep(no_sleep)
    }

    fn expect_drift<F: FnMut() -> Result<f64, ()>>(s: &mut Sentinel<F>) -> DriftEvent {
        match s.tick().unwrap() {
            Check::Drifted(e) => e,
            other => panic!("expected a drift, got {other:?}"),
        }
    }

    #[test]
    fn checks_only_every_n_units_and_accepts_small_noise() {
        let mut s = sentinel(vec![100.0, 105.0, 92.0], 3);
        for _ in 0..2 {
            assert_eq!(s.tick(), Ok(Check::Skipped));
        }
        assert_eq!(s.tick(), Ok(Check::Steady));
        s.tick().unwrap();
        s.tick().unwrap();
        assert_eq!(s.tick(), Ok(Check::Steady));
        assert_eq!(s.checks(), 2);
        assert!(s.summary().contains("steady"), "{}", s.summary());
    }

    #[test]
    fn drift_cools_down_until_the_sentinel_is_back() {
        // Baseline 100, then a throttled 130 (125 re-timed at once), still
        // 120 after one pause, 104 after two.
        let mut s = sentinel(vec![100.0, 130.0, 125.0, 120.0, 104.0], 1);
        let e = expect_drift(&mut s);
        assert_eq!(e.cooldowns, 2);
        assert!(e.recovered);
        assert!((e.drift_pct() - 30.0).abs() < 1e-9);
        assert_eq!(s.baseline_us(), 100.0);
        assert!(s.events_text().contains("+30.0%"), "{}", s.events_text());
    }

    #[test]
    fn every_pause_is_announced_with_its_length_and_the_budget_left() {
        use std::cell::RefCell;
        use std::rc::Rc;
        let lines = Rc::new(RefCell::new(Vec::<String>::new()));
        let sink = Rc::clone(&lines);
        let mut s = sentinel(vec![100.0, 130.0, 125.0, 120.0, 104.0], 1)
            .with_announce(move |line| sink.borrow_mut().push(line.to_string()));
        let e = expect_drift(&mut s);
        let lines = lines.borrow();
        assert_eq!(lines.len(), e.cooldowns, "{lines:?}");
        assert!(lines[0].contains("+30.0%"), "{}", lines[0]);
        assert!(lines[0].contains("pausing 60 s"), "{}", lines[0]);
        assert!(lines[0].contains("pause 1 of at most 2"), "{}", lines[0]);
        assert!(lines[0].contains("600 s of the 600 s"), "{}", lines[0]);
        assert!(lines[1].contains("540 s of the 600 s"), "{}", lines[1]);
        assert!(lines[1].contains("--cooldown-budget-s"), "{}", lines[1]);
    }

    #[test]
    fn a_device_that_does_not_come_back_resets_the_baseline() {
        let mut s = sentinel(vec![100.0, 150.0, 148.0, 140.0, 145.0, 146.0], 1);
        let e = expect_drift(&mut s);
        assert!(!e.recovered && e.cooldowns == 2 && !e.budget_spent);
        assert_eq!(s.baseline_us(), 145.0);
        // The new level is steady from now on.
        assert_eq!(s.tick(), Ok(Check::Steady));
        assert!(s.summary().contains("baseline reset"), "{}", s.summary());
    }

    #[test]
    fn a_faster_sentinel_resets_the_baseline_without_pausing() {
        fn sleep_is_a_bug(_: Duration) {
            panic!("a faster device must not be cooled down");
        }
        // A cold first timing of 150, then the warmed-up device at 100 twice.
        let mut s = sentinel(vec![150.0, 100.0, 101.0, 99.0], 1).with_sleep(sleep_is_a_bug);
        let e = expect_drift(&mut s);
        assert!(e.faster() && !e.recovered && e.cooldowns == 0, "{e:?}");
        assert_eq!(e.settled_us, 101.0);
        assert_eq!(s.baseline_us(), 101.0);
        assert_eq!(s.tick(), Ok(Check::Steady));
        assert!(
            s.summary().contains("first timing was slow"),
            "{}",
            s.summary()
        );
        assert!(
            s.events_text().contains("no cool-down"),
            "{}",
            s.events_text()
        );
    }

    #[test]
    fn a_single_slow_reading_is_a_blip_not_a_reason_to_pause() {
        let mut s = sentinel(vec![100.0, 130.0, 103.0], 1).with_sleep(|_| panic!("no pause"));
        let e = expect_drift(&mut s);
        assert!(!e.faster() && e.recovered && e.cooldowns == 0, "{e:?}");
        assert!(e.outcome().contains("slower once"), "{}", e.outcome());
        assert_eq!(s.baseline_us(), 100.0);
    }

    #[test]
    fn pauses_stop_when_the_cool_down_budget_is_spent() {
        // Budget for one 60 s pause. First drift: one pause brings it back.
        // Second drift: no budget left, so the slow level becomes the
        // baseline at once.
        let mut s = sentinel_with_budget(
            vec![100.0, 150.0, 150.0, 104.0, 160.0, 158.0, 159.0],
            1,
            Duration::from_secs(60),
        );
        let e = expect_drift(&mut s);
        assert!(e.recovered && e.cooldowns == 1, "{e:?}");
        let e = expect_drift(&mut s);
        assert!(!e.recovered && e.cooldowns == 0 && e.budget_spent, "{e:?}");
        assert!(
            e.outcome().contains("no cool-down budget left"),
            "{}",
            e.outcome()
        );
        assert_eq!(s.baseline_us(), 158.0);
        assert_eq!(s.tick(), Ok(Check::Steady));
        assert!(
            s.summary().contains("cool-down budget of 60 s spent"),
            "{}",
            s.summary()
        );
    }

    #[test]
    fn a_fast_reading_that_turns_slow_on_re_timing_is_cooled_down() {
        // A shared host flipping speed: 70 first, then 130, then back to 100
        // after one pause.
        let mut s = sentinel(vec![100.0, 70.0, 130.0, 100.0], 1);
        let e = expect_drift(&mut s);
        assert!(e.faster() && e.recovered && e.cooldowns == 1, "{e:?}");
        assert!(e.outcome().contains("cooled down 1"), "{}", e.outcome());
        assert_eq!(s.baseline_us(), 100.0);
    }

    #[test]
    fn a_single_fast_reading_is_noise() {
        let mut s = sentinel(vec![100.0, 80.0, 97.0], 1).with_sleep(|_| panic!("no pause"));
        let e = expect_drift(&mut s);
        assert!(e.faster() && e.recovered);
        assert_eq!(s.baseline_us(), 100.0);
    }

    #[test]
    fn a_resumed_run_keeps_the_journal_baseline() {
        let s = Sentinel::new(
            SentinelSettings::default(),
            || -> Result<f64, ()> { panic!("must not re-time the baseline") },
            Some(80.0),
        )
        .unwrap();
        assert_eq!(s.baseline_us(), 80.0);
    }
}
