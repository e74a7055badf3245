//! Snapshot directories: layout, files, `_metadata`, deletion and opening by URL.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::Error;
use crate::storage::location::Location;
use crate::storage::{SnapshotDir, savepoint_dir};

#[tokio::test]
async fn layout_puts_checkpoints_and_shared_files_under_the_job() {
    let (tmp, root) = root();
    let storage = storage(&root);
    let dir = storage.checkpoint_dir(3);
    assert_eq!(dir.put(STATE, Bytes::from_static(b"abc")).await.unwrap(), 3);
    assert_eq!(
        storage.put_shared("sst/000012.sst", Bytes::from_static(b"sst").into()).await.unwrap(),
        3
    );

    let job = tmp.path().canonicalize().unwrap().join(JOB);
    assert_eq!(std::fs::read(job.join("chk-3").join(STATE)).unwrap(), b"abc");
    assert_eq!(std::fs::read(job.join("shared/sst/000012.sst")).unwrap(), b"sst");
    assert_eq!(dir.url(), format!("file://{}/chk-3", job.display()));
    assert_eq!(storage.read_shared("sst/000012.sst").await.unwrap(), "sst");
    assert_eq!(dir.read(STATE).await.unwrap(), "abc");
}

#[tokio::test]
async fn files_copy_between_checkpoints_and_into_savepoints() {
    let (_tmp, root) = root();
    let storage = storage(&root);
    let (from, to) = (storage.checkpoint_dir(3), storage.checkpoint_dir(4));
    from.put(STATE, Bytes::from_static(b"final")).await.unwrap();
    to.copy_from(&from, STATE).await.unwrap();
    assert_eq!(to.read(STATE).await.unwrap(), "final");
    let savepoint = savepoint_dir(&root, JOB, 5, &StorageOptions::default()).unwrap();
    savepoint.copy_from(&from, STATE).await.unwrap(); // another store: read and written
    assert_eq!(savepoint.read(STATE).await.unwrap(), "final");
    assert!(to.copy_from(&from, "missing").await.is_err());
}

#[tokio::test]
async fn a_checkpoint_opened_by_its_path_finds_the_shared_folder_beside_it() {
    let (tmp, root) = root();
    let storage = storage(&root);
    storage.put_shared("a.sst", Bytes::from_static(b"sst").into()).await.unwrap();
    let url = storage.checkpoint_dir(4).url().to_owned();
    let opened = SnapshotDir::open(&url, &StorageOptions::default()).unwrap();
    let target = tmp.path().join("a.sst");
    assert_eq!(opened.get_shared_local("a.sst", &target).await.unwrap(), 3);
}

/// A local folder holding a file `small` (8 bytes) and a file `large` (20 MiB); the bytes of
/// `large`.
fn local_files(tmp: &tempfile::TempDir) -> (std::path::PathBuf, Vec<u8>) {
    let large: Vec<u8> = (0..20 << 20).map(|i: u32| (i % 251) as u8).collect();
    let local = tmp.path().join("local");
    std::fs::create_dir(&local).unwrap();
    std::fs::write(local.join("small"), b"manifest").unwrap();
    std::fs::write(local.join("large"), &large).unwrap();
    (local, large)
}

fn inode(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

#[tokio::test]
async fn local_files_are_linked_into_and_out_of_local_storage() {
    let (tmp, root) = root();
    let (local, large) = local_files(&tmp);
    let storage = storage(&root);
    let dir = storage.checkpoint_dir(4);

    assert_eq!(dir.put_local("native/MANIFEST", &local.join("small")).await.unwrap(), 8);
    let stored = storage.put_shared_local("ab-000007.sst", &local.join("large")).await.unwrap();
    assert_eq!(stored, large.len() as u64);
    let job = tmp.path().canonicalize().unwrap().join(JOB);
    let stored = job.join("shared/ab-000007.sst");
    assert_eq!(inode(&local.join("large")), inode(&stored), "stored as a hard link");
    // Written again (a retried upload): replaced, not refused.
    assert_eq!(dir.put_local("native/MANIFEST", &local.join("small")).await.unwrap(), 8);

    dir.link_local("native/MANIFEST", &local.join("small-back")).await.unwrap();
    assert_eq!(std::fs::read(local.join("small-back")).unwrap(), b"manifest");
    dir.get_shared_local("ab-000007.sst", &local.join("large-back")).await.unwrap();
    assert!(std::fs::read(local.join("large-back")).unwrap() == large, "bytes differ");
    assert_eq!(inode(&local.join("large-back")), inode(&stored), "fetched as a hard link");

    let missing = dir.put_local("x", &local.join("missing")).await.unwrap_err();
    assert!(matches!(missing, Error::LocalFile { operation: "read", .. }), "{missing}");
}

#[tokio::test]
async fn local_files_go_up_and_come_back_whole_small_or_in_parts_in_other_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let (local, large) = local_files(&tmp);
    let store = Arc::new(object_store::memory::InMemory::new());
    let dir = SnapshotDir::new(Location::with_store(store, "memory://t"));

    assert_eq!(dir.put_local("native/MANIFEST", &local.join("small")).await.unwrap(), 8);
    assert_eq!(dir.put_local("native/1.sst", &local.join("large")).await.unwrap(), 20 << 20);
    dir.link_local("native/MANIFEST", &local.join("small-back")).await.unwrap();
    assert_eq!(std::fs::read(local.join("small-back")).unwrap(), b"manifest");
    dir.link_local("native/1.sst", &local.join("large-back")).await.unwrap();
    assert!(std::fs::read(local.join("large-back")).unwrap() == large, "bytes differ");
    assert_ne!(inode(&local.join("large-back")), inode(&local.join("large")), "copied");
}

#[tokio::test]
async fn metadata_is_pretty_json_and_completes_the_directory() {
    let (_tmp, root) = root();
    let dir = storage(&root).checkpoint_dir(1);
    dir.put(STATE, Bytes::from_static(b"state")).await.unwrap();
    assert!(!dir.is_complete().await.unwrap());

    dir.write_metadata(&metadata(1, &["a.sst"])).await.unwrap();
    assert!(dir.is_complete().await.unwrap());
    assert_eq!(dir.read_metadata().await.unwrap(), metadata(1, &["a.sst"]));
    let json = dir.read("_metadata").await.unwrap();
    assert!(json.starts_with(b"{\n  \"format_version\": 1,"), "{json:?}");
}

#[tokio::test]
async fn read_ranges_returns_each_range() {
    let (_tmp, root) = root();
    let dir = storage(&root).checkpoint_dir(1);
    dir.put(STATE, Bytes::from_static(b"0123456789")).await.unwrap();
    let ranges = dir.read_ranges(STATE, &[2..5, 0..1, 7..10]).await.unwrap();
    assert_eq!(ranges, ["234", "0", "789"]);
}

#[tokio::test]
async fn delete_removes_the_whole_directory() {
    let (tmp, root) = root();
    let storage = storage(&root);
    checkpoint(&storage, 1, &[], true).await;
    checkpoint(&storage, 2, &[], true).await;
    storage.checkpoint_dir(1).delete().await.unwrap();
    assert_eq!(names(&tmp.path().join(JOB)), ["chk-2"]);
}

/// A local store whose deletes fail for every file but `_metadata`.
#[derive(Debug)]
struct MetadataOnlyDeletes(object_store::local::LocalFileSystem);

impl std::fmt::Display for MetadataOnlyDeletes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MetadataOnlyDeletes({})", self.0)
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for MetadataOnlyDeletes {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.0.get_opts(location, options).await
    }

    async fn delete(&self, location: &object_store::path::Path) -> object_store::Result<()> {
        match location.filename() {
            Some("_metadata") => self.0.delete(location).await,
            _ => Err(object_store::Error::NotImplemented),
        }
    }

    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.0.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
    ) -> object_store::Result<()> {
        self.0.copy(from, to).await
    }

    async fn copy_if_not_exists(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
    ) -> object_store::Result<()> {
        self.0.copy_if_not_exists(from, to).await
    }
}

#[tokio::test]
async fn an_interrupted_delete_leaves_an_incomplete_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let local = object_store::local::LocalFileSystem::new_with_prefix(tmp.path()).unwrap();
    let dir = SnapshotDir::new(Location::with_store(Arc::new(MetadataOnlyDeletes(local)), "t"));
    dir.put(STATE, Bytes::from_static(b"state")).await.unwrap();
    dir.write_metadata(&metadata(1, &[])).await.unwrap();

    let error = dir.delete().await.unwrap_err();
    assert!(matches!(error, Error::Store { .. }), "{error}");
    assert!(!dir.is_complete().await.unwrap());
    assert_eq!(dir.read(STATE).await.unwrap(), "state");
}

#[tokio::test]
async fn open_accepts_paths_file_urls_and_metadata_urls() {
    let (tmp, root) = root();
    let savepoint = savepoint_dir(&root, JOB, 7, &StorageOptions::default()).unwrap();
    savepoint.put(STATE, Bytes::from_static(b"state")).await.unwrap();
    savepoint.write_metadata(&metadata(7, &[])).await.unwrap();
    let url = savepoint.url().to_owned();
    let path = url.strip_prefix("file://").unwrap().to_owned();

    let here = tempfile::tempdir_in(".").unwrap();
    let relative = here.path().file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::create_dir(here.path().join("sp")).unwrap();
    std::fs::copy(format!("{path}/_metadata"), here.path().join("sp/_metadata")).unwrap();

    let options = StorageOptions::default();
    for given in
        [url.clone(), path.clone(), format!("{url}/_metadata"), format!("{path}/_metadata/")]
    {
        let dir = SnapshotDir::open(&given, &options).unwrap();
        assert_eq!(dir.url(), url, "opened {given}");
        assert_eq!(dir.read_metadata().await.unwrap().checkpoint_id, 7);
    }
    let dir = SnapshotDir::open(&format!("{relative}/sp"), &options).unwrap();
    assert!(dir.url().ends_with(&format!("/{relative}/sp")), "{}", dir.url());
    assert!(dir.is_complete().await.unwrap());
    assert!(names(tmp.path())[0].starts_with("savepoint-word-count-7-"));
}
