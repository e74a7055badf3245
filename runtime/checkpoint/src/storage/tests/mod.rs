//! Tests of the storage layer on `file://` directories, and their fixtures.

mod checkpoints;
mod errors;
mod snapshots;

use std::path::Path;

use bytes::Bytes;
use tempfile::TempDir;
use weir_types::KeyGroupRange;

use super::{CheckpointStorage, StorageOptions};
use crate::{
    Block, CheckpointMetadata, FORMAT_VERSION, KeyGroupBlock, OperatorState, SnapshotKind,
    SubtaskState,
};

const JOB: &str = "word-count";
const STATE: &str = "counts/0.state";

fn metadata(id: u64, shared_files: &[&str]) -> CheckpointMetadata {
    let subtask = SubtaskState {
        subtask: 0,
        file: STATE.into(),
        key_group_range: KeyGroupRange::for_subtask(128, 1, 0),
        key_groups: vec![KeyGroupBlock {
            group: 7,
            block: Block { offset: 0, len: 5 },
            pieces: None,
        }],
        operator_lists: Vec::new(),
        in_flight: None,
        shared_files: shared_files.iter().map(|file| file.to_string()).collect(),
        native: None,
    };
    CheckpointMetadata {
        format_version: FORMAT_VERSION,
        job_name: JOB.into(),
        checkpoint_id: id,
        kind: SnapshotKind::Checkpoint,
        timestamp_ms: 1_700_000_000_000 + id as i64,
        max_parallelism: 128,
        operators: vec![OperatorState {
            uid: "counts".into(),
            name: "Counts".into(),
            parallelism: 1,
            subtasks: vec![subtask],
        }],
    }
}

fn root() -> (TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_owned();
    (dir, url)
}

fn storage(root: &str) -> CheckpointStorage {
    CheckpointStorage::new(root, JOB, &StorageOptions::default()).unwrap()
}

/// Writes checkpoint `id`: its state file, then its `_metadata` unless `complete` is false.
async fn checkpoint(storage: &CheckpointStorage, id: u64, shared: &[&str], complete: bool) {
    let dir = storage.checkpoint_dir(id);
    dir.put(STATE, Bytes::from_static(b"state")).await.unwrap();
    if complete {
        dir.write_metadata(&metadata(id, shared)).await.unwrap();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    names.sort();
    names
}
