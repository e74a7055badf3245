//! The task runtime: turns a [`StreamGraph`] into chained, parallel tasks connected by bounded
//! channels, runs them, and reports progress and failures.
//!
//! - [`graph`]: the logical graph the API builds, with type-erased operator factories;
//! - [`plan`]: parallelism resolution and operator chaining;
//! - [`exchange`]: channel writers (partitioners) and input gates (watermark alignment);
//! - [`task`]: the single-threaded loop of each task; [`load`]: where its time goes;
//! - [`executor`]: runs a planned job on threads in this process;
//! - [`JobClient`], [`JobControl`] and [`JobStatus`]: commands to a running job and its live
//!   status, for callers in the process and for the REST API.

mod channels;
pub mod checkpoint;
mod client;
pub mod cluster;
mod config;
mod error;
pub mod exchange;
pub mod executor;
pub mod graph;
pub mod load;
pub mod plan;
mod progress;
mod restart;
mod source_event_time;
mod status;
mod stream_type;
pub mod task;
mod wiring;

pub use client::{JobClient, JobCommand, JobControl, SavepointOptions};
pub use config::{ExecutionConfig, RestConfig};
pub use error::{Error, Result};
pub use executor::LocalExecutor;
pub use graph::{
    ChainingStrategy, InputSlot, NodeFactory, NodeId, Partitioning, StreamEdge, StreamGraph,
    StreamNode,
};
pub use progress::{JobResult, OperatorSummary};
pub use restart::{RestartDecision, RestartStrategy, RestartTracker};
pub use status::{
    EdgeStatus, JobFailure, JobState, JobStatus, JobStatusSnapshot, SubtaskCounts, VertexStatus,
    WorkerStatus,
};
pub use stream_type::{AnyOutput, AnyReceiver, AnySender, StreamType, TypedStream};
