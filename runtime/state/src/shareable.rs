//! A value its owner changes in place and snapshots share without copying it: sharing moves
//! it behind a reference count once, and the owner's next change takes it back, copying it
//! only if a snapshot still holds it. Until shared again, access is a plain borrow (no
//! reference-count traffic on the hot path).

use std::sync::Arc;

/// A value owned in place, or shared with snapshots since it last changed.
#[derive(Debug)]
pub enum Shareable<T> {
    /// Changed since the last snapshot (or never shared): owned in place.
    Owned(T),
    /// Shared with a snapshot; the next change takes it back or copies it.
    Shared(Arc<T>),
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
            Shareable::Shared(shared) => shared,
        }
    }
}

impl<T: Clone + Default> Shareable<T> {
    /// The value to change: owned again, copied if a snapshot still holds it.
    pub fn to_mut(&mut self) -> &mut T {
        if let Shareable::Shared(_) = self
            && let Shareable::Shared(shared) = std::mem::take(self)
        {
            *self = Shareable::Owned(Arc::unwrap_or_clone(shared));
        }
        match self {
            Shareable::Owned(value) => value,
            Shareable::Shared(_) => unreachable!("taken back just above"),
        }
    }

    /// The value as it is now, for a snapshot; it stays unchanged for as long as the
    /// snapshot holds it.
    pub fn share(&mut self) -> Arc<T> {
        let shared = match std::mem::take(self) {
            Shareable::Owned(value) => Arc::new(value),
            Shareable::Shared(shared) => shared,
        };
        *self = Shareable::Shared(Arc::clone(&shared));
        shared
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
        assert_eq!(*snapshot, vec![1, 2], "the snapshot keeps its moment");
        assert_eq!(*value, vec![1, 2, 3]);
        let snapshot = value.share();
        let address = snapshot.as_ptr();
        drop(snapshot);
        value.to_mut().push(4);
        assert_eq!(value.as_ptr(), address, "taken back without a copy once released");
        assert!(matches!(value, Shareable::Owned(_)));
    }
}
