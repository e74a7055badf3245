//! The namespaces of a heap table with their entries by key, and a memo of the namespace last
//! reached: consecutive records mostly share one (the window they fall into), so they skip
//! the namespace lookup however many namespaces are open.
//!
//! A namespace spans key groups while it is small: a window's entries for every key of the
//! subtask sit in one collection, so a checkpoint shares, hands over and owns again one object
//! per window, not one per window and key group (128 key groups over two subtasks made 64
//! objects of a few entries each), and the writing side reads each window once, splitting it
//! by key group as it encodes it (see [`crate::grouped`]). Past [`SPLIT_AT`] entries a
//! namespace is split, one collection per key group (a state without namespaces, a global
//! window), so that a change copies and a checkpoint writes again one group's entries, not all.
//! An entry's key group is not kept with it (the room a value takes in a hash map's bucket
//! counts on the hot path): it is computed from its key when a namespace spanning groups is
//! encoded or split, as records are routed (see [`KeyHasher`]). The group a caller passes
//! picks a split namespace's collection; a namespace spanning groups holds a key's entry
//! whatever the group given (a key has one group).
//!
//! Each collection is shared with snapshots (see [`Shareable`]), and the first change to it
//! after a snapshot copies it alone, and only while a snapshot still holds it. A checkpoint
//! takes only the collections that are new or changed since the one before, and the handles
//! of those it took before that changed or ended since (see [`crate::cohorts`]): the
//! collections changed since then are listed as they change, so a checkpoint costs the task
//! what changed, not the size of the state. The next checkpoint owns again the entries the one
//! before let go of, while they are recent, and shares the next ones in their holders (see
//! [`Spares`]). A savepoint takes every collection; each keeps its encoding (see
//! [`Frozen::encoding`]) with its shared entries, for the savepoints after that find it
//! unchanged.

use std::hash::Hash;
use std::sync::Arc;

use hashbrown::HashMap;
use weir_types::{Key, KeyGroup, KeyGroupRange, KeyHasher};

use crate::cohorts::{Changes, Fresh, Handle};
use crate::entries::Entries;
use crate::{Frozen, Result, Shareable, Spares};

/// A collection of entries, shared with the snapshots taken since it last changed.
type Held<K, V> = Shareable<Entries<K, V>>;

/// Collections of entries as a snapshot holds them.
pub(crate) type FrozenNamespaces<K, N, V> = Vec<FrozenNamespace<K, N, V>>;

/// One collection of a namespace's entries as a snapshot holds it.
pub(crate) struct FrozenNamespace<K, N, V> {
    pub(crate) namespace: N,
    /// The one key group of its entries, if it is a split namespace's share of that group.
    pub(crate) group: Option<KeyGroup>,
    pub(crate) entries: Arc<Frozen<Entries<K, V>>>,
}

/// A namespace spanning key groups is split by group when it holds this many entries.
const SPLIT_AT: usize = 1024;

/// One collection of a namespace's entries as a checkpoint takes it.
pub(crate) struct FreshNamespace<K, N, V> {
    pub(crate) namespace: N,
    /// The one key group of its entries, if it is a split namespace's share of that group.
    pub(crate) group: Option<KeyGroup>,
    pub(crate) entries: Arc<Frozen<Entries<K, V>>>,
    /// The number of key groups, to compute its keys' groups.
    pub(crate) max_parallelism: usize,
}

/// A collection in use or free, with its handle in the cohort of the checkpoint that took it,
/// while unchanged since.
struct Slot<K, N, V> {
    namespace: N,
    /// The one key group of its entries, if it is a split namespace's share of that group.
    group: Option<KeyGroup>,
    entries: Held<K, V>,
    handle: Option<Handle>,
}

/// Where a namespace's entries are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// In one slot, over all key groups.
    Whole(usize),
    /// Split by key group: in `splits` at this index.
    Split(usize),
}

/// A namespace split by key group: the slot of each group's entries, by the group's offset in
/// the table's range.
struct Split {
    slots: Vec<Option<usize>>,
    in_use: usize,
}

/// Namespaces and their entries; a namespace exists while it has entries.
pub(crate) struct Namespaces<K, N, V> {
    range: KeyGroupRange,
    /// Where each namespace's entries are.
    index: HashMap<N, Place>,
    /// Split namespaces; those listed in `free_splits` are unused.
    splits: Vec<Split>,
    free_splits: Vec<usize>,
    /// Collections of entries; those listed in `free` are unused (their namespace ended, or
    /// was split) and keep their capacity for the next one, up to as many as are in use.
    slots: Vec<Slot<K, N, V>>,
    free: Vec<usize>,
    /// Slots that are new or changed since the last checkpoint took them, and the handles of
    /// those it took that changed or ended since.
    changes: Changes<usize>,
    /// The namespace last reached mutably and where it is, while it exists; kept here rather
    /// than read from `slots`, so checking it costs no trip to the slot.
    last: Option<(N, Place)>,
    /// Slots whose entries a checkpoint took and may still share: owned again at the next
    /// checkpoint if it let go of them meanwhile, while they are recent (not when they
    /// next change, maybe long after: a window waiting for a lagging watermark).
    handed: Vec<usize>,
    /// Holders of entries that checkpoints let go of, for the entries handed next.
    spares: Spares<Entries<K, V>>,
    /// [`SPLIT_AT`], smaller in tests.
    split_at: usize,
    /// The number of key groups, and a hasher of keys to theirs.
    max_parallelism: usize,
    hasher: KeyHasher,
}

impl<K: Key, N: Hash + Eq + Clone, V: Clone> Namespaces<K, N, V> {
    /// No namespace, for a table owning the key groups of `range` of `max_parallelism`.
    pub(crate) fn new(range: KeyGroupRange, max_parallelism: usize) -> Self {
        Namespaces {
            range,
            max_parallelism,
            hasher: KeyHasher::new(),
            index: HashMap::new(),
            splits: Vec::new(),
            free_splits: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            changes: Changes::default(),
            last: None,
            handed: Vec::new(),
            spares: Spares::default(),
            split_at: SPLIT_AT,
        }
    }

    #[inline]
    fn place(&self, namespace: &N) -> Option<Place> {
        match &self.last {
            Some((last, place)) if last == namespace => Some(*place),
            _ => self.index.get(namespace).copied(),
        }
    }

    /// The slot holding `group`'s entries of the namespace at `place`, if any.
    #[inline]
    fn slot_of(&self, place: Place, group: KeyGroup) -> Option<usize> {
        match place {
            Place::Whole(slot) => Some(slot),
            Place::Split(split) => self.splits[split].slots[self.range.offset(group)],
        }
    }

    /// The number of key groups.
    pub(crate) fn max_parallelism(&self) -> usize {
        self.max_parallelism
    }

    /// The value of `key` (of `group`) in `namespace`.
    #[inline]
    pub(crate) fn get(&self, namespace: &N, group: KeyGroup, key: &K) -> Option<&V> {
        let slot = self.slot_of(self.place(namespace)?, group)?;
        self.slots[slot].entries.get(key)
    }

    /// The value of `key` (of `group`) in `namespace`, to change; the namespace is remembered
    /// for the next access.
    #[inline]
    pub(crate) fn get_mut(&mut self, namespace: &N, group: KeyGroup, key: &K) -> Option<&mut V> {
        let place = self.place(namespace)?;
        self.remember(namespace, place);
        let slot = self.slot_of(place, group)?;
        self.to_mut(slot).get_mut(key)
    }

    /// Sets the value of `key` (of `group`) in `namespace`, creating the namespace if it has
    /// no entry yet.
    pub(crate) fn put(&mut self, namespace: &N, group: KeyGroup, key: &K, value: V) -> Result<()> {
        let slot = self.slot_for(namespace, group)?;
        let entries = self.to_mut(slot);
        match entries.get_mut(key) {
            Some(slot) => *slot = value,
            None => drop(entries.insert(key.clone(), value)),
        }
        Ok(())
    }

    /// The slot for entries of `group` in `namespace`: created if it has none, split first if
    /// it spans key groups and is large.
    #[inline]
    fn slot_for(&mut self, namespace: &N, group: KeyGroup) -> Result<usize> {
        let place = match self.place(namespace) {
            Some(Place::Whole(slot)) if self.slots[slot].entries.len() >= self.split_at => {
                self.split(namespace, slot)?
            }
            Some(place) => place,
            None => {
                // Sized as the namespace last reached: a subtask's windows mostly hold the
                // same keys, and a map grown entry by entry rehashes on the way.
                let size = match self.last {
                    Some((_, Place::Whole(last))) => self.slots[last].entries.len(),
                    _ => 0,
                };
                let place = Place::Whole(self.new_slot(namespace, None, size));
                self.index.insert(namespace.clone(), place);
                place
            }
        };
        self.remember(namespace, place);
        Ok(match place {
            Place::Whole(slot) => slot,
            Place::Split(split) => self.group_slot(split, namespace, group),
        })
    }

    /// A slot for new entries of `namespace` (of `group` only, if given), with room for
    /// `size` if it has none.
    fn new_slot(&mut self, namespace: &N, group: Option<KeyGroup>, size: usize) -> usize {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot].namespace = namespace.clone();
                self.slots[slot].group = group;
                slot
            }
            None => {
                let entries = Held::Owned(Entries::with_capacity(size.min(self.split_at)));
                let namespace = namespace.clone();
                self.slots.push(Slot { namespace, group, entries, handle: None });
                self.slots.len() - 1
            }
        };
        self.changes.created(slot);
        slot
    }

    /// Splits the entries of `namespace`, all in `slot`, by key group (an error if a key's
    /// group cannot be computed: the entries stay where they are then).
    #[cold]
    fn split(&mut self, namespace: &N, slot: usize) -> Result<Place> {
        let mut moved = Vec::with_capacity(self.slots[slot].entries.len());
        std::mem::take(self.to_mut(slot)).into_each(|key, value| moved.push((key, value)));
        let (hasher, max_parallelism) = (&mut self.hasher, self.max_parallelism);
        let groups: Result<Vec<KeyGroup>> =
            moved.iter().map(|(key, _)| Ok(hasher.key_group(key, max_parallelism)?)).collect();
        let groups = match groups {
            Ok(groups) => groups,
            Err(error) => {
                let entries = self.to_mut(slot);
                moved.into_iter().for_each(|(key, value)| drop(entries.insert(key, value)));
                return Err(error);
            }
        };
        self.free.push(slot);
        let slots = vec![None; self.range.len()];
        let split = match self.free_splits.pop() {
            Some(split) => {
                self.splits[split] = Split { slots, in_use: 0 };
                split
            }
            None => {
                self.splits.push(Split { slots, in_use: 0 });
                self.splits.len() - 1
            }
        };
        let place = Place::Split(split);
        self.index.insert(namespace.clone(), place);
        self.remember(namespace, place);
        for ((key, value), group) in moved.into_iter().zip(groups) {
            let slot = self.group_slot(split, namespace, group);
            self.to_mut(slot).insert(key, value);
        }
        Ok(place)
    }

    /// The slot of `group`'s entries of split namespace `namespace` (`split` in `splits`),
    /// created if it has none.
    #[inline]
    fn group_slot(&mut self, split: usize, namespace: &N, group: KeyGroup) -> usize {
        let offset = self.range.offset(group);
        if let Some(slot) = self.splits[split].slots[offset] {
            return slot;
        }
        let slot = self.new_slot(namespace, Some(group), 0);
        let split = &mut self.splits[split];
        split.slots[offset] = Some(slot);
        split.in_use += 1;
        slot
    }

    /// The entries of `slot` to change: a checkpoint that took them no longer holds them as
    /// they are.
    #[inline]
    fn to_mut(&mut self, slot: usize) -> &mut Entries<K, V> {
        let Slot { entries, handle, .. } = &mut self.slots[slot];
        self.changes.changing(handle, slot);
        entries.to_mut()
    }

    fn remember(&mut self, namespace: &N, place: Place) {
        if !matches!(&self.last, Some((_, last)) if *last == place) {
            self.last = Some((namespace.clone(), place));
        }
    }

    /// Removes `key` from `namespace` if it is in `group`; the namespace ends with its last
    /// entry.
    pub(crate) fn remove(&mut self, namespace: &N, group: KeyGroup, key: &K) -> Option<V> {
        let place = self.place(namespace)?;
        let slot = self.slot_of(place, group)?;
        self.slots[slot].entries.get(key)?;
        let entries = self.to_mut(slot);
        let removed = entries.remove(key);
        if !entries.is_empty() {
            // Firing a window removes its keys one after another.
            self.remember(namespace, place);
            return removed;
        }
        self.free_slot(slot);
        let ended = match place {
            Place::Whole(_) => true,
            Place::Split(index) => {
                let split = &mut self.splits[index];
                split.slots[self.range.offset(group)] = None;
                split.in_use -= 1;
                if split.in_use == 0 {
                    self.free_splits.push(index);
                }
                split.in_use == 0
            }
        };
        if ended {
            self.index.remove(namespace);
            if matches!(self.last, Some((_, last)) if last == place) {
                self.last = None;
            }
        } else {
            self.remember(namespace, place);
        }
        removed
    }

    /// Lists emptied `slot` as free, keeping its capacity while there are no more free
    /// slots than slots in use.
    fn free_slot(&mut self, slot: usize) {
        if 2 * self.free.len() >= self.slots.len() {
            self.slots[slot].entries = Held::default(); // enough spare capacity kept
        }
        self.free.push(slot);
    }

    /// Every collection of entries with its namespace and, for a split namespace's share of
    /// one key group, that group.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&N, Option<KeyGroup>, &Entries<K, V>)> {
        let in_use = self.slots.iter().filter(|slot| !slot.entries.is_empty());
        in_use.map(|slot| (&slot.namespace, slot.group, &*slot.entries))
    }

    /// Whether it has no namespace.
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Adds the namespaces new or changed since the last checkpoint took them to `fresh`, the
    /// cohort of the checkpoint being taken, shared until they change, and the handles of
    /// those that changed or ended since to `ended`.
    pub(crate) fn hand(
        &mut self,
        fresh: &mut Fresh<FreshNamespace<K, N, V>>,
        ended: &mut Vec<Handle>,
    ) {
        self.reclaim_handed();
        let changed = self.changes.take(ended).unwrap_or_else(|| (0..self.slots.len()).collect());
        for slot in changed {
            let Slot { namespace, group, entries, handle } = &mut self.slots[slot];
            if handle.is_some() || entries.is_empty() {
                continue; // taken already (listed twice), or free
            }
            let namespace = namespace.clone();
            let entries = entries.share_with(&mut self.spares);
            let group = *group;
            let max_parallelism = self.max_parallelism;
            let fresh_namespace = FreshNamespace { namespace, group, entries, max_parallelism };
            *handle = Some(fresh.add(fresh_namespace));
            self.handed.push(slot);
        }
        self.spares.keep(self.handed.len());
    }

    /// Owns again the entries that earlier checkpoints took and let go of since, keeping
    /// their holders for the entries handed next.
    fn reclaim_handed(&mut self) {
        let (slots, spares) = (&mut self.slots, &mut self.spares);
        self.handed.retain(|&slot| !slots[slot].entries.reclaim(spares));
    }

    /// Every namespace with its entries as they are now, shared until they change; in the
    /// order of their slots, which mostly follows the order they were created in.
    pub(crate) fn frozen(&mut self) -> FrozenNamespaces<K, N, V> {
        let in_use = self.slots.iter_mut().filter(|slot| !slot.entries.is_empty());
        in_use
            .map(|Slot { namespace, group, entries, .. }| FrozenNamespace {
                namespace: namespace.clone(),
                group: *group,
                entries: entries.share(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use weir_types::key_group_for_key;

    use super::*;
    use crate::cohorts::Cohorts;

    /// A table of key groups 0..4 of 4, whose namespaces split at `split_at` entries.
    pub(super) fn namespaces<K: Key, N: Hash + Eq + Clone, V: Clone>(
        split_at: usize,
    ) -> Namespaces<K, N, V> {
        Namespaces { split_at, ..Namespaces::new(KeyGroupRange::for_subtask(4, 1, 0), 4) }
    }

    /// The key group of `key` among 4.
    pub(super) fn group<K: Key>(key: &K) -> KeyGroup {
        key_group_for_key(key, 4).unwrap()
    }

    #[test]
    fn namespaces_end_with_their_last_entry_and_their_slots_are_reused() {
        let mut namespaces = namespaces::<u32, u32, u32>(SPLIT_AT);
        let (a, b, c) = (1, 2, 3);
        namespaces.put(&1, group(&a), &a, 10).unwrap();
        namespaces.put(&2, group(&a), &a, 20).unwrap();
        namespaces.put(&1, group(&b), &b, 11).unwrap();
        assert_eq!(namespaces.get(&1, group(&b), &b), Some(&11));
        assert_eq!(namespaces.slots.len(), 2, "a namespace spans key groups");
        assert_eq!(namespaces.remove(&1, group(&a), &a), Some(10));
        assert_eq!(namespaces.remove(&1, group(&b), &b), Some(11));
        assert!(namespaces.get(&1, group(&b), &b).is_none(), "the memo does not outlive it");
        assert!(namespaces.get_mut(&1, group(&b), &b).is_none());
        assert_eq!(namespaces.remove(&1, group(&b), &b), None);
        namespaces.put(&3, group(&c), &c, 30).unwrap();
        assert_eq!(namespaces.slots.len(), 2, "the ended namespace's slot is reused");
        assert_eq!(namespaces.get(&2, group(&a), &a), Some(&20));
        let mut all: Vec<_> = namespaces.iter().map(|(n, _, e)| (*n, e.len())).collect();
        all.sort();
        assert_eq!(all, vec![(2, 1), (3, 1)]);
    }

    #[test]
    fn a_large_namespace_is_split_by_key_group_and_ends_with_its_last_group() {
        let mut namespaces = namespaces::<u32, (), u32>(6);
        // Seven keys over all four groups.
        let keys: Vec<u32> = (0..100).filter(|key| group(key) != group(&0)).take(4).collect();
        let keys: Vec<u32> = [0, 100, 200].into_iter().chain(keys).collect();
        let mut groups: Vec<KeyGroup> = keys.iter().map(group).collect();
        groups.sort_unstable();
        groups.dedup();
        for (value, key) in (0..).zip(&keys[..6]) {
            namespaces.put(&(), group(key), key, value).unwrap();
        }
        assert_eq!(namespaces.iter().count(), 1, "six entries span the groups");
        let savepoint = namespaces.frozen();
        namespaces.put(&(), group(&keys[6]), &keys[6], 6).unwrap();
        let shares: Vec<_> = namespaces.iter().map(|(_, share, _)| share).collect();
        assert_eq!(shares.len(), groups.len(), "split by group at the seventh");
        assert_eq!(namespaces.iter().map(|(_, _, entries)| entries.len()).sum::<usize>(), 7);
        assert_eq!(savepoint[0].entries.len(), 6, "the savepoint keeps them as it took them");
        assert_eq!(savepoint[0].group, None, "they spanned key groups");
        let mut frozen: Vec<_> = namespaces.frozen().iter().map(|frozen| frozen.group).collect();
        frozen.sort_unstable();
        assert_eq!(frozen, groups.iter().copied().map(Some).collect::<Vec<_>>());
        for (value, key) in (0..).zip(&keys) {
            assert_eq!(namespaces.get(&(), group(key), key), Some(&value));
        }
        *namespaces.get_mut(&(), group(&keys[5]), &keys[5]).unwrap() += 10;
        assert_eq!(namespaces.get(&(), group(&keys[5]), &keys[5]), Some(&15));
        for (value, key) in (0..).zip(&keys) {
            assert!(!namespaces.is_empty(), "key {key}");
            let expected = value + if value == 5 { 10 } else { 0 };
            assert_eq!(namespaces.remove(&(), group(key), key), Some(expected));
        }
        assert!(namespaces.is_empty() && namespaces.iter().next().is_none());
        namespaces.put(&(), group(&9), &9, 90).unwrap();
        assert_eq!(namespaces.get(&(), group(&9), &9), Some(&90));
        assert!(matches!(namespaces.index.get(&()), Some(Place::Whole(_))), "spans again");
    }

    #[test]
    fn entries_a_checkpoint_let_go_of_are_owned_again_at_the_next_and_their_holder_reused() {
        let cohorts = Cohorts::new(KeyGroupRange::for_subtask(4, 1, 0));
        let mut namespaces = namespaces::<u64, u32, u32>(SPLIT_AT);
        namespaces.put(&1, group(&7), &7, 10).unwrap();
        let holder = |namespaces: &Namespaces<u64, u32, u32>, slot: usize| match &namespaces.slots
            [slot]
            .entries
        {
            Shareable::Shared(shared) => Some(Arc::as_ptr(shared)),
            Shareable::Owned(_) => None,
        };
        let mut first = cohorts.fresh();
        namespaces.hand(&mut first, &mut Vec::new());
        let taken = holder(&namespaces, 0).expect("shared with the checkpoint");
        let mut second = cohorts.fresh();
        namespaces.hand(&mut second, &mut Vec::new());
        assert_eq!(holder(&namespaces, 0), Some(taken), "still held by the first checkpoint");
        drop(first); // the checkpoint completed and let go of it
        namespaces.put(&2, group(&8), &8, 20).unwrap();
        namespaces.hand(&mut cohorts.fresh(), &mut Vec::new());
        assert_eq!(holder(&namespaces, 0), None, "owned again");
        assert_eq!(holder(&namespaces, 1), Some(taken), "its holder holds the new namespace");
        assert_eq!(namespaces.get(&1, group(&7), &7), Some(&10));
        assert_eq!(namespaces.get(&2, group(&8), &8), Some(&20));
    }
}

#[cfg(test)]
mod fuzz {
    use std::collections::HashMap as Model;

    use super::*;
    use crate::cohorts::Cohorts;

    #[test]
    fn namespaces_match_a_plain_map_under_random_operations() {
        for seed in 0..200u64 {
            let mut state: u64 = seed * 2_654_435_761 + 1;
            let mut next = |bound: u8| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 33) % u64::from(bound)) as u8
            };
            // Namespaces split at 3 to 6 entries (of 8 keys over 4 groups), or never.
            let split_at = if seed % 5 == 0 { SPLIT_AT } else { 3 + (seed % 4) as usize };
            let range = KeyGroupRange::for_subtask(4, 1, 0);
            let mut namespaces =
                Namespaces::<u8, u8, u32> { split_at, ..Namespaces::new(range, 4) };
            let cohorts = Cohorts::new(range);
            let mut taken = Vec::new();
            let mut model: Model<(u8, u8), u32> = Model::new();
            for step in 0..2000u32 {
                let (n, k) = (next(6), next(8));
                let group = super::tests::group(&k);
                match next(5) {
                    0 => {
                        namespaces.put(&n, group, &k, step).unwrap();
                        model.insert((n, k), step);
                    }
                    1 => {
                        let removed = namespaces.remove(&n, group, &k);
                        assert_eq!(removed, model.remove(&(n, k)), "seed {seed}")
                    }
                    2 => {
                        if let Some(v) = namespaces.get_mut(&n, group, &k) {
                            *v += 1;
                        }
                        if let Some(v) = model.get_mut(&(n, k)) {
                            *v += 1;
                        }
                    }
                    3 if step % 50 == 0 => {
                        // A checkpoint takes what changed; the oldest one lets go.
                        let mut fresh = cohorts.fresh();
                        namespaces.hand(&mut fresh, &mut Vec::new());
                        taken.push(fresh);
                        if taken.len() > 2 {
                            taken.remove(0);
                        }
                    }
                    _ => assert_eq!(
                        namespaces.get(&n, group, &k),
                        model.get(&(n, k)),
                        "seed {seed} step {step}"
                    ),
                }
            }
            let mut all: Vec<((u8, u8), u32)> = (namespaces.iter())
                .flat_map(|(n, _, entries)| entries.iter().map(|(k, v)| ((*n, *k), *v)))
                .collect();
            all.sort_unstable();
            let mut expected: Vec<_> = model.into_iter().collect();
            expected.sort_unstable();
            assert_eq!(all, expected, "seed {seed}");
        }
    }
}
