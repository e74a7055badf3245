//! A sink collecting every record into memory shared with the caller, for tests and small
//! jobs (like Flink's `executeAndCollect`, within one process).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use weir_operators::function::FnResult;
use weir_operators::{Collector, OneInputOperator};
use weir_types::Record;

/// Appends every record's value to a vector shared by all its subtasks and its
/// [`CollectHandle`]. Clone it once per subtask: every clone appends to the same vector.
/// Values of one subtask keep their order; subtasks interleave by batch.
pub struct CollectSink<T> {
    values: Arc<Mutex<Vec<T>>>,
}

/// Reads what a [`CollectSink`] (all of its clones) collected, after or while the job runs.
pub struct CollectHandle<T> {
    values: Arc<Mutex<Vec<T>>>,
}

fn lock<T>(values: &Mutex<Vec<T>>) -> MutexGuard<'_, Vec<T>> {
    // A panic while appending cannot leave the vector invalid, only incomplete.
    values.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> CollectSink<T> {
    /// A sink and the handle that reads what it (and every clone of it) collects.
    pub fn new() -> (CollectSink<T>, CollectHandle<T>) {
        let values = Arc::new(Mutex::new(Vec::new()));
        (CollectSink { values: Arc::clone(&values) }, CollectHandle { values })
    }
}

impl<T> Clone for CollectSink<T> {
    /// Another instance appending to the same vector.
    fn clone(&self) -> Self {
        CollectSink { values: Arc::clone(&self.values) }
    }
}

impl<T> std::fmt::Debug for CollectSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectSink").finish_non_exhaustive()
    }
}

impl<T> CollectHandle<T> {
    /// Takes the values collected so far, leaving the collection empty.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *lock(&self.values))
    }

    /// How many values are collected and not yet taken.
    pub fn len(&self) -> usize {
        lock(&self.values).len()
    }

    /// Whether no values are collected (or all were taken).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for CollectHandle<T> {
    fn clone(&self) -> Self {
        CollectHandle { values: Arc::clone(&self.values) }
    }
}

impl<T> std::fmt::Debug for CollectHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectHandle").field("len", &self.len()).finish()
    }
}

impl<T: Send> OneInputOperator for CollectSink<T> {
    type In = T;
    type Out = ();

    fn process_batch(&mut self, batch: &mut Vec<Record<T>>, _out: &mut Collector<()>) -> FnResult {
        lock(&self.values).extend(batch.drain(..).map(|record| record.value));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{info, push};

    #[test]
    fn clones_append_to_one_shared_vector() {
        let (sink, handle) = CollectSink::<u32>::new();
        assert!(handle.is_empty());
        let workers: Vec<_> = (0..2u32)
            .map(|i| {
                let mut sink = sink.clone();
                std::thread::spawn(move || {
                    sink.open(&info(i as usize, 2)).unwrap();
                    for batch in 0..10 {
                        push(&mut sink, (0..5).map(|n| i * 1000 + batch * 10 + n)).unwrap();
                    }
                    sink.finish(&mut Collector::default()).unwrap();
                })
            })
            .collect();
        drop(sink);
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(handle.len(), 100);
        let values = handle.take();
        assert!(handle.is_empty(), "take empties the collection");
        for i in 0..2 {
            // Each subtask's values arrive in its order.
            let own: Vec<u32> = values.iter().copied().filter(|v| v / 1000 == i).collect();
            let expected: Vec<u32> =
                (0..10).flat_map(|b| (0..5).map(move |n| i * 1000 + b * 10 + n)).collect();
            assert_eq!(own, expected);
        }
    }
}
