//! One RocksDB instance: its working directory, options, one column family per state, and
//! the key-group scans shared by tables, snapshots and restores.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rocksdb::{
    AsColumnFamilyRef, BlockBasedOptions, BoundColumnFamily, Cache, ColumnFamilyDescriptor,
    DBCompressionType, DBWithThreadMode, FlushOptions, MultiThreaded, Options, ReadOptions,
    WriteBatch, WriteOptions,
};
use weir_types::{KeyGroup, KeyGroupRange};

use super::RocksDbSettings;
use super::keys::{GROUP_PREFIX_LEN, group_bounds};
use crate::native::{OwnedDir, remove_dirs_of_dead_processes};
use crate::snapshot::append_count;
use crate::{Error, NativeRestore, Result};

/// A RocksDB database whose column families are created and used through `&self`.
pub(crate) type Db = DBWithThreadMode<MultiThreaded>;

/// Prefix of the column family of each state, so no state name meets RocksDB's `default`.
const COLUMN_FAMILY_PREFIX: &str = "state:";

/// The column family that holds state `name`.
pub(crate) fn column_family_name(state: &str) -> String {
    format!("{COLUMN_FAMILY_PREFIX}{state}")
}

/// Names of the states stored in the database at `path`, from its column families.
pub(crate) fn stored_states(options: &Options, path: &Path) -> Result<Vec<String>> {
    let families =
        Db::list_cf(options, path).map_err(db_error(path, "list the column families of"))?;
    Ok(families
        .iter()
        .filter_map(|family| family.strip_prefix(COLUMN_FAMILY_PREFIX))
        .map(str::to_string)
        .collect())
}

/// Options of a database and of each of its column families.
pub(crate) fn options(settings: &RocksDbSettings) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(settings.block_cache_bytes));
    table.set_bloom_filter(10.0, false);
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_compression_type(DBCompressionType::Lz4);
    options.set_write_buffer_size(settings.write_buffer_bytes);
    options.set_db_write_buffer_size(settings.write_buffer_bytes);
    options.set_block_based_table_factory(&table);
    options
}

/// An open instance. Fields drop in order: the database closes before its directory goes.
pub(crate) struct Instance {
    db: Db,
    options: Options,
    write_options: WriteOptions,
    states: Mutex<BTreeSet<String>>,
    /// Unique to this instance: the shared id of an SST file it wrote is `{uid}-{file name}`.
    uid: String,
    /// Shared ids of the SST files it started with, taken over from the checkpoint it was
    /// restored from.
    inherited: BTreeMap<String, String>,
    dir: WorkDir,
}

impl Instance {
    /// Opens an instance in a new working directory under `settings.working_dir`: empty, or
    /// seeded with the files of the native checkpoint `seed` (SST files hard-linked where the
    /// file system allows, the small per-checkpoint files copied), whose SST files keep their
    /// shared ids.
    pub(crate) fn open(
        settings: &RocksDbSettings,
        range: KeyGroupRange,
        seed: Option<&NativeRestore>,
    ) -> Result<Self> {
        let dir = WorkDir::create(&settings.working_dir, range)?;
        let options = options(settings);
        let states = match seed {
            Some(seed) => {
                link_files(seed.dir.path(), dir.path())?;
                stored_states(&options, dir.path())?
            }
            None => Vec::new(),
        };
        let families = states
            .iter()
            .map(|state| ColumnFamilyDescriptor::new(column_family_name(state), options.clone()));
        let db = Db::open_cf_descriptors(&options, dir.path(), families)
            .map_err(db_error(dir.path(), "open"))?;
        let mut write_options = WriteOptions::default();
        write_options.disable_wal(true);
        tracing::info!(
            path = %dir.path().display(),
            ?range,
            states = states.len(),
            "opened RocksDB instance"
        );
        Ok(Instance {
            db,
            options,
            write_options,
            states: Mutex::new(states.into_iter().collect()),
            uid: format!("{:016x}", fastrand::u64(..)),
            inherited: seed.map(|seed| seed.shared_ids.clone()).unwrap_or_default(),
            dir,
        })
    }

    /// The shared id of the SST file `name` of this instance.
    pub(crate) fn shared_id(&self, name: &str) -> String {
        match self.inherited.get(name) {
            Some(id) => id.clone(),
            None => format!("{}-{name}", self.uid),
        }
    }

    /// The working directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The database.
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Creates the column family of state `name` unless it exists.
    pub(crate) fn ensure_state(&self, name: &str) -> Result<()> {
        let mut states = self.states.lock().expect("state names are never left half-updated");
        if !states.contains(name) {
            self.db
                .create_cf(column_family_name(name), &self.options)
                .map_err(self.state_error(name, "create the column family of"))?;
            tracing::debug!(state = name, path = %self.path().display(), "created column family");
            states.insert(name.to_string());
        }
        Ok(())
    }

    /// Names of the states with a column family.
    pub(crate) fn states(&self) -> Vec<String> {
        let states = self.states.lock().expect("state names are never left half-updated");
        states.iter().cloned().collect()
    }

    /// The handle of column family `family` (see [`column_family_name`]), which exists: column
    /// families are created with their state and never dropped.
    pub(crate) fn column_family(&self, family: &str) -> Arc<BoundColumnFamily<'_>> {
        self.db.cf_handle(family).expect("column families of states are never dropped")
    }

    /// Writes `batch` (without write-ahead log); `state` names the error.
    pub(crate) fn write(&self, state: &str, batch: WriteBatch) -> Result<()> {
        self.db.write_opt(batch, &self.write_options).map_err(self.state_error(state, "write"))
    }

    /// Options for single writes (no write-ahead log).
    pub(crate) fn write_options(&self) -> &WriteOptions {
        &self.write_options
    }

    /// Appends the entries of state `name` in `group` to `out` in the canonical snapshot
    /// encoding's listed layout, straight from the stored bytes (the stored key puts the key
    /// before the namespace, so runs of a namespace would need the keys decoded): a count
    /// pass, then a copy pass (the table cannot change in between: writers need the keyed
    /// state mutably).
    pub(crate) fn snapshot_group(
        &self,
        name: &str,
        group: KeyGroup,
        out: &mut Vec<u8>,
    ) -> Result<bool> {
        let family = self.column_family(&column_family_name(name));
        let error = || self.state_error(name, "snapshot");
        let count = scan(&self.db, &family, group..=group, |_, _| Ok(())).map_err(error())?;
        if count == 0 {
            return Ok(false);
        }
        append_count(out, count)?;
        let written = scan(&self.db, &family, group..=group, |key, value| {
            out.extend_from_slice(&key[GROUP_PREFIX_LEN..]);
            out.extend_from_slice(value);
            Ok(())
        })
        .map_err(error())?;
        debug_assert_eq!(written, count, "entries counted and written in one consistent view");
        Ok(true)
    }

    /// Deletes every entry of the key groups in `groups`, in every state, with one range
    /// tombstone per state: nothing is read, and compaction drops the entries later.
    pub(crate) fn delete_groups(&self, groups: std::ops::RangeInclusive<KeyGroup>) -> Result<()> {
        let (lower, upper) = group_bounds(groups);
        let upper =
            upper.expect("key groups are below 32768: a range of them ends before the last prefix");
        let mut batch = WriteBatch::default();
        for state in self.states() {
            batch.delete_range_cf(&self.column_family(&column_family_name(&state)), &lower, &upper);
        }
        self.db
            .write_opt(batch, &self.write_options)
            .map_err(db_error(self.path(), "delete key groups from"))
    }

    /// Number of entries of state `name`: a scan of its whole column family.
    pub(crate) fn count(&self, name: &str) -> Result<usize> {
        let family = self.column_family(&column_family_name(name));
        scan(&self.db, &family, 0..=KeyGroup::MAX, |_, _| Ok(()))
            .map_err(self.state_error(name, "count the entries of"))
    }

    /// Flushes the memtables of every state to SST files and waits for it.
    pub(crate) fn flush(&self) -> Result<()> {
        let families: Vec<_> = self
            .states()
            .iter()
            .map(|state| self.column_family(&column_family_name(state)))
            .collect();
        let mut flush = FlushOptions::default();
        flush.set_wait(true);
        self.db
            .flush_cfs_opt(&families.iter().collect::<Vec<_>>(), &flush)
            .map_err(db_error(self.path(), "flush the memtables of"))
    }

    /// Maps a RocksDB error on state `name` to this crate's error.
    pub(crate) fn state_error<'a>(
        &'a self,
        name: &'a str,
        operation: &'static str,
    ) -> impl FnOnce(rocksdb::Error) -> Error + 'a {
        move |source| Error::RocksDbState {
            state: name.to_string(),
            path: self.path().to_path_buf(),
            operation,
            source,
        }
    }
}

/// Calls `visit` with each stored key and value of the key groups in `groups`, in key order,
/// on a scan that does not fill the block cache; returns how many there were.
pub(crate) fn scan(
    db: &Db,
    family: &impl AsColumnFamilyRef,
    groups: std::ops::RangeInclusive<KeyGroup>,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), rocksdb::Error>,
) -> Result<usize, rocksdb::Error> {
    let (lower, upper) = group_bounds(groups);
    let mut read = ReadOptions::default();
    read.fill_cache(false);
    read.set_iterate_lower_bound(lower.clone());
    if let Some(upper) = upper {
        read.set_iterate_upper_bound(upper);
    }
    let mut entries = db.raw_iterator_cf_opt(family, read);
    entries.seek(&lower);
    let mut count = 0;
    while let Some((key, value)) = entries.item() {
        visit(key, value)?;
        count += 1;
        entries.next();
    }
    entries.status()?;
    Ok(count)
}

/// Maps a RocksDB error on the database (or checkpoint) at `path` to this crate's error.
pub(crate) fn db_error<'a>(
    path: &'a Path,
    operation: &'static str,
) -> impl FnOnce(rocksdb::Error) -> Error + 'a {
    move |source| Error::RocksDb { path: path.to_path_buf(), operation, source }
}

/// Maps a file-system error on `path` to this crate's error.
pub(crate) fn file_error<'a>(
    path: &'a Path,
    operation: &'static str,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::RocksDbFile { path: path.to_path_buf(), operation, source }
}

/// Fills `to` with the files of the checkpoint directory `from`: SST files are immutable and
/// hard-linked (copied across file systems), the others copied, as RocksDB rewrites them.
fn link_files(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).map_err(file_error(from, "list"))? {
        let source = entry.map_err(file_error(from, "list"))?.path();
        let target = to.join(source.file_name().expect("directory entries have a name"));
        let linked = source.extension().is_some_and(|ext| ext == "sst")
            && fs::hard_link(&source, &target).is_ok();
        if !linked {
            fs::copy(&source, &target).map_err(file_error(&source, "copy"))?;
        }
    }
    Ok(())
}

/// A unique working directory, removed (with everything in it) on drop.
struct WorkDir(OwnedDir);

impl WorkDir {
    /// Creates `{root}/{process id}-{sequence}-kg{first}-{last}`.
    fn create(root: &Path, range: KeyGroupRange) -> Result<Self> {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        fs::create_dir_all(root).map_err(file_error(root, "create"))?;
        remove_dirs_of_dead_processes(root);
        loop {
            let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let name =
                format!("{}-{sequence}-kg{}-{}", std::process::id(), range.start(), range.end());
            let path = root.join(name);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(WorkDir(OwnedDir(path))),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(file_error(&path, "create")(error)),
            }
        }
    }

    fn path(&self) -> &Path {
        &self.0.0
    }
}
