//! Operator state: lists of values per subtask, not tied to any key.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;

use weir_types::Data;

use crate::{Error, Result};

/// The operator state of one subtask: named lists.
#[derive(Default)]
pub struct OperatorStateStore {
    lists: HashMap<String, Box<dyn Any + Send>>,
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

    /// Registers (or finds again) the list state `name`.
    pub fn list_state<V: Data>(&mut self, name: &str) -> Result<OperatorListState<V>> {
        match self.lists.get(name) {
            Some(existing) if !existing.is::<Vec<V>>() => {
                Err(Error::ConflictingRegistration { name: name.to_string() })
            }
            Some(_) => Ok(OperatorListState { name: name.to_string(), _value: PhantomData }),
            None => {
                self.lists.insert(name.to_string(), Box::new(Vec::<V>::new()));
                Ok(OperatorListState { name: name.to_string(), _value: PhantomData })
            }
        }
    }

    fn list<V: Data>(&self, name: &str) -> &Vec<V> {
        self.lists[name].downcast_ref().expect("handle issued by this store")
    }

    fn list_mut<V: Data>(&mut self, name: &str) -> &mut Vec<V> {
        self.lists
            .get_mut(name)
            .and_then(|l| l.downcast_mut())
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
    }
}
