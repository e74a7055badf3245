//! Native incremental checkpoints: a RocksDB checkpoint (hard links to the immutable SST files
//! plus small per-checkpoint files) and the restore from one, clipping key groups on rescale.
//!
//! A caller uploads each SST file once to a shared folder and references it by name in later
//! checkpoints (names are unique within one instance and its restored successors, not across
//! subtasks: qualify them per subtask when sharing a folder), and uploads the private files
//! (MANIFEST, CURRENT, OPTIONS) every time.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use rocksdb::checkpoint::Checkpoint;
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch};
use weir_types::KeyGroupRange;

use super::RocksDbBackend;
use super::instance::{
    Db, Instance, column_family_name, db_error, file_error, scan, stored_states,
};
use crate::{KeyedSnapshot, Result};

/// Batches of copied entries are written when they reach this size.
const COPY_BATCH_BYTES: usize = 4 << 20;

/// A native checkpoint of one subtask's RocksDB instance, in a local directory.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeCheckpoint {
    /// Every file of the checkpoint directory, by name.
    pub files: Vec<NativeFile>,
    /// The column family of each state, by state name.
    pub column_families: BTreeMap<String, String>,
    /// The key groups the instance holds; pass it back to
    /// [`crate::KeyedState::restore_native`].
    pub key_group_range: KeyGroupRange,
    /// State restored from a canonical snapshot but not registered yet: it is held in memory,
    /// not in RocksDB, so store it with the checkpoint and give it back through
    /// [`crate::KeyedState::restore`] after restoring the native checkpoint. Usually empty.
    pub unregistered: KeyedSnapshot,
}

impl NativeCheckpoint {
    /// The immutable SST files, to upload once and share between checkpoints.
    pub fn shared_files(&self) -> impl Iterator<Item = &NativeFile> {
        self.files.iter().filter(|file| file.kind == NativeFileKind::Shared)
    }
}

/// One file of a native checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFile {
    /// File name inside the checkpoint directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether it can be shared with other checkpoints.
    pub kind: NativeFileKind,
}

/// How a native checkpoint file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeFileKind {
    /// An immutable SST file: the same name always holds the same bytes, so it is uploaded
    /// once and referenced by later checkpoints.
    Shared,
    /// A small file of this checkpoint only (MANIFEST, CURRENT, OPTIONS), uploaded each time.
    Private,
}

impl RocksDbBackend {
    /// Flushes the memtables and writes a checkpoint of the instance into `dir`, which must
    /// not exist (its parent is created).
    pub(crate) fn checkpoint(&self, dir: &Path) -> Result<NativeCheckpoint> {
        let instance = self.instance()?;
        instance.flush()?;
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(file_error(parent, "create"))?;
        }
        Checkpoint::new(instance.db())
            .and_then(|checkpoint| checkpoint.create_checkpoint(dir))
            .map_err(db_error(dir, "create a checkpoint in"))?;
        let files = list_files(dir)?;
        tracing::info!(
            path = %dir.display(),
            files = files.len(),
            bytes = files.iter().map(|file| file.size).sum::<u64>(),
            "created native RocksDB checkpoint"
        );
        let column_families = instance
            .states()
            .into_iter()
            .map(|state| {
                let family = column_family_name(&state);
                (state, family)
            })
            .collect();
        Ok(NativeCheckpoint {
            files,
            column_families,
            key_group_range: self.range,
            unregistered: KeyedSnapshot::new(),
        })
    }

    /// Restores the native checkpoint in `dir`, taken of an instance that held `source`.
    /// While no instance is open and `source` lies inside this backend's range, the checkpoint
    /// becomes the instance (files linked into a new working directory); otherwise it is
    /// opened read-only in place and the key groups of this range are copied in.
    pub(crate) fn restore(&mut self, dir: &Path, source: KeyGroupRange) -> Result<()> {
        let range = self.range;
        if self.instance.get().is_none()
            && range.contains(source.start())
            && range.contains(source.end())
        {
            let instance = Instance::open(&self.settings, range, Some(dir))?;
            tracing::info!(
                from = %dir.display(),
                ?source,
                ?range,
                "restored RocksDB instance from a native checkpoint"
            );
            self.instance.get_or_init(|| Arc::new(instance));
            return Ok(());
        }
        let first = range.start().max(source.start());
        let last = range.end().min(source.end());
        if first > last {
            tracing::debug!(
                from = %dir.display(),
                ?source,
                ?range,
                "native checkpoint holds no key group of this range"
            );
            return Ok(());
        }
        let options = Options::default();
        let states = stored_states(&options, dir)?;
        let families = states.iter().map(|state| {
            ColumnFamilyDescriptor::new(column_family_name(state), Options::default())
        });
        let checkpoint = Db::open_cf_descriptors_read_only(&options, dir, families, false)
            .map_err(db_error(dir, "open read-only"))?;
        let instance = self.instance()?;
        let mut copied = 0;
        for state in &states {
            copied += copy_groups(&checkpoint, instance, state, first..=last)?;
        }
        tracing::info!(
            from = %dir.display(),
            ?source,
            ?range,
            copied,
            "copied key groups from a native checkpoint"
        );
        Ok(())
    }
}

/// Copies the entries of `state` in `groups` from `checkpoint` into `instance`, in batches;
/// returns how many.
fn copy_groups(
    checkpoint: &Db,
    instance: &Instance,
    state: &str,
    groups: std::ops::RangeInclusive<weir_types::KeyGroup>,
) -> Result<usize> {
    instance.ensure_state(state)?;
    let family = column_family_name(state);
    let source = checkpoint.cf_handle(&family).expect("opened with every column family it lists");
    let target = instance.column_family(&family);
    let mut batch = WriteBatch::default();
    let copied = scan(checkpoint, &source, groups, |key, value| {
        batch.put_cf(&target, key, value);
        if batch.size_in_bytes() >= COPY_BATCH_BYTES {
            instance.db().write_opt(std::mem::take(&mut batch), instance.write_options())?;
        }
        Ok(())
    })
    .map_err(db_error(checkpoint.path(), "copy key groups from"))?;
    instance.write(state, batch)?;
    Ok(copied)
}

/// The files of a checkpoint directory, by name.
fn list_files(dir: &Path) -> Result<Vec<NativeFile>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(file_error(dir, "list"))? {
        let entry = entry.map_err(file_error(dir, "list"))?;
        let size = entry.metadata().map_err(file_error(&entry.path(), "read metadata of"))?.len();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind =
            if name.ends_with(".sst") { NativeFileKind::Shared } else { NativeFileKind::Private };
        files.push(NativeFile { name, size, kind });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}
