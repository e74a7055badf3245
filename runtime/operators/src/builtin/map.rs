//! Record-at-a-time transformations from closures: map, try_map, filter, flat_map.

use std::marker::PhantomData;

use weir_types::Record;

use crate::function::{FnResult, UserError};
use crate::{Collector, OneInputOperator};

/// Applies a closure to every record.
pub struct Map<I, O, F> {
    f: F,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O, F: FnMut(I) -> O> Map<I, O, F> {
    /// Maps with `f`.
    pub fn new(f: F) -> Self {
        Map { f, _types: PhantomData }
    }
}

impl<I, O, F> OneInputOperator for Map<I, O, F>
where
    F: FnMut(I) -> O + Send,
{
    type In = I;
    type Out = O;

    fn process_batch(&mut self, batch: &mut Vec<Record<I>>, out: &mut Collector<O>) -> FnResult {
        for record in batch.drain(..) {
            out.set_timestamp(record.timestamp);
            out.collect((self.f)(record.value));
        }
        Ok(())
    }
}

/// Applies a fallible closure to every record; the first error fails the job.
pub struct TryMap<I, O, E, F> {
    f: F,
    _types: PhantomData<fn(I) -> Result<O, E>>,
}

impl<I, O, E, F: FnMut(I) -> Result<O, E>> TryMap<I, O, E, F> {
    /// Maps with `f`.
    pub fn new(f: F) -> Self {
        TryMap { f, _types: PhantomData }
    }
}

impl<I, O, E, F> OneInputOperator for TryMap<I, O, E, F>
where
    F: FnMut(I) -> Result<O, E> + Send,
    E: Into<UserError>,
{
    type In = I;
    type Out = O;

    fn process_batch(&mut self, batch: &mut Vec<Record<I>>, out: &mut Collector<O>) -> FnResult {
        for record in batch.drain(..) {
            out.set_timestamp(record.timestamp);
            out.collect((self.f)(record.value).map_err(Into::into)?);
        }
        Ok(())
    }
}

/// Keeps the records a predicate accepts.
pub struct Filter<T, F> {
    predicate: F,
    _type: PhantomData<fn(T)>,
}

impl<T, F: FnMut(&T) -> bool> Filter<T, F> {
    /// Keeps records for which `predicate` is true.
    pub fn new(predicate: F) -> Self {
        Filter { predicate, _type: PhantomData }
    }
}

impl<T, F> OneInputOperator for Filter<T, F>
where
    F: FnMut(&T) -> bool + Send,
{
    type In = T;
    type Out = T;

    fn process_batch(&mut self, batch: &mut Vec<Record<T>>, out: &mut Collector<T>) -> FnResult {
        for record in batch.drain(..) {
            if (self.predicate)(&record.value) {
                out.set_timestamp(record.timestamp);
                out.collect(record.value);
            }
        }
        Ok(())
    }
}

/// Turns every record into zero or more records.
pub struct FlatMap<I, It, F> {
    f: F,
    _types: PhantomData<fn(I) -> It>,
}

impl<I, It: IntoIterator, F: FnMut(I) -> It> FlatMap<I, It, F> {
    /// Expands records with `f`.
    pub fn new(f: F) -> Self {
        FlatMap { f, _types: PhantomData }
    }
}

impl<I, It, F> OneInputOperator for FlatMap<I, It, F>
where
    It: IntoIterator,
    F: FnMut(I) -> It + Send,
{
    type In = I;
    type Out = It::Item;

    fn process_batch(
        &mut self,
        batch: &mut Vec<Record<I>>,
        out: &mut Collector<It::Item>,
    ) -> FnResult {
        for record in batch.drain(..) {
            out.set_timestamp(record.timestamp);
            for value in (self.f)(record.value) {
                out.collect(value);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<Op: OneInputOperator>(op: &mut Op, input: Vec<Record<Op::In>>) -> Vec<Record<Op::Out>> {
        let mut batch = input;
        let mut out = Collector::default();
        op.process_batch(&mut batch, &mut out).unwrap();
        assert!(batch.is_empty(), "operators drain their input");
        out.records
    }

    #[test]
    fn map_keeps_timestamps() {
        let out = run(
            &mut Map::new(|x: i32| x * 10),
            vec![Record::with_timestamp(1, 100), Record::new(2)],
        );
        assert_eq!(out, vec![Record::with_timestamp(10, 100), Record::new(20)]);
    }

    #[test]
    fn try_map_stops_at_the_first_error() {
        let mut op = TryMap::new(|x: i32| if x == 2 { Err("two") } else { Ok(x) });
        let mut batch = vec![Record::new(1), Record::new(2), Record::new(3)];
        let mut out = Collector::default();
        let error = op.process_batch(&mut batch, &mut out).unwrap_err();
        assert_eq!(error.to_string(), "two");
        assert_eq!(out.records, vec![Record::new(1)]);
    }

    #[test]
    fn filter_and_flat_map() {
        let out = run(&mut Filter::new(|x: &i32| x % 2 == 0), (1..=6).map(Record::new).collect());
        assert_eq!(out.into_iter().map(|r| r.value).collect::<Vec<_>>(), vec![2, 4, 6]);
        let out = run(
            &mut FlatMap::new(|s: String| s.split(' ').map(str::to_string).collect::<Vec<_>>()),
            vec![Record::with_timestamp("a b".to_string(), 7), Record::new(String::new())],
        );
        assert_eq!(
            out,
            vec![
                Record::with_timestamp("a".to_string(), 7),
                Record::with_timestamp("b".to_string(), 7),
                Record::new(String::new())
            ]
        );
    }
}
