//! The keyed state of one operator subtask: registered tables and the current key.

use std::any::Any;
use std::collections::HashMap;

use bytes::Bytes;
use weir_types::{CheckpointId, Data, Key, KeyGroup, KeyGroupRange, KeyHasher, SnapshotType};

use crate::backend::OpenBackend;
use crate::handles::StateId;
use crate::snapshot::{FrozenTable, Sharing};
use crate::{
    AggregatingState, AggregatingStateDescriptor, Error, KeyedRestore, KeyedSnapshot, ListState,
    ListStateDescriptor, MapState, MapStateDescriptor, NamespacedValueState, NativeCheckpoint,
    NativeRestore, ReducingState, ReducingStateDescriptor, Result, StateBackend, StateTable,
    ValueState, ValueStateDescriptor,
};

/// Keyed state of one subtask: the tables its functions registered, scoped to a current key.
pub struct KeyedState<K> {
    backend: OpenBackend,
    max_parallelism: usize,
    range: KeyGroupRange,
    hasher: KeyHasher,
    current: Option<(K, KeyGroup)>,
    tables: Vec<Box<dyn RegisteredTable>>,
    names: HashMap<String, (&'static str, StateId)>,
    /// Restored blocks of states not registered (yet), by name: loaded on registration,
    /// snapshotted again as they are until then.
    restored: HashMap<String, Vec<(KeyGroup, Bytes)>>,
}

/// A registered table, typed for access and erased for snapshots.
trait RegisteredTable: Send {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn snapshot_group(&self, group: KeyGroup, out: &mut Vec<u8>) -> Result<bool>;
    fn restore_group(&mut self, group: KeyGroup, entries: &[u8]) -> Result<()>;
    fn frozen(&mut self, sharing: Sharing) -> Option<Box<dyn FrozenTable>>;
}

impl<K: 'static, N: 'static, V: 'static> RegisteredTable for Box<dyn StateTable<K, N, V>> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn snapshot_group(&self, group: KeyGroup, out: &mut Vec<u8>) -> Result<bool> {
        (**self).snapshot_group(group, out)
    }
    fn restore_group(&mut self, group: KeyGroup, entries: &[u8]) -> Result<()> {
        (**self).restore_group(group, entries)
    }
    fn frozen(&mut self, sharing: Sharing) -> Option<Box<dyn FrozenTable>> {
        (**self).frozen(sharing)
    }
}

/// Anything that gives access to keyed state: the state itself and the contexts that
/// functions receive, so that handles read `self.count.value(ctx)`.
pub trait KeyedStateAccess {
    /// The key type.
    type Key: Key;
    /// Read access.
    fn keyed_state(&self) -> &KeyedState<Self::Key>;
    /// Write access.
    fn keyed_state_mut(&mut self) -> &mut KeyedState<Self::Key>;
}

impl<K: Key> KeyedStateAccess for KeyedState<K> {
    type Key = K;
    fn keyed_state(&self) -> &KeyedState<K> {
        self
    }
    fn keyed_state_mut(&mut self) -> &mut KeyedState<K> {
        self
    }
}

impl<K: Key> KeyedState<K> {
    /// Empty keyed state for a subtask that owns `range`, in `backend` (a
    /// [`crate::StateBackendKind`] or a [`StateBackend`] with settings). A RocksDB instance
    /// opens when first needed, so this cannot fail.
    pub fn new(
        backend: impl Into<StateBackend>,
        max_parallelism: usize,
        range: KeyGroupRange,
    ) -> Self {
        KeyedState {
            backend: OpenBackend::new(backend.into(), range, max_parallelism),
            max_parallelism,
            range,
            hasher: KeyHasher::new(),
            current: None,
            tables: Vec::new(),
            names: HashMap::new(),
            restored: HashMap::new(),
        }
    }

    /// Takes in state read back from a snapshot; call before registering states. Native
    /// checkpoints are restored first, then canonical blocks; blocks of key groups outside
    /// this subtask's range are ignored.
    pub fn restore(&mut self, restore: KeyedRestore) -> Result<()> {
        let (mut natives, sections) = restore.into_parts();
        // The first becomes the instance and the others' key groups are copied into it: the
        // one holding most of this range goes first.
        let held = |native: &NativeRestore| native.key_group_range.overlap(&self.range);
        natives.sort_by_key(|native| std::cmp::Reverse(held(native).map_or(0, |g| g.count())));
        for native in &natives {
            self.restore_native(native)?;
        }
        for (name, mut blocks) in sections {
            blocks.retain(|(group, _)| self.range.contains(*group));
            if let Some(&(_, id)) = self.names.get(&name) {
                for (group, entries) in &blocks {
                    self.tables[id.0].restore_group(*group, entries)?;
                }
            } else {
                self.restored.entry(name).or_default().extend(blocks);
            }
        }
        Ok(())
    }

    /// Every state's entries, per key group, in the canonical snapshot encoding. Tables of
    /// live objects (heap) are shared as they are, to be encoded when the snapshot's blocks
    /// are asked for, off the task's thread; the others are encoded now.
    pub fn snapshot(&mut self) -> Result<KeyedSnapshot> {
        self.snapshot_sharing(Sharing::Everything)
    }

    /// [`Self::snapshot`], with tables of live objects sharing as much as `sharing` says: a
    /// checkpoint shares what changed since the one before, and its encoding refers to earlier
    /// checkpoints' files for the rest (see [`crate::BlockWriter::incremental`]); encoded in
    /// full, it still holds every entry.
    pub fn snapshot_sharing(&mut self, sharing: Sharing) -> Result<KeyedSnapshot> {
        let mut snapshot = KeyedSnapshot::new();
        let mut names: Vec<_> = self.names.iter().collect();
        names.sort_by_key(|(_, (_, id))| id.0);
        let mut encode_now = Vec::new();
        for (name, (_, id)) in names {
            match self.tables[id.0].frozen(sharing) {
                Some(frozen) => snapshot.defer(name, self.range, frozen),
                None => encode_now.push((name, *id)),
            }
        }
        let mut stored = self.backend.stored_states();
        stored.retain(|name| !self.names.contains_key(name));
        for group in self.range.iter() {
            for (name, id) in &encode_now {
                let mut entries = Vec::new();
                if self.tables[id.0].snapshot_group(group, &mut entries)? {
                    snapshot.add(group, name, entries);
                }
            }
            self.backend.snapshot_stored(&stored, group, &mut snapshot)?;
        }
        self.add_restored(&mut snapshot);
        Ok(snapshot)
    }

    /// Adds the restored blocks of states not registered yet to `snapshot`.
    fn add_restored(&self, snapshot: &mut KeyedSnapshot) {
        for (name, blocks) in &self.restored {
            for (group, entries) in blocks {
                snapshot.add(*group, name, entries.to_vec());
            }
        }
    }

    /// The state as a snapshot of `kind` needs it: for a checkpoint with a backend that takes
    /// incremental checkpoints, or a native savepoint with a backend that has a native format,
    /// its native checkpoint `checkpoint` plus the canonical blocks of restored states not
    /// registered yet (the backend does not hold those); otherwise the canonical snapshot of
    /// everything.
    pub fn snapshot_for(
        &mut self,
        checkpoint: CheckpointId,
        kind: SnapshotType,
    ) -> Result<(KeyedSnapshot, Option<NativeCheckpoint>)> {
        if let Some(native) = self.native_snapshot(checkpoint, kind)? {
            let mut restored = KeyedSnapshot::new();
            self.add_restored(&mut restored);
            return Ok((restored, Some(native)));
        }
        Ok((self.snapshot_sharing(Sharing::of(kind))?, None))
    }

    /// The backend's native checkpoint `checkpoint` when it takes incremental checkpoints
    /// (RocksDB with `incremental` set), else `None`. RocksDB flushes its memtables and links
    /// its immutable SST files and copies its small per-checkpoint files into a new local
    /// directory, removed when the checkpoint is dropped.
    pub fn native_checkpoint(&self, checkpoint: CheckpointId) -> Result<Option<NativeCheckpoint>> {
        self.native_snapshot(checkpoint, SnapshotType::Checkpoint)
    }

    /// The backend's native snapshot for `kind`, if it takes one: a checkpoint of RocksDB with
    /// `incremental` set (its SST files shared with later checkpoints), or a native savepoint
    /// of RocksDB (every file its own: a savepoint references nothing of the checkpoints').
    #[cfg_attr(
        not(feature = "rocksdb"),
        expect(unused_variables, reason = "only RocksDB checkpoints natively")
    )]
    fn native_snapshot(
        &self,
        checkpoint: CheckpointId,
        kind: SnapshotType,
    ) -> Result<Option<NativeCheckpoint>> {
        match (&self.backend, kind) {
            #[cfg(feature = "rocksdb")]
            (OpenBackend::RocksDb(rocksdb), SnapshotType::Checkpoint)
                if rocksdb.settings.incremental =>
            {
                rocksdb.checkpoint(checkpoint, crate::rocksdb::FileSharing::Shared).map(Some)
            }
            #[cfg(feature = "rocksdb")]
            (
                OpenBackend::RocksDb(rocksdb),
                SnapshotType::Savepoint(weir_types::SavepointFormat::Native),
            ) => rocksdb.checkpoint(checkpoint, crate::rocksdb::FileSharing::Owned).map(Some),
            _ => Ok(None),
        }
    }

    /// Restores a native checkpoint of an instance whose key groups overlap this subtask's:
    /// one of this range (or of a part of it) becomes the instance if none is open yet;
    /// otherwise (rescale) only its key groups in this range are copied in.
    #[cfg_attr(
        not(feature = "rocksdb"),
        expect(unused_variables, reason = "only RocksDB restores natively")
    )]
    fn restore_native(&mut self, native: &NativeRestore) -> Result<()> {
        match &mut self.backend {
            #[cfg(feature = "rocksdb")]
            OpenBackend::RocksDb(rocksdb) => rocksdb.restore(native),
            OpenBackend::Heap { .. } => Err(Error::UnsupportedByBackend {
                operation: "restoring a native RocksDB checkpoint or savepoint",
                required: "rocksdb",
                actual: "heap",
            }),
        }
    }

    /// Scopes every handle to `key` until the next call.
    pub fn set_current_key(&mut self, key: K) -> Result<()> {
        let group = self.hasher.key_group(&key, self.max_parallelism)?;
        self.set_current_key_in_group(key, group)
    }

    /// Scopes the state to `key`, whose key group is already known to be `group` (a key
    /// that comes back from a timer, which keeps its group): no hashing.
    pub fn set_current_key_in_group(&mut self, key: K, group: KeyGroup) -> Result<()> {
        debug_assert_eq!(
            KeyHasher::new().key_group(&key, self.max_parallelism).ok(),
            Some(group),
            "the key group given for {key:?}"
        );
        if !self.range.contains(group) {
            return Err(Error::KeyGroupOutOfRange {
                key: format!("{key:?}"),
                group,
                start: self.range.start(),
                end: self.range.end(),
            });
        }
        self.current = Some((key, group));
        Ok(())
    }

    /// The key the state is scoped to.
    pub fn current_key(&self) -> Option<&K> {
        self.current.as_ref().map(|(key, _)| key)
    }

    /// The key the state is scoped to, with its key group.
    pub fn current_key_in_group(&self) -> Option<(&K, KeyGroup)> {
        self.current.as_ref().map(|(key, group)| (key, *group))
    }

    /// The key groups this subtask owns.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.range
    }

    /// Registers (or finds again) a value state.
    pub fn value_state<V: Data>(
        &mut self,
        descriptor: &ValueStateDescriptor<V>,
    ) -> Result<ValueState<V>> {
        Ok(ValueState::new(self.register::<(), V>(&descriptor.name, "value")?))
    }

    /// Registers (or finds again) a list state.
    pub fn list_state<V: Data>(
        &mut self,
        descriptor: &ListStateDescriptor<V>,
    ) -> Result<ListState<V>> {
        Ok(ListState::new(self.register::<(), Vec<V>>(&descriptor.name, "list")?))
    }

    /// Registers (or finds again) a map state.
    pub fn map_state<UK: Key, UV: Data>(
        &mut self,
        descriptor: &MapStateDescriptor<UK, UV>,
    ) -> Result<MapState<UK, UV>> {
        let id = self.register::<(), HashMap<UK, UV>>(&descriptor.name, "map")?;
        Ok(MapState::new(id))
    }

    /// Registers (or finds again) a reducing state.
    pub fn reducing_state<V: Data>(
        &mut self,
        descriptor: &ReducingStateDescriptor<V>,
    ) -> Result<ReducingState<V>> {
        let id = self.register::<(), V>(&descriptor.name, "reducing")?;
        Ok(ReducingState::new(id, descriptor.reduce.clone()))
    }

    /// Registers (or finds again) an aggregating state.
    pub fn aggregating_state<In, Acc: Data, Out>(
        &mut self,
        descriptor: &AggregatingStateDescriptor<In, Acc, Out>,
    ) -> Result<AggregatingState<In, Acc, Out>> {
        let id = self.register::<(), Acc>(&descriptor.name, "aggregating")?;
        Ok(AggregatingState::new(id, descriptor.aggregate.clone()))
    }

    /// Registers (or finds again) a value state per key and namespace, for operators that
    /// keep several entries per key (windows, trigger state).
    pub fn namespaced_value_state<N: Key, V: Data>(
        &mut self,
        name: &str,
    ) -> Result<NamespacedValueState<N, V>> {
        Ok(NamespacedValueState::new(self.register::<N, V>(name, "namespaced")?))
    }

    /// Registers a table under `name` with namespace `N` and stored value `V`. Registering the
    /// same name again with the same types returns the same table.
    pub(crate) fn register<N: Key, V: Data>(
        &mut self,
        name: &str,
        kind: &'static str,
    ) -> Result<StateId> {
        if let Some(&(registered_kind, id)) = self.names.get(name) {
            if registered_kind == kind
                && self.tables[id.0].as_any().is::<Box<dyn StateTable<K, N, V>>>()
            {
                return Ok(id);
            }
            return Err(Error::ConflictingRegistration { name: name.to_string() });
        }
        let mut table: Box<dyn StateTable<K, N, V>> = self.backend.create_table(name)?;
        for (group, entries) in self.restored.remove(name).unwrap_or_default() {
            table.restore_group(group, &entries)?;
        }
        let id = StateId(self.tables.len());
        self.tables.push(Box::new(table));
        self.names.insert(name.to_string(), (kind, id));
        Ok(id)
    }

    /// The table behind `id` and the current key with its group.
    #[inline]
    pub(crate) fn table<N: Key, V: Data>(
        &self,
        id: StateId,
    ) -> Result<(&dyn StateTable<K, N, V>, &K, KeyGroup)> {
        let (key, group) = self.current_scope(id)?;
        Ok((self.typed_table(id), key, group))
    }

    /// Mutable access to the table behind `id`, with the current key and its group.
    #[inline]
    pub(crate) fn table_mut<N: Key, V: Data>(
        &mut self,
        id: StateId,
    ) -> Result<(&mut dyn StateTable<K, N, V>, &K, KeyGroup)> {
        let Some((key, group)) = self.current.as_ref() else {
            return Err(self.no_current_key(id));
        };
        let table = self.tables[id.0]
            .as_any_mut()
            .downcast_mut::<Box<dyn StateTable<K, N, V>>>()
            .expect("state handle used with the keyed state that issued it");
        Ok((table.as_mut(), key, *group))
    }

    #[inline]
    fn typed_table<N: Key, V: Data>(&self, id: StateId) -> &dyn StateTable<K, N, V> {
        self.tables[id.0]
            .as_any()
            .downcast_ref::<Box<dyn StateTable<K, N, V>>>()
            .expect("state handle used with the keyed state that issued it")
            .as_ref()
    }

    fn current_scope(&self, id: StateId) -> Result<(&K, KeyGroup)> {
        match &self.current {
            Some((key, group)) => Ok((key, *group)),
            None => Err(self.no_current_key(id)),
        }
    }

    fn no_current_key(&self, id: StateId) -> Error {
        let state = self
            .names
            .iter()
            .find(|(_, (_, registered))| *registered == id)
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        Error::NoCurrentKey { state }
    }
}
