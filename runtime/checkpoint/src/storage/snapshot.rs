//! One checkpoint or savepoint directory: its state files and its `_metadata`, written last.

use std::ops::Range;
use std::path::Path;

use bytes::Bytes;
use serde::Deserialize;

use super::location::Location;
use super::{SHARED_DIR, StorageOptions};
use crate::{CheckpointMetadata, Error, FORMAT_VERSION, Result};

/// Name of the file whose presence makes a directory a complete snapshot.
pub(crate) const METADATA_FILE: &str = "_metadata";

/// A checkpoint or savepoint directory.
#[derive(Clone, Debug)]
pub struct SnapshotDir {
    location: Location,
}

impl SnapshotDir {
    /// The directory a user named: `file:///abs/dir`, a filesystem path (relative to the
    /// current directory), `s3://bucket/prefix`, or any of these ending in `/_metadata`.
    /// A local directory is created if missing.
    pub fn open(url: &str, options: &StorageOptions) -> Result<Self> {
        let (dir, _) = split_metadata(url);
        Ok(Self::new(Location::parse(dir, options)?))
    }

    pub(crate) fn new(location: Location) -> Self {
        Self { location }
    }

    /// The directory's URL.
    pub fn url(&self) -> &str {
        self.location.url()
    }

    /// Writes `file` (a relative path) into the directory, replacing it; returns its size.
    pub async fn put(&self, file: &str, bytes: Bytes) -> Result<u64> {
        self.location.put(file, bytes.into()).await
    }

    /// Writes `file` (a relative path) from the local file `source`, which is never changed in
    /// place: a hard link on the local filesystem, else streaming large files; returns its
    /// size.
    pub async fn put_local(&self, file: &str, source: &Path) -> Result<u64> {
        self.location.put_local(file, source).await
    }

    /// Copies `file` (a relative path) of the directory `source` into this one, inside the
    /// store when both are in the same one.
    pub async fn copy_from(&self, source: &SnapshotDir, file: &str) -> Result<()> {
        self.location.copy_from(&source.location, file).await
    }

    /// Copies `file` into the local file `target`, or hard-links it there when the directory
    /// is on the local filesystem: only for files never changed in place (those of native
    /// checkpoints) and targets that are only read; returns its size.
    pub async fn link_local(&self, file: &str, target: &Path) -> Result<u64> {
        self.location.link_local(file, target).await
    }

    /// Copies `name` from the `shared/` folder beside this checkpoint (the job's folder of
    /// files shared between its checkpoints) into the local file `target`, or hard-links it
    /// there when checkpoints are on the local filesystem (shared files are immutable);
    /// returns its size.
    pub async fn get_shared_local(&self, name: &str, target: &Path) -> Result<u64> {
        self.location.parent().child(SHARED_DIR).link_local(name, target).await
    }

    /// The given byte ranges of `name` in the `shared/` folder beside this checkpoint,
    /// fetched together.
    pub async fn read_shared_ranges(
        &self,
        name: &str,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>> {
        self.location.parent().child(SHARED_DIR).read_ranges(name, ranges).await
    }

    /// The content of `file`.
    pub async fn read(&self, file: &str) -> Result<Bytes> {
        self.location.read(file).await
    }

    /// The given byte ranges of `file`, fetched together.
    pub async fn read_ranges(&self, file: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.location.read_ranges(file, ranges).await
    }

    /// Writes `_metadata` (pretty JSON). Callers write it last, after every state file, since
    /// its presence is what makes the directory a complete snapshot.
    pub async fn write_metadata(&self, metadata: &CheckpointMetadata) -> Result<()> {
        let json = serde_json::to_vec_pretty(metadata).map_err(|source| Error::Metadata {
            url: self.location.url_of(METADATA_FILE),
            source,
        })?;
        self.location.put(METADATA_FILE, json.into()).await?;
        tracing::info!(url = self.url(), id = metadata.checkpoint_id, "snapshot complete");
        Ok(())
    }

    /// Reads `_metadata`; fails with [`Error::NotComplete`] when there is none and with
    /// [`Error::UnsupportedFormat`] when a newer Weir wrote it.
    pub async fn read_metadata(&self) -> Result<CheckpointMetadata> {
        let url = || self.location.url_of(METADATA_FILE);
        let json = match self.location.read(METADATA_FILE).await {
            Err(Error::Store { source: object_store::Error::NotFound { .. }, .. }) => {
                return Err(Error::NotComplete { url: self.url().to_owned() });
            }
            result => result?,
        };
        let malformed = |source| Error::Metadata { url: url(), source };
        /// The one field every format version has.
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let Version { format_version } = serde_json::from_slice(&json).map_err(malformed)?;
        if format_version > FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                url: url(),
                found: format_version,
                supported: FORMAT_VERSION,
            });
        }
        serde_json::from_slice(&json).map_err(malformed)
    }

    /// Whether `_metadata` exists.
    pub async fn is_complete(&self) -> Result<bool> {
        self.location.exists(METADATA_FILE).await
    }

    /// Deletes the directory: `_metadata` first, so that a directory whose deletion is
    /// interrupted is never taken for a complete snapshot, then everything else.
    pub async fn delete(&self) -> Result<()> {
        self.location.delete_file(METADATA_FILE).await?;
        let files = self.location.files().await?;
        let deleted = self.location.delete_files(&files).await?;
        tracing::info!(url = self.url(), files = deleted, "deleted snapshot");
        Ok(())
    }
}

/// `url` without a trailing `_metadata` file name, and whether it had one.
pub(crate) fn split_metadata(url: &str) -> (&str, bool) {
    let url = url.trim_end_matches('/');
    match url.strip_suffix(METADATA_FILE) {
        Some("") => (".", true),
        Some(dir) if dir.ends_with('/') => (dir, true),
        _ => (url, false),
    }
}
