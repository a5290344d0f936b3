//! Progress of long work on stderr: a bar on a terminal, and off a terminal
//! (a log file, CI, a pipe) a plain line every few seconds with percent,
//! rate and ETA, never the same line twice.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Seconds between plain lines off a terminal (`TUNAS_PROGRESS_EVERY`
/// overrides it).
pub(crate) const PLAIN_EVERY_S: u64 = 10;

enum Display {
    Hidden,
    Bar(ProgressBar),
    Plain(ProgressLines),
}

/// The one progress-bar style of both tools: `what [====>   ] pos/len
/// unit, elapsed, ETA` and a free message at the end.
pub fn terminal_bar(what: &str, total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} [{{bar:36}}] {{pos}}/{{len}} {unit}, {{elapsed_precise}} elapsed, ETA {{eta_precise}} {{msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Progress of `total` units of one piece of work.
pub struct Progress {
    display: Display,
    pos: u64,
    message: String,
}

impl Progress {
    /// Progress of `what` over `total` `unit`s (e.g. "steps"); `show`
    /// false hides it.
    pub fn new(what: &'static str, total: u64, unit: &str, show: bool) -> Self {
        let display = if !show {
            Display::Hidden
        } else if std::io::stderr().is_terminal() {
            Display::Bar(terminal_bar(what, total, unit))
        } else {
            let every = std::env::var("TUNAS_PROGRESS_EVERY")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(PLAIN_EVERY_S);
            Display::Plain(ProgressLines::new(
                true,
                what,
                total as usize,
                0,
                Duration::from_secs(every),
            ))
        };
        Progress {
            display,
            pos: 0,
            message: String::new(),
        }
    }

    /// Starts at `pos` (a resumed run): the rate counts only what is done now.
    pub fn resume_at(&mut self, pos: u64) {
        self.pos = pos;
        match &mut self.display {
            Display::Bar(b) => {
                b.set_position(pos);
                b.reset_eta();
            }
            Display::Plain(lines) => lines.start_done = pos as usize,
            Display::Hidden => {}
        }
    }

    /// A short note after the counts (e.g. the phase or the loss).
    pub fn set_message(&mut self, message: impl Into<String>) {
        self.message = message.into();
        if let Display::Bar(b) = &self.display {
            b.set_message(self.message.clone());
        }
    }

    /// `n` more units done.
    pub fn inc(&mut self, n: u64) {
        self.pos += n;
        match &mut self.display {
            Display::Hidden => {}
            Display::Bar(b) => b.inc(n),
            Display::Plain(lines) => lines.update(self.pos as usize),
        }
    }

    /// A line of its own, above the bar on a terminal.
    pub fn println(&self, line: &str) {
        match &self.display {
            Display::Hidden => {}
            Display::Bar(b) => b.suspend(|| eprintln!("{line}")),
            Display::Plain(_) => eprintln!("{line}"),
        }
    }

    /// The work ended: the bar is cleared; off a terminal a last line says
    /// where it ended.
    pub fn finish(mut self) {
        match &mut self.display {
            Display::Bar(b) => b.finish_and_clear(),
            Display::Plain(lines) => lines.finish(self.pos as usize),
            Display::Hidden => {}
        }
    }
}

/// Plain progress lines for a stderr that is no terminal (remote devices,
/// logs, CI): at most one line every `every`, never the same count twice,
/// the last one at once, each with the percentage, the rate and the time
/// left.
#[derive(Debug)]
pub struct ProgressLines {
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
    pub fn new(
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

    /// The work ended at `done`: its line is printed unless it already was.
    pub(crate) fn finish(&mut self, done: usize) {
        self.last_print = None;
        self.update(done);
    }

    /// `done` units are finished: prints a line if one is due (the first,
    /// the last, or `every` after the previous one) and the count changed.
    pub fn update(&mut self, done: usize) {
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
