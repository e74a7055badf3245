//! Where a task's time goes: waiting for input (idle), blocked on a full output channel
//! (backpressured), or working (busy), measured per wait rather than per record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The shortest span ratios are computed over, so that they do not flicker between reads.
const WINDOW: Duration = Duration::from_secs(1);

/// Nanoseconds a task spent in each state since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadTotals {
    /// Time since the task's load started being measured.
    pub uptime_ns: u64,
    /// Of that, waiting for input.
    pub idle_ns: u64,
    /// Of that, blocked sending to a full channel.
    pub backpressured_ns: u64,
}

/// Shares of a span of time, in thousandths; the three add up to 1000.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadRatios {
    /// Working.
    pub busy: u16,
    /// Blocked on output.
    pub backpressured: u16,
    /// Waiting for input.
    pub idle: u16,
}

impl LoadRatios {
    /// The shares between two totals of the same task.
    fn between(before: LoadTotals, now: LoadTotals) -> Self {
        let span = now.uptime_ns.saturating_sub(before.uptime_ns).max(1) as f64;
        let share = |after: u64, before: u64| {
            ((after.saturating_sub(before) as f64 / span) * 1000.0).round().min(1000.0) as u16
        };
        let idle = share(now.idle_ns, before.idle_ns);
        let backpressured = share(now.backpressured_ns, before.backpressured_ns).min(1000 - idle);
        LoadRatios { busy: 1000 - idle - backpressured, backpressured, idle }
    }
}

/// One kind of waiting: its total, and when the wait going on now began.
#[derive(Debug, Default)]
struct Waiting {
    total_ns: AtomicU64,
    /// Nanoseconds after the origin (plus one) when the current wait began; 0 when none.
    since: AtomicU64,
}

impl Waiting {
    fn begin(&self, at_ns: u64) {
        self.since.store(at_ns + 1, Ordering::Relaxed);
    }

    fn end(&self, at_ns: u64) {
        let since = self.since.swap(0, Ordering::Relaxed);
        if since > 0 {
            self.total_ns.fetch_add(at_ns.saturating_sub(since - 1), Ordering::Relaxed);
        }
    }

    /// The total including the wait going on at `now_ns`.
    fn total(&self, now_ns: u64) -> u64 {
        let since = self.since.load(Ordering::Relaxed);
        let ongoing = if since > 0 { now_ns.saturating_sub(since - 1) } else { 0 };
        self.total_ns.load(Ordering::Relaxed) + ongoing
    }
}

/// The time accounting of one task, shared by every operator of its chain. The task marks
/// the start and end of each wait; readers take windowed [`LoadRatios`]. In a coordinator,
/// the totals come from the worker's heartbeats instead.
#[derive(Debug)]
pub struct TaskLoad {
    origin: Instant,
    idle: Waiting,
    backpressured: Waiting,
    /// Totals reported from another process, in place of measuring here.
    reported: Mutex<Option<LoadTotals>>,
    /// The totals ratios were last computed from, and those ratios.
    window: Mutex<(LoadTotals, LoadRatios)>,
}

impl Default for TaskLoad {
    fn default() -> Self {
        TaskLoad {
            origin: Instant::now(),
            idle: Waiting::default(),
            backpressured: Waiting::default(),
            reported: Mutex::new(None),
            window: Mutex::new((LoadTotals::default(), LoadRatios::default())),
        }
    }
}

impl TaskLoad {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Runs `wait`, counting its time as idle (waiting for input).
    pub fn idle<T>(&self, wait: impl FnOnce() -> T) -> T {
        self.timed(&self.idle, wait)
    }

    /// Runs `send`, counting its time as backpressured (blocked on a full channel).
    pub fn backpressured<T>(&self, send: impl FnOnce() -> T) -> T {
        self.timed(&self.backpressured, send)
    }

    fn timed<T>(&self, waiting: &Waiting, wait: impl FnOnce() -> T) -> T {
        waiting.begin(self.now_ns());
        let result = wait();
        waiting.end(self.now_ns());
        result
    }

    /// The totals now (as last reported, for a task in another process).
    pub fn totals(&self) -> LoadTotals {
        if let Some(reported) = *self.reported.lock().unwrap_or_else(PoisonError::into_inner) {
            return reported;
        }
        let now = self.now_ns();
        LoadTotals {
            uptime_ns: now,
            idle_ns: self.idle.total(now),
            backpressured_ns: self.backpressured.total(now),
        }
    }

    /// Takes the totals a task in another process reported.
    pub fn store(&self, totals: LoadTotals) {
        *self.reported.lock().unwrap_or_else(PoisonError::into_inner) = Some(totals);
    }

    /// The shares of the latest window of at least a second (the first reads cover the time
    /// since the start).
    pub fn ratios(&self) -> LoadRatios {
        let now = self.totals();
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let (before, ratios) = &mut *window;
        let span = Duration::from_nanos(now.uptime_ns.saturating_sub(before.uptime_ns));
        if before.uptime_ns == 0 || span >= WINDOW {
            if span > Duration::ZERO {
                *ratios = LoadRatios::between(*before, now);
            }
            if before.uptime_ns == 0 && span < WINDOW {
                return *ratios; // keep measuring from the start until a window is full
            }
            *before = now;
        }
        *ratios
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(uptime_ms: u64, idle_ms: u64, backpressured_ms: u64) -> LoadTotals {
        let ns = |ms: u64| ms * 1_000_000;
        LoadTotals {
            uptime_ns: ns(uptime_ms),
            idle_ns: ns(idle_ms),
            backpressured_ns: ns(backpressured_ms),
        }
    }

    #[test]
    fn ratios_are_shares_of_the_span_between_totals() {
        let ratios = LoadRatios::between(totals(1_000, 100, 0), totals(3_000, 600, 1_000));
        assert_eq!(ratios, LoadRatios { busy: 250, backpressured: 500, idle: 250 });
    }

    #[test]
    fn waits_count_as_idle_or_backpressured_even_while_ongoing() {
        let load = TaskLoad::default();
        load.idle(|| std::thread::sleep(Duration::from_millis(30)));
        load.backpressured.begin(load.now_ns());
        std::thread::sleep(Duration::from_millis(20));
        let now = load.totals();
        assert!(now.idle_ns >= 30_000_000, "{now:?}");
        assert!(now.backpressured_ns >= 20_000_000, "an ongoing block counts: {now:?}");
        assert!(now.uptime_ns >= now.idle_ns + now.backpressured_ns);
    }

    #[test]
    fn reported_totals_replace_measuring_and_windows_last_a_second() {
        let load = TaskLoad::default();
        load.store(totals(500, 500, 0));
        assert_eq!(load.ratios().idle, 1000, "the first read covers the start");
        load.store(totals(1_500, 500, 900));
        assert_eq!(load.ratios().backpressured, 600, "measured from the start: 900 of 1500");
        load.store(totals(2_000, 500, 900));
        assert_eq!(load.ratios().backpressured, 600, "half a second is no new window");
        load.store(totals(2_500, 500, 900));
        assert_eq!(load.ratios(), LoadRatios { busy: 1000, backpressured: 0, idle: 0 });
    }
}
