//! Rolling aggregation on a keyed stream: every record folds into its key's running value,
//! which is emitted (Flink's `KeyedStream.reduce`, and `sum`/`min`/`max` built on it).

use std::sync::Arc;

use weir_state::{ValueState, ValueStateDescriptor};
use weir_types::{Data, Key};

use crate::function::{FnResult, KeyedProcessFunction};
use crate::{Collector, KeyedContext, KeyedRuntimeContext};

/// Folds records of a key with `reduce(accumulated, new)` and emits each new accumulated value.
pub struct RollingReduce<T> {
    reduce: Arc<dyn Fn(T, T) -> T + Send + Sync>,
    state: Option<ValueState<T>>,
}

impl<T: Clone> Clone for RollingReduce<T> {
    fn clone(&self) -> Self {
        RollingReduce { reduce: self.reduce.clone(), state: self.state.clone() }
    }
}

impl<T> RollingReduce<T> {
    /// Reduces with `reduce`; the first record of a key is emitted as is.
    pub fn new(reduce: impl Fn(T, T) -> T + Send + Sync + 'static) -> Self {
        RollingReduce { reduce: Arc::new(reduce), state: None }
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
        let reduced = match state.value(ctx)? {
            Some(accumulated) => (self.reduce)(accumulated, value),
            None => value,
        };
        state.update(ctx, reduced.clone())?;
        out.collect(reduced);
        Ok(())
    }
}
