//! Checkpoints in the task runtime: settings, the coordinator's protocol with tasks, barrier
//! alignment, records in flight (unaligned checkpoints), and writing and reading snapshots
//! through checkpoint storage.

mod alignment;
mod config;
mod coordinator;
mod files;
mod in_flight;
mod protocol;
mod restore;
mod shared;
mod store;

pub use alignment::{Alignment, BarrierAligner};
pub use config::{CheckpointConfig, CheckpointingMode};
pub use coordinator::{
    Acknowledgement, CheckpointCoordinator, CheckpointStats, SavepointRequest, StorageResult,
    TaskEntry, state_not_encoded,
};
pub use files::StateFile;
pub use in_flight::{InFlight, InFlightBatch, InFlightLog, TaskInFlight};
pub use protocol::{BarrierMode, TaskCommand, TaskControl, TaskEvent, TaskId};
pub use restore::{OperatorToRestore, RestoredState};
pub use store::JobStorage;
