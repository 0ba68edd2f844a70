//! Progress on a terminal: rows done, rate and time left, redrawn in place on stderr at
//! most a few times a second. When stderr is not a terminal (a script, a test) nothing is
//! drawn; the caller prints its one-line summary either way.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::join::thousands;

/// How often the line is redrawn.
const REDRAW: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    drawn: Option<Instant>,
    tty: bool,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        Progress {
            label: label.into(),
            total,
            done: 0,
            started: Instant::now(),
            drawn: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Counts `n` more rows done.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if !self.tty || self.drawn.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        self.drawn = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.done as f64 / secs;
        let left = if rate > 0.0 {
            (self.total.saturating_sub(self.done)) as f64 / rate
        } else {
            0.0
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r  {}: {} of {} rows, {} rows/s, {:.0} s left   ",
            self.label,
            thousands(self.done),
            thousands(self.total),
            thousands(rate as u64),
            left
        );
        let _ = err.flush();
    }

    /// Clears the line; returns the seconds taken.
    pub fn finish(self) -> f64 {
        if self.tty && self.drawn.is_some() {
            let _ = write!(std::io::stderr(), "\r{:80}\r", "");
        }
        self.started.elapsed().as_secs_f64()
    }
}
