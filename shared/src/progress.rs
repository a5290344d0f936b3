//! Progress of long work on stderr: a bar on a terminal, and off a terminal
//! (a log file, CI, a pipe) a plain line every few seconds with percent,
//! rate and ETA, never the same line twice.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Seconds between plain lines off a terminal (`TUNAS_PROGRESS_EVERY`
/// overrides it).
pub const PLAIN_EVERY_S: u64 = 10;

enum Display {
    Hidden,
    Bar(ProgressBar),
    Plain {
        every: Duration,
        last: Instant,
        printed_pos: Option<u64>,
    },
}

/// Progress of `total` units of one piece of work.
pub struct Progress {
    display: Display,
    what: String,
    unit: String,
    total: u64,
    pos: u64,
    start_pos: u64,
    started: Instant,
    message: String,
}

impl Progress {
    /// Progress of `what` over `total` `unit`s (e.g. "steps"); `show`
    /// false hides it.
    pub fn new(what: &str, total: u64, unit: &str, show: bool) -> Self {
        let display = if !show {
            Display::Hidden
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{what} [{{bar:36}}] {{pos}}/{{len}} {unit}, {{elapsed_precise}} elapsed, ETA {{eta_precise}} {{msg}}"
                ))
                .expect("valid template")
                .progress_chars("=> "),
            );
            Display::Bar(bar)
        } else {
            let every = std::env::var("TUNAS_PROGRESS_EVERY")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(PLAIN_EVERY_S);
            Display::Plain {
                every: Duration::from_secs(every),
                last: Instant::now(),
                printed_pos: None,
            }
        };
        Progress {
            display,
            what: what.to_string(),
            unit: unit.to_string(),
            total,
            pos: 0,
            start_pos: 0,
            started: Instant::now(),
            message: String::new(),
        }
    }

    /// Starts at `pos` (a resumed run): the rate counts only what is done now.
    pub fn resume_at(&mut self, pos: u64) {
        self.pos = pos;
        self.start_pos = pos;
        if let Display::Bar(b) = &self.display {
            b.set_position(pos);
            b.reset_eta();
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
            Display::Plain { every, last, .. } => {
                if last.elapsed() >= *every {
                    *last = Instant::now();
                    self.print_plain();
                }
            }
        }
    }

    /// A line of its own, above the bar on a terminal.
    pub fn println(&self, line: &str) {
        match &self.display {
            Display::Hidden => {}
            Display::Bar(b) => b.suspend(|| eprintln!("{line}")),
            Display::Plain { .. } => eprintln!("{line}"),
        }
    }

    fn print_plain(&mut self) {
        let Display::Plain { printed_pos, .. } = &mut self.display else {
            return;
        };
        if *printed_pos == Some(self.pos) {
            return;
        }
        *printed_pos = Some(self.pos);
        let elapsed = self.started.elapsed().as_secs_f64();
        let done_now = (self.pos - self.start_pos) as f64;
        let rate = done_now / elapsed.max(1e-9);
        let left = self.total.saturating_sub(self.pos) as f64;
        let eta = if rate > 0.0 {
            clock(left / rate)
        } else {
            "unknown".into()
        };
        let pct = 100.0 * self.pos as f64 / self.total.max(1) as f64;
        let msg = if self.message.is_empty() {
            String::new()
        } else {
            format!(", {}", self.message)
        };
        eprintln!(
            "{}: {}/{} {} ({pct:.0}%), {rate:.2} {}/s, {} elapsed, ETA {eta}{msg}",
            self.what,
            self.pos,
            self.total,
            self.unit,
            self.unit,
            clock(elapsed)
        );
    }

    /// The work ended: the bar is cleared; off a terminal a last line says
    /// where it ended.
    pub fn finish(mut self) {
        match &self.display {
            Display::Bar(b) => b.finish_and_clear(),
            Display::Plain { .. } => self.print_plain(),
            Display::Hidden => {}
        }
    }
}

/// `h:mm:ss` (or `m:ss`).
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_like_a_clock() {
        assert_eq!(clock(5.0), "0:05");
        assert_eq!(clock(125.0), "2:05");
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
