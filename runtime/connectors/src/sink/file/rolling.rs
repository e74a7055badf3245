//! When a part file is closed and the next one started: Flink's `DefaultRollingPolicy`.

use std::time::{Duration, Instant};

/// Rolls a part file when it grows past a size, gets old, or sees no writes for a while (as
/// Flink's `DefaultRollingPolicy`), and always at a checkpoint, so that each part belongs
/// to one transaction (as Flink's bulk formats roll; Flink's row formats may carry a part
/// over a checkpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollingPolicy {
    /// A part that has grown past this many bytes is closed before the next write to its
    /// bucket. Default 128 MiB.
    pub max_part_size: u64,
    /// A part open this long is closed. Default 60 s.
    pub rollover_interval: Duration,
    /// A part not written to for this long is closed. Default 60 s.
    pub inactivity_interval: Duration,
}

impl Default for RollingPolicy {
    fn default() -> Self {
        RollingPolicy {
            max_part_size: 128 << 20,
            rollover_interval: Duration::from_secs(60),
            inactivity_interval: Duration::from_secs(60),
        }
    }
}

impl RollingPolicy {
    /// Sets [`Self::max_part_size`].
    pub fn with_max_part_size(self, bytes: u64) -> Self {
        RollingPolicy { max_part_size: bytes, ..self }
    }

    /// Sets [`Self::rollover_interval`].
    pub fn with_rollover_interval(self, interval: Duration) -> Self {
        RollingPolicy { rollover_interval: interval, ..self }
    }

    /// Sets [`Self::inactivity_interval`].
    pub fn with_inactivity_interval(self, interval: Duration) -> Self {
        RollingPolicy { inactivity_interval: interval, ..self }
    }

    /// Whether a part of `size` bytes is closed before the next write to it.
    pub(super) fn should_roll_on_event(&self, size: u64) -> bool {
        size > self.max_part_size
    }

    /// Whether a part opened at `created` and last written at `last_write` is closed `now`.
    pub(super) fn should_roll_on_time(
        &self,
        created: Instant,
        last_write: Instant,
        now: Instant,
    ) -> bool {
        now.duration_since(created) >= self.rollover_interval
            || now.duration_since(last_write) >= self.inactivity_interval
    }
}
