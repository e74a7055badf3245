//! The Kafka sink: records serialized to topic, key and value, written at-least-once
//! ([`KafkaSink`]) or exactly-once through transactions ([`TransactionalKafkaSink`]).

mod at_least_once;
mod exactly_once;
mod left_open;
mod marker;
mod pool;
mod producer;
mod write_ahead;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use at_least_once::KafkaSink;
pub use exactly_once::{KafkaTransaction, TransactionalKafkaSink};
pub use left_open::producers_left_behind;
pub use write_ahead::WriteAhead;

/// A record to write: its topic (chosen per record), key, value and timestamp.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerRecord {
    /// The topic to write to.
    pub topic: String,
    /// The key (partitions by its hash), if any.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: Vec<u8>,
    /// The Kafka timestamp; `None` takes the record's event timestamp, if it has one.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// `value` to `topic`, without key.
    pub fn new(topic: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        ProducerRecord { topic: topic.into(), value: value.into(), ..Default::default() }
    }

    /// With `key`.
    pub fn with_key(self, key: impl Into<Vec<u8>>) -> Self {
        ProducerRecord { key: Some(key.into()), ..self }
    }
}

/// Turns a value into the record to write (Flink's `KafkaRecordSerializationSchema`).
pub(crate) type Serializer<T> = Arc<dyn Fn(&T) -> ProducerRecord + Send + Sync>;

/// The record for `value`, taking its event `timestamp` unless the serializer set one.
pub(crate) fn serialize<T>(
    serializer: &Serializer<T>,
    value: &T,
    timestamp: Option<weir_types::Timestamp>,
) -> ProducerRecord {
    let mut record = serializer(value);
    record.timestamp = record.timestamp.or(timestamp);
    record
}
