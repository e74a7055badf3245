//! A bounded source over values held in memory, like Flink's `fromCollection`.

use weir_operators::function::FnResult;
use weir_operators::{RuntimeContext, SourceFunction, SourcePoll, SubtaskInfo};
use weir_types::Record;

use crate::Error;

/// Emits the values of a `Vec` in order, then finishes. Not parallel: it runs as a single
/// subtask and fails to open with a higher parallelism.
#[derive(Clone, Debug)]
pub struct CollectionSource<T> {
    values: std::vec::IntoIter<T>,
}

impl<T> CollectionSource<T> {
    /// A source emitting `values` in order.
    pub fn new(values: Vec<T>) -> Self {
        CollectionSource { values: values.into_iter() }
    }
}

impl<T: Send> SourceFunction<T> for CollectionSource<T> {
    fn open(&mut self, info: &SubtaskInfo, _ctx: &mut RuntimeContext<'_>) -> FnResult {
        Ok(Error::check_not_parallel("CollectionSource", info.parallelism)?)
    }

    fn poll(&mut self, out: &mut Vec<Record<T>>, max: usize) -> FnResult<SourcePoll> {
        out.extend(self.values.by_ref().take(max).map(Record::new));
        Ok(if self.values.as_slice().is_empty() { SourcePoll::Finished } else { SourcePoll::Ready })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{drain, info, open_source, run_subtask};

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
}
