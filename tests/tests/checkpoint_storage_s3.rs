//! Checkpoint storage on a real S3 API (a moto server), at `s3://bucket/prefix`: state files,
//! ranges, metadata written last, retention with shared-file collection, savepoints and the
//! restore rule.

use std::collections::HashSet;

use bytes::Bytes;
use weir_checkpoint::{
    CheckpointMetadata, CheckpointStorage, Error, FORMAT_VERSION, OperatorState, RetainReport,
    SnapshotKind, StorageOptions, SubtaskState, resolve_restore, savepoint_dir,
};
use weir_tests::services::S3Server;
use weir_types::KeyGroupRange;

const JOB: &str = "orders";
const STATE: &str = "sum/0.state";

fn metadata(id: u64, kind: SnapshotKind, shared_files: &[&str]) -> CheckpointMetadata {
    CheckpointMetadata {
        format_version: FORMAT_VERSION,
        job_name: JOB.into(),
        checkpoint_id: id,
        kind,
        timestamp_ms: 1_700_000_000_000,
        max_parallelism: 16,
        operators: vec![OperatorState {
            uid: "sum".into(),
            name: "Sum".into(),
            parallelism: 1,
            subtasks: vec![SubtaskState {
                subtask: 0,
                file: STATE.into(),
                key_group_range: KeyGroupRange::for_subtask(16, 1, 0),
                key_groups: Vec::new(),
                operator_lists: Vec::new(),
                in_flight: None,
                shared_files: shared_files.iter().map(|file| file.to_string()).collect(),
                native: None,
            }],
        }],
    }
}

/// A moto server and the options reaching it.
fn start() -> (S3Server, StorageOptions) {
    let s3 = S3Server::start().expect("moto S3 server starts");
    let options = s3.options();
    (s3, options)
}

/// Writes checkpoint `id` of `storage`: a state file, then `_metadata` when `complete`.
async fn checkpoint(storage: &CheckpointStorage, id: u64, shared: &[&str], complete: bool) {
    let dir = storage.checkpoint_dir(id);
    dir.put(STATE, Bytes::from_static(b"state")).await.unwrap();
    if complete {
        dir.write_metadata(&metadata(id, SnapshotKind::Checkpoint, shared)).await.unwrap();
    }
}

#[tokio::test]
async fn s3_state_files_ranges_and_metadata_written_last() {
    let (s3, options) = start();
    let storage = CheckpointStorage::new(&s3.url("prefix"), JOB, &options).unwrap();
    let dir = storage.checkpoint_dir(1);
    assert_eq!(dir.url(), format!("s3://{}/prefix/{JOB}/chk-1", s3.bucket()));

    assert_eq!(dir.put(STATE, Bytes::from_static(b"0123456789")).await.unwrap(), 10);
    let ranges = dir.read_ranges(STATE, &[1..3, 8..10, 0..1]).await.unwrap();
    assert_eq!(ranges, ["12", "89", "0"]);
    assert!(!dir.is_complete().await.unwrap());
    assert!(storage.complete_checkpoints().await.unwrap().is_empty());
    assert!(storage.latest_complete().await.unwrap().is_none());
    let error = dir.read_metadata().await.unwrap_err();
    assert!(matches!(error, Error::NotComplete { .. }), "{error}");

    let written = metadata(1, SnapshotKind::Checkpoint, &[]);
    dir.write_metadata(&written).await.unwrap();
    assert!(dir.is_complete().await.unwrap());
    assert_eq!(storage.complete_checkpoints().await.unwrap(), [1]);
    let (latest, read) = storage.latest_complete().await.unwrap().unwrap();
    assert_eq!((latest.url(), read), (dir.url(), written));
}

#[tokio::test]
async fn s3_retain_deletes_old_checkpoints_and_unused_shared_files() {
    let (s3, options) = start();
    let storage = CheckpointStorage::new(&s3.url("prefix"), JOB, &options).unwrap();
    for file in ["a.sst", "b.sst", "dir/c.sst", "uploading.sst", "orphan.sst"] {
        storage.put_shared(file, Bytes::from_static(b"sst").into()).await.unwrap();
    }
    checkpoint(&storage, 1, &["a.sst", "uploading.sst"], true).await;
    checkpoint(&storage, 2, &[], false).await;
    checkpoint(&storage, 3, &["b.sst"], true).await;
    checkpoint(&storage, 4, &["b.sst", "dir/c.sst"], true).await;
    checkpoint(&storage, 5, &[], false).await;

    let protected = HashSet::from(["uploading.sst".to_owned()]);
    let report = storage.retain(2, &protected).await.unwrap();

    assert_eq!(report, RetainReport { checkpoints: 1, incomplete: 1, shared_files: 1 });
    assert_eq!(storage.complete_checkpoints().await.unwrap(), [3, 4]);
    for (file, kept) in
        // No complete checkpoint ever named "orphan.sst": it may be a worker's upload for a
        // checkpoint in progress, so it stays.
        [("a.sst", false), ("orphan.sst", true), ("b.sst", true), ("dir/c.sst", true)]
    {
        assert_eq!(storage.read_shared(file).await.is_ok(), kept, "{file}");
    }
    assert!(storage.read_shared("uploading.sst").await.is_ok());
    for (id, kept) in [(1, false), (2, false), (5, true)] {
        assert_eq!(storage.checkpoint_dir(id).read(STATE).await.is_ok(), kept, "chk-{id}");
    }
    assert_eq!(storage.retain(2, &protected).await.unwrap(), RetainReport::default());
}

#[tokio::test]
async fn s3_savepoints_and_resolve_restore() {
    let (s3, options) = start();
    let root = s3.url("prefix");
    assert!(resolve_restore(&root, JOB, &options).await.unwrap().is_none());

    let savepoint = savepoint_dir(&root, JOB, 9, &options).unwrap();
    let name = savepoint.url().strip_prefix(&format!("{root}/")).unwrap();
    assert!(name.starts_with("savepoint-orders-9-") && name.len() == 25, "{name}");
    savepoint.put(STATE, Bytes::from_static(b"state")).await.unwrap();
    savepoint.write_metadata(&metadata(9, SnapshotKind::Savepoint, &[])).await.unwrap();

    let storage = CheckpointStorage::new(&root, JOB, &options).unwrap();
    checkpoint(&storage, 10, &[], true).await;
    checkpoint(&storage, 11, &[], false).await;
    storage.retain(1, &HashSet::new()).await.unwrap();
    assert!(savepoint.is_complete().await.unwrap(), "retain never touches savepoints");

    let resolved = |url: String| {
        let options = &options;
        async move { resolve_restore(&url, JOB, options).await.unwrap().map(|dir| dir.url().to_owned()) }
    };
    let latest = storage.checkpoint_dir(10).url().to_owned();
    assert_eq!(resolved(root.clone()).await.as_deref(), Some(latest.as_str()));
    assert_eq!(resolved(storage.url().to_owned()).await.as_deref(), Some(latest.as_str()));
    assert_eq!(resolved(savepoint.url().to_owned()).await.as_deref(), Some(savepoint.url()));
    let metadata_url = format!("{}/_metadata", savepoint.url());
    assert_eq!(resolved(metadata_url).await.as_deref(), Some(savepoint.url()));
    assert_eq!(resolved(s3.url("elsewhere")).await, None);

    savepoint.delete().await.unwrap();
    assert!(!savepoint.is_complete().await.unwrap());
    assert!(savepoint.read(STATE).await.is_err());
}

#[tokio::test]
async fn s3_large_files_go_up_in_parts_and_come_back_whole() {
    let (s3, options) = start();
    let storage = CheckpointStorage::new(&s3.url("prefix"), JOB, &options).unwrap();
    let local = tempfile::tempdir().unwrap();
    let large: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(local.path().join("sst"), &large).unwrap();
    std::fs::write(local.path().join("manifest"), b"manifest").unwrap();

    let stored = storage.put_shared_local("uid-000009.sst", &local.path().join("sst")).await;
    assert_eq!(stored.unwrap(), large.len() as u64);
    let dir = storage.checkpoint_dir(3);
    dir.put_local("op-0.native/MANIFEST-000005", &local.path().join("manifest")).await.unwrap();

    let back = local.path().join("sst-back");
    dir.get_shared_local("uid-000009.sst", &back).await.unwrap();
    assert!(std::fs::read(&back).unwrap() == large, "the multipart upload reads back whole");
    let manifest = local.path().join("manifest-back");
    dir.link_local("op-0.native/MANIFEST-000005", &manifest).await.unwrap();
    assert_eq!(std::fs::read(manifest).unwrap(), b"manifest");
}
