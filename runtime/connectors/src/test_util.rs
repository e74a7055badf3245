//! Helpers for driving sources and sinks by hand in tests.

use std::time::{Duration, Instant};

use weir_operators::{Collector, OneInputOperator, RuntimeContext, SourceFunction, SourcePoll};
use weir_operators::{SubtaskInfo, function::FnResult};
use weir_state::OperatorStateStore;
use weir_types::Record;

/// Subtask `index` of `parallelism`.
pub(crate) fn info(index: usize, parallelism: usize) -> SubtaskInfo {
    SubtaskInfo::new("test", index, parallelism, 128)
}

/// Calls the source's `open` as a task would.
pub(crate) fn open_source<T, S: SourceFunction<T>>(source: &mut S, info: &SubtaskInfo) -> FnResult {
    let mut state = OperatorStateStore::new();
    source.open(info, &mut RuntimeContext::new(info, &mut state))
}

/// Polls until `Finished` (sleeping on `Pending`), checking that no poll exceeds `max`.
pub(crate) fn drain<T, S: SourceFunction<T>>(source: &mut S, max: usize) -> FnResult<Vec<T>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut values = Vec::new();
    let mut batch = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "source did not finish within 20 s");
        let poll = source.poll(&mut batch, max)?;
        assert!(batch.len() <= max, "poll emitted {} records, max was {max}", batch.len());
        values.extend(batch.drain(..).map(|r: Record<T>| r.value));
        match poll {
            SourcePoll::Ready => {}
            SourcePoll::Pending(wait) => std::thread::sleep(wait),
            SourcePoll::Finished => return Ok(values),
        }
    }
}

/// Opens subtask `index` of `parallelism` of a clone of `source` and drains it.
pub(crate) fn run_subtask<T, S: SourceFunction<T> + Clone>(
    source: &S,
    index: usize,
    parallelism: usize,
    max: usize,
) -> FnResult<Vec<T>> {
    let mut source = source.clone();
    open_source(&mut source, &info(index, parallelism))?;
    drain(&mut source, max)
}

/// Feeds `values` to `sink` as one batch.
pub(crate) fn push<T, S: OneInputOperator<In = T, Out = ()>>(
    sink: &mut S,
    values: impl IntoIterator<Item = T>,
) -> FnResult {
    let mut batch: Vec<Record<T>> = values.into_iter().map(Record::new).collect();
    sink.process_batch(&mut batch, &mut Collector::default())?;
    assert!(batch.is_empty(), "the sink must drain its batch");
    Ok(())
}
