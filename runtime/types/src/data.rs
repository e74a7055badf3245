//! The bounds every record and every key must meet.

use std::fmt::Debug;
use std::hash::Hash;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value that can travel through a Weir job: cloned on fan-out, serialized when it crosses a
/// process boundary or lands in state that needs bytes. `Sync`, because a checkpoint shares
/// the heap state it snapshots with the thread that writes it out (copy-on-write) instead of
/// copying it on the task's thread.
///
/// Implemented for every type that meets the bounds; derive `Clone`, `Serialize` and
/// `Deserialize` on your record types.
pub trait Data: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}

impl<T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static> Data for T {}

/// A value a stream can be keyed by. Its key group is computed from its serialized bytes
/// (see [`crate::KeyHasher`]), so it is the same in every process, on every machine.
pub trait Key: Data + Eq + Hash + Debug {}

impl<T: Data + Eq + Hash + Debug> Key for T {}
