//! When to look for partitions that appeared while the source runs (Flink's
//! `partition.discovery.interval.ms`).

use std::time::{Duration, Instant};

/// Flink's default discovery interval for an unbounded source.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// A subtask's discovery schedule.
#[derive(Debug)]
pub(crate) struct Discovery {
    interval: Duration,
    next: Instant,
}

impl Discovery {
    /// Looks every `interval`, the first time an interval after now.
    pub(crate) fn every(interval: Duration) -> Self {
        Discovery { interval, next: Instant::now() + interval }
    }

    /// Whether a look is due; if so, the next one is due an interval from now.
    pub(crate) fn due(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next {
            return false;
        }
        self.next = now + self.interval;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_look_is_due_once_per_interval() {
        let mut discovery = Discovery::every(Duration::from_millis(30));
        assert!(!discovery.due(), "not at once");
        std::thread::sleep(Duration::from_millis(40));
        assert!(discovery.due());
        assert!(!discovery.due(), "the next one an interval later");
    }
}
