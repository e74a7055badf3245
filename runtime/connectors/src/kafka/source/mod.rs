//! The Kafka source: partitions spread over subtasks, offsets in checkpoints and committed to
//! the group when they complete, per-partition watermarks, bounded mode.

mod offsets;
mod partitions;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use weir_operators::function::FnResult;
use weir_operators::watermark::{SplitWatermarks, WatermarkStrategy};
use weir_operators::{
    RuntimeContext, SourceFunction, SourcePoll, SourceWatermark, SubtaskInfo, processing_time_now,
};
use weir_state::{OperatorListState, OperatorStateStore};
use weir_types::{CheckpointId, Record};

use offsets::partition_list;
pub use offsets::{StartingOffsets, StoppingOffsets};
use partitions::{Partition, PartitionReader, StoredOffset};

use super::KafkaProperties;
use super::properties::BROKER_TIMEOUT;
use crate::{Error, Result};

/// The union list state holding every partition's next offset.
const OFFSETS_STATE: &str = "kafka-partition-offsets";
/// The longest a poll waits for a record.
const POLL_WAIT: Duration = Duration::from_millis(20);

/// A record as read from Kafka, handed to the deserializer.
#[derive(Debug, Clone, Copy)]
pub struct KafkaMessage<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<&'a [u8]>,
    /// Its value, if any (`None` for a tombstone).
    pub payload: Option<&'a [u8]>,
    /// Its timestamp (create or log-append time), ms since the epoch.
    pub timestamp: Option<i64>,
}

/// What happens to a record the deserializer rejects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeserializationErrorPolicy {
    /// The job fails with an error naming the topic, partition and offset (the default).
    #[default]
    Fail,
    /// The record is skipped with a warning naming it, and counted.
    Skip,
}

type Deserializer<T> = Arc<dyn Fn(&KafkaMessage<'_>) -> Result<T, String> + Send + Sync>;

/// Reads Kafka topics (Flink's `KafkaSource`).
///
/// - **Splits.** Each partition of the topics is read by one subtask, assigned as Flink
///   does (round-robin from a start subtask that depends on the topic name); a subtask
///   without a partition is idle.
/// - **Checkpoints.** Every partition's next offset is stored in the union list state
///   `kafka-partition-offsets`; a restore at any parallelism hands each partition to its new
///   owner at the stored offset, so each record is read once into the job's state. When a
///   checkpoint completes, its offsets are committed to the consumer group (`group.id`,
///   if set) for monitoring and for [`StartingOffsets::Committed`]; the checkpoint, not the
///   group, is what a restore uses.
/// - **Event time.** With [`Self::watermarks`], timestamps come from the strategy (by
///   default the Kafka record timestamp) and watermarks are generated per partition; the
///   subtask's watermark is the minimum over its partitions. With idleness, a partition
///   without records for that long stops holding the watermark back, so an empty partition
///   cannot stall windows.
/// - **Bounded mode.** With [`Self::bounded`], each partition stops at its stopping offset
///   and the source finishes when all have.
/// - **Properties** are passed to librdkafka unchanged; the source turns off auto-commit
///   (offsets are committed on checkpoints) and reads committed records only
///   (`isolation.level=read_committed`) unless told otherwise.
pub struct KafkaSource<T> {
    properties: KafkaProperties,
    topics: Vec<String>,
    start: StartingOffsets,
    stop: Option<StoppingOffsets>,
    deserializer: Deserializer<T>,
    on_error: DeserializationErrorPolicy,
    watermarks: Option<WatermarkStrategy<T>>,
    watermark_interval: Duration,
    /// Set in `open`.
    reader: Option<Reader<T>>,
}

/// A subtask's running state.
struct Reader<T> {
    consumer: BaseConsumer,
    splits: Splits<T>,
    state: OperatorListState<StoredOffset>,
    /// The offsets of each checkpoint not yet complete, to commit when it completes.
    uncommitted: BTreeMap<CheckpointId, TopicPartitionList>,
    has_group: bool,
}

/// The partitions a subtask reads and their watermarks.
struct Splits<T> {
    partitions: Vec<PartitionReader>,
    watermarks: Option<SplitWatermarks<T, usize>>,
    /// Records skipped by the deserialization error policy.
    skipped: u64,
}

impl<T> KafkaSource<T> {
    /// A source reading `topics` with `properties`, turning each record into a value with
    /// `deserializer` (an `Err` names what is wrong with the record). Starts at the
    /// earliest offsets, unbounded, without watermarks.
    pub fn new(
        properties: KafkaProperties,
        topics: &[&str],
        deserializer: impl Fn(&KafkaMessage<'_>) -> Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        KafkaSource {
            properties,
            topics: topics.iter().map(|topic| topic.to_string()).collect(),
            start: StartingOffsets::Earliest,
            stop: None,
            deserializer: Arc::new(deserializer),
            on_error: DeserializationErrorPolicy::Fail,
            watermarks: None,
            watermark_interval: Duration::from_millis(200),
            reader: None,
        }
    }

    /// Where partitions start without a checkpoint.
    pub fn starting_offsets(self, start: StartingOffsets) -> Self {
        KafkaSource { start, ..self }
    }

    /// Reads each partition up to `stop`, then finishes.
    pub fn bounded(self, stop: StoppingOffsets) -> Self {
        KafkaSource { stop: Some(stop), ..self }
    }

    /// What to do with records the deserializer rejects.
    pub fn on_deserialization_error(self, on_error: DeserializationErrorPolicy) -> Self {
        KafkaSource { on_error, ..self }
    }

    /// Generates watermarks per partition with `strategy`, with its periodic emit every
    /// `interval` (Flink's `pipeline.auto-watermark-interval`, 200 ms by default there).
    pub fn watermarks(self, strategy: WatermarkStrategy<T>, interval: Duration) -> Self {
        KafkaSource { watermarks: Some(strategy), watermark_interval: interval, ..self }
    }
}

impl<T> Clone for KafkaSource<T> {
    /// Clones the configuration; the clone is not open.
    fn clone(&self) -> Self {
        KafkaSource {
            properties: self.properties.clone(),
            topics: self.topics.clone(),
            start: self.start.clone(),
            stop: self.stop.clone(),
            deserializer: Arc::clone(&self.deserializer),
            on_error: self.on_error,
            watermarks: self.watermarks.clone(),
            watermark_interval: self.watermark_interval,
            reader: None,
        }
    }
}

impl<T> fmt::Debug for KafkaSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSource")
            .field("topics", &self.topics)
            .field("start", &self.start)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl<T: 'static> KafkaSource<T> {
    fn consumer(&self) -> Result<BaseConsumer> {
        let mut config = self.properties.client_config();
        config.set("enable.auto.commit", "false").set("enable.auto.offset.store", "false");
        // librdkafka needs a group to assign partitions; without the user's, offsets are
        // not committed anywhere (see `has_group`).
        if self.properties.get("group.id").is_none() {
            config.set("group.id", "weir-uncommitted");
        }
        if self.properties.get("isolation.level").is_none() {
            config.set("isolation.level", "read_committed");
        }
        config.create().map_err(|source| Error::kafka("creating a consumer".into(), source))
    }

    /// Every partition of the topics.
    fn all_partitions(&self, consumer: &BaseConsumer) -> Result<Vec<Partition>> {
        let mut all = Vec::new();
        for topic in &self.topics {
            let metadata = consumer
                .fetch_metadata(Some(topic), BROKER_TIMEOUT)
                .map_err(|source| Error::kafka(format!("reading metadata of {topic}"), source))?;
            let partitions = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic && t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()));
            let before = all.len();
            all.extend(partitions.map(|partition| Partition { topic: topic.clone(), partition }));
            if all.len() == before {
                return Err(Error::KafkaConfig(format!("topic {topic} has no partitions")));
            }
        }
        Ok(all)
    }

    /// This subtask's partitions with where they start and stop.
    fn readers(
        &self,
        consumer: &BaseConsumer,
        info: &SubtaskInfo,
        restored: Option<&[StoredOffset]>,
    ) -> Result<Vec<PartitionReader>> {
        let owned: Vec<Partition> = (self.all_partitions(consumer)?.into_iter())
            .filter(|partition| partition.owner(info.parallelism) == info.index)
            .collect();
        let starts = match restored {
            // Partitions new since the checkpoint start at the earliest offset.
            Some(stored) => {
                let offset = |p: &Partition| {
                    let found = stored.iter().find(|(t, n, _)| *t == p.topic && *n == p.partition);
                    found.map(|(_, _, offset)| *offset)
                };
                let new: Vec<Partition> =
                    owned.iter().filter(|p| offset(p).is_none()).cloned().collect();
                let mut new_starts =
                    StartingOffsets::Earliest.resolve(consumer, &new, false)?.into_iter();
                owned
                    .iter()
                    .map(|p| offset(p).unwrap_or_else(|| new_starts.next().expect("one each")))
                    .collect()
            }
            None => {
                let has_group = self.properties.get("group.id").is_some();
                self.start.resolve(consumer, &owned, has_group)?
            }
        };
        let stops = match &self.stop {
            Some(stop) => stop.resolve(consumer, &owned)?.into_iter().map(Some).collect(),
            None => vec![None; owned.len()],
        };
        let readers = owned.into_iter().zip(starts).zip(stops);
        Ok(readers
            .map(|((partition, next), stop)| PartitionReader { partition, next, stop })
            .collect())
    }
}

impl<T: Send + 'static> SourceFunction<T> for KafkaSource<T> {
    fn open(&mut self, info: &SubtaskInfo, ctx: &mut RuntimeContext<'_>) -> FnResult {
        let state = ctx.operator_state().union_list_state::<StoredOffset>(OFFSETS_STATE)?;
        let restored = ctx.is_restored().then(|| state.get(ctx.operator_state()).to_vec());
        let consumer = self.consumer()?;
        let partitions = self.readers(&consumer, info, restored.as_deref())?;
        let reading = partitions.iter().filter(|reader| !reader.is_finished());
        let assignment = partition_list(reading.map(|r| (&r.partition, Offset::Offset(r.next))))?;
        consumer
            .assign(&assignment)
            .map_err(|source| Error::kafka("assigning partitions".into(), source))?;
        let now = processing_time_now();
        let watermarks = self.watermarks.clone().map(|strategy| {
            let mut watermarks = SplitWatermarks::new(strategy, self.watermark_interval);
            for (index, _) in partitions.iter().enumerate().filter(|(_, r)| !r.is_finished()) {
                watermarks.add_split(index, now);
            }
            watermarks
        });
        tracing::info!(
            subtask = info.index,
            partitions = ?partitions.iter().map(|r| (r.partition.describe(), r.next)).collect::<Vec<_>>(),
            restored = restored.is_some(),
            "Kafka source opened"
        );
        self.reader = Some(Reader {
            consumer,
            splits: Splits { partitions, watermarks, skipped: 0 },
            state,
            uncommitted: BTreeMap::new(),
            has_group: self.properties.get("group.id").is_some(),
        });
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Record<T>>, max: usize) -> FnResult<SourcePoll> {
        let Reader { consumer, splits, .. } =
            self.reader.as_mut().expect("KafkaSource polled before open");
        if self.stop.is_some() && splits.partitions.iter().all(PartitionReader::is_finished) {
            return Ok(SourcePoll::Finished);
        }
        let now = processing_time_now();
        let mut wait = POLL_WAIT;
        while out.len() < max {
            let Some(result) = consumer.poll(wait) else { break };
            wait = Duration::ZERO;
            match result {
                Ok(message) => {
                    let policy = self.on_error;
                    splits.emit(consumer, &message, &self.deserializer, policy, now, out)?;
                }
                // librdkafka retries by itself; report what it says and go on.
                Err(error) => tracing::warn!(%error, "Kafka consumer"),
            }
        }
        if out.is_empty() {
            if self.stop.is_some() {
                splits.finish_by_position(consumer)?;
            }
            return Ok(SourcePoll::Pending(Duration::ZERO));
        }
        Ok(SourcePoll::Ready)
    }

    fn watermark(&mut self) -> Option<SourceWatermark> {
        let reader = self.reader.as_mut()?;
        Some(reader.splits.watermarks.as_mut()?.current(processing_time_now()))
    }

    fn snapshot_state(
        &mut self,
        checkpoint: CheckpointId,
        state: &mut OperatorStateStore,
    ) -> FnResult {
        let reader = self.reader.as_mut().expect("KafkaSource snapshotted before open");
        let stored = (reader.splits.partitions.iter())
            .map(|r| (r.partition.topic.clone(), r.partition.partition, r.next))
            .collect();
        reader.state.update(state, stored);
        if reader.has_group {
            let offsets =
                reader.splits.partitions.iter().map(|r| (&r.partition, Offset::Offset(r.next)));
            reader.uncommitted.insert(checkpoint, partition_list(offsets)?);
        }
        Ok(())
    }

    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> FnResult {
        let reader = self.reader.as_mut().expect("KafkaSource notified before open");
        let Some(offsets) = reader.uncommitted.remove(&checkpoint) else { return Ok(()) };
        // Older checkpoints are covered by this one.
        reader.uncommitted.retain(|id, _| *id > checkpoint);
        if let Err(error) = reader.consumer.commit(&offsets, CommitMode::Async) {
            // The checkpoint holds the offsets; the group's copy is for monitoring.
            tracing::warn!(%error, checkpoint, "committing offsets to the Kafka group failed");
        }
        Ok(())
    }
}

impl<T: 'static> Splits<T> {
    /// Emits `message` of one of this subtask's partitions, deserialized, unless it lies
    /// outside what the partition still has to read.
    fn emit(
        &mut self,
        consumer: &BaseConsumer,
        message: &BorrowedMessage<'_>,
        deserializer: &Deserializer<T>,
        on_error: DeserializationErrorPolicy,
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
            Err(reason) if on_error == DeserializationErrorPolicy::Fail => {
                return Err(Error::Deserialize { topic: topic.into(), partition, offset, reason });
            }
            Err(reason) => {
                self.skipped += 1;
                tracing::warn!(
                    topic,
                    partition,
                    offset,
                    reason,
                    skipped = self.skipped,
                    "skipping a record that cannot be deserialized"
                );
            }
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
    fn finish_by_position(&mut self, consumer: &BaseConsumer) -> Result<()> {
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
