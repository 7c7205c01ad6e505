//! Engine time: milliseconds since the engine started, the unit the core's
//! session machine works in, convertible to tokio instants for sleeping.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock { start: Instant::now() }
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn instant(&self, ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.start + Duration::from_millis(ms))
    }

    /// Wall-clock seconds since the Unix epoch (for HTTP dates).
    pub fn unix_now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}
