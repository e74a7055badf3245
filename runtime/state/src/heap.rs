//! The heap backend: one hash map of live objects per key group.

use std::hash::{Hash, Hasher};

use hashbrown::{Equivalent, HashMap};
use weir_types::{KeyGroup, KeyGroupRange};

use crate::{Result, StateTable};

/// A heap table: `groups[offset(group)]` maps `(key, namespace)` to a value.
pub(crate) struct HeapTable<K, N, V> {
    range: KeyGroupRange,
    groups: Vec<HashMap<(K, N), V>>,
}

impl<K, N, V> HeapTable<K, N, V> {
    pub(crate) fn new(range: KeyGroupRange) -> Self {
        HeapTable { range, groups: (0..range.len()).map(|_| HashMap::new()).collect() }
    }

    fn group(&self, group: KeyGroup) -> &HashMap<(K, N), V> {
        &self.groups[self.range.offset(group)]
    }

    fn group_mut(&mut self, group: KeyGroup) -> &mut HashMap<(K, N), V> {
        let offset = self.range.offset(group);
        &mut self.groups[offset]
    }
}

/// Borrowed `(key, namespace)` that hashes and compares like the owned tuple, so lookups
/// clone nothing.
struct Lookup<'a, K, N>(&'a K, &'a N);

impl<K: Hash, N: Hash> Hash for Lookup<'_, K, N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl<K: Eq, N: Eq> Equivalent<(K, N)> for Lookup<'_, K, N> {
    fn equivalent(&self, other: &(K, N)) -> bool {
        *self.0 == other.0 && *self.1 == other.1
    }
}

impl<K, N, V> StateTable<K, N, V> for HeapTable<K, N, V>
where
    K: Hash + Eq + Clone + Send,
    N: Hash + Eq + Clone + Send,
    V: Clone + Send,
{
    fn get(&self, group: KeyGroup, key: &K, namespace: &N) -> Result<Option<V>> {
        Ok(self.group(group).get(&Lookup(key, namespace)).cloned())
    }

    fn modify(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        change: &mut dyn FnMut(&mut V),
    ) -> Result<bool> {
        match self.group_mut(group).get_mut(&Lookup(key, namespace)) {
            Some(value) => {
                change(value);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V) -> Result<()> {
        let map = self.group_mut(group);
        match map.get_mut(&Lookup(key, namespace)) {
            Some(slot) => *slot = value,
            None => {
                map.insert((key.clone(), namespace.clone()), value);
            }
        }
        Ok(())
    }

    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Result<Option<V>> {
        Ok(self.group_mut(group).remove(&Lookup(key, namespace)))
    }

    fn len(&self) -> usize {
        self.groups.iter().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_in_their_key_group() {
        let range = KeyGroupRange::for_subtask(8, 2, 1); // groups 4..=7
        let mut table = HeapTable::<String, (), u32>::new(range);
        table.put(4, &"a".into(), &(), 1).unwrap();
        table.put(7, &"b".into(), &(), 2).unwrap();
        assert_eq!(table.groups[0].len(), 1);
        assert_eq!(table.groups[3].len(), 1);
        assert_eq!(table.get(4, &"a".into(), &()).unwrap(), Some(1));
        assert_eq!(table.get(7, &"a".into(), &()).unwrap(), None, "same key, other group");
        assert!(table.modify(7, &"b".into(), &(), &mut |v| *v += 10).unwrap());
        assert!(!table.modify(7, &"zz".into(), &(), &mut |v| *v += 10).unwrap());
        assert_eq!(table.remove(7, &"b".into(), &()).unwrap(), Some(12));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn namespaces_separate_entries_of_one_key() {
        let mut table = HeapTable::<u64, i64, &str>::new(KeyGroupRange::for_subtask(4, 1, 0));
        table.put(0, &1, &10, "ten").unwrap();
        table.put(0, &1, &20, "twenty").unwrap();
        table.put(0, &1, &10, "TEN").unwrap();
        assert_eq!(table.get(0, &1, &10).unwrap(), Some("TEN"));
        assert_eq!(table.get(0, &1, &20).unwrap(), Some("twenty"));
        assert_eq!(table.len(), 2);
    }
}
