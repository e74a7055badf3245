//! A parallel source of generated records, optionally bounded and rate-limited, like Flink's
//! `DataGeneratorSource`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_operators::function::FnResult;
use weir_operators::{RuntimeContext, SourceFunction, SourcePoll, SubtaskInfo};
use weir_types::Record;

/// The longest a rate-limited subtask waits before polling again.
const MAX_WAIT: Duration = Duration::from_millis(50);

/// Emits `generator(index)` for indices `0..count` (or forever when `count` is `None`),
/// optionally at a steady total rate.
///
/// Parallel: with `count` set, subtask `i` of `p` takes a contiguous share of `0..count` as
/// Flink's `NumberSequenceSource` splits it (the first `count % p` subtasks get one index
/// more) and emits it in ascending order. Without `count`, subtask `i` emits
/// `i, i + p, i + 2p, …`. A rate limit is the total over all subtasks; each subtask keeps
/// `rate / p` on a fixed schedule, so the rate stays accurate over seconds.
pub struct DataGeneratorSource<T> {
    count: Option<u64>,
    generator: Arc<dyn Fn(u64) -> T + Send + Sync>,
    rate_per_second: Option<f64>,
    /// Where this subtask is, set in `open`.
    progress: Progress,
}

/// One subtask's position in the index space and on the rate schedule.
#[derive(Clone, Debug)]
struct Progress {
    next: u64,
    /// First index not to emit; `None` when unbounded.
    end: Option<u64>,
    step: u64,
    /// Records per second for this subtask.
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
            progress: Progress::for_subtask(count, rate_per_second, 0, 1),
        }
    }
}

impl Progress {
    fn for_subtask(
        count: Option<u64>,
        rate: Option<f64>,
        index: usize,
        parallelism: usize,
    ) -> Self {
        let (index, parallelism) = (index as u64, parallelism.max(1) as u64);
        let (next, end, step) = match count {
            Some(count) => {
                let (share, extra) = (count / parallelism, count % parallelism);
                let start = index * share + index.min(extra);
                let len = share + u64::from(index < extra);
                (start, Some(start + len), 1)
            }
            None => (index, None, parallelism),
        };
        Progress {
            next,
            end,
            step,
            rate: rate.map(|r| r / parallelism as f64),
            started: None,
            emitted: 0,
        }
    }

    fn remaining(&self) -> Option<u64> {
        self.end.map(|end| end - self.next)
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
            progress: self.progress.clone(),
        }
    }
}

impl<T> fmt::Debug for DataGeneratorSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataGeneratorSource")
            .field("count", &self.count)
            .field("rate_per_second", &self.rate_per_second)
            .finish_non_exhaustive()
    }
}

impl<T: Send> SourceFunction<T> for DataGeneratorSource<T> {
    fn open(&mut self, info: &SubtaskInfo, _ctx: &mut RuntimeContext<'_>) -> FnResult {
        self.progress =
            Progress::for_subtask(self.count, self.rate_per_second, info.index, info.parallelism);
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Record<T>>, max: usize) -> FnResult<SourcePoll> {
        let progress = &mut self.progress;
        if progress.remaining() == Some(0) {
            return Ok(SourcePoll::Finished);
        }
        let due = match progress.due(Instant::now()) {
            Ok(due) => due,
            Err(wait) => return Ok(SourcePoll::Pending(wait)),
        };
        let n = due.min(max as u64).min(progress.remaining().unwrap_or(u64::MAX));
        out.reserve(n as usize);
        for _ in 0..n {
            out.push(Record::new((self.generator)(progress.next)));
            progress.next += progress.step;
        }
        progress.emitted += n;
        Ok(if progress.remaining() == Some(0) { SourcePoll::Finished } else { SourcePoll::Ready })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{info, open_source, run_subtask};

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

    /// Polls subtask `index` of `parallelism` for `duration`, honouring waits; returns the count.
    fn emitted_within(rate: f64, index: usize, parallelism: usize, duration: Duration) -> usize {
        let mut source = identity(None, Some(rate));
        open_source(&mut source, &info(index, parallelism)).unwrap();
        let deadline = Instant::now() + duration;
        let mut out = Vec::new();
        let mut total = 0;
        while Instant::now() < deadline {
            match source.poll(&mut out, 1000).unwrap() {
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
        let count = emitted_within(2000.0, 0, 1, half_second);
        assert!(
            (750..=1250).contains(&count),
            "expected ~1000 records in 0.5 s at 2000/s, got {count}"
        );
        // The rate is the total: each of two subtasks gets half.
        let count = emitted_within(2000.0, 1, 2, half_second);
        assert!(
            (375..=625).contains(&count),
            "expected ~500 records in 0.5 s at 1000/s, got {count}"
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
}
