//! The task runtime: turns a [`StreamGraph`] into chained, parallel tasks connected by bounded
//! channels, runs them, and reports progress and failures.
//!
//! - [`graph`]: the logical graph the API builds, with type-erased operator factories;
//! - [`plan`]: parallelism resolution and operator chaining;
//! - [`exchange`]: channel writers (partitioners) and input gates (watermark alignment);
//! - [`task`]: the single-threaded loop of each task;
//! - [`executor`]: runs a planned job on threads in this process.

pub mod checkpoint;
mod client;
mod config;
mod error;
pub mod exchange;
pub mod executor;
pub mod graph;
pub mod plan;
mod progress;
mod restart;
mod stream_type;
pub mod task;
mod wiring;

pub use client::{JobClient, JobCommand};
pub use config::ExecutionConfig;
pub use error::{Error, Result};
pub use executor::LocalExecutor;
pub use graph::{
    ChainingStrategy, InputSlot, NodeFactory, NodeId, Partitioning, StreamEdge, StreamGraph,
    StreamNode,
};
pub use progress::{JobResult, OperatorSummary};
pub use restart::{RestartDecision, RestartStrategy, RestartTracker};
pub use stream_type::{AnyOutput, AnyReceiver, AnySender, StreamType, TypedStream};
