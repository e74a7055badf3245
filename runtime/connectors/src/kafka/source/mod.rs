//! The Kafka source: partitions spread over subtasks, offsets in checkpoints and committed to
//! the group when they complete, per-partition watermarks, bounded mode.

mod dead_letter;
mod discovery;
mod offsets;
mod partitions;
mod splits;
mod subscription;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use weir_operators::function::FnResult;
use weir_operators::watermark::{SplitWatermarks, WatermarkStrategy};
use weir_operators::{
    Collector, RuntimeContext, SourceFunction, SourcePoll, SourceWatermark, SubtaskInfo,
    processing_time_now,
};
use weir_state::{OperatorListState, OperatorStateStore};
use weir_types::{CheckpointId, Record};

use dead_letter::Rejects;
pub use dead_letter::{DeadLetter, DeserializationErrorPolicy};
use discovery::Discovery;
use offsets::partition_list;
pub use offsets::{StartingOffsets, StoppingOffsets};
use partitions::{Partition, PartitionReader, StoredOffset};
use splits::Splits;
use subscription::Subscription;

use super::KafkaProperties;
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

type Deserializer<T> = Arc<dyn Fn(&KafkaMessage<'_>) -> Result<T, String> + Send + Sync>;

/// Reads Kafka topics (Flink's `KafkaSource`).
///
/// - **Topics** are a list ([`Self::new`]) or every topic whose name matches a regular
///   expression ([`Self::with_topic_pattern`]).
/// - **Splits.** Each partition of the topics is read by one subtask, assigned as Flink
///   does (round-robin from a start subtask that depends on the topic name); a subtask
///   without a partition is idle.
/// - **Partition discovery.** An unbounded source looks for new partitions (and, with a
///   pattern, new topics) every [`Self::partition_discovery`] interval (5 minutes by default,
///   as Flink's `partition.discovery.interval.ms`); each subtask takes the new partitions the
///   assignment above gives it and reads them from their earliest offset.
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
///   and the source finishes when all have; partitions are not discovered.
/// - **Records that cannot be deserialized** fail the job naming their partition and offset,
///   are skipped, or go to a dead-letter side output
///   ([`Self::on_deserialization_error`]).
/// - **Properties** are passed to librdkafka unchanged; the source turns off auto-commit
///   (offsets are committed on checkpoints) and reads committed records only
///   (`isolation.level=read_committed`) unless told otherwise.
pub struct KafkaSource<T> {
    properties: KafkaProperties,
    subscription: Subscription,
    start: StartingOffsets,
    stop: Option<StoppingOffsets>,
    deserializer: Deserializer<T>,
    on_error: DeserializationErrorPolicy,
    watermarks: Option<WatermarkStrategy<T>>,
    watermark_interval: Duration,
    discovery_interval: Option<Duration>,
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
    /// When to look for new partitions (unbounded, with discovery on).
    discovery: Option<Discovery>,
    /// The subtask, to tell which discovered partitions are its own.
    info: SubtaskInfo,
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
        let topics = topics.iter().map(|topic| topic.to_string()).collect();
        KafkaSource::subscribed(properties, Subscription::Topics(topics), Arc::new(deserializer))
    }

    /// A source reading every topic whose whole name matches the regular expression
    /// `pattern` (Flink's `setTopicPattern`; internal topics, `__…`, excepted), as [`Self::new`]
    /// otherwise. Topics created later are found by partition discovery. Fails if `pattern`
    /// is not a regular expression.
    pub fn with_topic_pattern(
        properties: KafkaProperties,
        pattern: &str,
        deserializer: impl Fn(&KafkaMessage<'_>) -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Self> {
        let subscription = Subscription::pattern(pattern)?;
        Ok(KafkaSource::subscribed(properties, subscription, Arc::new(deserializer)))
    }

    fn subscribed(
        properties: KafkaProperties,
        subscription: Subscription,
        deserializer: Deserializer<T>,
    ) -> Self {
        KafkaSource {
            properties,
            subscription,
            start: StartingOffsets::Earliest,
            stop: None,
            deserializer,
            on_error: DeserializationErrorPolicy::Fail,
            watermarks: None,
            watermark_interval: Duration::from_millis(200),
            discovery_interval: Some(discovery::DEFAULT_INTERVAL),
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

    /// Looks for new partitions and topics every `interval` (Flink's
    /// `partition.discovery.interval.ms`; 5 minutes by default); `None` turns discovery off.
    /// A bounded source never discovers.
    pub fn partition_discovery(self, interval: Option<Duration>) -> Self {
        KafkaSource { discovery_interval: interval, ..self }
    }

    /// What to do with records the deserializer rejects (by default, fail).
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
            subscription: self.subscription.clone(),
            start: self.start.clone(),
            stop: self.stop.clone(),
            deserializer: Arc::clone(&self.deserializer),
            on_error: self.on_error.clone(),
            watermarks: self.watermarks.clone(),
            watermark_interval: self.watermark_interval,
            discovery_interval: self.discovery_interval,
            reader: None,
        }
    }
}

impl<T> fmt::Debug for KafkaSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSource")
            .field("subscription", &self.subscription)
            .field("start", &self.start)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl<T: 'static> KafkaSource<T> {
    /// The consumer's configuration: the user's properties, with the connector's on top.
    fn consumer_config(&self) -> ClientConfig {
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
        config
    }

    fn consumer(&self) -> Result<BaseConsumer> {
        (self.consumer_config().create())
            .map_err(|source| Error::kafka("creating a consumer".into(), source))
    }

    /// This subtask's partitions with where they start and stop.
    fn readers(
        &self,
        consumer: &BaseConsumer,
        info: &SubtaskInfo,
        restored: Option<&[StoredOffset]>,
    ) -> Result<Vec<PartitionReader>> {
        let owned = self.owned_partitions(consumer, info)?;
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

    /// The partitions of the subscribed topics that subtask `info` reads.
    fn owned_partitions(
        &self,
        consumer: &BaseConsumer,
        info: &SubtaskInfo,
    ) -> Result<Vec<Partition>> {
        let all = self.subscription.partitions(consumer)?.into_iter();
        Ok(all.filter(|partition| partition.owner(info.parallelism) == info.index).collect())
    }

    /// Starts reading the partitions of this subtask that appeared since it last looked,
    /// from their earliest offsets. A failed look is retried at the next interval.
    fn discover(&mut self, now: i64) -> Result<()> {
        let reader = self.reader.as_ref().expect("KafkaSource polled before open");
        let owned = match self.owned_partitions(&reader.consumer, &reader.info) {
            Ok(owned) => owned,
            Err(error) => {
                tracing::warn!(%error, "Kafka partition discovery failed; retrying later");
                return Ok(());
            }
        };
        let new: Vec<Partition> =
            owned.into_iter().filter(|p| !reader.splits.contains(p)).collect();
        if new.is_empty() {
            return Ok(());
        }
        let starts = StartingOffsets::Earliest.resolve(&reader.consumer, &new, false)?;
        let readers = new.into_iter().zip(starts);
        let readers =
            readers.map(|(partition, next)| PartitionReader { partition, next, stop: None });
        let Reader { consumer, splits, .. } = self.reader.as_mut().expect("checked");
        splits.add(consumer, readers.collect(), now)
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
        let discovery = match (&self.stop, self.discovery_interval) {
            (None, Some(interval)) => Some(Discovery::every(interval)),
            _ => None,
        };
        self.reader = Some(Reader {
            consumer,
            splits: Splits { partitions, watermarks, rejects: Rejects::new(self.on_error.clone()) },
            state,
            uncommitted: BTreeMap::new(),
            has_group: self.properties.get("group.id").is_some(),
            discovery,
            info: info.clone(),
        });
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Record<T>>, max: usize) -> FnResult<SourcePoll> {
        let now = processing_time_now();
        let reader = self.reader.as_mut().expect("KafkaSource polled before open");
        if reader.discovery.as_mut().is_some_and(Discovery::due) {
            self.discover(now)?;
        }
        let Reader { consumer, splits, .. } = self.reader.as_mut().expect("checked");
        if self.stop.is_some() && splits.partitions.iter().all(PartitionReader::is_finished) {
            return Ok(SourcePoll::Finished);
        }
        let mut wait = POLL_WAIT;
        while out.len() < max {
            let Some(result) = consumer.poll(wait) else { break };
            wait = Duration::ZERO;
            match result {
                Ok(message) => splits.emit(consumer, &message, &self.deserializer, now, out)?,
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

    fn side_outputs(&mut self, out: &mut Collector<()>) -> FnResult {
        if let Some(reader) = &mut self.reader {
            reader.splits.rejects.emit(out);
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn source(properties: KafkaProperties) -> KafkaSource<()> {
        KafkaSource::new(properties, &["events"], |_| Ok(()))
    }

    #[test]
    fn consumer_properties_pass_through_under_the_connectors_own() {
        let properties = KafkaProperties::new("127.0.0.1:1")
            .set("session.timeout.ms", "6000")
            .set("fetch.max.bytes", "1000000")
            .set("enable.auto.commit", "true");
        let config = source(properties).consumer_config();
        assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:1"));
        assert_eq!(config.get("session.timeout.ms"), Some("6000"));
        assert_eq!(config.get("fetch.max.bytes"), Some("1000000"));
        assert_eq!(config.get("enable.auto.commit"), Some("false"), "offsets go by checkpoints");
        assert_eq!(config.get("isolation.level"), Some("read_committed"));
        assert_eq!(config.get("group.id"), Some("weir-uncommitted"));

        let properties = KafkaProperties::new("127.0.0.1:1")
            .set("isolation.level", "read_uncommitted")
            .set("group.id", "mine");
        let config = source(properties).consumer_config();
        assert_eq!(config.get("isolation.level"), Some("read_uncommitted"), "the user's wins");
        assert_eq!(config.get("group.id"), Some("mine"));
    }

    #[test]
    fn an_unknown_consumer_property_reaches_librdkafka_and_fails_clearly() {
        let properties = KafkaProperties::new("127.0.0.1:1").set("no.such.property", "1");
        let error = source(properties).consumer().map(drop).unwrap_err().to_string();
        assert!(
            error.contains("creating a consumer") && error.contains("no.such.property"),
            "{error}"
        );
    }
}
