//! Postcard encoding of the keys, namespaces and values of state, with byte vectors
//! (`Vec<u8>`) moved as one block instead of byte by byte through serde's sequence path (as
//! Flink's byte-array serializer copies an array whole), and the common integer keys
//! written as their varints without a trip through serde. The bytes are postcard's either
//! way (a varint length and then the bytes; an integer's varint, zigzagged when signed), so
//! snapshots do not depend on the shortcuts.

use std::any::{Any, TypeId};

use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_types::AppendBytes;

/// Appends the postcard encoding of `value` to `out`.
pub(crate) fn append<T: Serialize + 'static>(out: &mut Vec<u8>, value: &T) -> postcard::Result<()> {
    if let Some(bytes) = cast::<T, Vec<u8>>(value) {
        push_varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    } else if let Some(&int) = cast::<T, u64>(value) {
        push_varint(out, int);
    } else if let Some(&int) = cast::<T, i64>(value) {
        push_varint(out, zigzag(int));
    } else if let Some(&int) = cast::<T, u32>(value) {
        push_varint(out, u64::from(int));
    } else if let Some(&int) = cast::<T, i32>(value) {
        push_varint(out, zigzag(i64::from(int)));
    } else if let Some(&int) = cast::<T, usize>(value) {
        push_varint(out, int as u64);
    } else {
        return postcard::serialize_with_flavor(value, AppendBytes(out));
    }
    Ok(())
}

/// `value` as a `U`, if `T` is `U` (decided when compiled: no call through `dyn Any`'s
/// table for the types that are not).
fn cast<T: 'static, U: 'static>(value: &T) -> Option<&U> {
    if TypeId::of::<T>() == TypeId::of::<U>() {
        (value as &dyn Any).downcast_ref::<U>()
    } else {
        None
    }
}

/// Appends `value` as postcard's varint: seven bits a byte, low first, the high bit set on
/// all bytes but the last.
fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A signed integer as postcard maps it to an unsigned one before its varint (zigzag: small
/// magnitudes stay small).
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Decodes one value from the start of `bytes`; returns it with the bytes after it.
pub(crate) fn take<T: DeserializeOwned + 'static>(bytes: &[u8]) -> postcard::Result<(T, &[u8])> {
    if TypeId::of::<T>() != TypeId::of::<Vec<u8>>() {
        return postcard::take_from_bytes(bytes);
    }
    let (len, rest): (usize, &[u8]) = postcard::take_from_bytes(bytes)?;
    let (block, rest) =
        rest.split_at_checked(len).ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
    let mut value = Some(block.to_vec());
    let value = (&mut value as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
        .expect("T is Vec<u8>");
    Ok((value, rest))
}

/// Decodes a value that fills `bytes`, as [`postcard::from_bytes`] does.
pub(crate) fn from_bytes<T: DeserializeOwned + 'static>(bytes: &[u8]) -> postcard::Result<T> {
    take(bytes).map(|(value, _)| value)
}

/// The postcard encoding of `value`.
pub(crate) fn to_vec<T: Serialize + 'static>(value: &T) -> postcard::Result<Vec<u8>> {
    let mut out = Vec::new();
    append(&mut out, value)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_vectors_encode_as_postcard_does_and_come_back() {
        for bytes in [vec![], vec![7u8], (0..=255).collect::<Vec<u8>>(), vec![1; 100_000]] {
            let encoded = to_vec(&bytes).unwrap();
            assert_eq!(encoded, postcard::to_allocvec(&bytes).unwrap(), "{} bytes", bytes.len());
            let mut two = encoded.clone();
            append(&mut two, &9u64).unwrap();
            let (back, rest) = take::<Vec<u8>>(&two).unwrap();
            assert_eq!(back, bytes);
            assert_eq!(from_bytes::<u64>(rest).unwrap(), 9);
            assert_eq!(postcard::from_bytes::<Vec<u8>>(&encoded).unwrap(), bytes);
        }
    }

    /// `value` encodes as postcard encodes it and decodes back.
    fn same_as_postcard<T>(value: T)
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug + 'static,
    {
        let encoded = to_vec(&value).unwrap();
        assert_eq!(encoded, postcard::to_allocvec(&value).unwrap(), "{value:?}");
        assert_eq!(from_bytes::<T>(&encoded).unwrap(), value);
    }

    #[test]
    fn integers_encode_as_postcard_does() {
        for value in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            same_as_postcard(value);
            same_as_postcard(value as usize);
            same_as_postcard(value as u32);
        }
        for value in [0i64, 1, -1, 63, -64, 64, -65, i64::MIN, i64::MAX] {
            same_as_postcard(value);
            same_as_postcard(value as i32);
        }
    }

    #[test]
    fn other_types_go_through_serde() {
        let value = (vec![1u16, 2], "text".to_string(), Some(vec![3u8]));
        let encoded = to_vec(&value).unwrap();
        assert_eq!(encoded, postcard::to_allocvec(&value).unwrap());
        assert_eq!(from_bytes::<(Vec<u16>, String, Option<Vec<u8>>)>(&encoded).unwrap(), value);
    }

    #[test]
    fn a_truncated_byte_vector_is_an_error() {
        let encoded = to_vec(&vec![5u8; 10]).unwrap();
        assert!(take::<Vec<u8>>(&encoded[..encoded.len() - 1]).is_err());
        assert!(take::<Vec<u8>>(&[]).is_err());
    }
}
