//! Interval joins of two keyed streams (Flink's `KeyedStream.intervalJoin`).

use weir_operators::OutputTag;
use weir_operators::builtin::IntervalJoinOperator;
use weir_operators::function::ProcessJoinFunction;
use weir_state::StateBackendKind;
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
            lower_ms,
            upper_ms,
            lower_inclusive: true,
            upper_inclusive: true,
            left_late: None,
            right_late: None,
        }
    }
}

/// An interval join with its bounds, ready for its function (Flink's `IntervalJoined`).
pub struct IntervalJoined<L, R, K> {
    left: KeyedStream<L, K>,
    right: KeyedStream<R, K>,
    lower_ms: Timestamp,
    upper_ms: Timestamp,
    lower_inclusive: bool,
    upper_inclusive: bool,
    left_late: Option<OutputTag<L>>,
    right_late: Option<OutputTag<R>>,
}

impl<L: Data, R: Data, K: Key> IntervalJoined<L, R, K> {
    /// Excludes the lower bound: right records must be later than `t + lower_ms`.
    pub fn lower_bound_exclusive(mut self) -> Self {
        self.lower_inclusive = false;
        self
    }

    /// Excludes the upper bound: right records must be earlier than `t + upper_ms`.
    pub fn upper_bound_exclusive(mut self) -> Self {
        self.upper_inclusive = false;
        self
    }

    /// Sends left records that arrive behind the watermark to the side output `tag` (read it
    /// with [`DataStream::get_side_output`] on the joined stream) instead of dropping them.
    pub fn side_output_left_late_data(mut self, tag: OutputTag<L>) -> Self {
        self.left_late = Some(tag);
        self
    }

    /// Sends right records that arrive behind the watermark to the side output `tag`
    /// instead of dropping them.
    pub fn side_output_right_late_data(mut self, tag: OutputTag<R>) -> Self {
        self.right_late = Some(tag);
        self
    }

    /// Calls `function` for every joined pair of records; what it collects carries the later
    /// of the pair's timestamps. Both inputs need event timestamps.
    pub fn process<O: Data, F: ProcessJoinFunction<L, R, O>>(&self, function: F) -> DataStream<O> {
        let (left_key, right_key) =
            (self.left.key_selector.clone(), self.right.key_selector.clone());
        let (lower, upper) = (self.lower_ms, self.upper_ms);
        let (lower_inclusive, upper_inclusive) = (self.lower_inclusive, self.upper_inclusive);
        let (left_late, right_late) = (self.left_late.clone(), self.right_late.clone());
        ConnectedStreams::new(self.left.stream.clone(), self.right.stream.clone()).transform(
            "IntervalJoin",
            move |_| {
                let mut operator = IntervalJoinOperator::new(
                    function.clone(),
                    left_key.clone(),
                    right_key.clone(),
                    lower,
                    upper,
                    StateBackendKind::Heap,
                );
                if !lower_inclusive {
                    operator = operator.lower_bound_exclusive();
                }
                if !upper_inclusive {
                    operator = operator.upper_bound_exclusive();
                }
                if let Some(tag) = &left_late {
                    operator = operator.side_output_left_late_data(tag.clone());
                }
                if let Some(tag) = &right_late {
                    operator = operator.side_output_right_late_data(tag.clone());
                }
                operator
            },
        )
    }
}
