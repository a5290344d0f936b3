//! Plain progress lines for runs whose stderr is a pipe (remote devices,
//! logs): at most one line every few seconds, never the same count twice,
//! each with the percentage, the rate and the time left.

use std::time::{Duration, Instant};

/// One phase's progress lines (`ops`, `calibration`).
#[derive(Debug)]
pub(crate) struct ProgressLines {
    enabled: bool,
    what: &'static str,
    total: usize,
    every: Duration,
    started: Instant,
    /// Units done when the phase started (a resumed run's journal rows):
    /// the rate counts only what this run did.
    start_done: usize,
    last_print: Option<Instant>,
    last_done: Option<usize>,
}

impl ProgressLines {
    /// Lines for `total` units, `start_done` of them already done; printed
    /// to stderr only when `enabled`, at most once per `every`.
    pub(crate) fn new(
        enabled: bool,
        what: &'static str,
        total: usize,
        start_done: usize,
        every: Duration,
    ) -> Self {
        ProgressLines {
            enabled,
            what,
            total,
            every,
            started: Instant::now(),
            start_done,
            last_print: None,
            last_done: None,
        }
    }

    /// `done` units are finished: prints a line if one is due (the first,
    /// the last, or `every` after the previous one) and the count changed.
    pub(crate) fn update(&mut self, done: usize) {
        if !self.enabled {
            return;
        }
        if let Some(line) = self.line_due(done, Instant::now()) {
            eprintln!("{line}");
        }
    }

    fn line_due(&mut self, done: usize, now: Instant) -> Option<String> {
        if self.last_done == Some(done) {
            return None;
        }
        let finished = done >= self.total;
        let due = self
            .last_print
            .is_none_or(|t| now.duration_since(t) >= self.every);
        if !due && !finished {
            return None;
        }
        self.last_print = Some(now);
        self.last_done = Some(done);
        Some(self.text(done, now.duration_since(self.started)))
    }

    fn text(&self, done: usize, elapsed: Duration) -> String {
        let pct = if self.total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / self.total as f64
        };
        let secs = elapsed.as_secs_f64();
        let new = done.saturating_sub(self.start_done);
        let rate = if secs > 0.0 { new as f64 / secs } else { 0.0 };
        let eta = if done >= self.total {
            "done".to_string()
        } else if rate > 0.0 {
            format!("ETA {}", duration_text((self.total - done) as f64 / rate))
        } else {
            "ETA ?".to_string()
        };
        format!(
            "progress: {} {done}/{} ({pct:.0}%), {rate:.2}/s, {eta}",
            self.what, self.total
        )
    }
}

/// `45 s`, `12 min 5 s`, `3 h 20 min`.
fn duration_text(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_spaced_and_never_repeat() {
        let every = Duration::from_secs(5);
        let mut p = ProgressLines::new(true, "ops", 100, 0, every);
        let t0 = p.started;
        let at = |s: u64| t0 + Duration::from_secs(s);
        let first = p.line_due(10, at(2)).unwrap();
        assert_eq!(first, "progress: ops 10/100 (10%), 5.00/s, ETA 18 s");
        assert_eq!(p.line_due(11, at(3)), None, "too soon");
        assert_eq!(p.line_due(10, at(9)), None, "the same count again");
        assert!(p.line_due(12, at(9)).is_some());
        assert_eq!(p.line_due(12, at(30)), None, "no repeat however late");
        // The last line comes at once.
        assert!(p.line_due(100, at(31)).unwrap().ends_with("done"));
    }

    #[test]
    fn a_resumed_phase_counts_only_its_own_rate() {
        let mut p = ProgressLines::new(true, "ops", 1000, 400, Duration::ZERO);
        let line = p
            .line_due(410, p.started + Duration::from_secs(10))
            .unwrap();
        assert_eq!(line, "progress: ops 410/1000 (41%), 1.00/s, ETA 9 min 50 s");
        assert_eq!(duration_text(7300.0), "2 h 1 min");
    }
}
