//! Built-in operators behind the DataStream API's transformations.

mod co;
mod interval_join;
mod keyed;
mod map;
mod process;
mod rolling;
mod two_phase;
pub mod window;

pub use co::{CoMap, CoProcessOperator, KeyedCoProcessOperator};
pub use interval_join::{IntervalJoinOperator, IntervalJoinSettings, JoinContext};
pub use keyed::KeySelector;
pub use map::{Filter, FlatMap, Map, TryMap};
pub use process::{KeyedProcessOperator, ProcessOperator};
pub use rolling::RollingReduce;
pub use two_phase::{TwoPhaseCommitSink, TwoPhaseCommitSinkOperator};
