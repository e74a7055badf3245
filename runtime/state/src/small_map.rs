//! A map for the entries of one key (its windows, its timers): the most recently added entry
//! sits inline, where the key's lookup lands anyway, and older entries in a short list that
//! becomes a hash map when a key collects many of them (out-of-order data, long lateness).
//!
//! In-order streams touch the newest window of a key for almost every record, so the common
//! lookup costs no memory access beyond the key's own entry.

use std::hash::Hash;

use hashbrown::HashMap;

/// Older entries beyond which lookups hash instead of scanning.
const LIST_LIMIT: usize = 8;

/// A map optimised for one hot entry and a few others.
#[derive(Clone, Debug)]
pub struct SmallMap<K, V> {
    newest: Option<(K, V)>,
    older: Older<K, V>,
}

#[derive(Clone, Debug)]
enum Older<K, V> {
    List(Vec<(K, V)>),
    Hashed(HashMap<K, V>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap { newest: None, older: Older::List(Vec::new()) }
    }
}

impl<K: Hash + Eq, V> SmallMap<K, V> {
    /// A map holding one entry.
    pub fn one(key: K, value: V) -> Self {
        SmallMap { newest: Some((key, value)), older: Older::List(Vec::new()) }
    }

    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        match &self.newest {
            Some((k, v)) if k == key => Some(v),
            _ => match &self.older {
                Older::List(entries) => {
                    entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
                }
                Older::Hashed(map) => map.get(key),
            },
        }
    }

    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match &mut self.newest {
            Some((k, v)) if k == key => Some(v),
            _ => match &mut self.older {
                Older::List(entries) => {
                    entries.iter_mut().rev().find(|(k, _)| k == key).map(|(_, v)| v)
                }
                Older::Hashed(map) => map.get_mut(key),
            },
        }
    }

    /// Stores `value` under `key`, returning the value it replaces; a new key becomes the
    /// newest entry.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(slot) = self.get_mut(&key) {
            return Some(std::mem::replace(slot, value));
        }
        if let Some((k, v)) = self.newest.replace((key, value)) {
            match &mut self.older {
                Older::List(entries) if entries.len() < LIST_LIMIT => entries.push((k, v)),
                Older::List(entries) => {
                    let mut map: HashMap<K, V> = entries.drain(..).collect();
                    map.insert(k, v);
                    self.older = Older::Hashed(map);
                }
                Older::Hashed(map) => {
                    map.insert(k, v);
                }
            }
        }
        None
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        if matches!(&self.newest, Some((k, _)) if k == key) {
            return self.newest.take().map(|(_, v)| v);
        }
        match &mut self.older {
            Older::List(entries) => {
                let position = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.remove(position).1)
            }
            Older::Hashed(map) => map.remove(key),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        let older = match &self.older {
            Older::List(entries) => entries.len(),
            Older::Hashed(map) => map.len(),
        };
        older + usize::from(self.newest.is_some())
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let older: Box<dyn Iterator<Item = (&K, &V)>> = match &self.older {
            Older::List(entries) => Box::new(entries.iter().map(|(k, v)| (k, v))),
            Older::Hashed(map) => Box::new(map.iter()),
        };
        self.newest.iter().map(|(k, v)| (k, v)).chain(older)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map_below_and_above_the_list_limit() {
        let mut map = SmallMap::one(0u32, "0".to_string());
        for i in 1..40u32 {
            assert_eq!(map.insert(i, i.to_string()), None);
            assert_eq!(map.len(), i as usize + 1);
            assert_eq!(matches!(map.older, Older::List(_)), i <= LIST_LIMIT as u32);
        }
        assert_eq!(map.insert(3, "three".into()), Some("3".to_string()));
        assert_eq!(map.get(&3).map(String::as_str), Some("three"));
        map.get_mut(&4).unwrap().push('!');
        assert_eq!(map.get(&4).map(String::as_str), Some("4!"));
        assert_eq!(map.get(&39).map(String::as_str), Some("39"), "the newest entry");
        assert_eq!(map.remove(&39), Some("39".to_string()));
        assert_eq!(map.get(&39), None);
        assert_eq!(map.remove(&0), Some("0".to_string()));
        assert_eq!(map.remove(&0), None);
        assert_eq!(map.len(), 38);
        assert_eq!(map.iter().count(), 38);
        map.insert(100, "new".into());
        assert_eq!(map.get(&100).map(String::as_str), Some("new"));
        assert_eq!(map.len(), 39);
    }

    #[test]
    fn removing_the_newest_leaves_older_entries_reachable() {
        let mut map = SmallMap::one("a", 1);
        map.insert("b", 2);
        assert_eq!(map.remove(&"b"), Some(2));
        assert!(!map.is_empty());
        assert_eq!(map.get(&"a"), Some(&1));
        assert_eq!(map.remove(&"a"), Some(1));
        assert!(map.is_empty());
    }
}
