//! A bounded source over values held in memory, like Flink's `fromCollection`.

use weir_operators::function::FnResult;
use weir_operators::{RuntimeContext, SourceFunction, SourcePoll, SubtaskInfo};
use weir_state::OperatorStateStore;
use weir_types::{CheckpointId, Record};

use crate::Error;

/// The operator list state holding the index of the next value to emit (one element).
const POSITION_STATE: &str = "collection-position";

/// Emits the values of a `Vec` in order, then finishes. Not parallel: it runs as a single
/// subtask and fails to open with a higher parallelism.
///
/// Checkpoints store the index of the next value in the operator list state
/// `collection-position`; a restore resumes there (and, when no index was stored, emits
/// nothing).
#[derive(Clone, Debug)]
pub struct CollectionSource<T> {
    values: std::vec::IntoIter<T>,
    /// Index of the next value in the whole collection.
    next: u64,
}

impl<T> CollectionSource<T> {
    /// A source emitting `values` in order.
    pub fn new(values: Vec<T>) -> Self {
        CollectionSource { values: values.into_iter(), next: 0 }
    }

    /// Skips the values before index `position`.
    fn skip_to(&mut self, position: u64) {
        let skip = usize::try_from(position.saturating_sub(self.next)).unwrap_or(usize::MAX);
        let skip = skip.min(self.values.len());
        self.values.by_ref().take(skip).for_each(drop);
        self.next += skip as u64;
    }
}

impl<T: Send> SourceFunction<T> for CollectionSource<T> {
    fn open(&mut self, info: &SubtaskInfo, ctx: &mut RuntimeContext<'_>) -> FnResult {
        Error::check_not_parallel("CollectionSource", info.parallelism)?;
        let position = ctx.operator_state().list_state::<u64>(POSITION_STATE)?;
        if ctx.is_restored() {
            // Restored without a position: nothing was left.
            let stored = position.get(ctx.operator_state()).first().copied();
            self.skip_to(stored.unwrap_or(u64::MAX));
        }
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Record<T>>, max: usize) -> FnResult<SourcePoll> {
        let before = out.len();
        out.extend(self.values.by_ref().take(max).map(Record::new));
        self.next += (out.len() - before) as u64;
        Ok(if self.values.as_slice().is_empty() { SourcePoll::Finished } else { SourcePoll::Ready })
    }

    fn snapshot_state(&mut self, _: CheckpointId, state: &mut OperatorStateStore) -> FnResult {
        state.list_state::<u64>(POSITION_STATE)?.update(state, vec![self.next]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use weir_state::OperatorRestore;

    use super::*;
    use crate::test_util::{
        Subtask, drain, info, open_source, output_across_restores, run_and_fail, run_subtask,
        stored_list,
    };

    #[test]
    fn emits_values_in_order_in_polls_of_at_most_max() {
        let source = CollectionSource::new((0..10).collect::<Vec<i32>>());
        assert_eq!(run_subtask(&source, 0, 1, 3).unwrap(), (0..10).collect::<Vec<_>>());

        let mut source = CollectionSource::new(vec!["a", "b", "c"]);
        open_source(&mut source, &info(0, 1)).unwrap();
        let mut out = Vec::new();
        assert_eq!(source.poll(&mut out, 2).unwrap(), SourcePoll::Ready);
        assert_eq!(out, vec![Record::new("a"), Record::new("b")]);
        assert_eq!(source.poll(&mut out, 2).unwrap(), SourcePoll::Finished);
        assert_eq!(out.len(), 3);
        assert_eq!(out[2], Record::new("c"));
    }

    #[test]
    fn empty_collection_finishes_at_once() {
        let mut source = CollectionSource::<u8>::new(Vec::new());
        assert!(drain(&mut source, 10).unwrap().is_empty());
    }

    #[test]
    fn refuses_parallelism_above_one() {
        let mut source = CollectionSource::new(vec![1]);
        let error = open_source(&mut source, &info(0, 2)).unwrap_err().to_string();
        assert!(error.contains("CollectionSource") && error.contains("parallelism 2"), "{error}");
    }

    #[test]
    fn restores_resume_at_the_next_value() {
        let values: Vec<u32> = (0..10).collect();
        let source = CollectionSource::new(values.clone());
        for failures in [&[1][..], &[1, 1]] {
            for polls in 0..=6 {
                let output = output_across_restores(&source, failures, 1, polls, 2).unwrap();
                assert_eq!(output, values, "{} failures after {polls} polls", failures.len());
            }
        }
        let (_, checkpoint) = run_and_fail(&source, &[1], 2, 3).unwrap();
        assert_eq!(stored_list::<u64>(&checkpoint, POSITION_STATE), [6]);
    }

    #[test]
    fn restored_without_a_position_emits_nothing() {
        let mut restore = OperatorRestore::default();
        restore.mark_restored();
        let source = CollectionSource::new(vec![1, 2, 3]);
        Subtask::open(&source, 0, 1, Some(restore)).unwrap().assert_finishes_empty();
    }
}
