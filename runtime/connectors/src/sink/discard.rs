//! A sink that drops every record, like Flink's `DiscardingSink`.

use std::marker::PhantomData;

use weir_operators::function::FnResult;
use weir_operators::{Collector, OneInputOperator};
use weir_types::Record;

/// Drops every record; for benchmarks and jobs that run for their side effects.
pub struct DiscardSink<T> {
    _type: PhantomData<fn(T)>,
}

impl<T> DiscardSink<T> {
    /// A sink that drops what it receives.
    pub fn new() -> Self {
        DiscardSink { _type: PhantomData }
    }
}

impl<T> Default for DiscardSink<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for DiscardSink<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for DiscardSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiscardSink")
    }
}

impl<T> OneInputOperator for DiscardSink<T> {
    type In = T;
    type Out = ();

    fn process_batch(&mut self, batch: &mut Vec<Record<T>>, _out: &mut Collector<()>) -> FnResult {
        batch.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::push;

    #[test]
    fn drains_batches() {
        let mut sink = DiscardSink::new();
        push(&mut sink, vec![String::from("a"), String::from("b")]).unwrap();
        sink.finish(&mut Collector::default()).unwrap();
    }
}
