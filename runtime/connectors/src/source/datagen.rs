//! A parallel source of generated records, optionally bounded and rate-limited, like Flink's
//! `DataGeneratorSource`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_operators::function::FnResult;
use weir_operators::{RuntimeContext, SourceFunction, SourcePoll, SourceWatermark, SubtaskInfo};
use weir_state::OperatorStateStore;
use weir_types::{CheckpointId, Record, Timestamp, Watermark};

/// The longest a subtask waits before polling again (rate-limited, or left without a share of
/// an unbounded source).
const MAX_WAIT: Duration = Duration::from_millis(50);

/// The operator list state holding a subtask's unfinished splits, one element per split.
const SPLITS_STATE: &str = "datagen-splits";

/// Emits `generator(index)` for indices `0..count` (or forever when `count` is `None`),
/// optionally at a steady total rate.
///
/// Parallel: with `count` set, subtask `i` of `p` takes a contiguous share of `0..count` as
/// Flink's `NumberSequenceSource` splits it (the first `count % p` subtasks get one index
/// more) and emits it in ascending order. Without `count`, subtask `i` emits
/// `i, i + p, i + 2p, …`. A rate limit is the total over all subtasks; each subtask keeps
/// `rate / p` on a fixed schedule, so the rate stays accurate over seconds.
///
/// Checkpoints store each subtask's shares (splits) with the next index of each, in the
/// operator list state `datagen-splits`. A restore resumes every split where it stood, also
/// at another parallelism: the splits are dealt out over the new subtasks, and a subtask
/// holding several emits their indices merged in ascending order. A bounded subtask left
/// without a split finishes at once; an unbounded one stays idle.
///
/// [`Self::interleaved`] deals a bounded range out as the unbounded one is (`i, i + p, …`), and
/// [`Self::with_event_time`] stamps each record with the event time of its index and makes
/// the source emit watermarks (as the Nexmark source does).
pub struct DataGeneratorSource<T> {
    count: Option<u64>,
    generator: Arc<dyn Fn(u64) -> T + Send + Sync>,
    rate_per_second: Option<f64>,
    /// Whether a bounded range is dealt out in strides rather than contiguous shares.
    interleaved: bool,
    /// The event time of each index, non-decreasing in the index.
    event_time: Option<EventTime>,
    /// This subtask's unfinished splits, set in `open`.
    splits: Vec<Split>,
    /// This subtask's rate schedule, set in `open`.
    schedule: Schedule,
}

/// The event time of each index of a [`DataGeneratorSource`].
pub type EventTime = Arc<dyn Fn(u64) -> Timestamp + Send + Sync>;

/// A share of the index space: `next, next + step, …`, below `end` if there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Split {
    next: u64,
    end: Option<u64>,
    step: u64,
}

/// A split as stored in operator state: `(next, end, step)`.
type StoredSplit = (u64, Option<u64>, u64);

/// A subtask's rate limit: its `k`-th record is due `k / rate` seconds after its first poll.
#[derive(Clone, Debug)]
struct Schedule {
    /// Records per second for this subtask; `None` when not limited.
    rate: Option<f64>,
    /// When the schedule started (the first poll).
    started: Option<Instant>,
    emitted: u64,
}

impl<T> DataGeneratorSource<T> {
    /// A source calling `generator` for each index of `0..count` (unbounded when `count` is
    /// `None`), emitting at most `rate_per_second` records per second over all subtasks.
    ///
    /// # Panics
    ///
    /// When `rate_per_second` is not a positive finite number.
    pub fn new(
        count: Option<u64>,
        generator: Arc<dyn Fn(u64) -> T + Send + Sync>,
        rate_per_second: Option<f64>,
    ) -> Self {
        if let Some(rate) = rate_per_second {
            assert!(rate.is_finite() && rate > 0.0, "rate_per_second must be positive, got {rate}");
        }
        DataGeneratorSource {
            count,
            generator,
            rate_per_second,
            interleaved: false,
            event_time: None,
            splits: Split::initial(count, false, 0, 1),
            schedule: Schedule::new(rate_per_second, 1),
        }
    }

    /// Deals a bounded range out in strides: subtask `i` of `p` emits `i, i + p, … < count`,
    /// so that subtasks advance through the indices (and their event times) together.
    pub fn interleaved(mut self) -> Self {
        self.interleaved = true;
        self
    }

    /// Gives the record of index `i` the timestamp `event_time(i)`, which must not decrease
    /// as `i` grows, and makes the source emit watermarks: one below the event time of the
    /// next index a subtask will emit, so no record is late (an unbounded subtask without a
    /// split is idle; a bounded one finishes).
    pub fn with_event_time(mut self, event_time: EventTime) -> Self {
        self.event_time = Some(event_time);
        self
    }

    /// What a subtask without splits reports: a bounded one is done, an unbounded one that
    /// got no share on a restore stays alive, idle.
    fn without_splits(&self) -> SourcePoll {
        if self.count.is_some() { SourcePoll::Finished } else { SourcePoll::Pending(MAX_WAIT) }
    }
}

impl Split {
    /// The split of subtask `index` of `parallelism` on a fresh start; none if its share of a
    /// bounded range is empty.
    /// With `interleaved`, a bounded share is a stride like an unbounded one.
    fn initial(
        count: Option<u64>,
        interleaved: bool,
        index: usize,
        parallelism: usize,
    ) -> Vec<Split> {
        let (index, parallelism) = (index as u64, parallelism.max(1) as u64);
        let split = match count {
            Some(count) if interleaved => {
                Split { next: index, end: Some(count), step: parallelism }
            }
            Some(count) => {
                let (share, extra) = (count / parallelism, count % parallelism);
                let start = index * share + index.min(extra);
                let len = share + u64::from(index < extra);
                Split { next: start, end: Some(start + len), step: 1 }
            }
            None => Split { next: index, end: None, step: parallelism },
        };
        [split].into_iter().filter(|split| !split.is_finished()).collect()
    }

    fn is_finished(&self) -> bool {
        self.end.is_some_and(|end| self.next >= end)
    }

    /// How many of the split's indices are below `bound`.
    fn count_below(&self, bound: u64) -> u64 {
        let limit = self.end.map_or(bound, |end| end.min(bound));
        limit.saturating_sub(self.next).div_ceil(self.step)
    }
}

impl From<StoredSplit> for Split {
    fn from((next, end, step): StoredSplit) -> Self {
        Split { next, end, step }
    }
}

impl From<Split> for StoredSplit {
    fn from(split: Split) -> Self {
        (split.next, split.end, split.step)
    }
}

/// Calls `emit` with up to `budget` indices of `splits`, smallest first, and drops the splits
/// this finishes; returns how many indices were emitted.
fn take_indices(splits: &mut Vec<Split>, budget: u64, mut emit: impl FnMut(u64)) -> u64 {
    let mut taken = 0;
    while taken < budget {
        // The split holding the smallest index runs until another split has a smaller one.
        let Some(first) = (0..splits.len()).min_by_key(|&i| splits[i].next) else { break };
        let bound = (0..splits.len())
            .filter(|&i| i != first)
            .map(|i| splits[i].next)
            .min()
            .unwrap_or(u64::MAX);
        let split = &mut splits[first];
        let n = split.count_below(bound).clamp(1, budget - taken);
        for _ in 0..n {
            emit(split.next);
            split.next += split.step;
        }
        taken += n;
        if split.is_finished() {
            splits.remove(first);
        }
    }
    taken
}

impl Schedule {
    /// The schedule of one of `parallelism` subtasks sharing `total_rate`.
    fn new(total_rate: Option<f64>, parallelism: usize) -> Self {
        let rate = total_rate.map(|rate| rate / parallelism.max(1) as f64);
        Schedule { rate, started: None, emitted: 0 }
    }

    /// How many records may be emitted now, or how long to wait until the next one is due.
    fn due(&mut self, now: Instant) -> Result<u64, Duration> {
        let Some(rate) = self.rate else { return Ok(u64::MAX) };
        let started = *self.started.get_or_insert(now);
        let elapsed = now.duration_since(started).as_secs_f64();
        // Record k is due at `started + k / rate`; records 0..=floor(elapsed * rate) are due.
        let due_total = (elapsed * rate).floor() as u64 + 1;
        if due_total > self.emitted {
            Ok(due_total - self.emitted)
        } else {
            let next_at = self.emitted as f64 / rate;
            Err(Duration::from_secs_f64((next_at - elapsed).max(0.0)).min(MAX_WAIT))
        }
    }
}

impl<T> Clone for DataGeneratorSource<T> {
    fn clone(&self) -> Self {
        DataGeneratorSource {
            count: self.count,
            generator: Arc::clone(&self.generator),
            rate_per_second: self.rate_per_second,
            interleaved: self.interleaved,
            event_time: self.event_time.clone(),
            splits: self.splits.clone(),
            schedule: self.schedule.clone(),
        }
    }
}

impl<T> fmt::Debug for DataGeneratorSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataGeneratorSource")
            .field("count", &self.count)
            .field("rate_per_second", &self.rate_per_second)
            .field("interleaved", &self.interleaved)
            .field("event_time", &self.event_time.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Send> SourceFunction<T> for DataGeneratorSource<T> {
    fn open(&mut self, info: &SubtaskInfo, ctx: &mut RuntimeContext<'_>) -> FnResult {
        let stored = ctx.operator_state().list_state::<StoredSplit>(SPLITS_STATE)?;
        self.splits = if ctx.is_restored() {
            let stored = stored.get(ctx.operator_state()).iter().copied().map(Split::from);
            stored.filter(|split| !split.is_finished()).collect()
        } else {
            Split::initial(self.count, self.interleaved, info.index, info.parallelism)
        };
        self.schedule = Schedule::new(self.rate_per_second, info.parallelism);
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Record<T>>, max: usize) -> FnResult<SourcePoll> {
        if self.splits.is_empty() {
            return Ok(self.without_splits());
        }
        let due = match self.schedule.due(Instant::now()) {
            Ok(due) => due,
            Err(wait) => return Ok(SourcePoll::Pending(wait)),
        };
        let (generator, event_time) = (&self.generator, &self.event_time);
        let emitted = take_indices(&mut self.splits, due.min(max as u64), |index| {
            let value = generator(index);
            out.push(match event_time {
                Some(event_time) => Record::with_timestamp(value, event_time(index)),
                None => Record::new(value),
            });
        });
        self.schedule.emitted += emitted;
        Ok(if self.splits.is_empty() { self.without_splits() } else { SourcePoll::Ready })
    }

    fn watermark(&mut self) -> Option<SourceWatermark> {
        let event_time = self.event_time.as_ref()?;
        Some(match self.splits.iter().map(|split| split.next).min() {
            Some(next) => SourceWatermark::Watermark(Watermark(event_time(next) - 1)),
            // A bounded subtask out of splits is finishing (it ends with the maximum
            // watermark); reporting it idle first made downstream windows at parallelism 2
            // lose their last results (Nexmark q5 and q7).
            None if self.count.is_some() => return None,
            None => SourceWatermark::Idle,
        })
    }

    fn snapshot_state(&mut self, _: CheckpointId, state: &mut OperatorStateStore) -> FnResult {
        let stored = self.splits.iter().copied().map(StoredSplit::from).collect();
        state.list_state::<StoredSplit>(SPLITS_STATE)?.update(state, stored);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use weir_state::OperatorRestore;

    use super::*;
    use crate::test_util::{
        RESCALINGS, Subtask, drain, info, open_source, output_across_restores, redistribute,
        run_and_fail, run_subtask, sorted, stored_list,
    };

    fn identity(count: Option<u64>, rate: Option<f64>) -> DataGeneratorSource<u64> {
        DataGeneratorSource::new(count, Arc::new(|i| i), rate)
    }

    #[test]
    fn bounded_splits_are_contiguous_and_cover_every_index_once() {
        let source = identity(Some(10), None);
        let shares: Vec<Vec<u64>> =
            (0..3).map(|i| run_subtask(&source, i, 3, 2).unwrap()).collect();
        // As Flink's NumberSequenceSource: 10 = 4 + 3 + 3.
        assert_eq!(shares, vec![vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);

        for (count, parallelism) in [(0, 1), (0, 3), (1, 4), (7, 7), (100, 8), (13, 5)] {
            let source = identity(Some(count), None);
            let mut all = Vec::new();
            for i in 0..parallelism {
                let share = run_subtask(&source, i, parallelism, 3).unwrap();
                let expected = (count / parallelism as u64)
                    + u64::from((i as u64) < count % parallelism as u64);
                assert_eq!(
                    share.len() as u64,
                    expected,
                    "count {count}, subtask {i}/{parallelism}"
                );
                all.extend(share);
            }
            assert_eq!(all, (0..count).collect::<Vec<_>>(), "count {count}, p {parallelism}");
        }
    }

    #[test]
    fn interleaved_bounded_subtasks_stride_and_event_time_sets_watermarks() {
        let source = identity(Some(10), None)
            .interleaved()
            .with_event_time(Arc::new(|i| i as Timestamp * 10));
        let mut subtask = source.clone();
        open_source(&mut subtask, &info(1, 3)).unwrap();
        let watermark = |s: &mut DataGeneratorSource<u64>| s.watermark();
        assert_eq!(watermark(&mut subtask), Some(SourceWatermark::Watermark(Watermark(9))));
        let mut out = Vec::new();
        assert_eq!(subtask.poll(&mut out, 2).unwrap(), SourcePoll::Ready);
        let stamped: Vec<_> = out.iter().map(|r| (r.value, r.timestamp)).collect();
        assert_eq!(stamped, [(1, Some(10)), (4, Some(40))]);
        assert_eq!(watermark(&mut subtask), Some(SourceWatermark::Watermark(Watermark(69))));
        assert_eq!(subtask.poll(&mut out, 10).unwrap(), SourcePoll::Finished);
        assert_eq!(watermark(&mut subtask), None, "a finished bounded subtask does not idle");
        assert_eq!(run_subtask(&source, 0, 3, 2).unwrap(), [0, 3, 6, 9]);
        assert_eq!(identity(Some(10), None).watermark(), None, "no event time, no watermark");
    }

    #[test]
    fn generator_sees_the_index() {
        let source = DataGeneratorSource::new(Some(4), Arc::new(|i| format!("event-{i}")), None);
        assert_eq!(run_subtask(&source, 1, 2, 10).unwrap(), vec!["event-2", "event-3"]);
    }

    #[test]
    fn unbounded_subtasks_interleave() {
        let mut source = identity(None, None);
        open_source(&mut source, &info(1, 3)).unwrap();
        let mut out = Vec::new();
        assert_eq!(source.poll(&mut out, 4).unwrap(), SourcePoll::Ready);
        assert_eq!(source.poll(&mut out, 1).unwrap(), SourcePoll::Ready);
        let values: Vec<u64> = out.into_iter().map(|r| r.value).collect();
        assert_eq!(values, vec![1, 4, 7, 10, 13]);
    }

    /// Polls subtask `index` of `parallelism` (restored from `restore`, if any) for
    /// `duration`, honouring waits; returns the count.
    fn emitted_within(
        rate: f64,
        index: usize,
        parallelism: usize,
        restore: Option<OperatorRestore>,
        duration: Duration,
    ) -> usize {
        let source = identity(None, Some(rate));
        let mut subtask = Subtask::open(&source, index, parallelism, restore).unwrap();
        let deadline = Instant::now() + duration;
        let mut out = Vec::new();
        let mut total = 0;
        while Instant::now() < deadline {
            match subtask.source.poll(&mut out, 1000).unwrap() {
                SourcePoll::Ready => {}
                SourcePoll::Pending(wait) => {
                    assert!(wait <= MAX_WAIT, "waits must stay short, got {wait:?}");
                    std::thread::sleep(wait);
                }
                SourcePoll::Finished => panic!("an unbounded source finished"),
            }
            total += out.len();
            out.clear();
        }
        total
    }

    #[test]
    fn rate_limit_holds_over_time() {
        let half_second = Duration::from_millis(500);
        let count = emitted_within(2000.0, 0, 1, None, half_second);
        assert!(
            (750..=1250).contains(&count),
            "expected ~1000 records in 0.5 s at 2000/s, got {count}"
        );
        // The rate is the total: each of two subtasks gets half.
        let count = emitted_within(2000.0, 1, 2, None, half_second);
        assert!(
            (375..=625).contains(&count),
            "expected ~500 records in 0.5 s at 1000/s, got {count}"
        );
        // Restored at parallelism 2 from one subtask: subtask 1 gets the only split and keeps
        // half the rate.
        let (_, checkpoint) = run_and_fail(&identity(None, Some(2000.0)), &[1], 1, 10).unwrap();
        let restore = redistribute(&checkpoint, 2).pop();
        let count = emitted_within(2000.0, 1, 2, restore, half_second);
        assert!(
            (375..=625).contains(&count),
            "expected ~500 records in 0.5 s at 1000/s after a restore, got {count}"
        );
    }

    #[test]
    fn rate_limited_polls_emit_only_what_is_due() {
        let mut source = identity(Some(1_000_000), Some(10.0));
        open_source(&mut source, &info(0, 1)).unwrap();
        let mut out = Vec::new();
        assert_eq!(source.poll(&mut out, 1000).unwrap(), SourcePoll::Ready);
        assert_eq!(out.len(), 1, "only the first record is due at the start");
        match source.poll(&mut out, 1000).unwrap() {
            SourcePoll::Pending(wait) => assert!(wait > Duration::ZERO && wait <= MAX_WAIT),
            other => panic!("expected Pending, got {other:?}"),
        }
        assert_eq!(out.len(), 1);
    }

    #[test]
    #[should_panic(expected = "rate_per_second must be positive")]
    fn rejects_a_zero_rate() {
        identity(None, Some(0.0));
    }

    #[test]
    fn bounded_restores_emit_every_index_once_at_any_parallelism() {
        for (count, interleaved) in [0, 1, 13, 40].into_iter().flat_map(|c| [(c, false), (c, true)])
        {
            let source = identity(Some(count), None);
            let source = if interleaved { source.interleaved() } else { source };
            for parallelisms in RESCALINGS {
                for last in [1, 2, 3] {
                    for polls in 0..=8 {
                        let output =
                            output_across_restores(&source, parallelisms, last, polls, 2).unwrap();
                        assert_eq!(
                            sorted(output),
                            (0..count).collect::<Vec<_>>(),
                            "count {count}, interleaved {interleaved}, parallelisms \
                             {parallelisms:?} then {last}, {polls} polls"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_bounded_subtask_restored_without_a_split_finishes_at_once() {
        let source = identity(Some(10), None);
        let (output, checkpoint) = run_and_fail(&source, &[1], 1, 4).unwrap();
        assert_eq!(output, [0, 1, 2, 3]);
        // One split left, dealt out over three subtasks: only the last gets it.
        let mut restores = redistribute(&checkpoint, 3).into_iter();
        for index in 0..2 {
            Subtask::open(&source, index, 3, restores.next()).unwrap().assert_finishes_empty();
        }
        let mut subtask = Subtask::open(&source, 2, 3, restores.next()).unwrap();
        assert_eq!(drain(&mut subtask.source, 10).unwrap(), (4..10).collect::<Vec<_>>());
    }

    #[test]
    fn unbounded_restores_emit_each_residue_class_without_gaps_or_repeats() {
        let source = identity(None, None);
        for parallelisms in RESCALINGS {
            for polls in [0, 1, 5] {
                let (output, checkpoint) = run_and_fail(&source, parallelisms, polls, 3).unwrap();
                // The first run's classes `r mod p` survive every restore, each once, and
                // everything below a class's next index was emitted exactly once.
                let splits: Vec<Split> = stored_list::<StoredSplit>(&checkpoint, SPLITS_STATE)
                    .into_iter()
                    .map(Split::from)
                    .collect();
                let p = parallelisms[0] as u64;
                let classes = sorted(splits.iter().map(|s| (s.step, s.next % p)).collect());
                assert_eq!(classes, (0..p).map(|r| (p, r)).collect::<Vec<_>>());
                let expected: Vec<u64> =
                    splits.iter().flat_map(|s| (s.next % p..s.next).step_by(p as usize)).collect();
                assert_eq!(sorted(output), sorted(expected), "{parallelisms:?}, {polls} polls");
            }
        }
    }

    #[test]
    fn restored_unbounded_splits_merge_in_order_and_a_subtask_without_one_idles() {
        let source = identity(None, None);
        let (_, checkpoint) = run_and_fail(&source, &[3], 2, 2).unwrap();
        let mut subtask = Subtask::open(&source, 0, 1, redistribute(&checkpoint, 1).pop()).unwrap();
        assert_eq!(subtask.poll_times(1, 7).unwrap(), (12..19).collect::<Vec<_>>());

        let (_, checkpoint) = run_and_fail(&source, &[1], 1, 2).unwrap();
        let restore = redistribute(&checkpoint, 2).into_iter().next();
        let mut idle = Subtask::open(&source, 0, 2, restore).unwrap();
        let mut out = Vec::new();
        assert_eq!(idle.source.poll(&mut out, 10).unwrap(), SourcePoll::Pending(MAX_WAIT));
        assert!(out.is_empty());
    }
}
