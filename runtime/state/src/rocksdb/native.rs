//! Native incremental checkpoints: a RocksDB checkpoint (hard links to the immutable SST files
//! plus small per-checkpoint files) and the restore from one, clipping key groups on rescale.
//!
//! Each SST file gets a shared id unique across instances (see [`crate::NativeFile`]): a
//! caller stores it once under that id and references it from later checkpoints, and stores
//! the private files (MANIFEST, CURRENT, OPTIONS) every time.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use rocksdb::checkpoint::Checkpoint;
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch};

use super::RocksDbBackend;
use super::instance::{
    Db, Instance, column_family_name, db_error, file_error, scan, stored_states,
};
use crate::{LocalDir, NativeCheckpoint, NativeFile, NativeRestore, Result};

/// Whether a native snapshot's immutable files are shared with later ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileSharing {
    /// An incremental checkpoint: each SST file gets its shared id, stored once and
    /// referenced by every checkpoint that has it.
    Shared,
    /// A native savepoint: every file is its own, so that the savepoint stays whole when the
    /// job's checkpoints are deleted.
    Owned,
}

/// Batches of copied entries are written when they reach this size.
const COPY_BATCH_BYTES: usize = 4 << 20;

impl RocksDbBackend {
    /// Flushes the memtables and writes a checkpoint of the instance into a new directory
    /// beside its working directory, named after it and `checkpoint`; its SST files carry
    /// shared ids as `sharing` says.
    pub(crate) fn checkpoint(
        &self,
        checkpoint: u64,
        sharing: FileSharing,
    ) -> Result<NativeCheckpoint> {
        let instance = self.instance()?;
        instance.flush()?;
        let mut name = instance.path().file_name().unwrap_or_default().to_os_string();
        name.push(format!(".chk-{checkpoint}"));
        let dir = instance.path().with_file_name(name);
        if dir.exists() {
            // Left by an attempt whose checkpoint was declined: RocksDB wants a new directory.
            fs::remove_dir_all(&dir).map_err(file_error(&dir, "remove"))?;
        }
        Checkpoint::new(instance.db())
            .and_then(|checkpoint| checkpoint.create_checkpoint(&dir))
            .map_err(db_error(&dir, "create a checkpoint in"))?;
        let dir = LocalDir::adopt(dir);
        let files = list_files(dir.path(), instance, sharing)?;
        tracing::debug!(
            path = %dir.path().display(),
            files = files.len(),
            bytes = files.iter().map(|file| file.size).sum::<u64>(),
            "created native RocksDB checkpoint"
        );
        Ok(NativeCheckpoint { dir, files, key_group_range: self.range })
    }

    /// Restores the native checkpoint `native`, if it holds key groups of this backend's
    /// range. While no instance is open, the checkpoint becomes the instance (files linked into
    /// a new working directory, keeping their shared ids), and the key groups outside the range
    /// are deleted by range (Flink's clip on a rescale); otherwise it is opened read-only in
    /// place and the key groups of this range are copied in. Restoring the checkpoint that
    /// overlaps most first therefore copies least.
    pub(crate) fn restore(&mut self, native: &NativeRestore) -> Result<()> {
        let (dir, source, range) = (native.dir.path(), native.key_group_range, self.range);
        let Some(overlap) = range.overlap(&source) else {
            tracing::debug!(
                from = %dir.display(),
                ?source,
                ?range,
                "native checkpoint holds no key group of this range"
            );
            return Ok(());
        };
        let (first, last) = (*overlap.start(), *overlap.end());
        if self.instance.get().is_none() {
            let instance = Instance::open(&self.settings, range, Some(native))?;
            if source.start() < first {
                instance.delete_groups(source.start()..=first - 1)?;
            }
            if last < source.end() {
                instance.delete_groups(last + 1..=source.end())?;
            }
            tracing::info!(
                from = %dir.display(),
                ?source,
                ?range,
                "restored RocksDB instance from a native checkpoint"
            );
            self.instance.get_or_init(|| Arc::new(instance));
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
            copied += copy_groups(&checkpoint, instance, state, overlap.clone())?;
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

/// The files of a checkpoint directory of `instance`, by name, SST files with their shared ids
/// when `sharing` is [`FileSharing::Shared`].
fn list_files(dir: &Path, instance: &Instance, sharing: FileSharing) -> Result<Vec<NativeFile>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(file_error(dir, "list"))? {
        let entry = entry.map_err(file_error(dir, "list"))?;
        let size = entry.metadata().map_err(file_error(&entry.path(), "read metadata of"))?.len();
        let name = entry.file_name().to_string_lossy().into_owned();
        let shared = sharing == FileSharing::Shared && name.ends_with(".sst");
        let shared_id = shared.then(|| instance.shared_id(&name));
        files.push(NativeFile { name, size, shared_id });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}
