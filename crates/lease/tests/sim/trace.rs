//! The trace of one run: what happened, at which virtual time, in a form a person can read. Two runs of one
//! seed must give the same trace, so nothing here may print a uid, a wall-clock time or an address.

use std::{sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::time::Instant;

/// See [`Trace::mark`].
pub type Mark = (Duration, usize);

/// A shared, append-only trace with virtual timestamps from the run's start.
#[derive(Clone)]
pub struct Trace {
    start: Instant,
    lines: Arc<Mutex<Vec<String>>>,
}

/// The start of the latest run, so that the electors' own logs (`SIM_LOG`) carry the trace's virtual times.
static LATEST_START: Mutex<Option<Instant>> = Mutex::new(None);

/// The start of the latest run in this process, if one has begun.
pub fn latest_start() -> Option<Instant> {
    *LATEST_START.lock()
}

impl Trace {
    pub fn new(start: Instant) -> Self {
        *LATEST_START.lock() = Some(start);
        Self {
            start,
            lines: Arc::default(),
        }
    }

    /// Virtual time since the start.
    pub fn now(&self) -> Duration {
        Instant::now() - self.start
    }

    /// Appends a line stamped with the current virtual time.
    pub fn log(&self, line: impl AsRef<str>) {
        let line = format!("[{:>9.3}] {}", self.now().as_secs_f64(), line.as_ref());
        self.lines.lock().push(line);
    }

    /// A point in the run that orders events at one virtual instant too: the virtual time, then how many lines the
    /// trace had. Events logged in one instant are ordered as they were logged.
    pub fn mark(&self) -> Mark {
        let lines = self.lines.lock().len();
        (self.now(), lines)
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().clone()
    }
}
