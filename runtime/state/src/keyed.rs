//! The keyed state of one operator subtask: registered tables and the current key.

use std::any::Any;
use std::collections::HashMap;

use weir_types::{Data, Key, KeyGroup, KeyGroupRange, KeyHasher};

use crate::handles::StateId;
use crate::{
    AggregatingState, AggregatingStateDescriptor, Error, ListState, ListStateDescriptor, MapState,
    MapStateDescriptor, NamespacedValueState, ReducingState, ReducingStateDescriptor, Result,
    StateBackendKind, StateTable, ValueState, ValueStateDescriptor,
};

/// Keyed state of one subtask: the tables its functions registered, scoped to a current key.
pub struct KeyedState<K> {
    backend: StateBackendKind,
    max_parallelism: usize,
    range: KeyGroupRange,
    hasher: KeyHasher,
    current: Option<(K, KeyGroup)>,
    tables: Vec<Box<dyn Any + Send>>,
    names: HashMap<String, (&'static str, StateId)>,
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
    /// Empty keyed state for a subtask that owns `range`.
    pub fn new(backend: StateBackendKind, max_parallelism: usize, range: KeyGroupRange) -> Self {
        KeyedState {
            backend,
            max_parallelism,
            range,
            hasher: KeyHasher::new(),
            current: None,
            tables: Vec::new(),
            names: HashMap::new(),
        }
    }

    /// Scopes every handle to `key` until the next call.
    pub fn set_current_key(&mut self, key: K) -> Result<()> {
        let group = self.hasher.key_group(&key, self.max_parallelism)?;
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
            if registered_kind == kind && self.tables[id.0].is::<Box<dyn StateTable<K, N, V>>>() {
                return Ok(id);
            }
            return Err(Error::ConflictingRegistration { name: name.to_string() });
        }
        let table: Box<dyn StateTable<K, N, V>> = self.backend.create_table(self.range);
        let id = StateId(self.tables.len());
        self.tables.push(Box::new(table));
        self.names.insert(name.to_string(), (kind, id));
        Ok(id)
    }

    /// The table behind `id` and the current key with its group.
    pub(crate) fn table<N: Key, V: Data>(
        &self,
        id: StateId,
    ) -> Result<(&dyn StateTable<K, N, V>, &K, KeyGroup)> {
        let (key, group) = self.current_scope(id)?;
        Ok((self.typed_table(id), key, group))
    }

    /// Mutable access to the table behind `id`, with the current key and its group.
    pub(crate) fn table_mut<N: Key, V: Data>(
        &mut self,
        id: StateId,
    ) -> Result<(&mut dyn StateTable<K, N, V>, &K, KeyGroup)> {
        let Some((key, group)) = self.current.as_ref() else {
            return Err(self.no_current_key(id));
        };
        let table = self.tables[id.0]
            .downcast_mut::<Box<dyn StateTable<K, N, V>>>()
            .expect("state handle used with the keyed state that issued it");
        Ok((table.as_mut(), key, *group))
    }

    fn typed_table<N: Key, V: Data>(&self, id: StateId) -> &dyn StateTable<K, N, V> {
        self.tables[id.0]
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
