//! The heap backend: live objects in one hash map keyed by namespace, each namespace holding
//! its entries by the state's key over all of the subtask's key groups (see
//! [`crate::entries::Entries`]: a few in a vector, more in a hash map), each entry with its key
//! group.
//!
//! Namespace first, because the entries of one namespace live and die together: a window
//! is created, updated and fired for all of its keys within one stretch of event time, so
//! those accesses stay in one collection however many windows are open (out-of-order input,
//! lagging watermarks), and firing a window empties it instead of probing a large per-key map
//! for each key. Across key groups, because a checkpoint hands over, and the writing side
//! reads, one object per window (see [`crate::namespaces`]); snapshots are still written per
//! key group, each namespace split by group as it is encoded (see [`crate::grouped`]). Keyed
//! state without namespaces is one namespace, split by key group once it is large.

use std::cell::OnceCell;

use weir_types::{Data, Key, KeyGroup, KeyGroupRange};

use crate::GroupEntries;
use crate::cohorts::{Cohorts, Handed};
use crate::grouped::{GroupLayout, GroupSink, encode_by_group, encode_split};
use crate::namespaces::{
    FreshNamespace, FrozenNamespace, FrozenNamespaces, Grouped, InGroup, Namespaces,
};
use crate::snapshot::{FrozenTable, Sharing};
use crate::snapshot::{append_run, append_runs_header};
use crate::{Result, StateTable, decode_entries};

/// A heap table: the namespaces of a subtask's key groups.
pub(crate) struct HeapTable<K, N, V> {
    namespaces: Namespaces<K, N, V>,
    /// What checkpoints took of it.
    cohorts: Cohorts<FreshNamespace<K, N, V>>,
}

impl<K: Key, N: Key, V: Data> HeapTable<K, N, V> {
    pub(crate) fn new(range: KeyGroupRange) -> Self {
        HeapTable { namespaces: Namespaces::new(range), cohorts: Cohorts::new(range) }
    }
}

impl<K: Key, N: Key, V: Data> StateTable<K, N, V> for HeapTable<K, N, V> {
    fn get(&self, group: KeyGroup, key: &K, namespace: &N) -> Result<Option<V>> {
        Ok(self.namespaces.get(namespace, group, key).cloned())
    }

    fn modify(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        change: &mut dyn FnMut(&mut V),
    ) -> Result<bool> {
        let value = self.namespaces.get_mut(namespace, group, key);
        Ok(value.map(change).is_some())
    }

    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V) -> Result<()> {
        self.namespaces.put(namespace, group, key, value);
        Ok(())
    }

    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Result<Option<V>> {
        Ok(self.namespaces.remove(namespace, group, key))
    }

    /// Reads every namespace for one group: snapshots take [`Self::frozen`] instead, which
    /// reads each namespace once for all groups.
    fn snapshot_group(&self, group: KeyGroup, out: &mut Vec<u8>) -> Result<bool> {
        let runs: Vec<(&N, Vec<(&K, &V)>)> = (self.namespaces.iter())
            .map(|(namespace, entries)| {
                let entries = entries.iter().filter(|(_, entry)| entry.group == group);
                (namespace, entries.map(|(key, entry)| (key, &entry.value)).collect())
            })
            .collect();
        let count = runs.iter().map(|(_, entries)| entries.len()).sum();
        if count == 0 {
            return Ok(false);
        }
        append_runs_header(out, count)?;
        for (namespace, entries) in runs {
            append_run(namespace, entries.into_iter(), out)?;
        }
        Ok(true)
    }

    fn restore_group(&mut self, group: KeyGroup, entries: &[u8]) -> Result<()> {
        let namespaces = &mut self.namespaces;
        decode_entries(entries, |key: K, namespace: N, value: V| {
            namespaces.put(&namespace, group, &key, value);
        })
    }

    fn len(&self) -> usize {
        self.namespaces.iter().map(|(_, entries)| entries.len()).sum()
    }

    fn frozen(&mut self, sharing: Sharing) -> Option<Box<dyn FrozenTable>> {
        if sharing == Sharing::Everything {
            let namespaces = self.namespaces.frozen();
            return Some(Box::new(FrozenHeapTable { namespaces, layout: OnceCell::new() }));
        }
        let (mut fresh, mut ended) = (self.cohorts.fresh(), Vec::new());
        self.namespaces.hand(&mut fresh, &mut ended);
        let empty = self.namespaces.is_empty();
        Some(Box::new(self.cohorts.hand(fresh, ended, empty)))
    }
}

impl<K: Key, N: Key, V: Data> Handed for FreshNamespace<K, N, V> {
    fn encode(&self, sink: &mut dyn GroupSink) -> Result<()> {
        split_namespace(&self.namespace, &self.entries, sink)
    }
}

/// A heap table as it was at a savepoint: every namespace's entries, shared with the live
/// table until it changes them. A namespace spanning key groups is encoded split by group on
/// first use, and that encoding kept with its entries; a split namespace's share of a group
/// (large) is encoded straight into its group's block.
struct FrozenHeapTable<K, N, V> {
    namespaces: FrozenNamespaces<K, N, V>,
    /// Where each key group's entries are, once the first was asked for.
    layout: OnceCell<FrozenLayout>,
}

/// Where a frozen heap table's entries are, by key group.
struct FrozenLayout {
    /// In the encodings of the namespaces spanning key groups.
    spanning: GroupLayout,
    /// The shares of split namespaces, by group: (group, index in the table's namespaces),
    /// in order.
    shares: Vec<(KeyGroup, usize)>,
}

impl<K: Key, N: Key, V: Data> FrozenHeapTable<K, N, V> {
    /// The encoding of namespace `index` (one spanning key groups), kept with its entries
    /// while they are unchanged.
    fn encoding(&self, index: usize) -> Result<&[u8]> {
        let FrozenNamespace { namespace, entries, .. } = &self.namespaces[index];
        entries.encoding(|entries| encode_namespace(namespace, entries))
    }

    fn layout(&self) -> Result<FrozenLayout> {
        let spanning = (0..self.namespaces.len()).filter(|&i| self.namespaces[i].group.is_none());
        let spanning = GroupLayout::of(spanning, |index| self.encoding(index))?;
        let mut shares: Vec<(KeyGroup, usize)> = (self.namespaces.iter().enumerate())
            .filter_map(|(index, frozen)| frozen.group.map(|group| (group, index)))
            .collect();
        shares.sort_unstable();
        Ok(FrozenLayout { spanning, shares })
    }
}

impl<K: Key, N: Key, V: Data> FrozenTable for FrozenHeapTable<K, N, V> {
    fn encode_group<'a>(&'a self, group: KeyGroup, out: &mut GroupEntries<'a>) -> Result<bool> {
        if self.layout.get().is_none() {
            let _ = self.layout.set(self.layout()?);
        }
        let FrozenLayout { spanning, shares } = self.layout.get().expect("set just above");
        let first = shares.partition_point(|(share, _)| *share < group);
        let shares = shares[first..].iter().take_while(|(share, _)| *share == group);
        let in_shares: usize = shares.clone().map(|(_, i)| self.namespaces[*i].entries.len()).sum();
        let count = spanning.count(group) + in_shares;
        if count == 0 {
            return Ok(false);
        }
        let out = out.bytes();
        append_runs_header(out, count)?;
        spanning.append_group(group, |index| self.encoding(index), out)?;
        for (_, index) in shares {
            let FrozenNamespace { namespace, entries, .. } = &self.namespaces[*index];
            append_run(namespace, entries.iter().map(|(key, entry)| (key, &entry.value)), out)?;
        }
        Ok(true)
    }

    fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }
}

/// One namespace's entries encoded split by key group into `sink`, one run per group.
fn split_namespace<K: Key, N: Key, V: Data>(
    namespace: &N,
    entries: &Grouped<K, V>,
    sink: &mut dyn GroupSink,
) -> Result<()> {
    let all: Vec<(&K, &InGroup<V>)> = entries.iter().collect();
    let append = |run: &[u32], out: &mut Vec<u8>| {
        let run = run.iter().map(|&index| all[index as usize]);
        append_run(namespace, run.map(|(key, entry)| (key, &entry.value)), out)
    };
    encode_split(all.len(), |index| all[index].1.group, append, sink)
}

/// One namespace's entries encoded split by key group, with a header per group.
fn encode_namespace<K: Key, N: Key, V: Data>(
    namespace: &N,
    entries: &Grouped<K, V>,
) -> Result<Vec<u8>> {
    encode_by_group(|sink| split_namespace(namespace, entries, sink))
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
        assert_eq!(table.get(4, &"a".into(), &()).unwrap(), Some(1));
        assert_eq!(table.get(7, &"a".into(), &()).unwrap(), None, "same key, other group");
        assert!(table.modify(7, &"b".into(), &(), &mut |v| *v += 10).unwrap());
        assert!(!table.modify(7, &"zz".into(), &(), &mut |v| *v += 10).unwrap());
        assert_eq!(table.remove(7, &"b".into(), &()).unwrap(), Some(12));
        assert_eq!(table.len(), 1);
        assert_eq!(table.namespaces.iter().count(), 1, "a namespace without entries ends");
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
