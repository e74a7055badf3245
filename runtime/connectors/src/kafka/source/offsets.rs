//! Where a partition starts and, in bounded mode, where it stops.

use std::collections::HashMap;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::partitions::Partition;
use crate::kafka::properties::BROKER_TIMEOUT;
use crate::{Error, Result};

/// Where a partition starts when no checkpoint names its offset (Flink's
/// `OffsetsInitializer`). A partition restored from a checkpoint resumes there instead; one
/// that appeared since the checkpoint starts at its earliest offset, so nothing is missed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartingOffsets {
    /// The earliest offset still in the partition.
    Earliest,
    /// The end of the partition: only records written from now on.
    Latest,
    /// The offsets the consumer group (`group.id`) committed; `Latest` or `Earliest` (per
    /// `reset_to_earliest`) where it committed none.
    Committed {
        /// Where to start without a committed offset: earliest when true, else latest.
        reset_to_earliest: bool,
    },
    /// The first record whose timestamp is at or after this one (ms since the epoch); the
    /// end of partitions without one.
    Timestamp(i64),
    /// Offsets by `(topic, partition)`; other partitions start at the earliest.
    Explicit(HashMap<(String, i32), i64>),
}

/// Where bounded reading stops (exclusive): the source finishes when every partition
/// reached it (Flink's `setBounded`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoppingOffsets {
    /// The end of each partition when the source opens.
    Latest,
    /// Offsets by `(topic, partition)`; other partitions stop at the latest.
    Explicit(HashMap<(String, i32), i64>),
}

/// The low and high watermark of `partition` (earliest offset, offset after the last).
fn bounds(consumer: &BaseConsumer, partition: &Partition) -> Result<(i64, i64)> {
    consumer.fetch_watermarks(&partition.topic, partition.partition, BROKER_TIMEOUT).map_err(
        |source| Error::kafka(format!("reading the offsets of {}", partition.describe()), source),
    )
}

/// The list of partitions with their offsets, to query, assign or commit.
pub(crate) fn partition_list<'a>(
    offsets: impl IntoIterator<Item = (&'a Partition, Offset)>,
) -> Result<TopicPartitionList> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(&partition.topic, partition.partition, offset)
            .map_err(|source| Error::kafka(format!("listing {}", partition.describe()), source))?;
    }
    Ok(list)
}

/// The offset `list` holds for `partition`, if a concrete one.
fn offset_in(list: &TopicPartitionList, partition: &Partition) -> Option<i64> {
    match list.find_partition(&partition.topic, partition.partition)?.offset() {
        Offset::Offset(offset) if offset >= 0 => Some(offset),
        _ => None,
    }
}

impl StartingOffsets {
    /// The first offset to read of each of `partitions`.
    pub(crate) fn resolve(
        &self,
        consumer: &BaseConsumer,
        partitions: &[Partition],
        has_group: bool,
    ) -> Result<Vec<i64>> {
        let queried = match self {
            StartingOffsets::Committed { .. } if !has_group => {
                return Err(Error::KafkaConfig(
                    "starting from committed offsets needs the property group.id".into(),
                ));
            }
            StartingOffsets::Committed { .. } => {
                let list = partition_list(partitions.iter().map(|p| (p, Offset::Invalid)))?;
                Some(consumer.committed_offsets(list, BROKER_TIMEOUT).map_err(|source| {
                    Error::kafka("reading the group's committed offsets".into(), source)
                })?)
            }
            StartingOffsets::Timestamp(timestamp) => {
                let list =
                    partition_list(partitions.iter().map(|p| (p, Offset::Offset(*timestamp))))?;
                Some(consumer.offsets_for_times(list, BROKER_TIMEOUT).map_err(|source| {
                    Error::kafka(format!("looking up offsets for timestamp {timestamp}"), source)
                })?)
            }
            _ => None,
        };
        partitions
            .iter()
            .map(|partition| {
                let found = queried.as_ref().and_then(|list| offset_in(list, partition));
                let explicit = match self {
                    StartingOffsets::Explicit(offsets) => {
                        offsets.get(&(partition.topic.clone(), partition.partition)).copied()
                    }
                    _ => None,
                };
                if let Some(offset) = found.or(explicit) {
                    return Ok(offset);
                }
                let (low, high) = bounds(consumer, partition)?;
                Ok(match self {
                    StartingOffsets::Latest | StartingOffsets::Timestamp(_) => high,
                    StartingOffsets::Committed { reset_to_earliest: false } => high,
                    _ => low,
                })
            })
            .collect()
    }
}

impl StoppingOffsets {
    /// The offset where each of `partitions` stops.
    pub(crate) fn resolve(
        &self,
        consumer: &BaseConsumer,
        partitions: &[Partition],
    ) -> Result<Vec<i64>> {
        partitions
            .iter()
            .map(|partition| {
                if let StoppingOffsets::Explicit(offsets) = self
                    && let Some(offset) =
                        offsets.get(&(partition.topic.clone(), partition.partition))
                {
                    return Ok(*offset);
                }
                Ok(bounds(consumer, partition)?.1)
            })
            .collect()
    }
}
