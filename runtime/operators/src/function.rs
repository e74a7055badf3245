//! The traits user functions implement, as in Flink's DataStream API.
//!
//! Every function is cloned once per parallel subtask before the job starts, so fields are
//! per-subtask; state that must survive failures belongs in keyed or operator state.

use weir_types::Timestamp;

use crate::builtin::JoinContext;
use crate::{Collector, KeyedContext, KeyedRuntimeContext, ProcessContext, RuntimeContext};

/// Any error a user function returns; `?` converts most error types into it.
pub type UserError = Box<dyn std::error::Error + Send + Sync>;

/// What user functions return.
pub type FnResult<T = ()> = Result<T, UserError>;

/// A function over single records of a non-keyed stream, with side outputs.
pub trait ProcessFunction<I, O>: Clone + Send + 'static {
    /// Called once per subtask before the first record.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_>) -> FnResult {
        Ok(())
    }
    /// Called for every record.
    fn process_element(
        &mut self,
        value: I,
        ctx: &mut ProcessContext<'_>,
        out: &mut Collector<O>,
    ) -> FnResult;
    /// Called once at the end of bounded input.
    fn finish(&mut self, _out: &mut Collector<O>) -> FnResult {
        Ok(())
    }
}

/// A function over the records of a keyed stream, with keyed state scoped to each record's key.
pub trait KeyedProcessFunction<K, I, O>: Clone + Send + 'static {
    /// Called once per subtask before the first record; register state here.
    fn open(&mut self, _ctx: &mut KeyedRuntimeContext<'_, K>) -> FnResult {
        Ok(())
    }
    /// Called for every record, with the record's key set on the state.
    fn process_element(
        &mut self,
        value: I,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut Collector<O>,
    ) -> FnResult;
    /// Called when a timer of the key registered through `ctx.timer_service()` fires.
    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        _ctx: &mut KeyedContext<'_, K>,
        _out: &mut Collector<O>,
    ) -> FnResult {
        Ok(())
    }
}

/// A function over two connected non-keyed streams.
pub trait CoProcessFunction<I1, I2, O>: Clone + Send + 'static {
    /// Called once per subtask before the first record.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_>) -> FnResult {
        Ok(())
    }
    /// Called for every record of the first stream.
    fn process_element1(
        &mut self,
        value: I1,
        ctx: &mut ProcessContext<'_>,
        out: &mut Collector<O>,
    ) -> FnResult;
    /// Called for every record of the second stream.
    fn process_element2(
        &mut self,
        value: I2,
        ctx: &mut ProcessContext<'_>,
        out: &mut Collector<O>,
    ) -> FnResult;
}

/// A function over two connected streams keyed the same way, sharing keyed state per key.
pub trait KeyedCoProcessFunction<K, I1, I2, O>: Clone + Send + 'static {
    /// Called once per subtask before the first record; register state here.
    fn open(&mut self, _ctx: &mut KeyedRuntimeContext<'_, K>) -> FnResult {
        Ok(())
    }
    /// Called for every record of the first stream.
    fn process_element1(
        &mut self,
        value: I1,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut Collector<O>,
    ) -> FnResult;
    /// Called for every record of the second stream.
    fn process_element2(
        &mut self,
        value: I2,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut Collector<O>,
    ) -> FnResult;
    /// Called when a timer of the key fires.
    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        _ctx: &mut KeyedContext<'_, K>,
        _out: &mut Collector<O>,
    ) -> FnResult {
        Ok(())
    }
}

/// A function over the pairs of an interval join (Flink's `ProcessJoinFunction`): called once
/// per left and right record of the same key whose timestamps lie within the join's bounds.
/// Records may be joined several times, so each call receives its own copies.
pub trait ProcessJoinFunction<L, R, O>: Clone + Send + 'static {
    /// Called once per subtask before the first pair.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_>) -> FnResult {
        Ok(())
    }
    /// Called for every joined pair; `ctx` holds both timestamps, and what `out` collects
    /// carries the larger of the two (also [`JoinContext::timestamp`]).
    fn process_element(
        &mut self,
        left: L,
        right: R,
        ctx: &mut JoinContext,
        out: &mut Collector<O>,
    ) -> FnResult;
}
