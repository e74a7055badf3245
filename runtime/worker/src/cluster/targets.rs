//! Where a worker writes its tasks' state for each checkpoint of an attempt: checkpoints into
//! the job's checkpoint storage (`chk-{id}`), savepoints where the coordinator says. Its word
//! can reach the worker after the barrier did (the barrier travels on the data plane), so a
//! task's state for a savepoint waits for it.

use std::collections::HashMap;

use weir_checkpoint::{CheckpointStorage, SnapshotDir};
use weir_types::{CheckpointId, SnapshotType};

use crate::checkpoint::TaskState;

/// The state directories of an attempt's checkpoints on one worker.
pub(crate) struct StateTargets {
    /// The job's checkpoints (periodic checkpoints are on).
    checkpoints: Option<CheckpointStorage>,
    /// The directory of each savepoint in progress.
    savepoints: HashMap<CheckpointId, SnapshotDir>,
    /// Task state of savepoints whose directory is not known yet.
    waiting: Vec<TaskState>,
}

impl StateTargets {
    /// Targets with checkpoints in `checkpoints`.
    pub(crate) fn new(checkpoints: Option<CheckpointStorage>) -> Self {
        StateTargets { checkpoints, savepoints: HashMap::new(), waiting: Vec::new() }
    }

    /// Where `state` goes, or `None` while it waits for its savepoint's directory.
    pub(crate) fn place(&mut self, state: TaskState) -> Option<(SnapshotDir, TaskState)> {
        let barrier = state.snapshot.barrier;
        let dir = match barrier.kind {
            SnapshotType::Checkpoint => {
                self.checkpoints.as_ref().map(|storage| storage.checkpoint_dir(barrier.id))
            }
            SnapshotType::Savepoint(_) => self.savepoints.get(&barrier.id).cloned(),
        };
        match dir {
            Some(dir) => Some((dir, state)),
            None => {
                self.waiting.push(state);
                None
            }
        }
    }

    /// The coordinator named the directory of savepoint `id`: the state that waited for it.
    pub(crate) fn on_savepoint(
        &mut self,
        id: CheckpointId,
        dir: SnapshotDir,
    ) -> Vec<(SnapshotDir, TaskState)> {
        self.savepoints.insert(id, dir.clone());
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|s| s.snapshot.barrier.id == id);
        self.waiting = waiting;
        ready.into_iter().map(|state| (dir.clone(), state)).collect()
    }

    /// Checkpoint `id` completed or was aborted.
    pub(crate) fn forget(&mut self, id: CheckpointId) {
        self.savepoints.remove(&id);
        self.waiting.retain(|state| state.snapshot.barrier.id != id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use weir_operators::TaskSnapshot;
    use weir_types::CheckpointBarrier;

    use super::*;
    use weir_types::SavepointFormat;

    fn state(id: CheckpointId, kind: SnapshotType) -> TaskState {
        let barrier = CheckpointBarrier { id, timestamp: 0, kind };
        TaskState {
            task: 0,
            snapshot: TaskSnapshot::new(barrier),
            alignment: Duration::ZERO,
            finished: false,
            in_flight: None,
        }
    }

    #[test]
    fn savepoint_state_waits_for_its_directory_and_checkpoints_go_to_chk() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().display().to_string();
        let options = weir_checkpoint::StorageOptions::default();
        let storage = CheckpointStorage::new(&root, "job", &options).unwrap();
        let mut targets = StateTargets::new(Some(storage.clone()));
        let (dir, _) = targets.place(state(3, SnapshotType::Checkpoint)).unwrap();
        assert_eq!(dir.url(), storage.checkpoint_dir(3).url());

        assert!(
            targets.place(state(4, SnapshotType::Savepoint(SavepointFormat::Canonical))).is_none()
        );
        assert!(
            targets.place(state(5, SnapshotType::Savepoint(SavepointFormat::Canonical))).is_none()
        );
        let savepoint = weir_checkpoint::savepoint_dir(&root, "job", 4, &options).unwrap();
        let ready = targets.on_savepoint(4, savepoint.clone());
        assert_eq!(ready.len(), 1);
        assert_eq!((ready[0].0.url(), ready[0].1.snapshot.barrier.id), (savepoint.url(), 4));
        assert!(
            targets.place(state(4, SnapshotType::Savepoint(SavepointFormat::Canonical))).is_some(),
            "known now"
        );
        targets.forget(5);
        let other = weir_checkpoint::savepoint_dir(&root, "job", 5, &options).unwrap();
        assert!(targets.on_savepoint(5, other).is_empty(), "aborted state was dropped");
    }
}
