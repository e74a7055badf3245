//! Key groups: the unit in which keyed state is partitioned, routed and (later) rescaled.
//!
//! A key's group is `murmur3_x86_32(serialized key) % max_parallelism`; subtask `i` of `p`
//! owns the contiguous range Flink's `KeyGroupRangeAssignment` gives it, so a key always
//! lands on the same subtask for a given parallelism, in every process.

use std::any::Any;

use serde::Serialize;

use crate::{Error, Result};

/// Index of a key group, in `0..max_parallelism`.
pub type KeyGroup = u16;

/// Fixed seed: changing it would move every key to another key group.
const KEY_HASH_SEED: u32 = 0x5745_4952; // "WEIR"

/// Computes key groups from keys, reusing one buffer for the serialized bytes.
#[derive(Debug, Default)]
pub struct KeyHasher {
    buffer: Vec<u8>,
}

impl KeyHasher {
    /// A hasher with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key group of `key` among `max_parallelism` groups.
    #[inline]
    pub fn key_group<K: Serialize + std::fmt::Debug + 'static>(
        &mut self,
        key: &K,
        max_parallelism: usize,
    ) -> Result<KeyGroup> {
        let mut varint = [0u8; MAX_VARINT];
        let bytes = match encode_common_key(key, &mut varint, &mut self.buffer) {
            Some(bytes) => bytes,
            None => {
                self.buffer.clear();
                postcard::serialize_with_flavor(key, AppendBytes(&mut self.buffer)).map_err(
                    |source| Error::KeySerialization { key: format!("{key:?}"), source },
                )?;
                &self.buffer
            }
        };
        let hash = mur3::murmurhash3_x86_32(bytes, KEY_HASH_SEED);
        Ok(reduce(hash, max_parallelism as u32) as KeyGroup)
    }
}

/// The longest varint postcard writes (a `u64`).
const MAX_VARINT: usize = 10;

/// Postcard's bytes for the most common key types (integers and strings), written without
/// serde: the key selector runs for every record on both sides of a keyed exchange, and the
/// serde path costs more than the hash. `None` for other types.
#[inline]
fn encode_common_key<'a, K: 'static>(
    key: &'a K,
    varint: &'a mut [u8; MAX_VARINT],
    buffer: &'a mut Vec<u8>,
) -> Option<&'a [u8]> {
    let key = key as &dyn Any;
    let zigzag = |value: i64| ((value << 1) ^ (value >> 63)) as u64;
    let value = if let Some(&value) = key.downcast_ref::<u64>() {
        value
    } else if let Some(&value) = key.downcast_ref::<i64>() {
        zigzag(value)
    } else if let Some(&value) = key.downcast_ref::<u32>() {
        u64::from(value)
    } else if let Some(&value) = key.downcast_ref::<i32>() {
        zigzag(i64::from(value)) // postcard's 32-bit zigzag gives the same number
    } else {
        let text = key
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| key.downcast_ref::<&'static str>().copied())?;
        let length = encode_varint(text.len() as u64, varint);
        buffer.clear();
        buffer.extend_from_slice(length);
        buffer.extend_from_slice(text.as_bytes());
        return Some(buffer);
    };
    Some(encode_varint(value, varint))
}

/// `value` as a LEB128 varint (seven bits a byte, lowest first), as postcard writes integers.
#[inline]
fn encode_varint(mut value: u64, out: &mut [u8; MAX_VARINT]) -> &[u8] {
    let mut len = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out[len] = byte;
            return &out[..=len];
        }
        out[len] = byte | 0x80;
        len += 1;
    }
}

/// Longer runs of bytes than this are copied with `memcpy`, shorter ones byte by byte.
const SHORT_RUN: usize = 16;

/// Postcard output appended to a `Vec` (the same bytes as `postcard::to_extend`, which goes
/// through `Extend` for every byte). Keys are mostly a few bytes, for which a `memcpy` call
/// per field costs more than the copy.
pub struct AppendBytes<'a>(pub &'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendBytes<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        if bytes.len() > SHORT_RUN {
            self.0.extend_from_slice(bytes);
        } else {
            bytes.iter().for_each(|&byte| self.0.push(byte));
        }
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// `value % divisor`, with a mask instead of a division for powers of two (the default max
/// parallelism is 128): the same result, a few cycles instead of a few dozen per record.
fn reduce(value: u32, divisor: u32) -> u32 {
    if divisor.is_power_of_two() { value & (divisor - 1) } else { value % divisor }
}

/// The key group of one key (allocates; use a [`KeyHasher`] on hot paths).
pub fn key_group_for_key<K: Serialize + std::fmt::Debug + 'static>(
    key: &K,
    max_parallelism: usize,
) -> Result<KeyGroup> {
    KeyHasher::new().key_group(key, max_parallelism)
}

/// The subtask that owns `key_group` when an operator runs with `parallelism` subtasks
/// (Flink's `computeOperatorIndexForKeyGroup`).
pub fn subtask_for_key_group(
    key_group: KeyGroup,
    max_parallelism: usize,
    parallelism: usize,
) -> usize {
    let scaled = key_group as usize * parallelism;
    if max_parallelism.is_power_of_two() {
        scaled >> max_parallelism.trailing_zeros()
    } else {
        scaled / max_parallelism
    }
}

/// An inclusive range of key groups owned by one subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyGroupRange {
    start: KeyGroup,
    end: KeyGroup,
}

impl KeyGroupRange {
    /// The range owned by `subtask` of `parallelism` (Flink's
    /// `computeKeyGroupRangeForOperatorIndex`).
    pub fn for_subtask(max_parallelism: usize, parallelism: usize, subtask: usize) -> Self {
        assert!(
            parallelism > 0 && parallelism <= max_parallelism && subtask < parallelism,
            "subtask {subtask} of {parallelism} with max parallelism {max_parallelism}"
        );
        let start = (subtask * max_parallelism).div_ceil(parallelism);
        let end = ((subtask + 1) * max_parallelism - 1) / parallelism;
        KeyGroupRange { start: start as KeyGroup, end: end as KeyGroup }
    }

    /// First key group of the range.
    pub fn start(&self) -> KeyGroup {
        self.start
    }

    /// Last key group of the range (inclusive).
    pub fn end(&self) -> KeyGroup {
        self.end
    }

    /// Number of key groups in the range.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize + 1
    }

    /// Whether the range holds no key group (never true for a constructed range).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `key_group` is in the range.
    pub fn contains(&self, key_group: KeyGroup) -> bool {
        (self.start..=self.end).contains(&key_group)
    }

    /// The key groups both ranges hold, if any.
    pub fn overlap(&self, other: &KeyGroupRange) -> Option<std::ops::RangeInclusive<KeyGroup>> {
        let (start, end) = (self.start.max(other.start), self.end.min(other.end));
        (start <= end).then_some(start..=end)
    }

    /// Position of `key_group` inside the range, for indexing per-group storage.
    pub fn offset(&self, key_group: KeyGroup) -> usize {
        (key_group - self.start) as usize
    }

    /// Every key group of the range, in order.
    pub fn iter(&self) -> impl Iterator<Item = KeyGroup> {
        self.start..=self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes the serde path writes for `key`.
    fn postcard_bytes<K: Serialize>(key: &K) -> Vec<u8> {
        postcard::to_allocvec(key).unwrap()
    }

    fn common_bytes<K: 'static>(key: &K) -> Option<Vec<u8>> {
        encode_common_key(key, &mut [0; MAX_VARINT], &mut Vec::new()).map(<[u8]>::to_vec)
    }

    #[test]
    fn common_keys_are_written_as_postcard_writes_them() {
        let edges = [0u64, 1, 127, 128, 255, 16_383, 16_384, u32::MAX as u64, u64::MAX];
        for value in edges.into_iter().chain((0..2000).map(|i| i * 7919)) {
            assert_eq!(common_bytes(&value), Some(postcard_bytes(&value)), "u64 {value}");
            let signed = value as i64;
            for v in [signed, -signed, signed / 3, i64::MIN, i64::MAX] {
                assert_eq!(common_bytes(&v), Some(postcard_bytes(&v)), "i64 {v}");
            }
            let (small, signed_small) = (value as u32, value as i32);
            assert_eq!(common_bytes(&small), Some(postcard_bytes(&small)), "u32 {small}");
            for v in [signed_small, -signed_small, i32::MIN, i32::MAX] {
                assert_eq!(common_bytes(&v), Some(postcard_bytes(&v)), "i32 {v}");
            }
        }
        for text in ["", "user-42", &"x".repeat(300)] {
            assert_eq!(common_bytes(&text.to_string()), Some(postcard_bytes(&text)), "{text}");
            let borrowed: &'static str = text.to_string().leak();
            assert_eq!(common_bytes(&borrowed), Some(postcard_bytes(&text)), "{text}");
        }
        assert_eq!(common_bytes(&(1u64, 2u64)), None, "other types go through serde");
        assert_eq!(
            key_group_for_key(&"user-42".to_string(), 128).unwrap(),
            key_group_for_key(&("user-42".to_string(),), 128).unwrap(),
            "a one-field tuple writes the same bytes through serde"
        );
    }

    #[test]
    fn ranges_partition_all_key_groups_like_flink() {
        for max_parallelism in [1, 7, 128, 4096] {
            for parallelism in 1..=max_parallelism.min(33) {
                let mut next = 0usize;
                for subtask in 0..parallelism {
                    let range = KeyGroupRange::for_subtask(max_parallelism, parallelism, subtask);
                    assert_eq!(range.start() as usize, next, "gap before subtask {subtask}");
                    for group in range.iter() {
                        assert_eq!(
                            subtask_for_key_group(group, max_parallelism, parallelism),
                            subtask,
                            "group {group} routed away from its owner"
                        );
                    }
                    next = range.end() as usize + 1;
                }
                assert_eq!(next, max_parallelism);
            }
        }
    }

    #[test]
    fn flink_reference_ranges() {
        // Values from Flink's KeyGroupRangeAssignment for maxParallelism=128, parallelism=3.
        let ranges: Vec<_> = (0..3)
            .map(|i| {
                let r = KeyGroupRange::for_subtask(128, 3, i);
                (r.start(), r.end())
            })
            .collect();
        assert_eq!(ranges, vec![(0, 42), (43, 85), (86, 127)]);
    }

    #[test]
    fn the_division_free_paths_agree_with_division() {
        for divisor in 1..=300u32 {
            for value in [0, 1, 127, 128, 129, 0xdead_beef, u32::MAX] {
                assert_eq!(reduce(value, divisor), value % divisor, "{value} % {divisor}");
            }
        }
        for max_parallelism in [1, 2, 64, 128, 32768] {
            for parallelism in [1, 2, 3, 7, max_parallelism] {
                for group in [0, max_parallelism / 2, max_parallelism - 1] {
                    let divided = group * parallelism / max_parallelism;
                    let routed =
                        subtask_for_key_group(group as KeyGroup, max_parallelism, parallelism);
                    assert_eq!(routed, divided, "group {group} of {max_parallelism}");
                }
            }
        }
    }

    #[test]
    fn key_groups_are_stable_and_spread() {
        // Pinned: a change here would move state of existing savepoints to other subtasks.
        let mut hasher = KeyHasher::new();
        let pinned: Vec<KeyGroup> = ["a", "b", "hello", "world"]
            .iter()
            .map(|k| hasher.key_group(k, 128).unwrap())
            .collect();
        assert_eq!(pinned, vec![127, 125, 21, 118]);
        let long = "a key longer than one short run of bytes".to_string();
        let mut bytes = Vec::new();
        postcard::serialize_with_flavor(&long, AppendBytes(&mut bytes)).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&long).unwrap(), "the same bytes as postcard's");
        assert_eq!(key_group_for_key(&"hello", 128).unwrap(), 21);
        let mut seen = std::collections::HashSet::new();
        for key in 0u64..10_000 {
            seen.insert(hasher.key_group(&key, 128).unwrap());
        }
        assert_eq!(seen.len(), 128, "10k keys should touch every key group");
    }
}
