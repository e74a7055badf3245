//! Rolling aggregation on a keyed stream: every record folds into its key's running value,
//! which is emitted (Flink's `KeyedStream.reduce`, and `sum`/`min`/`max` built on it).

use std::sync::Arc;

use weir_state::{ValueState, ValueStateDescriptor};
use weir_types::{Data, Key};

use crate::function::{FnResult, KeyedProcessFunction};
use crate::{Collector, KeyedContext, KeyedRuntimeContext};

/// Folds a new record into a key's accumulated value, in place.
type FoldFn<T> = Arc<dyn Fn(&mut T, T) + Send + Sync>;

/// Folds records of a key into its accumulated value and emits each new accumulated value.
pub struct RollingReduce<T> {
    fold: FoldFn<T>,
    state: Option<ValueState<T>>,
}

impl<T: Clone> Clone for RollingReduce<T> {
    fn clone(&self) -> Self {
        RollingReduce { fold: self.fold.clone(), state: self.state.clone() }
    }
}

impl<T: Clone> RollingReduce<T> {
    /// Reduces with `reduce(accumulated, new)`; the first record of a key is emitted as is.
    pub fn new(reduce: impl Fn(T, T) -> T + Send + Sync + 'static) -> Self {
        Self::folding(move |accumulated: &mut T, new| {
            *accumulated = reduce(accumulated.clone(), new)
        })
    }

    /// Folds with `fold(accumulated, new)`, changing the accumulated value in place.
    pub fn folding(fold: impl Fn(&mut T, T) + Send + Sync + 'static) -> Self {
        RollingReduce { fold: Arc::new(fold), state: None }
    }
}

impl<K: Key, T: Data> KeyedProcessFunction<K, T, T> for RollingReduce<T> {
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, K>) -> FnResult {
        self.state = Some(ctx.value_state(&ValueStateDescriptor::new("rolling"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        value: T,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut Collector<T>,
    ) -> FnResult {
        let state = self.state.as_ref().expect("opened before processing");
        out.collect(state.fold(ctx, value, |accumulated, new| (self.fold)(accumulated, new))?);
        Ok(())
    }
}
