//! Built-in operators behind the DataStream API's transformations.

mod co;
mod keyed;
mod map;
mod process;
mod rolling;

pub use co::{CoMap, CoProcessOperator, KeyedCoProcessOperator};
pub use keyed::KeySelector;
pub use map::{Filter, FlatMap, Map, TryMap};
pub use process::{KeyedProcessOperator, ProcessOperator};
pub use rolling::RollingReduce;
