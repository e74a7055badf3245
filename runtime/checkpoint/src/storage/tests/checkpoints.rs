//! A job's checkpoints: completeness, retention, savepoints and the restore rule.

use std::collections::HashSet;

use bytes::Bytes;

use super::*;
use crate::Error;
use crate::storage::{RetainReport, resolve_restore, savepoint_dir};

#[tokio::test]
async fn incomplete_checkpoints_are_invisible() {
    let (_tmp, root) = root();
    let storage = storage(&root);
    assert_eq!(storage.complete_checkpoints().await.unwrap(), Vec::<u64>::new());
    assert!(storage.latest_complete().await.unwrap().is_none());

    for (id, complete) in [(9, true), (10, true), (11, false)] {
        checkpoint(&storage, id, &[], complete).await;
    }
    assert_eq!(storage.complete_checkpoints().await.unwrap(), [9, 10]);
    let (dir, metadata) = storage.latest_complete().await.unwrap().unwrap();
    assert_eq!(dir.url(), storage.checkpoint_dir(10).url());
    assert_eq!(metadata.checkpoint_id, 10);
}

#[tokio::test]
async fn retain_deletes_old_and_abandoned_checkpoints_and_the_shared_files_they_alone_used() {
    let (tmp, root) = root();
    let storage = storage(&root);
    for file in ["a", "b", "c/d", "in-progress", "unknown"] {
        storage.put_shared(file, Bytes::from_static(b"sst").into()).await.unwrap();
    }
    checkpoint(&storage, 1, &["a", "in-progress"], true).await;
    checkpoint(&storage, 2, &["a", "b"], true).await;
    checkpoint(&storage, 3, &[], false).await;
    checkpoint(&storage, 4, &["b"], true).await;
    checkpoint(&storage, 5, &["c/d"], true).await;
    checkpoint(&storage, 6, &[], false).await;

    let protected = HashSet::from(["in-progress".to_owned()]);
    let report = storage.retain(2, &protected).await.unwrap();

    assert_eq!(report, RetainReport { checkpoints: 2, incomplete: 1, shared_files: 1 });
    let job = tmp.path().join(JOB);
    assert_eq!(names(&job), ["chk-4", "chk-5", "chk-6", "shared"]);
    // "unknown" may be a file a worker wrote for a checkpoint in progress: no complete
    // checkpoint ever named it, so it stays.
    assert_eq!(names(&job.join("shared")), ["b", "c", "in-progress", "unknown"]);
    assert_eq!(storage.complete_checkpoints().await.unwrap(), [4, 5]);
    assert_eq!(storage.retain(2, &protected).await.unwrap(), RetainReport::default());
}

#[tokio::test]
async fn retain_without_checkpoints_keeps_protected_shared_files() {
    let (_tmp, root) = root();
    let storage = storage(&root);
    assert_eq!(storage.retain(1, &HashSet::new()).await.unwrap(), RetainReport::default());

    storage.put_shared("uploading", Bytes::from_static(b"sst").into()).await.unwrap();
    checkpoint(&storage, 1, &[], false).await;
    let protected = HashSet::from(["uploading".to_owned()]);
    assert_eq!(storage.retain(1, &protected).await.unwrap(), RetainReport::default());
    assert_eq!(storage.read_shared("uploading").await.unwrap(), "sst");
}

#[tokio::test]
async fn savepoint_dirs_are_unique_and_untouched_by_retain() {
    let (_tmp, root) = root();
    let options = StorageOptions::default();
    let first = savepoint_dir(&root, JOB, 3, &options).unwrap();
    let second = savepoint_dir(&root, JOB, 3, &options).unwrap();
    assert_ne!(first.url(), second.url());
    let name = first.url().rsplit('/').next().unwrap();
    let suffix = name.strip_prefix("savepoint-word-count-3-").unwrap();
    assert!(suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_hexdigit()), "{name}");

    first.put(STATE, Bytes::from_static(b"state")).await.unwrap();
    first.write_metadata(&metadata(3, &[])).await.unwrap();
    let storage = storage(&root);
    checkpoint(&storage, 4, &[], true).await;
    checkpoint(&storage, 5, &[], true).await;
    storage.retain(1, &HashSet::new()).await.unwrap();
    assert!(first.is_complete().await.unwrap());
}

#[tokio::test]
async fn resolve_restore_prefers_the_snapshot_then_the_job_then_the_prefix() {
    let (_tmp, root) = root();
    let options = &StorageOptions::default();
    let resolve = |url: String| async move { resolve_restore(&url, JOB, options).await };
    assert!(resolve(root.clone()).await.unwrap().is_none());

    let direct = CheckpointStorage::new(&root, "other-job", options).unwrap();
    checkpoint(&direct, 1, &[], true).await;
    let under_prefix = format!("{root}/other-job");
    assert_eq!(
        resolve(under_prefix.clone()).await.unwrap().unwrap().url(),
        direct.checkpoint_dir(1).url()
    );

    let storage = storage(&root);
    checkpoint(&storage, 4, &[], true).await;
    checkpoint(&storage, 5, &[], false).await;
    let latest = storage.checkpoint_dir(4);
    assert_eq!(resolve(root.clone()).await.unwrap().unwrap().url(), latest.url());
    assert_eq!(resolve(latest.url().to_owned()).await.unwrap().unwrap().url(), latest.url());
    let metadata_url = format!("{}/_metadata", latest.url());
    assert_eq!(resolve(metadata_url).await.unwrap().unwrap().url(), latest.url());

    let incomplete = format!("{}/_metadata", storage.checkpoint_dir(5).url());
    let error = resolve(incomplete).await.unwrap_err();
    assert!(matches!(error, Error::NotComplete { .. }), "{error}");
}
