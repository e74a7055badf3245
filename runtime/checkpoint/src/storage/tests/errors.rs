//! Clear errors for missing or newer metadata, bad URLs and names, and unconfigured S3.

use bytes::Bytes;

use super::*;
use crate::Error;
use crate::storage::{SnapshotDir, resolve_restore, savepoint_dir};

#[tokio::test]
async fn missing_metadata_is_not_a_complete_snapshot() {
    let (_tmp, root) = root();
    let dir = storage(&root).checkpoint_dir(2);
    dir.put(STATE, Bytes::from_static(b"state")).await.unwrap();
    let message = dir.read_metadata().await.unwrap_err().to_string();
    assert!(message.contains("not a complete checkpoint or savepoint"), "{message}");
    assert!(message.contains(dir.url()), "{message}");
}

#[tokio::test]
async fn newer_metadata_format_is_refused() {
    let (_tmp, root) = root();
    let dir = storage(&root).checkpoint_dir(2);
    let future = serde_json::json!({ "format_version": FORMAT_VERSION + 1, "layout": "new" });
    dir.put("_metadata", future.to_string().into()).await.unwrap();
    let message = dir.read_metadata().await.unwrap_err().to_string();
    assert!(message.contains(&format!("{}/_metadata", dir.url())), "{message}");
    assert!(message.contains(&format!("version {}", FORMAT_VERSION + 1)), "{message}");
}

#[tokio::test]
async fn bad_urls_names_and_files_are_refused() {
    let options = StorageOptions::default();
    for url in ["http://example.com/x", "file://host/relative", "s3:///prefix", "not a url://x"] {
        let error = SnapshotDir::open(url, &options).unwrap_err();
        assert!(matches!(error, Error::InvalidUrl { .. }), "{url}: {error}");
        assert!(error.to_string().contains(url), "{error}");
    }
    let (_tmp, root) = root();
    for job in ["", "a/b", "..", ".hidden", "with space", "ünïcode"] {
        let error = CheckpointStorage::new(&root, job, &options).unwrap_err();
        assert!(matches!(error, Error::InvalidName { .. }), "{job:?}: {error}");
        assert!(resolve_restore(&root, job, &options).await.is_err(), "{job:?}");
        assert!(savepoint_dir(&root, job, 1, &options).is_err(), "{job:?}");
    }
    let dir = storage(&root).checkpoint_dir(1);
    for file in ["", "../escape", "a//b"] {
        let error = dir.put(file, Bytes::new()).await.unwrap_err();
        assert!(matches!(error, Error::InvalidPath { .. }), "{file:?}: {error}");
    }
}

#[test]
fn s3_without_endpoint_or_credentials_is_refused() {
    let url = "s3://bucket/checkpoints";
    let message = SnapshotDir::open(url, &StorageOptions::default()).unwrap_err().to_string();
    for needed in [url, "AWS_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(message.contains(needed), "{message}");
    }
    let key_only = StorageOptions { access_key_id: Some("key".into()), ..Default::default() };
    let error = SnapshotDir::open(url, &key_only).unwrap_err();
    assert!(matches!(error, Error::S3NotConfigured { .. }), "{error}");

    let endpoint = StorageOptions {
        endpoint: Some("http://127.0.0.1:1".into()),
        allow_http: true,
        ..Default::default()
    };
    assert_eq!(SnapshotDir::open(url, &endpoint).unwrap().url(), url);
    let credentials = StorageOptions {
        access_key_id: Some("key".into()),
        secret_access_key: Some("secret".into()),
        ..Default::default()
    };
    let dir = SnapshotDir::open("s3://bucket/a/b/_metadata", &credentials).unwrap();
    assert_eq!(dir.url(), "s3://bucket/a/b");
    assert!(!format!("{dir:?}").contains("secret"), "{dir:?}");
}
