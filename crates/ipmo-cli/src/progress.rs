//! Progress lines on standard error for long reads.

use std::time::Instant;

/// Prints "file: N rows (R rows/s, T s)" at most once a second.
pub(crate) struct Progress {
    name: String,
    quiet: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub(crate) fn new(name: &str, quiet: bool) -> Self {
        let now = Instant::now();
        Self { name: name.to_string(), quiet, started: now, last: now }
    }

    pub(crate) fn rows(&mut self, n: u64) {
        if self.quiet || self.last.elapsed().as_secs_f64() < 1.0 {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        eprintln!("  {}: {} rows ({:.0} rows/s, {:.1} s)", self.name, n, n as f64 / secs.max(1e-9), secs);
    }

    pub(crate) fn done(&self, n: u64) {
        if !self.quiet {
            let secs = self.started.elapsed().as_secs_f64();
            eprintln!("  {}: read {} rows in {:.1} s ({:.0} rows/s)", self.name, n, secs, n as f64 / secs.max(1e-9));
        }
    }
}
