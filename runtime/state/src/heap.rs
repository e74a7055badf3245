//! The heap backend: live objects in one hash map keyed by namespace, each namespace holding
//! its entries by the state's key over all of the subtask's key groups (see
//! [`crate::entries::Entries`]: a few in a vector, more in a hash map).
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

use weir_types::{Data, Key, KeyGroup, KeyGroupRange, KeyHasher};

use crate::GroupEntries;
use crate::cohorts::{Cohorts, Handed};
use crate::entries::Entries;
use crate::grouped::{GroupLayout, GroupSink, encode_by_group, encode_split};
use crate::namespaces::{FreshNamespace, FrozenNamespace, FrozenNamespaces, Namespaces};
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
    pub(crate) fn new(range: KeyGroupRange, max_parallelism: usize) -> Self {
        let namespaces = Namespaces::new(range, max_parallelism);
        HeapTable { namespaces, cohorts: Cohorts::new(range) }
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
        self.namespaces.put(namespace, group, key, value)
    }

    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Result<Option<V>> {
        Ok(self.namespaces.remove(namespace, group, key))
    }

    /// Reads every namespace for one group: snapshots take [`Self::frozen`] instead, which
    /// reads each namespace once for all groups.
    fn snapshot_group(&self, group: KeyGroup, out: &mut Vec<u8>) -> Result<bool> {
        let (mut hasher, max_parallelism) = (KeyHasher::new(), self.namespaces.max_parallelism());
        let mut runs: Vec<(&N, Vec<(&K, &V)>)> = Vec::new();
        for (namespace, share, entries) in self.namespaces.iter() {
            let mut in_group = Vec::new();
            for (key, value) in entries.iter() {
                let of_key = match share {
                    Some(share) => share,
                    None => hasher.key_group(key, max_parallelism)?,
                };
                if of_key == group {
                    in_group.push((key, value));
                }
            }
            runs.push((namespace, in_group));
        }
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
        let (namespaces, mut put) = (&mut self.namespaces, Ok(()));
        decode_entries(entries, |key: K, namespace: N, value: V| {
            if put.is_ok() {
                put = namespaces.put(&namespace, group, &key, value);
            }
        })?;
        put
    }

    fn len(&self) -> usize {
        self.namespaces.iter().map(|(_, _, entries)| entries.len()).sum()
    }

    fn frozen(&mut self, sharing: Sharing) -> Option<Box<dyn FrozenTable>> {
        if sharing == Sharing::Everything {
            let max_parallelism = self.namespaces.max_parallelism();
            let namespaces = self.namespaces.frozen();
            let layout = OnceCell::new();
            return Some(Box::new(FrozenHeapTable { namespaces, max_parallelism, layout }));
        }
        let (mut fresh, mut ended) = (self.cohorts.fresh(), Vec::new());
        self.namespaces.hand(&mut fresh, &mut ended);
        let empty = self.namespaces.is_empty();
        Some(Box::new(self.cohorts.hand(fresh, ended, empty)))
    }
}

impl<K: Key, N: Key, V: Data> Handed for FreshNamespace<K, N, V> {
    fn encode(&self, sink: &mut dyn GroupSink) -> Result<()> {
        let FreshNamespace { namespace, group, entries, max_parallelism } = self;
        let Some(group) = group else {
            return split_namespace(namespace, entries, *max_parallelism, sink);
        };
        // A split namespace's share of one key group: a run, in the order of its entries.
        let count = append_run(namespace, entries.iter(), sink.group(*group))?;
        sink.appended(count);
        Ok(())
    }

    /// A split namespace's share of one key group is encoded as its group is written: it may
    /// be large (a state without namespaces), and its encoding would sit beside the file.
    fn deferred(&self) -> Option<(KeyGroup, usize)> {
        self.group.map(|group| (group, self.entries.len()))
    }
}

/// A heap table as it was at a savepoint: every namespace's entries, shared with the live
/// table until it changes them. A namespace spanning key groups is encoded split by group on
/// first use, and that encoding kept with its entries; a split namespace's share of a group
/// (large) is encoded straight into its group's block.
struct FrozenHeapTable<K, N, V> {
    namespaces: FrozenNamespaces<K, N, V>,
    max_parallelism: usize,
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
        entries.encoding(|entries| encode_namespace(namespace, entries, self.max_parallelism))
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
            append_run(namespace, entries.iter(), out)?;
        }
        Ok(true)
    }

    fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }
}

/// One namespace's entries encoded split by key group into `sink`, one run per group (each
/// key's group computed from it, of `max_parallelism`).
fn split_namespace<K: Key, N: Key, V: Data>(
    namespace: &N,
    entries: &Entries<K, V>,
    max_parallelism: usize,
    sink: &mut dyn GroupSink,
) -> Result<()> {
    let all: Vec<(&K, &V)> = entries.iter().collect();
    let mut hasher = KeyHasher::new();
    let groups: Result<Vec<KeyGroup>> =
        all.iter().map(|(key, _)| Ok(hasher.key_group(*key, max_parallelism)?)).collect();
    let groups = groups?;
    let append = |run: &[u32], out: &mut Vec<u8>| {
        append_run(namespace, run.iter().map(|&index| all[index as usize]), out)
    };
    encode_split(all.len(), |index| groups[index], append, sink)
}

/// One namespace's entries encoded split by key group, with a header per group.
fn encode_namespace<K: Key, N: Key, V: Data>(
    namespace: &N,
    entries: &Entries<K, V>,
    max_parallelism: usize,
) -> Result<Vec<u8>> {
    encode_by_group(|sink| split_namespace(namespace, entries, max_parallelism, sink))
}

#[cfg(test)]
mod tests {
    use weir_types::key_group_for_key;

    use super::*;

    /// The key group of `key` among 8.
    fn group(key: &str) -> KeyGroup {
        key_group_for_key(&key.to_string(), 8).unwrap()
    }

    #[test]
    fn entries_are_reached_by_key_and_namespace_and_a_namespace_ends_with_its_last() {
        let mut table = HeapTable::<String, (), u32>::new(KeyGroupRange::for_subtask(8, 1, 0), 8);
        table.put(group("a"), &"a".into(), &(), 1).unwrap();
        table.put(group("b"), &"b".into(), &(), 2).unwrap();
        assert_eq!(table.get(group("a"), &"a".into(), &()).unwrap(), Some(1));
        assert_eq!(table.get(group("zz"), &"zz".into(), &()).unwrap(), None);
        assert!(table.modify(group("b"), &"b".into(), &(), &mut |v| *v += 10).unwrap());
        assert!(!table.modify(group("zz"), &"zz".into(), &(), &mut |v| *v += 10).unwrap());
        assert_eq!(table.remove(group("b"), &"b".into(), &()).unwrap(), Some(12));
        assert_eq!(table.len(), 1);
        table.remove(group("a"), &"a".into(), &()).unwrap();
        assert_eq!(table.namespaces.iter().count(), 0, "a namespace without entries ends");
    }

    #[test]
    fn groups_snapshot_and_restore_into_another_range() {
        let mut table = HeapTable::<String, i64, u32>::new(KeyGroupRange::for_subtask(8, 1, 0), 8);
        let keys = ["a", "b", "c", "d", "e", "f"];
        for (value, key) in (0..).zip(keys) {
            table.put(group(key), &key.into(), &10, value).unwrap();
            table.put(group(key), &key.into(), &20, value + 100).unwrap();
        }
        let mut restored =
            HeapTable::<String, i64, u32>::new(KeyGroupRange::for_subtask(8, 4, 1), 8);
        for snapshot_group in 0..8 {
            let mut block = Vec::new();
            let any = table.snapshot_group(snapshot_group, &mut block).unwrap();
            let in_group = keys.iter().filter(|key| group(key) == snapshot_group).count();
            assert_eq!(any, in_group > 0, "group {snapshot_group}");
            if (2..=3).contains(&snapshot_group) && any {
                restored.restore_group(snapshot_group, &block).unwrap();
            }
        }
        let in_range: Vec<_> = keys.iter().filter(|key| (2..=3).contains(&group(key))).collect();
        assert!(!in_range.is_empty(), "some of the keys are in groups 2 and 3");
        assert_eq!(restored.len(), 2 * in_range.len());
        for (value, key) in (0..).zip(keys) {
            let expected = (2..=3).contains(&group(key)).then_some(value + 100);
            assert_eq!(restored.get(group(key), &key.into(), &20).unwrap(), expected, "{key}");
        }
    }

    #[test]
    fn namespaces_separate_entries_of_one_key() {
        let mut table = HeapTable::<u64, i64, String>::new(KeyGroupRange::for_subtask(4, 1, 0), 4);
        let group = key_group_for_key(&1u64, 4).unwrap();
        table.put(group, &1, &10, "ten".to_string()).unwrap();
        table.put(group, &1, &20, "twenty".to_string()).unwrap();
        table.put(group, &1, &10, "TEN".to_string()).unwrap();
        assert_eq!(table.get(group, &1, &10).unwrap(), Some("TEN".into()));
        assert_eq!(table.get(group, &1, &20).unwrap(), Some("twenty".into()));
        assert_eq!(table.len(), 2);
        assert_eq!(table.remove(group, &1, &10).unwrap(), Some("TEN".into()));
        assert_eq!(table.get(group, &1, &20).unwrap(), Some("twenty".into()));
        assert_eq!(table.remove(group, &1, &10).unwrap(), None);
    }
}
