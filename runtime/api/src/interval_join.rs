//! Interval joins of two keyed streams (Flink's `KeyedStream.intervalJoin`).

use weir_operators::OutputTag;
use weir_operators::builtin::{IntervalJoinOperator, IntervalJoinSettings};
use weir_operators::function::ProcessJoinFunction;
use weir_types::{Data, Key, Timestamp};

use crate::{ConnectedStreams, DataStream, KeyedStream};

/// Two keyed streams to interval-join, waiting for their bounds (Flink's `IntervalJoin`).
/// Made by [`KeyedStream::interval_join`].
pub struct IntervalJoin<L, R, K> {
    left: KeyedStream<L, K>,
    right: KeyedStream<R, K>,
}

impl<L: Data, R: Data, K: Key> IntervalJoin<L, R, K> {
    pub(crate) fn new(left: KeyedStream<L, K>, right: KeyedStream<R, K>) -> Self {
        IntervalJoin { left, right }
    }

    /// Joins each left record at `t` with the right records of its key at
    /// `t + lower_ms ..= t + upper_ms` (milliseconds of event time, both ends inclusive;
    /// negative values reach back in time), as Flink's `between(lower, upper)`.
    ///
    /// # Panics
    /// When `lower_ms > upper_ms` (Flink: "lowerBound <= upperBound must be fulfilled").
    pub fn between(&self, lower_ms: Timestamp, upper_ms: Timestamp) -> IntervalJoined<L, R, K> {
        assert!(
            lower_ms <= upper_ms,
            "interval join: the lower bound ({lower_ms} ms) must not be greater than the upper \
             bound ({upper_ms} ms)"
        );
        IntervalJoined {
            left: self.left.clone(),
            right: self.right.clone(),
            settings: IntervalJoinSettings::new(lower_ms, upper_ms),
        }
    }
}

/// An interval join with its bounds, ready for its function (Flink's `IntervalJoined`).
pub struct IntervalJoined<L, R, K> {
    left: KeyedStream<L, K>,
    right: KeyedStream<R, K>,
    settings: IntervalJoinSettings<L, R>,
}

impl<L: Data, R: Data, K: Key> IntervalJoined<L, R, K> {
    /// Excludes the lower bound: right records must be later than `t + lower_ms`.
    pub fn lower_bound_exclusive(self) -> Self {
        IntervalJoined { settings: self.settings.lower_bound_exclusive(), ..self }
    }

    /// Excludes the upper bound: right records must be earlier than `t + upper_ms`.
    pub fn upper_bound_exclusive(self) -> Self {
        IntervalJoined { settings: self.settings.upper_bound_exclusive(), ..self }
    }

    /// Sends left records that arrive behind the watermark to the side output `tag` (read it
    /// with [`DataStream::get_side_output`] on the joined stream) instead of dropping them.
    pub fn side_output_left_late_data(self, tag: OutputTag<L>) -> Self {
        IntervalJoined { settings: self.settings.side_output_left_late_data(tag), ..self }
    }

    /// Sends right records that arrive behind the watermark to the side output `tag`
    /// instead of dropping them.
    pub fn side_output_right_late_data(self, tag: OutputTag<R>) -> Self {
        IntervalJoined { settings: self.settings.side_output_right_late_data(tag), ..self }
    }

    /// Calls `function` for every joined pair of records; what it collects carries the later
    /// of the pair's timestamps. Both inputs need event timestamps.
    pub fn process<O: Data, F: ProcessJoinFunction<L, R, O>>(&self, function: F) -> DataStream<O> {
        let (left_key, right_key) =
            (self.left.key_selector.clone(), self.right.key_selector.clone());
        let settings = self.settings.clone();
        ConnectedStreams::new(self.left.stream.clone(), self.right.stream.clone()).transform(
            "IntervalJoin",
            move |_| {
                IntervalJoinOperator::new(
                    function.clone(),
                    left_key.clone(),
                    right_key.clone(),
                    settings.clone(),
                )
            },
        )
    }
}
