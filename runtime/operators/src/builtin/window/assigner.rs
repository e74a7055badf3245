//! Window assigners: tumbling, sliding and session windows in event or processing time, and
//! global windows (Flink's `WindowAssigner`s, with the same boundaries).

use std::time::Duration;

use weir_types::Timestamp;

use super::trigger::{EventTimeTrigger, NeverTrigger, ProcessingTimeTrigger, Trigger};
use super::windows::{GlobalWindow, TimeWindow, Window};

/// Windows to merge: each result window with the windows merged into it.
pub type WindowMerges<W> = Vec<(W, Vec<W>)>;

/// Puts records into windows.
pub trait WindowAssigner<T>: Clone + Send + 'static {
    /// The window type.
    type W: Window;
    /// Appends the windows of a record with `timestamp` (event or processing time) to `out`.
    fn assign_windows(&self, element: &T, timestamp: Timestamp, out: &mut Vec<Self::W>);
    /// The trigger used when the job sets none.
    fn default_trigger(&self) -> Box<dyn Trigger<T, Self::W>>;
    /// Whether windows follow event time (else processing time).
    fn is_event_time(&self) -> bool;
    /// Whether windows of this assigner merge (sessions).
    fn is_merging(&self) -> bool {
        false
    }
    /// For merging assigners: groups of windows to merge into one, each as
    /// `(result, windows merged into it)` with two or more windows.
    fn merge_windows(&self, _windows: &[Self::W]) -> WindowMerges<Self::W> {
        Vec::new()
    }
}

fn millis(duration: Duration) -> Timestamp {
    duration.as_millis() as Timestamp
}

fn time_trigger<T>(event_time: bool) -> Box<dyn Trigger<T, TimeWindow>> {
    if event_time { Box::new(EventTimeTrigger) } else { Box::new(ProcessingTimeTrigger) }
}

/// Fixed-size, non-overlapping windows.
#[derive(Clone, Copy, Debug)]
pub struct TumblingWindows {
    size: Timestamp,
    offset: Timestamp,
    event_time: bool,
}

impl TumblingWindows {
    /// Shifts window starts by `offset` (e.g. to align daily windows to a time zone).
    pub fn with_offset(self, offset: Duration) -> Self {
        TumblingWindows { offset: millis(offset) % self.size, ..self }
    }
}

/// Tumbling windows in event time: `TumblingEventTimeWindows::of(Duration::from_secs(10))`.
pub struct TumblingEventTimeWindows;

impl TumblingEventTimeWindows {
    /// Windows of `size`.
    pub fn of(size: Duration) -> TumblingWindows {
        assert!(millis(size) > 0, "a window size must be positive");
        TumblingWindows { size: millis(size), offset: 0, event_time: true }
    }
}

/// Tumbling windows in processing time.
pub struct TumblingProcessingTimeWindows;

impl TumblingProcessingTimeWindows {
    /// Windows of `size`.
    pub fn of(size: Duration) -> TumblingWindows {
        TumblingWindows { event_time: false, ..TumblingEventTimeWindows::of(size) }
    }
}

impl<T: 'static> WindowAssigner<T> for TumblingWindows {
    type W = TimeWindow;

    fn assign_windows(&self, _: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
        let start = TimeWindow::start_with_offset(timestamp, self.offset, self.size);
        out.push(TimeWindow::new(start, start + self.size));
    }

    fn default_trigger(&self) -> Box<dyn Trigger<T, TimeWindow>> {
        time_trigger(self.event_time)
    }

    fn is_event_time(&self) -> bool {
        self.event_time
    }
}

/// Fixed-size windows starting every `slide`; a record belongs to `size / slide` windows.
#[derive(Clone, Copy, Debug)]
pub struct SlidingWindows {
    size: Timestamp,
    slide: Timestamp,
    offset: Timestamp,
    event_time: bool,
}

impl SlidingWindows {
    /// Shifts window starts by `offset`.
    pub fn with_offset(self, offset: Duration) -> Self {
        SlidingWindows { offset: millis(offset) % self.slide, ..self }
    }
}

/// Sliding windows in event time: `SlidingEventTimeWindows::of(size, slide)`.
pub struct SlidingEventTimeWindows;

impl SlidingEventTimeWindows {
    /// Windows of `size` starting every `slide`.
    pub fn of(size: Duration, slide: Duration) -> SlidingWindows {
        assert!(millis(size) > 0 && millis(slide) > 0, "window size and slide must be positive");
        SlidingWindows { size: millis(size), slide: millis(slide), offset: 0, event_time: true }
    }
}

/// Sliding windows in processing time.
pub struct SlidingProcessingTimeWindows;

impl SlidingProcessingTimeWindows {
    /// Windows of `size` starting every `slide`.
    pub fn of(size: Duration, slide: Duration) -> SlidingWindows {
        SlidingWindows { event_time: false, ..SlidingEventTimeWindows::of(size, slide) }
    }
}

impl<T: 'static> WindowAssigner<T> for SlidingWindows {
    type W = TimeWindow;

    fn assign_windows(&self, _: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
        let last_start = TimeWindow::start_with_offset(timestamp, self.offset, self.slide);
        let mut start = last_start;
        while start > timestamp - self.size {
            out.push(TimeWindow::new(start, start + self.size));
            start -= self.slide;
        }
    }

    fn default_trigger(&self) -> Box<dyn Trigger<T, TimeWindow>> {
        time_trigger(self.event_time)
    }

    fn is_event_time(&self) -> bool {
        self.event_time
    }
}

/// Session windows: a record opens `[ts, ts + gap)`; windows that overlap or touch merge.
#[derive(Clone, Copy, Debug)]
pub struct SessionWindows {
    gap: Timestamp,
    event_time: bool,
}

/// Session windows in event time: `EventTimeSessionWindows::with_gap(gap)`.
pub struct EventTimeSessionWindows;

impl EventTimeSessionWindows {
    /// Sessions closed by `gap` of inactivity.
    pub fn with_gap(gap: Duration) -> SessionWindows {
        assert!(millis(gap) > 0, "a session gap must be positive");
        SessionWindows { gap: millis(gap), event_time: true }
    }
}

/// Session windows in processing time.
pub struct ProcessingTimeSessionWindows;

impl ProcessingTimeSessionWindows {
    /// Sessions closed by `gap` of inactivity.
    pub fn with_gap(gap: Duration) -> SessionWindows {
        SessionWindows { event_time: false, ..EventTimeSessionWindows::with_gap(gap) }
    }
}

impl<T: 'static> WindowAssigner<T> for SessionWindows {
    type W = TimeWindow;

    fn assign_windows(&self, _: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
        out.push(TimeWindow::new(timestamp, timestamp + self.gap));
    }

    fn default_trigger(&self) -> Box<dyn Trigger<T, TimeWindow>> {
        time_trigger(self.event_time)
    }

    fn is_event_time(&self) -> bool {
        self.event_time
    }

    fn is_merging(&self) -> bool {
        true
    }

    /// Flink's `TimeWindow.mergeWindows`: sorted by start, each run of intersecting windows
    /// merges into their cover.
    fn merge_windows(&self, windows: &[TimeWindow]) -> WindowMerges<TimeWindow> {
        let mut sorted = windows.to_vec();
        sorted.sort_by_key(|w| w.start);
        let mut merges: Vec<(TimeWindow, Vec<TimeWindow>)> = Vec::new();
        for window in sorted {
            match merges.last_mut() {
                Some((cover, members)) if cover.intersects(&window) => {
                    *cover = cover.cover(&window);
                    members.push(window);
                }
                _ => merges.push((window, vec![window])),
            }
        }
        merges.into_iter().filter(|(_, members)| members.len() > 1).collect()
    }
}

/// All records of a key in one window that never ends; fire it with a custom or count trigger.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalWindows;

impl GlobalWindows {
    /// The global window assigner (its default trigger never fires).
    pub fn create() -> Self {
        GlobalWindows
    }
}

impl<T: 'static> WindowAssigner<T> for GlobalWindows {
    type W = GlobalWindow;

    fn assign_windows(&self, _: &T, _: Timestamp, out: &mut Vec<GlobalWindow>) {
        out.push(GlobalWindow);
    }

    fn default_trigger(&self) -> Box<dyn Trigger<T, GlobalWindow>> {
        Box::new(NeverTrigger)
    }

    fn is_event_time(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows<A: WindowAssigner<()>>(assigner: &A, ts: Timestamp) -> Vec<A::W> {
        let mut out = Vec::new();
        assigner.assign_windows(&(), ts, &mut out);
        out
    }

    #[test]
    fn tumbling_with_and_without_offset() {
        let tumbling = TumblingEventTimeWindows::of(Duration::from_secs(10));
        assert_eq!(windows(&tumbling, 12_345), vec![TimeWindow::new(10_000, 20_000)]);
        assert_eq!(windows(&tumbling, -1), vec![TimeWindow::new(-10_000, 0)]);
        let shifted = tumbling.with_offset(Duration::from_secs(3));
        assert_eq!(windows(&shifted, 12_345), vec![TimeWindow::new(3_000, 13_000)]);
        assert_eq!(windows(&shifted, 13_000), vec![TimeWindow::new(13_000, 23_000)]);
    }

    #[test]
    fn sliding_assigns_size_over_slide_windows_latest_first() {
        let sliding = SlidingEventTimeWindows::of(Duration::from_secs(4), Duration::from_secs(2));
        assert_eq!(
            windows(&sliding, 0),
            vec![TimeWindow::new(0, 4_000), TimeWindow::new(-2_000, 2_000)]
        );
        assert_eq!(
            windows(&sliding, 5_999),
            vec![TimeWindow::new(4_000, 8_000), TimeWindow::new(2_000, 6_000)]
        );
        let uneven =
            SlidingEventTimeWindows::of(Duration::from_millis(10), Duration::from_millis(3));
        assert_eq!(
            windows(&uneven, 10).len(),
            3,
            "ceil(10/3) or floor: windows 9, 6, 3 contain 10"
        );
    }

    #[test]
    fn sessions_merge_overlapping_and_touching_windows() {
        let sessions = EventTimeSessionWindows::with_gap(Duration::from_millis(10));
        assert_eq!(windows(&sessions, 5), vec![TimeWindow::new(5, 15)]);
        let merged = WindowAssigner::<()>::merge_windows(
            &sessions,
            &[
                TimeWindow::new(30, 40),
                TimeWindow::new(0, 10),
                TimeWindow::new(10, 20),
                TimeWindow::new(50, 60),
            ],
        );
        assert_eq!(
            merged,
            vec![(TimeWindow::new(0, 20), vec![TimeWindow::new(0, 10), TimeWindow::new(10, 20)])]
        );
    }
}
