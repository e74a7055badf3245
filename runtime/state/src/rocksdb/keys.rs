//! Key layout of the RocksDB backend: `key group (2 bytes, big-endian) ++ postcard(key) ++
//! postcard(namespace)`, value `postcard(value)`.
//!
//! The big-endian group prefix makes every key group one contiguous key range, in group order,
//! so a group is read with one range scan and a rescale clips by prefix. Postcard encodes a
//! tuple as the concatenation of its fields, so `key[2..] ++ value` is exactly the canonical
//! snapshot encoding of the entry `(key, namespace, value)`.

use std::ops::RangeInclusive;

use serde::Serialize;
use weir_types::KeyGroup;

use crate::{Error, Result, codec};

/// Length of the key-group prefix of every stored key.
pub(crate) const GROUP_PREFIX_LEN: usize = std::mem::size_of::<KeyGroup>();

/// The stored key of `(key, namespace)` in `group`.
pub(crate) fn encode_key<K: Serialize, N: Serialize>(
    state: &str,
    group: KeyGroup,
    key: &K,
    namespace: &N,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&group.to_be_bytes());
    postcard::to_extend(&(key, namespace), out).map_err(|source| entry_error(state, source))
}

/// The stored bytes of a value.
pub(crate) fn encode_value<V: Serialize + 'static>(state: &str, value: &V) -> Result<Vec<u8>> {
    codec::to_vec(value).map_err(|source| entry_error(state, source))
}

/// A value read back from its stored bytes.
pub(crate) fn decode_value<V: serde::de::DeserializeOwned + 'static>(
    state: &str,
    bytes: &[u8],
) -> Result<V> {
    codec::from_bytes(bytes).map_err(|source| entry_error(state, source))
}

/// Iterate bounds `[lower, upper)` covering every key of the groups in `groups`; no upper
/// bound when the range ends at the last possible group.
pub(crate) fn group_bounds(groups: RangeInclusive<KeyGroup>) -> (Vec<u8>, Option<Vec<u8>>) {
    let lower = groups.start().to_be_bytes().to_vec();
    let upper = groups.end().checked_add(1).map(|next| next.to_be_bytes().to_vec());
    (lower, upper)
}

fn entry_error(state: &str, source: postcard::Error) -> Error {
    Error::RocksDbEntry { state: state.to_string(), message: source.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_prefix_orders_groups_and_suffix_is_the_canonical_entry() {
        let a = encode_key("s", 1, &"zz".to_string(), &7u32).unwrap();
        let b = encode_key("s", 256, &"aa".to_string(), &1u32).unwrap();
        assert_eq!(&a[..GROUP_PREFIX_LEN], &[0, 1]);
        assert!(a < b, "group 1 sorts before group 256 whatever the key");
        let mut entry = a[GROUP_PREFIX_LEN..].to_vec();
        entry.extend(encode_value("s", &9u64).unwrap());
        assert_eq!(entry, postcard::to_allocvec(&("zz".to_string(), 7u32, 9u64)).unwrap());
    }

    #[test]
    fn bounds_cover_whole_groups() {
        assert_eq!(group_bounds(3..=3), (vec![0, 3], Some(vec![0, 4])));
        assert_eq!(group_bounds(255..=256), (vec![0, 255], Some(vec![1, 1])));
        assert_eq!(group_bounds(0..=KeyGroup::MAX), (vec![0, 0], None));
    }
}
