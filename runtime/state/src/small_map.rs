//! A map for the few entries one key usually has (its windows, its timers): a short inline
//! list searched newest first, switching to a hash map when a key collects many entries
//! (out-of-order data keeping many windows open).

use std::hash::Hash;

use hashbrown::HashMap;
use smallvec::SmallVec;

/// Entries beyond which lookups hash instead of scanning.
const INLINE_LIMIT: usize = 8;

/// A map optimised for one or a few entries.
#[derive(Clone, Debug)]
pub enum SmallMap<K, V> {
    /// Up to [`INLINE_LIMIT`] entries, newest last.
    Inline(SmallVec<[(K, V); 1]>),
    /// Many entries.
    Hashed(HashMap<K, V>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Inline(SmallVec::new())
    }
}

impl<K: Hash + Eq, V> SmallMap<K, V> {
    /// A map holding one entry.
    pub fn one(key: K, value: V) -> Self {
        SmallMap::Inline(smallvec::smallvec![(key, value)])
    }

    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        match self {
            SmallMap::Inline(entries) => {
                entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            SmallMap::Hashed(map) => map.get(key),
        }
    }

    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match self {
            SmallMap::Inline(entries) => {
                entries.iter_mut().rev().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            SmallMap::Hashed(map) => map.get_mut(key),
        }
    }

    /// Stores `value` under `key`, returning the value it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(slot) = self.get_mut(&key) {
            return Some(std::mem::replace(slot, value));
        }
        match self {
            SmallMap::Inline(entries) if entries.len() < INLINE_LIMIT => entries.push((key, value)),
            SmallMap::Inline(entries) => {
                let mut map: HashMap<K, V> = entries.drain(..).collect();
                map.insert(key, value);
                *self = SmallMap::Hashed(map);
            }
            SmallMap::Hashed(map) => {
                map.insert(key, value);
            }
        }
        None
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        match self {
            SmallMap::Inline(entries) => {
                let position = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.remove(position).1)
            }
            SmallMap::Hashed(map) => map.remove(key),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            SmallMap::Inline(entries) => entries.len(),
            SmallMap::Hashed(map) => map.len(),
        }
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map_below_and_above_the_inline_limit() {
        let mut map = SmallMap::one(0u32, "0".to_string());
        for i in 1..20u32 {
            assert_eq!(map.insert(i, i.to_string()), None);
            assert_eq!(map.len(), i as usize + 1);
            assert!(matches!(map, SmallMap::Inline(_)) == (i < INLINE_LIMIT as u32));
        }
        assert_eq!(map.insert(3, "three".into()), Some("3".to_string()));
        assert_eq!(map.get(&3).map(String::as_str), Some("three"));
        map.get_mut(&4).unwrap().push('!');
        assert_eq!(map.get(&4).map(String::as_str), Some("4!"));
        assert_eq!(map.remove(&0), Some("0".to_string()));
        assert_eq!(map.remove(&0), None);
        assert_eq!(map.get(&0), None);
        assert_eq!(map.len(), 19);
    }
}
