//! A two-phase-commit sink wrapper timing the calls a checkpoint makes: how long the
//! barrier holds the task (pre-commit, then beginning the next transaction) and how long
//! the commit takes, for the throughput test to report.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir::prelude::*;

/// The durations of one kind of call.
#[derive(Clone, Debug, Default)]
pub struct Stat(Vec<Duration>);

impl Stat {
    fn add(&mut self, took: Duration) {
        self.0.push(took);
    }

    /// How many calls were timed.
    pub fn count(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sorted = self.0.clone();
        sorted.sort();
        let total: Duration = sorted.iter().sum();
        let mean = total.checked_div(sorted.len() as u32).unwrap_or_default();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
        let max = sorted.last().copied().unwrap_or_default();
        write!(f, "{} x, median {median:.1?}, mean {mean:.1?}, max {max:.1?}", sorted.len())
    }
}

/// The calls timed, over every subtask.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    pub begin: Stat,
    pub pre_commit: Stat,
    pub commit: Stat,
}

/// `sink`, adding the time of its calls to `timings`.
pub struct Timed<S> {
    pub sink: S,
    pub timings: Arc<Mutex<Timings>>,
}

/// Runs `call`, adding its time to the `stat` of `timings`.
fn timed<R>(
    timings: &Mutex<Timings>,
    stat: fn(&mut Timings) -> &mut Stat,
    call: impl FnOnce() -> R,
) -> R {
    let started = Instant::now();
    let result = call();
    stat(&mut timings.lock().unwrap()).add(started.elapsed());
    result
}

impl<T, S: TwoPhaseCommitSink<T>> TwoPhaseCommitSink<T> for Timed<S> {
    type Transaction = S::Transaction;

    fn open(&mut self, info: &SubtaskInfo) -> FnResult {
        self.sink.open(info)
    }
    fn begin_transaction(&mut self) -> FnResult<S::Transaction> {
        timed(&self.timings, |t| &mut t.begin, || self.sink.begin_transaction())
    }
    fn write(&mut self, txn: &mut S::Transaction, value: T, ts: Option<Timestamp>) -> FnResult {
        self.sink.write(txn, value, ts)
    }
    fn pre_commit(&mut self, txn: &mut S::Transaction) -> FnResult {
        timed(&self.timings, |t| &mut t.pre_commit, || self.sink.pre_commit(txn))
    }
    fn commit(&mut self, txn: S::Transaction) -> FnResult {
        timed(&self.timings, |t| &mut t.commit, || self.sink.commit(txn))
    }
    fn abort(&mut self, txn: S::Transaction) -> FnResult {
        self.sink.abort(txn)
    }
    fn recover_and_commit(&mut self, txn: S::Transaction) -> FnResult {
        self.sink.recover_and_commit(txn)
    }
    fn recover_and_abort(&mut self, txn: S::Transaction) -> FnResult {
        self.sink.recover_and_abort(txn)
    }
    fn close(&mut self) -> FnResult {
        self.sink.close()
    }
}
