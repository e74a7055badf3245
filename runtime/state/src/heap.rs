//! The heap backend: live objects in one hash map per key group, keyed by namespace, each
//! namespace holding its entries by the state's key (see [`Entries`]: a few in a vector, more
//! in a hash map).
//!
//! Namespace first, because the entries of one namespace live and die together: a window
//! is created, updated and fired for all of its keys within one stretch of event time, so
//! those accesses stay in one small collection however many windows are open (out-of-order
//! input, lagging watermarks), and firing a window empties it instead of probing a large
//! per-key map for each key. Keyed state without namespaces is one map per key group.

use weir_types::{Data, Key, KeyGroup, KeyGroupRange};

use crate::GroupEntries;
use crate::cohorts::{Cohorts, Handed};
use crate::entries::Entries;
use crate::namespaces::{FreshNamespace, FrozenNamespace, FrozenNamespaces, Namespaces};
use crate::snapshot::{FrozenTable, Sharing};
use crate::snapshot::{append_run, append_runs_header};
use crate::{Error, Result, StateTable, decode_entries};

/// A heap table: `groups[offset(group)]` holds a key group's namespaces.
pub(crate) struct HeapTable<K, N, V> {
    range: KeyGroupRange,
    groups: Vec<Namespaces<K, N, V>>,
    /// What checkpoints took of it.
    cohorts: Cohorts<FreshNamespace<K, N, V>>,
}

impl<K: Key, N: Key, V: Data> HeapTable<K, N, V> {
    pub(crate) fn new(range: KeyGroupRange) -> Self {
        let groups = (0..range.len()).map(|_| Namespaces::default()).collect();
        HeapTable { range, groups, cohorts: Cohorts::new(range) }
    }

    fn group(&self, group: KeyGroup) -> &Namespaces<K, N, V> {
        &self.groups[self.range.offset(group)]
    }

    fn group_mut(&mut self, group: KeyGroup) -> &mut Namespaces<K, N, V> {
        let offset = self.range.offset(group);
        &mut self.groups[offset]
    }
}

impl<K: Key, N: Key, V: Data> StateTable<K, N, V> for HeapTable<K, N, V> {
    fn get(&self, group: KeyGroup, key: &K, namespace: &N) -> Result<Option<V>> {
        Ok(self.group(group).get(namespace).and_then(|entries| entries.get(key)).cloned())
    }

    fn modify(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        change: &mut dyn FnMut(&mut V),
    ) -> Result<bool> {
        match self.group_mut(group).get_mut(namespace).and_then(|entries| entries.get_mut(key)) {
            Some(value) => {
                change(value);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V) -> Result<()> {
        let entries = self.group_mut(group).get_or_insert(namespace);
        match entries.get_mut(key) {
            Some(slot) => *slot = value,
            None => drop(entries.insert(key.clone(), value)),
        }
        Ok(())
    }

    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Result<Option<V>> {
        Ok(self.group_mut(group).remove(namespace, key))
    }

    fn snapshot_group(&self, group: KeyGroup, out: &mut Vec<u8>) -> Result<bool> {
        encode_namespaces(self.group(group).iter(), out)
    }

    fn restore_group(&mut self, group: KeyGroup, entries: &[u8]) -> Result<()> {
        let map = self.group_mut(group);
        decode_entries(entries, |key: K, namespace: N, value: V| {
            map.get_or_insert(&namespace).insert(key, value);
        })
    }

    fn len(&self) -> usize {
        self.groups.iter().flat_map(Namespaces::iter).map(|(_, entries)| entries.len()).sum()
    }

    fn frozen(&mut self, sharing: Sharing) -> Option<Box<dyn FrozenTable>> {
        if sharing == Sharing::Everything {
            let groups = self.groups.iter_mut().map(Namespaces::frozen).collect();
            return Some(Box::new(FrozenHeapTable { range: self.range, groups }));
        }
        let (mut fresh, mut ended) = (self.cohorts.fresh(), Vec::new());
        for (group, namespaces) in self.range.iter().zip(&mut self.groups) {
            namespaces.hand(group, &mut fresh, &mut ended);
        }
        let empty = self.groups.iter().all(Namespaces::is_empty);
        Some(Box::new(self.cohorts.hand(fresh, ended, empty)))
    }
}

impl<K: Key, N: Key, V: Data> Handed for FreshNamespace<K, N, V> {
    fn parts(&self, part: &mut dyn FnMut(KeyGroup, usize)) -> Result<()> {
        part(self.group, self.len);
        Ok(())
    }

    fn encode_part(&self, _part: usize, out: &mut Vec<u8>) -> Result<()> {
        append_namespace(&self.namespace, &self.entries, out)
    }

    fn warm(&self, _part: usize, step: usize) {
        self.entries.warm(step);
    }
}

/// A heap table as it was at a savepoint: every namespace's entries, shared with the live
/// table until it changes them.
struct FrozenHeapTable<K, N, V> {
    range: KeyGroupRange,
    groups: Vec<FrozenNamespaces<K, N, V>>,
}

impl<K: Key, N: Key, V: Data> FrozenTable for FrozenHeapTable<K, N, V> {
    fn encode_group<'a>(&'a self, group: KeyGroup, out: &mut GroupEntries<'a>) -> Result<bool> {
        let namespaces = &self.groups[self.range.offset(group)];
        let count = namespaces.iter().map(|frozen| frozen.entries.len()).sum();
        if count == 0 {
            return Ok(false);
        }
        append_runs_header(out.bytes(), count)?;
        for FrozenNamespace { namespace, entries, keep_encoding } in namespaces {
            if *keep_encoding {
                let encoding = entries.encoding(|entries| {
                    // Room for small entries: one allocation, trimmed once.
                    let mut encoding = Vec::with_capacity(16 * entries.len() + 16);
                    append_namespace(namespace, entries, &mut encoding)?;
                    Ok::<_, Error>(encoding)
                })?;
                out.bytes().extend_from_slice(encoding);
            } else {
                append_namespace(namespace, entries, out.bytes())?;
            }
        }
        Ok(true)
    }

    fn is_empty(&self) -> bool {
        self.groups.iter().all(Vec::is_empty)
    }
}

/// Appends the entries of `namespaces` in runs, one per namespace; returns whether there were
/// any.
fn encode_namespaces<'a, K: Key + 'a, N: Key + 'a, V: Data + 'a>(
    namespaces: impl Iterator<Item = (&'a N, &'a Entries<K, V>)> + Clone,
    out: &mut Vec<u8>,
) -> Result<bool> {
    let count = namespaces.clone().map(|(_, entries)| entries.len()).sum();
    if count == 0 {
        return Ok(false);
    }
    append_runs_header(out, count)?;
    for (namespace, entries) in namespaces {
        append_namespace(namespace, entries, out)?;
    }
    Ok(true)
}

/// Appends one namespace's entries as a run.
fn append_namespace<K: Key, N: Key, V: Data>(
    namespace: &N,
    entries: &Entries<K, V>,
    out: &mut Vec<u8>,
) -> Result<()> {
    append_run(namespace, entries.iter(), out)?;
    Ok(())
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
        assert_eq!(table.groups[0].iter().count(), 1);
        assert_eq!(table.groups[3].iter().count(), 1);
        assert_eq!(table.get(4, &"a".into(), &()).unwrap(), Some(1));
        assert_eq!(table.get(7, &"a".into(), &()).unwrap(), None, "same key, other group");
        assert!(table.modify(7, &"b".into(), &(), &mut |v| *v += 10).unwrap());
        assert!(!table.modify(7, &"zz".into(), &(), &mut |v| *v += 10).unwrap());
        assert_eq!(table.remove(7, &"b".into(), &()).unwrap(), Some(12));
        assert_eq!(table.len(), 1);
        assert_eq!(table.groups[3].iter().count(), 0, "a namespace without entries ends");
    }

    #[test]
    fn groups_snapshot_and_restore_into_another_range() {
        let mut table = HeapTable::<String, i64, u32>::new(KeyGroupRange::for_subtask(8, 1, 0));
        table.put(2, &"a".into(), &10, 1).unwrap();
        table.put(2, &"a".into(), &20, 2).unwrap();
        table.put(2, &"b".into(), &10, 3).unwrap();
        let mut block = Vec::new();
        assert!(table.snapshot_group(2, &mut block).unwrap());
        assert!(!table.snapshot_group(3, &mut Vec::new()).unwrap(), "empty group");
        let mut restored = HeapTable::<String, i64, u32>::new(KeyGroupRange::for_subtask(8, 4, 1));
        restored.restore_group(2, &block).unwrap();
        assert_eq!(restored.len(), 3);
        assert_eq!(restored.get(2, &"a".into(), &20).unwrap(), Some(2));
        assert_eq!(restored.get(2, &"b".into(), &10).unwrap(), Some(3));
    }

    #[test]
    fn namespaces_separate_entries_of_one_key() {
        let mut table = HeapTable::<u64, i64, String>::new(KeyGroupRange::for_subtask(4, 1, 0));
        table.put(0, &1, &10, "ten".to_string()).unwrap();
        table.put(0, &1, &20, "twenty".to_string()).unwrap();
        table.put(0, &1, &10, "TEN".to_string()).unwrap();
        assert_eq!(table.get(0, &1, &10).unwrap(), Some("TEN".into()));
        assert_eq!(table.get(0, &1, &20).unwrap(), Some("twenty".into()));
        assert_eq!(table.len(), 2);
        assert_eq!(table.remove(0, &1, &10).unwrap(), Some("TEN".into()));
        assert_eq!(table.get(0, &1, &20).unwrap(), Some("twenty".into()));
        assert_eq!(table.remove(0, &1, &10).unwrap(), None);
    }
}
