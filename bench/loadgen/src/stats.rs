//! Counting: latencies in microseconds, checked messages and errors.

use std::time::Duration;

/// At most this many latency samples are kept per run (4 bytes each); later
/// samples still count as messages, they just no longer enter the percentiles.
const MAX_SAMPLES: usize = 8_000_000;
/// At most this many error texts are kept as examples.
const MAX_ERROR_SAMPLES: usize = 8;

#[derive(Default, Debug)]
pub struct Stats {
    /// Messages (or sessions, or cycles) whose outcome was checked and correct.
    pub messages: u64,
    latencies_us: Vec<u32>,
    pub errors: u64,
    pub error_samples: Vec<String>,
}

impl Stats {
    /// One checked message with its latency.
    pub fn record(&mut self, latency: Duration) {
        self.messages += 1;
        if self.latencies_us.len() < MAX_SAMPLES {
            let us = latency.as_micros().min(u128::from(u32::MAX)) as u32;
            self.latencies_us.push(us);
        }
    }

    /// One checked message whose latency is known in microseconds.
    pub fn record_us(&mut self, us: u64) {
        self.messages += 1;
        if self.latencies_us.len() < MAX_SAMPLES {
            self.latencies_us.push(us.min(u64::from(u32::MAX)) as u32);
        }
    }

    pub fn error(&mut self, what: impl Into<String>) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(what.into());
        }
    }

    pub fn merge(&mut self, other: Stats) {
        self.messages += other.messages;
        self.errors += other.errors;
        let room = MAX_SAMPLES.saturating_sub(self.latencies_us.len());
        let take = other.latencies_us.len().min(room);
        self.latencies_us.extend_from_slice(&other.latencies_us[..take]);
        for sample in other.error_samples {
            if self.error_samples.len() >= MAX_ERROR_SAMPLES {
                break;
            }
            self.error_samples.push(sample);
        }
    }

    /// Nearest-rank percentiles (p in 0..=100) over the kept samples, in µs.
    pub fn percentiles(&mut self, ps: &[f64]) -> Vec<Option<u32>> {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        ps.iter()
            .map(|&p| {
                if n == 0 {
                    return None;
                }
                let rank = ((p / 100.0) * n as f64).ceil() as usize;
                Some(self.latencies_us[rank.clamp(1, n) - 1])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut s = Stats::default();
        for us in (1..=100).rev() {
            s.record_us(us);
        }
        assert_eq!(s.percentiles(&[50.0, 99.0, 100.0]), vec![Some(50), Some(99), Some(100)]);
        assert_eq!(s.messages, 100);
        let mut empty = Stats::default();
        assert_eq!(empty.percentiles(&[50.0]), vec![None]);
    }

    #[test]
    fn merge_keeps_counts() {
        let mut a = Stats::default();
        a.record(Duration::from_micros(5));
        a.error("x");
        let mut b = Stats::default();
        b.record(Duration::from_micros(7));
        b.error("y");
        a.merge(b);
        assert_eq!((a.messages, a.errors), (2, 2));
        assert_eq!(a.error_samples, vec!["x", "y"]);
        assert_eq!(a.percentiles(&[100.0]), vec![Some(7)]);
    }
}
