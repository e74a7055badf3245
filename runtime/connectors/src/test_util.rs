//! Helpers for driving sources and sinks by hand in tests.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use weir_operators::{Collector, OneInputOperator, RuntimeContext, SourceFunction, SourcePoll};
use weir_operators::{SubtaskInfo, function::FnResult};
use weir_state::{ListMode, ListSnapshot, OperatorRestore, OperatorStateStore};
use weir_types::{Data, Record};

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

/// Chains of parallelisms a job runs at, failing after a checkpoint each time (see
/// [`run_and_fail`]).
pub(crate) const RESCALINGS: [&[usize]; 6] = [&[1], &[2], &[3], &[2, 3], &[3, 1], &[1, 4, 2]];

/// One subtask of a source with the operator state its task holds, for checkpoint tests.
pub(crate) struct Subtask<S> {
    /// The opened source.
    pub(crate) source: S,
    state: OperatorStateStore,
}

impl<S> Subtask<S> {
    /// Opens a clone of `source` as subtask `index` of `parallelism`: on a fresh start when
    /// `restore` is `None`, else over the restored lists.
    pub(crate) fn open<T>(
        source: &S,
        index: usize,
        parallelism: usize,
        restore: Option<OperatorRestore>,
    ) -> FnResult<Self>
    where
        S: SourceFunction<T> + Clone,
    {
        let info = info(index, parallelism);
        let mut state = OperatorStateStore::new();
        if let Some(restore) = restore {
            state.restore(restore);
        }
        let mut source = source.clone();
        source.open(&info, &mut RuntimeContext::new(&info, &mut state))?;
        Ok(Subtask { source, state })
    }

    /// Polls `polls` times (without waiting on `Pending`) or until `Finished`; returns the
    /// values emitted.
    pub(crate) fn poll_times<T>(&mut self, polls: usize, max: usize) -> FnResult<Vec<T>>
    where
        S: SourceFunction<T>,
    {
        let mut batch = Vec::new();
        for _ in 0..polls {
            if self.source.poll(&mut batch, max)? == SourcePoll::Finished {
                break;
            }
        }
        Ok(batch.into_iter().map(|r: Record<T>| r.value).collect())
    }

    /// Polls once, asserting that the subtask emits nothing and finishes.
    pub(crate) fn assert_finishes_empty<T: Debug>(&mut self)
    where
        S: SourceFunction<T>,
    {
        let mut out = Vec::new();
        assert_eq!(self.source.poll(&mut out, 10).unwrap(), SourcePoll::Finished);
        assert!(out.is_empty(), "emitted {out:?}");
    }

    /// What the subtask's task stores at a checkpoint barrier: the source's `snapshot_state`,
    /// then every operator list.
    pub(crate) fn snapshot<T>(&mut self) -> FnResult<Vec<ListSnapshot>>
    where
        S: SourceFunction<T>,
    {
        self.source.snapshot_state(0, &mut self.state)?;
        Ok(self.state.snapshot()?)
    }
}

/// The restores of `parallelism` subtasks from the lists all old subtasks stored, as the
/// runtime computes them: each list's elements over the old subtasks in order, cut into
/// contiguous even chunks (split lists) or given whole to every subtask (union lists).
pub(crate) fn redistribute(
    snapshots: &[Vec<ListSnapshot>],
    parallelism: usize,
) -> Vec<OperatorRestore> {
    let mut lists: Vec<(&str, ListMode, Vec<Vec<u8>>)> = Vec::new();
    for list in snapshots.iter().flatten() {
        match lists.iter_mut().find(|(name, ..)| *name == list.name) {
            Some((_, _, elements)) => elements.extend(list.elements.iter().cloned()),
            None => lists.push((&list.name, list.mode, list.elements.clone())),
        }
    }
    (0..parallelism)
        .map(|subtask| {
            let mut restore = OperatorRestore::default();
            restore.mark_restored();
            for (name, mode, elements) in &lists {
                let share = match mode {
                    ListMode::Union => elements.clone(),
                    ListMode::Split => {
                        let n = elements.len();
                        elements[subtask * n / parallelism..(subtask + 1) * n / parallelism]
                            .to_vec()
                    }
                };
                restore.add(name, share);
            }
            restore
        })
        .collect()
}

/// Runs `source` once per parallelism in `parallelisms`, each run failing after a checkpoint:
/// the first starts fresh, every later one restores from the checkpoint of the one before.
/// Each subtask is polled `polls` times, snapshotted, then polled as often again (output the
/// failure loses). Returns what was emitted before the checkpoints and the last checkpoint.
pub(crate) fn run_and_fail<T, S: SourceFunction<T> + Clone>(
    source: &S,
    parallelisms: &[usize],
    polls: usize,
    max: usize,
) -> FnResult<(Vec<T>, Vec<Vec<ListSnapshot>>)> {
    let mut output = Vec::new();
    let mut checkpoint: Option<Vec<Vec<ListSnapshot>>> = None;
    for &parallelism in parallelisms {
        let restores: Vec<Option<OperatorRestore>> = match &checkpoint {
            None => (0..parallelism).map(|_| None).collect(),
            Some(snapshots) => redistribute(snapshots, parallelism).into_iter().map(Some).collect(),
        };
        let mut snapshots = Vec::new();
        for (index, restore) in restores.into_iter().enumerate() {
            let mut subtask = Subtask::open(source, index, parallelism, restore)?;
            output.extend(subtask.poll_times(polls, max)?);
            snapshots.push(subtask.snapshot()?);
            subtask.poll_times(polls, max)?;
        }
        checkpoint = Some(snapshots);
    }
    Ok((output, checkpoint.unwrap_or_default()))
}

/// Everything a bounded `source` emits when run (and failed) as [`run_and_fail`] does, then
/// restored with `last` subtasks that are drained.
pub(crate) fn output_across_restores<T, S: SourceFunction<T> + Clone>(
    source: &S,
    parallelisms: &[usize],
    last: usize,
    polls: usize,
    max: usize,
) -> FnResult<Vec<T>> {
    let (mut output, checkpoint) = run_and_fail(source, parallelisms, polls, max)?;
    for (index, restore) in redistribute(&checkpoint, last).into_iter().enumerate() {
        let mut subtask = Subtask::open(source, index, last, Some(restore))?;
        output.extend(drain(&mut subtask.source, max)?);
    }
    Ok(output)
}

/// The elements of list `name` over all subtasks of `checkpoint`.
pub(crate) fn stored_list<V: Data>(checkpoint: &[Vec<ListSnapshot>], name: &str) -> Vec<V> {
    let mut state = OperatorStateStore::new();
    for restore in redistribute(checkpoint, 1) {
        state.restore(restore);
    }
    state.list_state::<V>(name).expect("stored by the source").get(&state).to_vec()
}

/// `values` in ascending order, to compare outputs as multisets.
pub(crate) fn sorted<T: Ord>(mut values: Vec<T>) -> Vec<T> {
    values.sort();
    values
}
