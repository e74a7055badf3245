//! Weir's shared vocabulary, free of I/O: the records and control messages that flow between
//! operators, event time, and the key-group arithmetic that decides where keyed state lives.
//!
//! ```
//! use weir_types::{KeyGroupRange, key_group_for_key};
//! // Flink's default max parallelism is 128; subtask 1 of 4 owns key groups 32..=63.
//! let range = KeyGroupRange::for_subtask(128, 4, 1);
//! assert_eq!((range.start(), range.end()), (32, 63));
//! let group = key_group_for_key(&"user-42", 128).unwrap();
//! assert!(group < 128);
//! ```

mod checkpoint;
mod data;
mod error;
mod key_group;
mod message;
mod time;

pub use checkpoint::{CheckpointBarrier, CheckpointId, SavepointFormat, SnapshotType};
pub use data::{Data, Key};
pub use error::{Error, Result};
pub use key_group::{
    AppendBytes, KeyGroup, KeyGroupRange, KeyHasher, key_group_for_key, subtask_for_key_group,
};
pub use message::{Record, StreamMessage};
pub use time::{Timestamp, Watermark, WatermarkStatus};
