//! Operator state: lists of values per subtask, not tied to any key.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;

use weir_types::Data;

use crate::snapshot::{decode_value, encode_value};
use crate::{Error, ListMode, ListSnapshot, OperatorRestore, Result};

/// The operator state of one subtask: named lists.
#[derive(Default)]
pub struct OperatorStateStore {
    lists: HashMap<String, RegisteredList>,
    /// Restored elements of lists not registered (yet), by name.
    restored: HashMap<String, Vec<Vec<u8>>>,
    /// Whether the state comes from a snapshot.
    is_restored: bool,
}

/// A registered list: typed for access, erased for snapshots.
struct RegisteredList {
    mode: ListMode,
    values: Box<dyn ErasedList>,
}

trait ErasedList: Send {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn encode(&self, name: &str) -> Result<Vec<Vec<u8>>>;
}

impl<V: Data> ErasedList for Vec<V> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn encode(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        self.iter().map(|value| encode_value(name, value)).collect()
    }
}

/// Handle to a named operator list state.
#[derive(Debug)]
pub struct OperatorListState<V> {
    name: String,
    _value: PhantomData<fn() -> V>,
}

impl OperatorStateStore {
    /// Empty operator state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in lists read back from a snapshot (after redistribution); call before
    /// registering them.
    pub fn restore(&mut self, restore: OperatorRestore) {
        let (lists, restored) = restore.into_lists();
        self.is_restored |= restored;
        for (name, elements) in lists {
            self.restored.entry(name).or_default().extend(elements);
        }
    }

    /// Whether the job was restored from a snapshot (Flink's `isRestored()`), even if this
    /// subtask got no list elements.
    pub fn is_restored(&self) -> bool {
        self.is_restored
    }

    /// Registers (or finds again) the list state `name`, whose elements are dealt out over
    /// the subtasks when the job is restored at another parallelism.
    pub fn list_state<V: Data>(&mut self, name: &str) -> Result<OperatorListState<V>> {
        self.register(name, ListMode::Split)
    }

    /// Registers (or finds again) the union list state `name`: on restore every subtask gets
    /// the elements of all subtasks.
    pub fn union_list_state<V: Data>(&mut self, name: &str) -> Result<OperatorListState<V>> {
        self.register(name, ListMode::Union)
    }

    fn register<V: Data>(&mut self, name: &str, mode: ListMode) -> Result<OperatorListState<V>> {
        match self.lists.get(name) {
            Some(existing) if existing.mode != mode || !existing.values.as_any().is::<Vec<V>>() => {
                return Err(Error::ConflictingRegistration { name: name.to_string() });
            }
            Some(_) => {}
            None => {
                let values: Vec<V> = self
                    .restored
                    .remove(name)
                    .unwrap_or_default()
                    .iter()
                    .map(|bytes| decode_value(name, bytes))
                    .collect::<Result<_>>()?;
                self.lists
                    .insert(name.to_string(), RegisteredList { mode, values: Box::new(values) });
            }
        }
        Ok(OperatorListState { name: name.to_string(), _value: PhantomData })
    }

    /// Every list with its elements serialized, restored lists not registered included.
    pub fn snapshot(&self) -> Result<Vec<ListSnapshot>> {
        let mut lists = self
            .lists
            .iter()
            .map(|(name, list)| {
                Ok(ListSnapshot {
                    name: name.clone(),
                    mode: list.mode,
                    elements: list.values.encode(name)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        lists.extend(self.restored.iter().map(|(name, elements)| ListSnapshot {
            name: name.clone(),
            mode: ListMode::Split,
            elements: elements.clone(),
        }));
        lists.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(lists)
    }

    fn list<V: Data>(&self, name: &str) -> &Vec<V> {
        self.lists[name].values.as_any().downcast_ref().expect("handle issued by this store")
    }

    fn list_mut<V: Data>(&mut self, name: &str) -> &mut Vec<V> {
        self.lists
            .get_mut(name)
            .and_then(|l| l.values.as_any_mut().downcast_mut())
            .expect("handle issued by this store")
    }
}

impl<V: Data> OperatorListState<V> {
    /// The values of the list.
    pub fn get<'a>(&self, store: &'a OperatorStateStore) -> &'a [V] {
        store.list(&self.name)
    }

    /// Appends a value.
    pub fn add(&self, store: &mut OperatorStateStore, value: V) {
        store.list_mut(&self.name).push(value);
    }

    /// Replaces the whole list.
    pub fn update(&self, store: &mut OperatorStateStore, values: Vec<V>) {
        *store.list_mut(&self.name) = values;
    }

    /// Empties the list.
    pub fn clear(&self, store: &mut OperatorStateStore) {
        store.list_mut::<V>(&self.name).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_named_and_typed() {
        let mut store = OperatorStateStore::new();
        let offsets = store.list_state::<u64>("offsets").unwrap();
        offsets.add(&mut store, 3);
        offsets.add(&mut store, 5);
        assert_eq!(offsets.get(&store), &[3, 5]);
        let again = store.list_state::<u64>("offsets").unwrap();
        assert_eq!(again.get(&store), &[3, 5]);
        assert!(store.list_state::<String>("offsets").is_err());
        offsets.update(&mut store, vec![9]);
        assert_eq!(offsets.get(&store), &[9]);
        offsets.clear(&mut store);
        assert!(offsets.get(&store).is_empty());
        assert!(store.union_list_state::<u64>("offsets").is_err(), "mode is part of the type");
    }

    #[test]
    fn lists_snapshot_and_restore_before_registration() {
        let mut store = OperatorStateStore::new();
        let positions = store.union_list_state::<(u32, u64)>("positions").unwrap();
        positions.update(&mut store, vec![(0, 10), (1, 20)]);
        let snapshot = store.snapshot().unwrap();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].mode, ListMode::Union);

        let mut restore = OperatorRestore::default();
        restore.add("positions", snapshot[0].elements.clone());
        restore.add("forgotten", vec![vec![7]]);
        let mut restored = OperatorStateStore::new();
        restored.restore(restore);
        assert!(restored.is_restored() && !OperatorStateStore::new().is_restored());
        let positions = restored.union_list_state::<(u32, u64)>("positions").unwrap();
        assert_eq!(positions.get(&restored), &[(0, 10), (1, 20)]);
        let names: Vec<_> = restored.snapshot().unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["forgotten", "positions"], "unregistered state is kept");
    }
}
