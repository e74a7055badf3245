//! The partitions a subtask reads: emitting their records, finishing bounded ones, and
//! taking on partitions discovered while running.

use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use weir_operators::watermark::SplitWatermarks;
use weir_types::Record;

use super::dead_letter::Rejects;
use super::offsets::partition_list;
use super::partitions::{Partition, PartitionReader};
use super::{Deserializer, KafkaMessage};
use crate::{Error, Result};

/// The partitions a subtask reads and their watermarks.
pub(crate) struct Splits<T> {
    pub(crate) partitions: Vec<PartitionReader>,
    pub(crate) watermarks: Option<SplitWatermarks<T, usize>>,
    /// What happens to records the deserializer rejects.
    pub(crate) rejects: Rejects,
}

impl<T: 'static> Splits<T> {
    /// Whether `partition` is one of these.
    pub(crate) fn contains(&self, partition: &Partition) -> bool {
        self.partitions.iter().any(|reader| reader.partition == *partition)
    }

    /// Starts reading `readers` too (partitions discovered since the source opened), each
    /// with its own watermark from `now`.
    pub(crate) fn add(
        &mut self,
        consumer: &BaseConsumer,
        readers: Vec<PartitionReader>,
        now: i64,
    ) -> Result<()> {
        let list = partition_list(readers.iter().map(|r| (&r.partition, Offset::Offset(r.next))))?;
        consumer
            .incremental_assign(&list)
            .map_err(|source| Error::kafka("assigning discovered partitions".into(), source))?;
        tracing::info!(
            partitions = ?readers.iter().map(|r| (r.partition.describe(), r.next)).collect::<Vec<_>>(),
            "Kafka source discovered partitions"
        );
        for reader in readers {
            if let Some(watermarks) = &mut self.watermarks {
                watermarks.add_split(self.partitions.len(), now);
            }
            self.partitions.push(reader);
        }
        Ok(())
    }

    /// Emits `message` of one of this subtask's partitions, deserialized, unless it lies
    /// outside what the partition still has to read.
    pub(crate) fn emit(
        &mut self,
        consumer: &BaseConsumer,
        message: &BorrowedMessage<'_>,
        deserializer: &Deserializer<T>,
        now: i64,
        out: &mut Vec<Record<T>>,
    ) -> Result<()> {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let Some(index) = self
            .partitions
            .iter()
            .position(|r| r.partition.partition == partition && r.partition.topic == topic)
        else {
            return Ok(());
        };
        let reader = &mut self.partitions[index];
        if offset < reader.next || reader.is_finished() {
            return Ok(());
        }
        if reader.stop.is_some_and(|stop| offset >= stop) {
            reader.next = reader.stop.expect("checked");
            return self.finish(consumer, index);
        }
        reader.next = offset + 1;
        let view = KafkaMessage {
            topic,
            partition,
            offset,
            key: message.key(),
            payload: message.payload(),
            timestamp: message.timestamp().to_millis(),
        };
        match deserializer(&view) {
            Ok(value) => {
                let timestamp = match &mut self.watermarks {
                    Some(watermarks) => {
                        Some(watermarks.on_event(&index, &value, view.timestamp, now))
                    }
                    None => view.timestamp,
                };
                out.push(match timestamp {
                    Some(timestamp) => Record::with_timestamp(value, timestamp),
                    None => Record::new(value),
                });
            }
            Err(reason) => self.rejects.reject(&view, reason)?,
        }
        if self.partitions[index].is_finished() {
            self.finish(consumer, index)?;
        }
        Ok(())
    }

    /// Stops reading the finished partition `index`.
    fn finish(&mut self, consumer: &BaseConsumer, index: usize) -> Result<()> {
        let reader = &self.partitions[index];
        tracing::debug!(partition = reader.partition.describe(), "Kafka partition finished");
        if let Some(watermarks) = &mut self.watermarks {
            watermarks.remove_split(&index);
        }
        let list = partition_list([(&reader.partition, Offset::Invalid)])?;
        consumer.pause(&list).map_err(|source| {
            Error::kafka(format!("pausing {}", reader.partition.describe()), source)
        })
    }

    /// Finishes bounded partitions whose fetch position passed their stopping offset
    /// without a record there (transaction markers occupy offsets too).
    pub(crate) fn finish_by_position(&mut self, consumer: &BaseConsumer) -> Result<()> {
        let positions = consumer
            .position()
            .map_err(|source| Error::kafka("reading positions".into(), source))?;
        for index in 0..self.partitions.len() {
            let reader = &mut self.partitions[index];
            if reader.is_finished() {
                continue;
            }
            let position =
                positions.find_partition(&reader.partition.topic, reader.partition.partition);
            if let Some(Offset::Offset(position)) = position.map(|p| p.offset())
                && let Some(stop) = reader.stop
                && position >= stop
            {
                reader.next = stop;
                self.finish(consumer, index)?;
            }
        }
        Ok(())
    }
}
