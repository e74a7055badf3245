//! The namespaces of one key group in a heap table, each with its entries by key, and a
//! memo of the namespace last reached: consecutive records mostly share one (the window
//! they fall into), so they skip the namespace lookup however many namespaces are open.
//!
//! Each namespace's entries are shared with snapshots (see [`Shareable`]), and the first
//! change to a namespace after a snapshot copies that namespace alone, and only while a
//! snapshot still holds it. A checkpoint takes only the namespaces that are new or changed
//! since the one before, and the handles of those it took before that changed or ended since
//! (see [`crate::cohorts`]): the namespaces changed since then are listed as they change, so a
//! checkpoint costs the task what changed, not the size of the state. The next checkpoint owns
//! again the entries the one before let go of, while they are recent, and shares the next
//! ones in their holders (see [`Spares`]). A savepoint takes every namespace, and keeps the
//! encoding (see [`Frozen::encoding`]) of each namespace unchanged since the snapshot before,
//! and of every small one, for the savepoints after.

use std::hash::Hash;
use std::sync::Arc;

use hashbrown::HashMap;
use weir_types::KeyGroup;

use crate::cohorts::{Changes, Fresh, Handle};
use crate::entries::Entries;
use crate::{Frozen, Shareable, Spares};

/// A namespace's entries, shared with the snapshots taken since it last changed.
type Held<K, V> = Shareable<Entries<K, V>>;

/// Namespaces with their entries as a snapshot holds them.
pub(crate) type FrozenNamespaces<K, N, V> = Vec<FrozenNamespace<K, N, V>>;

/// One namespace's entries as a snapshot holds them.
pub(crate) struct FrozenNamespace<K, N, V> {
    pub(crate) namespace: N,
    pub(crate) entries: Arc<Frozen<Entries<K, V>>>,
    /// Unchanged since the snapshot before, or small: worth keeping the encoding of.
    pub(crate) keep_encoding: bool,
}

/// Namespaces of at most this many entries keep their encoding even when they changed since
/// the snapshot before (see the module's documentation).
const SMALL_NAMESPACE: usize = 1024;

/// One namespace's entries as a checkpoint takes them.
pub(crate) struct FreshNamespace<K, N, V> {
    pub(crate) group: KeyGroup,
    pub(crate) namespace: N,
    pub(crate) entries: Arc<Frozen<Entries<K, V>>>,
    /// How many entries: counted when handed, while the task has them at hand, so that the
    /// writing side lays out its parts without reaching the entries' holder.
    pub(crate) len: usize,
}

/// A namespace in use or free, with its handle in the cohort of the checkpoint that took it,
/// while unchanged since.
struct Slot<K, N, V> {
    namespace: N,
    entries: Held<K, V>,
    handle: Option<Handle>,
}

/// Namespaces and their entries; a namespace exists while it has entries.
pub(crate) struct Namespaces<K, N, V> {
    /// Where each namespace's entries sit in `slots`.
    index: HashMap<N, usize>,
    /// Namespaces with their entries; those listed in `free` are unused (their namespace
    /// ended) and keep their capacity for the next one, up to as many as are in use.
    slots: Vec<Slot<K, N, V>>,
    free: Vec<usize>,
    /// Slots whose namespace is new or changed since the last checkpoint took it, and the
    /// handles of those it took that changed or ended since.
    changes: Changes<usize>,
    /// The namespace last reached mutably and its slot, while it exists; kept here rather
    /// than read from `slots`, so checking it costs no trip to the slot.
    last: Option<(N, usize)>,
    /// Slots whose entries a checkpoint took and may still share: owned again at the next
    /// checkpoint if it let go of them meanwhile, while they are recent (not when they
    /// next change, maybe long after: a window waiting for a lagging watermark).
    handed: Vec<usize>,
    /// Holders of entries that checkpoints let go of, for the entries handed next.
    spares: Spares<Entries<K, V>>,
}

impl<K, N, V> Default for Namespaces<K, N, V> {
    fn default() -> Self {
        Namespaces {
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            changes: Changes::default(),
            last: None,
            handed: Vec::new(),
            spares: Spares::default(),
        }
    }
}

impl<K: Hash + Eq + Clone, N: Hash + Eq + Clone, V: Clone> Namespaces<K, N, V> {
    fn slot(&self, namespace: &N) -> Option<usize> {
        match &self.last {
            Some((last, slot)) if last == namespace => Some(*slot),
            _ => self.index.get(namespace).copied(),
        }
    }

    /// The entries of `namespace`.
    pub(crate) fn get(&self, namespace: &N) -> Option<&Entries<K, V>> {
        self.slot(namespace).map(|slot| &*self.slots[slot].entries)
    }

    /// The entries of `namespace`, mutably, remembered for the next access.
    pub(crate) fn get_mut(&mut self, namespace: &N) -> Option<&mut Entries<K, V>> {
        let slot = self.slot(namespace)?;
        self.remember(namespace, slot);
        Some(self.to_mut(slot))
    }

    /// The entries of `namespace`, created empty if it has none.
    pub(crate) fn get_or_insert(&mut self, namespace: &N) -> &mut Entries<K, V> {
        let slot = match self.slot(namespace) {
            Some(slot) => slot,
            None => {
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.slots[slot].namespace = namespace.clone();
                        slot
                    }
                    None => {
                        // Sized as the namespace last reached: a group's windows mostly hold
                        // the same keys, and a map grown entry by entry rehashes on the way.
                        let size = (self.last.as_ref())
                            .map_or(0, |(_, last)| self.slots[*last].entries.len());
                        let entries = Held::Owned(Entries::with_capacity(size));
                        let namespace = namespace.clone();
                        self.slots.push(Slot { namespace, entries, handle: None });
                        self.slots.len() - 1
                    }
                };
                self.index.insert(namespace.clone(), slot);
                self.changes.created(slot);
                slot
            }
        };
        self.remember(namespace, slot);
        self.to_mut(slot)
    }

    /// The entries of `slot` to change: a checkpoint that took them no longer holds them as
    /// they are.
    #[inline]
    fn to_mut(&mut self, slot: usize) -> &mut Entries<K, V> {
        let Slot { entries, handle, .. } = &mut self.slots[slot];
        self.changes.changing(handle, slot);
        entries.to_mut()
    }

    fn remember(&mut self, namespace: &N, slot: usize) {
        if !matches!(&self.last, Some((_, last)) if *last == slot) {
            self.last = Some((namespace.clone(), slot));
        }
    }

    /// Removes `key` from `namespace`; the namespace ends with its last entry.
    pub(crate) fn remove(&mut self, namespace: &N, key: &K) -> Option<V> {
        let slot = self.slot(namespace)?;
        if !self.slots[slot].entries.contains_key(key) {
            return None;
        }
        let entries = self.to_mut(slot);
        let removed = entries.remove(key);
        if !entries.is_empty() {
            // Firing a window removes its keys one after another.
            self.remember(namespace, slot);
        } else {
            self.index.remove(namespace);
            if matches!(self.last, Some((_, last)) if last == slot) {
                self.last = None;
            }
            if self.free.len() >= self.index.len() {
                self.slots[slot].entries = Held::default(); // enough spare capacity kept
            }
            self.free.push(slot);
        }
        removed
    }

    /// Every namespace with its entries.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&N, &Entries<K, V>)> + Clone {
        self.index.values().map(|&slot| (&self.slots[slot].namespace, &*self.slots[slot].entries))
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
        group: KeyGroup,
        fresh: &mut Fresh<FreshNamespace<K, N, V>>,
        ended: &mut Vec<Handle>,
    ) {
        self.reclaim_handed();
        let changed = self.changes.take(ended).unwrap_or_else(|| (0..self.slots.len()).collect());
        for slot in changed {
            let Slot { namespace, entries, handle } = &mut self.slots[slot];
            if handle.is_some() || entries.is_empty() {
                continue; // taken already (listed twice), or free
            }
            let (namespace, len) = (namespace.clone(), entries.len());
            let entries = entries.share_with(&mut self.spares);
            *handle = Some(fresh.add(FreshNamespace { group, namespace, entries, len }));
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
        let mut frozen = Vec::with_capacity(self.index.len());
        for Slot { namespace, entries, .. } in &mut self.slots {
            if entries.is_empty() {
                continue; // a free slot: a namespace exists while it has entries
            }
            let keep_encoding = entries.is_shared() || entries.len() <= SMALL_NAMESPACE;
            frozen.push(FrozenNamespace {
                namespace: namespace.clone(),
                entries: entries.share(),
                keep_encoding,
            });
        }
        frozen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cohorts::Cohorts;

    #[test]
    fn namespaces_end_with_their_last_entry_and_their_slots_are_reused() {
        let mut namespaces = Namespaces::<&str, u32, u32>::default();
        namespaces.get_or_insert(&1).insert("a", 10);
        namespaces.get_or_insert(&2).insert("a", 20);
        namespaces.get_or_insert(&1).insert("b", 11);
        assert_eq!(namespaces.get(&1).map(Entries::len), Some(2));
        assert_eq!(namespaces.remove(&1, &"a"), Some(10));
        assert_eq!(namespaces.remove(&1, &"b"), Some(11));
        assert!(namespaces.get(&1).is_none(), "the memo does not outlive its namespace");
        assert!(namespaces.get_mut(&1).is_none());
        assert_eq!(namespaces.remove(&1, &"b"), None);
        namespaces.get_or_insert(&3).insert("c", 30);
        assert_eq!(namespaces.slots.len(), 2, "the ended namespace's slot is reused");
        assert_eq!(namespaces.get(&2).and_then(|e| e.get(&"a")), Some(&20));
        let mut all: Vec<_> = namespaces.iter().map(|(n, e)| (*n, e.len())).collect();
        all.sort();
        assert_eq!(all, vec![(2, 1), (3, 1)]);
    }

    #[test]
    fn entries_a_checkpoint_let_go_of_are_owned_again_at_the_next_and_their_holder_reused() {
        let cohorts = Cohorts::new(weir_types::KeyGroupRange::for_subtask(1, 1, 0));
        let mut namespaces = Namespaces::<u64, u32, u32>::default();
        namespaces.get_or_insert(&1).insert(7, 10);
        let holder = |namespaces: &Namespaces<u64, u32, u32>, slot: usize| match &namespaces.slots
            [slot]
            .entries
        {
            Shareable::Shared(shared) => Some(Arc::as_ptr(shared)),
            Shareable::Owned(_) => None,
        };
        let mut first = cohorts.fresh();
        namespaces.hand(0, &mut first, &mut Vec::new());
        let taken = holder(&namespaces, 0).expect("shared with the checkpoint");
        let mut second = cohorts.fresh();
        namespaces.hand(0, &mut second, &mut Vec::new());
        assert_eq!(holder(&namespaces, 0), Some(taken), "still held by the first checkpoint");
        drop(first); // the checkpoint completed and let go of it
        namespaces.get_or_insert(&2).insert(8, 20);
        namespaces.hand(0, &mut cohorts.fresh(), &mut Vec::new());
        assert_eq!(holder(&namespaces, 0), None, "owned again");
        assert_eq!(holder(&namespaces, 1), Some(taken), "its holder holds the new namespace");
        assert_eq!(namespaces.get(&1).and_then(|e| e.get(&7)), Some(&10));
        assert_eq!(namespaces.get(&2).and_then(|e| e.get(&8)), Some(&20));
    }
}

#[cfg(test)]
mod fuzz {
    use std::collections::HashMap as Model;

    use super::*;

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
            let mut namespaces = Namespaces::<u8, u8, u32>::default();
            let mut model: Model<(u8, u8), u32> = Model::new();
            for step in 0..2000u32 {
                let (n, k) = (next(6), next(4));
                match next(4) {
                    0 => {
                        namespaces.get_or_insert(&n).insert(k, step);
                        model.insert((n, k), step);
                    }
                    1 => {
                        assert_eq!(namespaces.remove(&n, &k), model.remove(&(n, k)), "seed {seed}")
                    }
                    2 => {
                        if let Some(v) = namespaces.get_mut(&n).and_then(|e| e.get_mut(&k)) {
                            *v += 1;
                        }
                        if let Some(v) = model.get_mut(&(n, k)) {
                            *v += 1;
                        }
                    }
                    _ => assert_eq!(
                        namespaces.get(&n).and_then(|e| e.get(&k)),
                        model.get(&(n, k)),
                        "seed {seed} step {step}"
                    ),
                }
            }
        }
    }
}
