//! A namespace's entries by key: a short vector searched in order while there are few, a hash
//! map once there are more.
//!
//! Most namespaces hold few entries: a window's entries in one key group are the keys of that
//! group seen in the window, a handful when keys are spread over many groups. In a vector
//! they take less than half of a hash map's room (no control bytes, no empty buckets), a
//! lookup compares a few keys that sit together instead of hashing one, and reading them all
//! (a checkpoint encoding them, a window firing) follows one pointer to one stretch of memory
//! instead of two.

use std::hash::Hash;

use hashbrown::HashMap;

/// Most entries held in a vector; one more moves them into a hash map.
pub(crate) const FEW: usize = 16;

/// A namespace's entries by key.
#[derive(Clone, Debug)]
pub(crate) enum Entries<K, V> {
    /// At most [`FEW`], in the order they came (a removal moves the last into its place).
    Few(Vec<(K, V)>),
    /// More than [`FEW`] at some point.
    Many(HashMap<K, V>),
}

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries::Few(Vec::new())
    }
}

impl<K: Hash + Eq, V> Entries<K, V> {
    /// Empty, with room for `capacity` entries.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        if capacity <= FEW {
            Entries::Few(Vec::with_capacity(capacity))
        } else {
            Entries::Many(HashMap::with_capacity(capacity))
        }
    }

    /// How many entries.
    pub(crate) fn len(&self) -> usize {
        match self {
            Entries::Few(few) => few.len(),
            Entries::Many(many) => many.len(),
        }
    }

    /// Whether it has no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        match self {
            Entries::Few(few) => few.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            Entries::Many(many) => many.get(key),
        }
    }

    /// The value of `key`, to change.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match self {
            Entries::Few(few) => few.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            Entries::Many(many) => many.get_mut(key),
        }
    }

    /// Sets the value of `key`; returns the one it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(old) = self.get_mut(&key) {
            return Some(std::mem::replace(old, value));
        }
        match self {
            Entries::Few(few) if few.len() < FEW => few.push((key, value)),
            Entries::Few(few) => {
                let mut many = HashMap::with_capacity(2 * FEW);
                many.extend(few.drain(..));
                many.insert(key, value);
                *self = Entries::Many(many);
            }
            Entries::Many(many) => drop(many.insert(key, value)),
        }
        None
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        match self {
            Entries::Few(few) => {
                let at = few.iter().position(|(k, _)| k == key)?;
                Some(few.swap_remove(at).1)
            }
            Entries::Many(many) => many.remove(key),
        }
    }

    /// Calls `each` with every entry, moved out, in no particular order.
    pub(crate) fn into_each(self, mut each: impl FnMut(K, V)) {
        match self {
            Entries::Few(few) => few.into_iter().for_each(|(key, value)| each(key, value)),
            Entries::Many(many) => many.into_iter().for_each(|(key, value)| each(key, value)),
        }
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> Iter<'_, K, V> {
        match self {
            Entries::Few(few) => Iter::Few(few.iter()),
            Entries::Many(many) => Iter::Many(many.iter()),
        }
    }
}

/// The entries of [`Entries`], by reference.
#[derive(Clone)]
pub(crate) enum Iter<'a, K, V> {
    Few(std::slice::Iter<'a, (K, V)>),
    Many(hashbrown::hash_map::Iter<'a, K, V>),
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Few(few) => few.next().map(|(key, value)| (key, value)),
            Iter::Many(many) => many.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Few(few) => few.size_hint(),
            Iter::Many(many) => many.size_hint(),
        }
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as Model;

    use super::*;

    #[test]
    fn entries_move_into_a_map_past_a_few_and_stay_there() {
        let mut entries = Entries::with_capacity(2);
        for key in 0..FEW as u32 {
            assert_eq!(entries.insert(key, key * 10), None);
        }
        assert!(matches!(entries, Entries::Few(_)), "{FEW} fit in the vector");
        assert_eq!(entries.insert(3, 33), Some(30), "a key already there is replaced in place");
        assert!(matches!(entries, Entries::Few(_)));
        assert_eq!(entries.insert(FEW as u32, 0), None);
        assert!(matches!(entries, Entries::Many(_)), "one more moves them into a map");
        assert_eq!(entries.len(), FEW + 1);
        assert_eq!(entries.get(&3), Some(&33));
        for key in 0..=FEW as u32 {
            entries.remove(&key);
        }
        assert!(entries.is_empty());
        assert!(matches!(entries, Entries::Many(_)), "an emptied map keeps its room");
        assert!(matches!(Entries::<u8, u8>::with_capacity(FEW + 1), Entries::Many(_)));
    }

    #[test]
    fn entries_match_a_plain_map_under_random_operations() {
        for seed in 0..100u64 {
            let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut next = |bound: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % bound
            };
            let mut entries = Entries::default();
            let mut model = Model::new();
            for step in 0..500u64 {
                // Keys spread wider in later steps, so some runs cross into a map.
                let key = next(4 + step / 20);
                match next(5) {
                    0 | 1 => assert_eq!(entries.insert(key, step), model.insert(key, step)),
                    2 => assert_eq!(entries.remove(&key), model.remove(&key), "seed {seed}"),
                    3 => {
                        if let Some(value) = entries.get_mut(&key) {
                            *value += 1;
                        }
                        if let Some(value) = model.get_mut(&key) {
                            *value += 1;
                        }
                    }
                    _ => assert_eq!(entries.get(&key), model.get(&key), "seed {seed}"),
                }
                assert_eq!(entries.len(), model.len());
            }
            let mut all: Vec<(u64, u64)> = entries.iter().map(|(k, v)| (*k, *v)).collect();
            all.sort_unstable();
            let mut expected: Vec<(u64, u64)> = model.into_iter().collect();
            expected.sort_unstable();
            assert_eq!(all, expected, "seed {seed}");
            assert_eq!(entries.iter().len(), entries.len());
        }
    }
}
