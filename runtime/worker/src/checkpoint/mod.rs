//! Checkpoints in the task runtime: settings, the coordinator's protocol with tasks, barrier
//! alignment, records in flight (unaligned checkpoints), writing tasks' state to checkpoint
//! storage where they run, and reading snapshots back.

mod acknowledgement;
mod alignment;
mod config;
mod coordinator;
mod files;
mod in_flight;
mod protocol;
mod restore;
mod shared;
mod store;
mod upload;

pub use acknowledgement::{Acknowledgement, StoredState};
pub use alignment::{Alignment, BarrierAligner};
pub use config::{CheckpointConfig, CheckpointingMode};
pub use coordinator::{
    CheckpointCoordinator, CheckpointStats, SavepointRequest, StorageResult, TaskEntry,
};
pub use files::StateFile;
pub use in_flight::{InFlight, InFlightBatch, InFlightLog, TaskInFlight};
pub use protocol::{BarrierMode, TaskCommand, TaskControl, TaskEvent, TaskId, TaskState};
pub use restore::{OperatorToRestore, RestoredState};
pub use store::{JobStorage, STORAGE_THREADS};
pub use upload::{StateUploader, Uploaded};
