//! Records and the messages that carry them between tasks.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::{CheckpointBarrier, Watermark, WatermarkStatus};

/// One element of a stream with its optional event timestamp. Serializable for the records
/// an unaligned checkpoint stores as in flight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record<T> {
    /// The user's value.
    pub value: T,
    /// Event time, when a timestamp assigner or source gave one.
    pub timestamp: Option<Timestamp>,
}

impl<T> Record<T> {
    /// A record without an event timestamp.
    pub fn new(value: T) -> Self {
        Record { value, timestamp: None }
    }

    /// A record with an event timestamp.
    pub fn with_timestamp(value: T, timestamp: Timestamp) -> Self {
        Record { value, timestamp: Some(timestamp) }
    }

    /// The same timestamp on another value.
    pub fn replace<U>(&self, value: U) -> Record<U> {
        Record { value, timestamp: self.timestamp }
    }
}

/// What travels on one channel between two subtasks: batches of records and in-band control.
/// Serialized (as a whole) only where a channel crosses a process boundary.
#[derive(Debug, Serialize, Deserialize)]
pub enum StreamMessage<T> {
    /// A batch of records, in order.
    Records(Vec<Record<T>>),
    /// Event time has advanced on this channel.
    Watermark(Watermark),
    /// The channel became idle or active again.
    Status(WatermarkStatus),
    /// A checkpoint barrier: everything before it belongs to the checkpoint.
    Barrier(CheckpointBarrier),
    /// The producer has no more records; at most a final checkpoint barrier follows.
    EndOfInput,
}
