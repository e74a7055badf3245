//! Operators: what runs inside a task, one batch at a time.
//!
//! An operator implements one required method, [`OneInputOperator::process_batch`], and
//! overrides only the hooks it needs (watermark, finish). A [`ChainedOperator`] pairs an
//! operator with the [`Output`] it feeds — the next operator of its chain, a network writer or
//! several — so a chain is a stack of outputs that hands whole batches along, one virtual call
//! per operator and batch. The runtime builds chains; this crate knows nothing of threads or
//! channels.
//!
//! User code plugs in through the function traits in [`function`] (process functions, keyed
//! process functions, co-process functions) and closures for the simple transformations in
//! [`builtin`].

pub mod builtin;
mod collector;
mod context;
mod error;
pub mod function;
mod metrics;
mod node;
mod output;
mod snapshot;
mod source;
mod source_output;
mod time;
mod timer_snapshot;
mod timers;
pub mod watermark;

pub use collector::{Collector, OutputTag, SideOutput};
pub use context::{
    KeyedContext, KeyedRuntimeContext, KeyedTimers, ProcessContext, RuntimeContext, SubtaskInfo,
};
pub use error::{Error, Result};
pub use metrics::OperatorMetrics;
pub use node::{
    ChainedOperator, OneInputOperator, TwoInputNode, TwoInputOperator, panic_message, run_guarded,
};
pub use output::{DiscardOutput, FanOut, Output};
pub use snapshot::{OperatorSnapshot, StateRestore, SubtaskSnapshot, TaskSnapshot};
pub use source::{SourceFunction, SourcePoll, SourceWatermark};
pub use source_output::SourceOutput;
pub use time::{TimeDomain, processing_time_now};
pub use timers::{FiredTimer, TimerService};
