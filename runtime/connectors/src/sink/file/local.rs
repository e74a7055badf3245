//! Part files on the local file system: hidden in-progress and pending files renamed into
//! place on commit.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The directory a local file sink writes its buckets into.
#[derive(Debug)]
pub(super) struct LocalDir {
    root: PathBuf,
}

/// An open in-progress part file.
#[derive(Debug)]
pub(super) struct LocalPart {
    path: PathBuf,
    writer: BufWriter<File>,
}

/// Where a part file is in its life.
#[derive(Clone, Copy)]
enum Stage {
    /// Being written.
    InProgress,
    /// Closed and durable, waiting for its checkpoint to complete.
    Pending,
    /// Committed: visible.
    Committed,
}

const IN_PROGRESS_SUFFIX: &str = ".inprogress";
const PENDING_SUFFIX: &str = ".pending";

impl LocalDir {
    /// The directory `root`, created if missing.
    pub(super) fn open(root: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&root)
            .map_err(|source| Error::Create { path: root.clone(), source })?;
        Ok(LocalDir { root })
    }

    fn path(&self, bucket: &str, name: &str, stage: Stage) -> PathBuf {
        let dir = self.root.join(bucket);
        match stage {
            Stage::InProgress => dir.join(format!(".{name}{IN_PROGRESS_SUFFIX}")),
            Stage::Pending => dir.join(format!(".{name}{PENDING_SUFFIX}")),
            Stage::Committed => dir.join(name),
        }
    }

    /// Creates the in-progress file of part `name` of `bucket`.
    pub(super) fn create(&self, bucket: &str, name: &str) -> Result<LocalPart> {
        let path = self.path(bucket, name, Stage::InProgress);
        let dir = path.parent().expect("a part file is in a directory");
        std::fs::create_dir_all(dir)
            .map_err(|source| Error::Create { path: dir.into(), source })?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| Error::Create { path: path.clone(), source })?;
        Ok(LocalPart { path, writer: BufWriter::new(file) })
    }

    /// Closes `part`: flushes it to disk and renames it to its pending name.
    pub(super) fn close(&self, bucket: &str, name: &str, part: LocalPart) -> Result<()> {
        let LocalPart { path, writer } = part;
        let file = writer
            .into_inner()
            .map_err(|error| Error::WriteFile { path: path.clone(), source: error.into_error() })?;
        file.sync_all().map_err(|source| Error::Sync { path: path.clone(), source })?;
        rename(path, self.path(bucket, name, Stage::Pending))?;
        sync_dir(&self.root.join(bucket))
    }

    /// Makes pending part `name` of `bucket` visible; a part already committed is fine.
    pub(super) fn commit(&self, bucket: &str, name: &str) -> Result<()> {
        let pending = self.path(bucket, name, Stage::Pending);
        let committed = self.path(bucket, name, Stage::Committed);
        match std::fs::rename(&pending, &committed) {
            Ok(()) => sync_dir(&self.root.join(bucket)),
            // Committed before the job was restored.
            Err(error)
                if error.kind() == io::ErrorKind::NotFound
                    && matches!(committed.try_exists(), Ok(true)) =>
            {
                tracing::debug!(file = %committed.display(), "part file already committed");
                Ok(())
            }
            Err(source) => Err(Error::Rename { from: pending, to: committed, source }),
        }
    }

    /// Deletes every hidden in-progress or pending file, in any bucket, of the parts
    /// `{prefix}-{n}` with `n >= first`: what a transaction that began at part `first` and
    /// every later one of the same run left.
    pub(super) fn discard_from(&self, prefix: &str, first: u64) -> Result<()> {
        let hidden = format!(".{prefix}-");
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|source| Error::ListDirectory { path: dir.clone(), source })?;
            for entry in entries {
                let entry =
                    entry.map_err(|source| Error::ListDirectory { path: dir.clone(), source })?;
                let path = entry.path();
                if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    dirs.push(path);
                    continue;
                }
                let name = entry.file_name();
                let Some(rest) = name.to_str().and_then(|name| name.strip_prefix(&hidden)) else {
                    continue;
                };
                let number = rest
                    .strip_suffix(IN_PROGRESS_SUFFIX)
                    .or_else(|| rest.strip_suffix(PENDING_SUFFIX))
                    .and_then(|number| number.parse::<u64>().ok());
                if number.is_some_and(|number| number >= first) {
                    tracing::debug!(file = %path.display(), "deleting a part of an aborted transaction");
                    delete(path)?;
                }
            }
        }
        Ok(())
    }
}

impl LocalPart {
    /// Appends `bytes`.
    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .write_all(bytes)
            .map_err(|source| Error::WriteFile { path: self.path.clone(), source })
    }
}

fn rename(from: PathBuf, to: PathBuf) -> Result<()> {
    std::fs::rename(&from, &to).map_err(|source| Error::Rename { from, to, source })
}

/// Makes the renames in `dir` durable. Directories cannot be synced on Windows; there it
/// does nothing.
fn sync_dir(dir: &Path) -> Result<()> {
    if cfg!(unix) {
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| Error::Sync { path: dir.into(), source })?;
    }
    Ok(())
}

/// Deletes `path`; a missing file is fine.
fn delete(path: PathBuf) -> Result<()> {
    match std::fs::remove_file(&path) {
        Err(source) if source.kind() != io::ErrorKind::NotFound => {
            Err(Error::Delete { path, source })
        }
        _ => Ok(()),
    }
}
