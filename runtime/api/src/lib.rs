//! Weir's DataStream API: build a streaming job in Rust with Apache Flink's semantics and run
//! it embedded with one command.
//!
//! A job is a graph of transformations on [`DataStream`]s, created from sources on a
//! [`StreamExecutionEnvironment`]; keyed streams ([`KeyedStream`]) carry keyed state and
//! rolling aggregations; [`ConnectedStreams`] feed co-operators. A binary hands its job
//! to [`main()`], which parses `run --parallelism N …`, executes, and reports:
//!
//! ```
//! use weir::prelude::*;
//!
//! let mut env = StreamExecutionEnvironment::new(ExecutionConfig { parallelism: 2, ..Default::default() });
//! let counts = env
//!     .from_collection(vec!["a b".to_string(), "b c".into(), "b".into()])
//!     .flat_map(|line: String| line.split(' ').map(str::to_string).collect::<Vec<_>>())
//!     .map(|word| (word, 1u64))
//!     .key_by(|(word, _)| word.clone())
//!     .sum(|(_, count)| count)
//!     .collect();
//! env.execute().unwrap();
//! let mut finals = std::collections::BTreeMap::new();
//! for (word, count) in counts.take() {
//!     let entry = finals.entry(word).or_insert(0);
//!     *entry = count.max(*entry);
//! }
//! assert_eq!(finals.into_iter().collect::<Vec<_>>(), [("a".into(), 1), ("b".into(), 3), ("c".into(), 1)]);
//! ```

mod connected;
mod entry;
mod env;
mod error;
mod interval_join;
mod job;
mod keyed;
mod params;
mod stream;
mod window;
mod window_join;

pub use connected::{ConnectedStreams, KeyedConnectedStreams};
pub use entry::main;
pub use env::{GeneratorConfig, StreamExecutionEnvironment};
pub use error::{Error, Result};
pub use interval_join::{IntervalJoin, IntervalJoined};
pub use job::{JobHandle, OperatorSettings};
pub use keyed::KeyedStream;
pub use params::Parameters;
pub use stream::{DataStream, DataStreamSink};
pub use window::WindowedStream;
pub use window_join::{JoinEqualTo, JoinInput, JoinWhere, JoinedStreams, WindowJoin};

/// Function traits, contexts and collectors for user code.
pub mod functions {
    pub use weir_operators::builtin::{JoinContext, TwoPhaseCommitSink};
    pub use weir_operators::function::ProcessJoinFunction;
    pub use weir_operators::function::{
        CoProcessFunction, FnResult, KeyedCoProcessFunction, KeyedProcessFunction, ProcessFunction,
        UserError,
    };
    pub use weir_operators::{
        Collector, KeyedContext, KeyedRuntimeContext, KeyedTimers, OutputTag, ProcessContext,
        RuntimeContext, SourceFunction, SourcePoll, SourceWatermark, SubtaskInfo, TimeDomain,
    };
}

/// Windows: assigners, triggers, window functions.
pub mod windowing {
    pub use weir_operators::builtin::window::{
        CountTrigger, EventTimeSessionWindows, EventTimeTrigger, GlobalWindow, GlobalWindows,
        ProcessWindowFunction, ProcessingTimeSessionWindows, ProcessingTimeTrigger, PurgingTrigger,
        SlidingEventTimeWindows, SlidingProcessingTimeWindows, TimeWindow, Trigger, TriggerContext,
        TriggerResult, TumblingEventTimeWindows, TumblingProcessingTimeWindows, Window,
        WindowAssigner, WindowContext,
    };
}

/// Event time: watermark strategies and generators.
pub mod time {
    pub use weir_operators::watermark::{
        BoundedOutOfOrderness, WatermarkGenerator, WatermarkOutput, WatermarkStrategy,
    };
}

/// State descriptors and handles.
pub mod state {
    pub use weir_state::{
        AggregateFunction, AggregatingState, AggregatingStateDescriptor, KeyedStateAccess,
        ListState, ListStateDescriptor, MapState, MapStateDescriptor, OperatorListState,
        ReducingState, ReducingStateDescriptor, ValueState, ValueStateDescriptor,
    };
}

/// Connectors beyond the environment's shortcuts: sinks and their handles, the file sink's
/// settings, Nexmark's events,
/// Kafka (feature `kafka`).
pub mod connectors {
    #[cfg(feature = "kafka")]
    pub use weir_connectors::kafka;
    pub use weir_connectors::sink::{
        BucketAssigner, BucketClock, CollectHandle, FileSink, RollingPolicy, StorageOptions,
    };
    pub use weir_connectors::source::nexmark;
}

pub use weir_state::StateBackendKind;
pub use weir_types::{Data, Key, Record, SavepointFormat, Timestamp, Watermark, WatermarkStatus};
pub use weir_worker::checkpoint::{
    CheckpointConfig, CheckpointStats, CheckpointingMode, STORAGE_THREADS,
};
pub use weir_worker::{
    ExecutionConfig, JobClient, JobControl, JobResult, JobStatus, OperatorSummary, RestConfig,
    RestartStrategy, SavepointOptions,
};

/// Everything a job usually needs: `use weir::prelude::*;`.
pub mod prelude {
    pub use crate::functions::*;
    pub use crate::state::*;
    pub use crate::time::*;
    pub use crate::windowing::*;
    pub use crate::{
        DataStream, ExecutionConfig, GeneratorConfig, KeyedStream, OperatorSettings, Parameters,
        Record, StreamExecutionEnvironment, Timestamp, Watermark,
    };
}
