//! Window types: time windows `[start, end)` and the single global window.

use serde::{Deserialize, Serialize};
use weir_types::{Key, Timestamp};

/// A window: a key for window state and timers, with the last timestamp it covers.
pub trait Window: Key + Ord {
    /// The largest timestamp that belongs to the window.
    fn max_timestamp(&self) -> Timestamp;
}

/// The time interval `[start, end)` (Flink's `TimeWindow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimeWindow {
    /// First millisecond of the window.
    pub start: Timestamp,
    /// First millisecond after the window.
    pub end: Timestamp,
}

impl TimeWindow {
    /// The window `[start, end)`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        TimeWindow { start, end }
    }

    /// Whether the windows overlap or touch (Flink merges touching session windows).
    pub fn intersects(&self, other: &TimeWindow) -> bool {
        self.start <= other.end && self.end >= other.start
    }

    /// The smallest window containing both.
    pub fn cover(&self, other: &TimeWindow) -> TimeWindow {
        TimeWindow::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Start of the window of length `size` (shifted by `offset`) that contains `timestamp`:
    /// `timestamp - (timestamp - offset + size) % size` (Flink's `getWindowStartWithOffset`).
    pub fn start_with_offset(
        timestamp: Timestamp,
        offset: Timestamp,
        size: Timestamp,
    ) -> Timestamp {
        let remainder = (timestamp - offset + size) % size;
        // Flink's formula, corrected for negative remainders as Flink does since 1.x.
        if remainder < 0 { timestamp - (remainder + size) } else { timestamp - remainder }
    }
}

impl Window for TimeWindow {
    fn max_timestamp(&self) -> Timestamp {
        self.end - 1
    }
}

/// The one window of [`crate::builtin::window::GlobalWindows`]: it never ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GlobalWindow;

impl Window for GlobalWindow {
    fn max_timestamp(&self) -> Timestamp {
        Timestamp::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_starts_follow_flink_including_offsets_and_negative_times() {
        assert_eq!(TimeWindow::start_with_offset(10_500, 0, 10_000), 10_000);
        assert_eq!(TimeWindow::start_with_offset(10_000, 0, 10_000), 10_000);
        assert_eq!(TimeWindow::start_with_offset(9_999, 0, 10_000), 0);
        assert_eq!(TimeWindow::start_with_offset(-1, 0, 10_000), -10_000);
        assert_eq!(TimeWindow::start_with_offset(-10_000, 0, 10_000), -10_000);
        assert_eq!(TimeWindow::start_with_offset(2_500, 1_000, 2_000), 1_000);
        assert_eq!(TimeWindow::start_with_offset(500, 1_000, 2_000), -1_000);
    }

    #[test]
    fn intersection_includes_touching_windows() {
        let a = TimeWindow::new(0, 10);
        assert!(a.intersects(&TimeWindow::new(10, 20)));
        assert!(!a.intersects(&TimeWindow::new(11, 20)));
        assert_eq!(a.cover(&TimeWindow::new(5, 15)), TimeWindow::new(0, 15));
        assert_eq!(a.max_timestamp(), 9);
    }
}
