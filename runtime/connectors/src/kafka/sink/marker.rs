//! Commit markers of exactly-once sink transactions: an offset of the consumer group named
//! after the transactional id, committed inside the transaction (atomically with its
//! records), which tells a restore after a process death whether the transaction committed.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::producer::KafkaProducer;
use crate::kafka::KafkaProperties;
use crate::kafka::properties::BROKER_TIMEOUT;
use crate::{Error, Result};

/// The marker's partition of the topic it is committed for (every topic has partition 0).
const PARTITION: i32 = 0;

/// A consumer of the marker group of `transactional_id`; it never joins the group.
fn consumer(properties: &KafkaProperties, transactional_id: &str) -> Result<BaseConsumer> {
    let mut config = properties.client_config();
    config.set("group.id", transactional_id).set("enable.auto.commit", "false");
    config.create().map_err(|source| {
        Error::kafka(format!("creating the marker consumer of {transactional_id}"), source)
    })
}

/// The group metadata to commit the markers of `transactional_id` with.
pub(super) fn group(
    properties: &KafkaProperties,
    transactional_id: &str,
) -> Result<ConsumerGroupMetadata> {
    consumer(properties, transactional_id)?.group_metadata().ok_or_else(|| {
        Error::KafkaConfig(format!("no group metadata for the marker of {transactional_id}"))
    })
}

fn partition(topic: &str, marker: Option<i64>) -> Result<TopicPartitionList> {
    let mut list = TopicPartitionList::new();
    match marker {
        Some(marker) => list
            .add_partition_offset(topic, PARTITION, Offset::Offset(marker))
            .map_err(|source| Error::kafka(format!("marker {marker} on {topic}"), source))?,
        None => {
            list.add_partition(topic, PARTITION);
        }
    }
    Ok(list)
}

/// Adds `marker` (for `topic`) to the open transaction of `producer`.
pub(super) fn send(
    producer: &KafkaProducer,
    group: &ConsumerGroupMetadata,
    topic: &str,
    marker: i64,
) -> Result<()> {
    producer
        .send_offsets_to_transaction(&partition(topic, Some(marker))?, group, BROKER_TIMEOUT)
        .map_err(|source| Error::kafka(format!("sending commit marker {marker}"), source))
}

/// The marker (for `topic`) the last committed transaction of `transactional_id` left.
pub(super) fn committed(
    properties: &KafkaProperties,
    transactional_id: &str,
    topic: &str,
) -> Result<Option<i64>> {
    let consumer = consumer(properties, transactional_id)?;
    let list =
        consumer.committed_offsets(partition(topic, None)?, BROKER_TIMEOUT).map_err(|source| {
            Error::kafka(format!("reading the commit marker of {transactional_id}"), source)
        })?;
    Ok(list.find_partition(topic, PARTITION).and_then(|p| match p.offset() {
        Offset::Offset(marker) => Some(marker),
        _ => None,
    }))
}
