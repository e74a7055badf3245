//! A value its owner changes in place and snapshots share without copying it: sharing moves
//! it behind a reference count once, and the owner's next change takes it back, copying it
//! only if a snapshot still holds it. Until shared again, access is a plain borrow (no
//! reference-count traffic on the hot path).
//!
//! A value that snapshots let go of can also be owned again before it changes
//! ([`Shareable::reclaim`]), its holder kept to share the next value in ([`Spares`]).
//!
//! A shared value also keeps its encoding once a snapshot asks for it, so that later
//! snapshots taken while it stays unchanged copy those bytes instead of encoding it again.

use std::sync::{Arc, OnceLock};

/// A value owned in place, or shared with snapshots since it last changed.
#[derive(Debug)]
pub enum Shareable<T> {
    /// Changed since the last snapshot (or never shared): owned in place.
    Owned(T),
    /// Shared with a snapshot; the next change takes it back or copies it.
    Shared(Arc<Frozen<T>>),
}

/// A value as snapshots share it: unchanged for as long as it is shared, with its encoding
/// once one was asked for.
#[derive(Debug)]
pub struct Frozen<T> {
    value: T,
    encoding: OnceLock<Box<[u8]>>,
}

impl<T> Frozen<T> {
    /// The value's encoding by `encode`, computed at the first call and kept with the value
    /// (the value does not change, so neither does its encoding).
    pub fn encoding<E>(&self, encode: impl FnOnce(&T) -> Result<Vec<u8>, E>) -> Result<&[u8], E> {
        if let Some(encoding) = self.encoding.get() {
            return Ok(encoding);
        }
        let encoded = encode(&self.value)?.into_boxed_slice();
        Ok(self.encoding.get_or_init(|| encoded))
    }
}

impl<T> std::ops::Deref for Frozen<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Default> Default for Shareable<T> {
    fn default() -> Self {
        Shareable::Owned(T::default())
    }
}

impl<T> std::ops::Deref for Shareable<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match self {
            Shareable::Owned(value) => value,
            Shareable::Shared(shared) => &shared.value,
        }
    }
}

impl<T: Clone + Default> Shareable<T> {
    /// The value to change: owned again, copied if a snapshot still holds it.
    #[inline]
    pub fn to_mut(&mut self) -> &mut T {
        if let Shareable::Shared(_) = self {
            self.take_back();
        }
        match self {
            Shareable::Owned(value) => value,
            Shareable::Shared(_) => unreachable!("taken back just above"),
        }
    }

    /// Owns the shared value again: moved out if no snapshot holds it any more, else copied.
    #[cold]
    fn take_back(&mut self) {
        if let Shareable::Shared(shared) = std::mem::take(self) {
            let value = Arc::try_unwrap(shared)
                .map_or_else(|shared| shared.value.clone(), |frozen| frozen.value);
            *self = Shareable::Owned(value);
        }
    }

    /// The value as it is now, for a snapshot; it stays unchanged for as long as the
    /// snapshot holds it.
    pub fn share(&mut self) -> Arc<Frozen<T>> {
        let shared = match std::mem::take(self) {
            Shareable::Owned(value) => Arc::new(Frozen { value, encoding: OnceLock::new() }),
            Shareable::Shared(shared) => shared,
        };
        *self = Shareable::Shared(Arc::clone(&shared));
        shared
    }

    /// Whether it is shared, that is unchanged since the last snapshot took it.
    pub fn is_shared(&self) -> bool {
        matches!(self, Shareable::Shared(_))
    }

    /// As [`Shareable::share`], moving an owned value into a holder from `spares` rather than
    /// a new one.
    pub fn share_with(&mut self, spares: &mut Spares<T>) -> Arc<Frozen<T>> {
        if let Shareable::Owned(value) = self
            && let Some(mut holder) = spares.0.pop()
        {
            let frozen = Arc::get_mut(&mut holder).expect("a spare holder is held by no one else");
            frozen.value = std::mem::take(value);
            *self = Shareable::Shared(Arc::clone(&holder));
            return holder;
        }
        self.share()
    }

    /// Owns the value again if no snapshot holds it any more, keeping its holder, emptied, in
    /// `spares`; returns whether it is owned now.
    pub fn reclaim(&mut self, spares: &mut Spares<T>) -> bool {
        let Shareable::Shared(shared) = self else { return true };
        let Some(frozen) = Arc::get_mut(shared) else { return false };
        let value = std::mem::take(&mut frozen.value);
        frozen.encoding = OnceLock::new();
        if let Shareable::Shared(holder) = std::mem::replace(self, Shareable::Owned(value)) {
            spares.0.push(holder);
        }
        true
    }
}

/// Emptied holders of values that snapshots shared and let go of, for the values shared next:
/// a table that shares many small values at every checkpoint allocates no holder for them and
/// frees none, in steady state.
#[derive(Debug)]
pub struct Spares<T>(Vec<Arc<Frozen<T>>>);

impl<T> Default for Spares<T> {
    fn default() -> Self {
        Spares(Vec::new())
    }
}

impl<T> Spares<T> {
    /// Keeps at most `count` holders.
    pub fn keep(&mut self, count: usize) {
        self.0.truncate(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_value_is_copied_only_while_a_snapshot_holds_it() {
        let mut value = Shareable::Owned(vec![1, 2]);
        let snapshot = value.share();
        value.to_mut().push(3);
        assert_eq!(**snapshot, vec![1, 2], "the snapshot keeps its moment");
        assert_eq!(*value, vec![1, 2, 3]);
        let snapshot = value.share();
        let address = snapshot.as_ptr();
        drop(snapshot);
        value.to_mut().push(4);
        assert_eq!(value.as_ptr(), address, "taken back without a copy once released");
        assert!(matches!(value, Shareable::Owned(_)));
    }

    #[test]
    fn an_encoding_is_kept_while_the_value_is_unchanged() {
        let calls = std::cell::Cell::new(0);
        let encode = |value: &Vec<u8>| -> Result<Vec<u8>, ()> {
            calls.set(calls.get() + 1);
            Ok(value.iter().map(|byte| byte + 1).collect())
        };
        let mut value = Shareable::Owned(vec![1, 2]);
        assert!(!value.is_shared());
        let first = value.share();
        assert_eq!(first.encoding(encode), Ok(&[2, 3][..]));
        drop(first);
        assert!(value.is_shared(), "unchanged since the snapshot");
        let second = value.share();
        assert_eq!(second.encoding(encode), Ok(&[2, 3][..]));
        assert_eq!(calls.get(), 1, "the second snapshot reuses the encoding");
        drop(second);
        value.to_mut().push(3);
        assert!(!value.is_shared());
        let third = value.share();
        assert_eq!(third.encoding(encode), Ok(&[2, 3, 4][..]));
        assert_eq!(calls.get(), 2, "a change drops the encoding");
        assert_eq!(third.encoding(|_| Err(())), Ok(&[2, 3, 4][..]));
    }

    #[test]
    fn a_reclaimed_holder_holds_the_next_value_without_the_old_encoding() {
        let encode = |value: &Vec<u8>| -> Result<Vec<u8>, ()> { Ok(value.clone()) };
        let mut spares = Spares::default();
        let mut first = Shareable::Owned(vec![1]);
        let snapshot = first.share_with(&mut spares);
        assert_eq!(snapshot.encoding(encode), Ok(&[1][..]));
        assert!(!first.reclaim(&mut spares), "a snapshot still holds it");
        let holder = Arc::as_ptr(&snapshot);
        drop(snapshot);
        assert!(first.reclaim(&mut spares));
        assert_eq!(*first, vec![1], "owned again, unchanged");
        let mut second = Shareable::Owned(vec![2]);
        let shared = second.share_with(&mut spares);
        assert_eq!(Arc::as_ptr(&shared), holder, "the spare holder is reused");
        assert_eq!(shared.encoding(encode), Ok(&[2][..]), "encoded anew");
    }
}
