//! Watermarks per split of a source, combined into the subtask's (Flink's
//! `WatermarkOutputMultiplexer`): the minimum over active splits, idle splits left out.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use weir_types::{Timestamp, Watermark};

use super::{WatermarkGenerator, WatermarkOutput, WatermarkStrategy};
use crate::SourceWatermark;

/// One split's generator and where it stands.
struct Split<T> {
    generator: Box<dyn WatermarkGenerator<T>>,
    watermark: Watermark,
    /// Processing time of the split's last event (or of its assignment).
    last_event: Timestamp,
    idle: bool,
}

/// Runs a [`WatermarkStrategy`] once per split (a Kafka partition, a file) and combines the
/// splits' watermarks: the subtask's watermark is the minimum over its active splits. With
/// idleness configured, a split without events for that long is idle and stops holding the
/// watermark back (an empty partition then cannot stall event time); its next event makes it
/// active again. A subtask without splits, or with only idle ones, is idle.
pub struct SplitWatermarks<T, K> {
    strategy: WatermarkStrategy<T>,
    interval: Duration,
    splits: HashMap<K, Split<T>>,
    /// When the periodic emit ran last.
    last_periodic: Timestamp,
}

impl<T: 'static, K: Hash + Eq> SplitWatermarks<T, K> {
    /// Applies `strategy` per split, with the periodic emit every `interval`.
    pub fn new(strategy: WatermarkStrategy<T>, interval: Duration) -> Self {
        SplitWatermarks { strategy, interval, splits: HashMap::new(), last_periodic: 0 }
    }

    /// Starts tracking `split` at processing time `now` (idempotent).
    pub fn add_split(&mut self, split: K, now: Timestamp) {
        self.splits.entry(split).or_insert_with(|| Split {
            generator: (self.strategy.generator)(),
            watermark: Watermark::MIN,
            last_event: now,
            idle: false,
        });
    }

    /// Stops tracking a finished `split`: it no longer holds the watermark back.
    pub fn remove_split(&mut self, split: &K) {
        self.splits.remove(split);
    }

    /// An event of `split` (which must have been added), with the timestamp the source read;
    /// returns its event timestamp as the strategy assigns it.
    pub fn on_event(
        &mut self,
        split: &K,
        event: &T,
        source_timestamp: Option<Timestamp>,
        now: Timestamp,
    ) -> Timestamp {
        let timestamp = match &self.strategy.timestamp_assigner {
            Some(assign) => assign(event, source_timestamp),
            None => source_timestamp.unwrap_or(Timestamp::MIN),
        };
        let state = self.splits.get_mut(split).expect("events only of added splits");
        let mut output = WatermarkOutput::default();
        state.generator.on_event(event, timestamp, &mut output);
        state.last_event = now;
        state.idle = false;
        state.apply(output);
        timestamp
    }

    /// The combined watermark at processing time `now`, after the periodic emit if due and
    /// idleness timeouts.
    pub fn current(&mut self, now: Timestamp) -> SourceWatermark {
        let periodic = now - self.last_periodic >= self.interval.as_millis() as Timestamp;
        if periodic {
            self.last_periodic = now;
        }
        let idleness = self.strategy.idleness.map(|idle| idle.as_millis() as Timestamp);
        let mut combined: Option<Watermark> = None;
        for state in self.splits.values_mut() {
            if periodic {
                let mut output = WatermarkOutput::default();
                state.generator.on_periodic_emit(&mut output);
                state.apply(output);
            }
            if idleness.is_some_and(|timeout| now - state.last_event >= timeout) {
                state.idle = true;
            }
            if !state.idle {
                combined = Some(combined.map_or(state.watermark, |w| w.min(state.watermark)));
            }
        }
        combined.map_or(SourceWatermark::Idle, SourceWatermark::Watermark)
    }
}

impl<T> Split<T> {
    fn apply(&mut self, output: WatermarkOutput) {
        if let Some(watermark) = output.watermark {
            self.watermark = self.watermark.max(watermark);
        }
        if output.idle {
            self.idle = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(idleness: Option<u64>) -> WatermarkStrategy<i64> {
        let strategy =
            WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|v: &i64, _| *v);
        match idleness {
            Some(ms) => strategy.with_idleness(Duration::from_millis(ms)),
            None => strategy,
        }
    }

    #[test]
    fn the_minimum_over_splits_and_an_empty_split_stalls_without_idleness() {
        let mut splits = SplitWatermarks::new(strategy(None), Duration::ZERO);
        for split in 0..3 {
            splits.add_split(split, 0);
        }
        splits.on_event(&0, &100, None, 1);
        splits.on_event(&1, &50, None, 1);
        assert_eq!(splits.current(10_000), SourceWatermark::Watermark(Watermark::MIN));
        splits.on_event(&2, &70, None, 10_001);
        assert_eq!(splits.current(10_002), SourceWatermark::Watermark(Watermark(49)));
        splits.remove_split(&1);
        assert_eq!(splits.current(10_003), SourceWatermark::Watermark(Watermark(69)));
    }

    #[test]
    fn idle_splits_stop_holding_back_and_events_reactivate_them() {
        let mut splits = SplitWatermarks::new(strategy(Some(100)), Duration::ZERO);
        splits.add_split("busy", 0);
        splits.add_split("empty", 0);
        splits.on_event(&"busy", &500, None, 50);
        assert_eq!(splits.current(99), SourceWatermark::Watermark(Watermark::MIN));
        assert_eq!(splits.current(100), SourceWatermark::Watermark(Watermark(499)));
        assert_eq!(splits.current(150), SourceWatermark::Idle, "both idle");
        assert_eq!(splits.on_event(&"empty", &300, Some(7), 160), 300, "the assigner wins");
        assert_eq!(splits.current(170), SourceWatermark::Watermark(Watermark(299)));
    }

    #[test]
    fn without_splits_the_subtask_is_idle_and_source_timestamps_are_the_default() {
        let mut splits =
            SplitWatermarks::<i64, u8>::new(WatermarkStrategy::no_watermarks(), Duration::ZERO);
        assert_eq!(splits.current(0), SourceWatermark::Idle);
        splits.add_split(0, 0);
        assert_eq!(splits.on_event(&0, &1, Some(42), 0), 42);
    }
}
