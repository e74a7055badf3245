//! A task's part of a checkpoint once its state is in storage: the metadata entries of the
//! files it wrote (handles, never bytes), as the coordinator collects them.

use std::time::Duration;

use weir_checkpoint::SubtaskState;
use weir_types::CheckpointId;

use super::TaskId;

/// One operator subtask's state, written to the checkpoint's directory, as the metadata
/// records it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredState {
    /// The operator's state id.
    pub operator_id: String,
    /// The operator's name.
    pub operator_name: String,
    /// The operator's parallelism.
    pub parallelism: usize,
    /// Its entry in the metadata: its file, blocks and the shared files it references.
    pub state: SubtaskState,
}

impl StoredState {
    /// Its files in the checkpoint's directory (not the shared ones), relative to it.
    pub fn private_files(&self) -> impl Iterator<Item = String> + '_ {
        let native = self.state.native.iter().flat_map(|native| {
            let private = native.files.iter().filter(|file| file.shared.is_none());
            private.map(|file| format!("{}/{}", native.dir, file.name))
        });
        std::iter::once(self.state.file.clone()).chain(native)
    }

    /// Bytes of its files in the checkpoint's directory.
    pub fn private_size(&self) -> u64 {
        let native = self.state.native.iter().flat_map(|native| &native.files);
        let shared: u64 = native.filter(|file| file.shared.is_some()).map(|file| file.size).sum();
        self.state.size() - shared
    }
}

/// A task's part of a checkpoint, its state already written.
#[derive(Debug, Clone)]
pub struct Acknowledgement {
    /// Which task.
    pub task: TaskId,
    /// Which checkpoint.
    pub checkpoint: CheckpointId,
    /// One entry per stateful operator of its chain, records in flight attached.
    pub states: Vec<StoredState>,
    /// Bytes it wrote: its state files and the shared files storage did not hold yet.
    pub written: u64,
    /// How long its barriers aligned.
    pub alignment: Duration,
    /// The task had finished its input: this is its final state.
    pub finished: bool,
    /// It took the checkpoint unaligned.
    pub unaligned: bool,
}
