//! Kafka (cargo feature `kafka`): a source reading partitions as splits with their offsets in
//! checkpoints (topic lists or patterns, partition discovery, dead letters), and a sink writing
//! at-least-once or exactly-once through transactions.

mod properties;
mod sink;
mod source;

pub use properties::KafkaProperties;
pub use sink::{
    KafkaSink, KafkaTransaction, ProducerRecord, TransactionalKafkaSink, WriteAhead,
    producers_left_behind,
};
pub use source::{
    DeadLetter, DeserializationErrorPolicy, KafkaMessage, KafkaSource, StartingOffsets,
    StoppingOffsets,
};
