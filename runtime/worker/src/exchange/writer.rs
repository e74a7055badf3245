//! The producing end of an edge: routes records into per-channel buffers and sends full
//! batches, blocking (backpressure) while a consumer's channel is full.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crossbeam_channel::{Select, Sender, TrySendError};
use serde::Serialize;
use weir_operators::{Error, Output, Result, TaskSnapshot, panic_message};
use weir_types::{
    AppendBytes, KeyGroup, KeyHasher, Record, StreamMessage, Watermark, WatermarkStatus,
    subtask_for_key_group,
};

use super::CancelToken;
use crate::config::records_per_batch;
use crate::graph::{KeyGroupFn, Partitioning};
use crate::load::TaskLoad;
use crate::stream_type::WriterSettings;

/// How a writer picks the channel of a record.
enum Route<T> {
    Forward,
    RoundRobin { next: usize },
    Shuffle(fastrand::Rng),
    Broadcast,
    Hash(HashRoute<T>),
}

/// Routing by key group: the edge's key-group function and what it works with.
struct HashRoute<T> {
    key_group: KeyGroupFn<T>,
    hasher: KeyHasher,
    max_parallelism: usize,
    /// The consumer's name, for errors.
    consumer: String,
    /// The key groups of the batch being routed (kept for its capacity).
    groups: Vec<KeyGroup>,
}

impl<T> HashRoute<T> {
    /// The key groups of `batch`'s records into `self.groups`; a key selector that fails or
    /// panics is an error naming the consumer.
    fn compute(&mut self, batch: &[Record<T>]) -> Result<()> {
        let HashRoute { key_group, hasher, max_parallelism, consumer, groups } = self;
        groups.clear();
        catch_unwind(AssertUnwindSafe(|| key_group(batch, hasher, *max_parallelism, groups)))
            .map_err(|panic| panic_message(panic.as_ref()))
            .and_then(|computed| computed.map_err(|e| e.to_string()))
            .map_err(|e| Error::Runtime(format!("key selector of '{consumer}' failed: {e}")))
    }
}

/// An [`Output`] that sends to the subtasks of a consumer over bounded channels.
pub struct ChannelWriter<T> {
    channels: Vec<Sender<StreamMessage<T>>>,
    buffers: Vec<Vec<Record<T>>>,
    /// How many records each channel's open batch takes before it is sent.
    limits: Vec<usize>,
    route: Route<T>,
    sizing: BatchSizing,
    cancel: CancelToken,
    load: Arc<TaskLoad>,
}

/// How many records a batch takes: `batch_size` at most, and `batch_bytes` at most by the
/// larger of a record's in-memory size and its encoded size, measured on the first record of
/// each batch (so records that own large strings or buffers make smaller batches).
struct BatchSizing {
    batch_size: usize,
    batch_bytes: usize,
    /// Encoding buffer for the measurement, kept for its capacity.
    scratch: Vec<u8>,
}

impl BatchSizing {
    fn records_for<T: Serialize>(&mut self, first: &T) -> usize {
        self.scratch.clear();
        let encoded = postcard::serialize_with_flavor(first, AppendBytes(&mut self.scratch))
            .map_or(0, |()| self.scratch.len());
        let record_bytes = std::mem::size_of::<Record<T>>().max(encoded);
        records_per_batch(self.batch_size, self.batch_bytes, record_bytes)
    }
}

impl<T: Clone + Send + Serialize + 'static> ChannelWriter<T> {
    /// A writer over `channels` (one per consumer subtask, or one for forward edges).
    pub fn new(
        partitioning: &Partitioning,
        channels: Vec<Sender<StreamMessage<T>>>,
        settings: WriterSettings,
    ) -> Self {
        let WriterSettings {
            subtask,
            max_parallelism,
            batch_size,
            batch_bytes,
            cancel,
            consumer,
            load,
        } = settings;
        let route = match partitioning {
            Partitioning::Forward | Partitioning::Default => Route::Forward,
            Partitioning::Rebalance => Route::RoundRobin { next: subtask % channels.len() },
            Partitioning::Shuffle => Route::Shuffle(fastrand::Rng::new()),
            Partitioning::Broadcast => Route::Broadcast,
            Partitioning::Hash(key_group) => Route::Hash(HashRoute {
                key_group: key_group
                    .downcast_ref::<KeyGroupFn<T>>()
                    .expect("hash partitioner built for this edge's record type")
                    .clone(),
                hasher: KeyHasher::new(),
                max_parallelism,
                consumer,
                groups: Vec::new(),
            }),
        };
        let buffers = channels.iter().map(|_| Vec::new()).collect();
        let limits = vec![batch_size; channels.len()];
        let sizing = BatchSizing { batch_size, batch_bytes, scratch: Vec::new() };
        ChannelWriter { channels, buffers, limits, route, sizing, cancel, load }
    }

    /// Sends `message`, counting the time blocked on a full channel as backpressure.
    fn send(&self, channel: usize, message: StreamMessage<T>) -> Result<()> {
        let sender = &self.channels[channel];
        match try_send(sender, message)? {
            None => Ok(()),
            Some(message) => {
                self.load.backpressured(|| send_blocking(sender, message, &self.cancel))
            }
        }
    }

    fn send_buffer(&mut self, channel: usize) -> Result<()> {
        if self.buffers[channel].is_empty() {
            return Ok(());
        }
        let full = std::mem::take(&mut self.buffers[channel]);
        self.send(channel, StreamMessage::Records(full))
    }

    fn push_to(&mut self, channel: usize, record: Record<T>) -> Result<()> {
        let buffer = &mut self.buffers[channel];
        if buffer.is_empty() {
            let limit = self.sizing.records_for(&record.value);
            self.limits[channel] = limit;
            buffer.reserve_exact(limit);
        }
        buffer.push(record);
        if buffer.len() >= self.limits[channel] {
            self.send_buffer(channel)?;
        }
        Ok(())
    }

    fn send_to_all(&mut self, message: impl Fn() -> StreamMessage<T>) -> Result<()> {
        for channel in 0..self.channels.len() {
            self.send_buffer(channel)?;
            self.send(channel, message())?;
        }
        Ok(())
    }
}

/// Sends `message`, blocking while the channel is full (backpressure) unless the job is
/// cancelled; a closed channel or a cancel is [`Error::Cancelled`].
pub(crate) fn send_or_cancel<M>(
    sender: &Sender<M>,
    message: M,
    cancel: &CancelToken,
) -> Result<()> {
    match try_send(sender, message)? {
        None => Ok(()),
        Some(message) => send_blocking(sender, message, cancel),
    }
}

/// Sends `message` if the channel has room; hands it back when the channel is full.
fn try_send<M>(sender: &Sender<M>, message: M) -> Result<Option<M>> {
    match sender.try_send(message) {
        Ok(()) => Ok(None),
        Err(TrySendError::Disconnected(_)) => Err(Error::Cancelled),
        Err(TrySendError::Full(message)) => Ok(Some(message)),
    }
}

/// Sends `message`, blocking until the channel has room or the job is cancelled.
fn send_blocking<M>(sender: &Sender<M>, message: M, cancel: &CancelToken) -> Result<()> {
    let mut select = Select::new();
    let send_index = select.send(sender);
    select.recv(cancel.receiver());
    let operation = select.select();
    if operation.index() == send_index {
        operation.send(sender, message).map_err(|_| Error::Cancelled)
    } else {
        let _ = operation.recv(cancel.receiver());
        Err(Error::Cancelled)
    }
}

impl<T: Clone + Send + Serialize + 'static> Output<T> for ChannelWriter<T> {
    fn push_batch(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let channels = self.channels.len();
        match &mut self.route {
            Route::Forward => {
                for record in batch.drain(..) {
                    self.push_to(0, record)?;
                }
            }
            Route::Broadcast => {
                for record in batch.drain(..) {
                    for channel in 0..channels {
                        self.push_to(channel, record.clone())?;
                    }
                }
            }
            Route::Hash(route) => {
                route.compute(batch)?;
                let (groups, max_parallelism) =
                    (std::mem::take(&mut route.groups), route.max_parallelism);
                let routed = batch.drain(..).zip(&groups).try_for_each(|(record, &group)| {
                    self.push_to(subtask_for_key_group(group, max_parallelism, channels), record)
                });
                if let Route::Hash(route) = &mut self.route {
                    route.groups = groups;
                }
                routed?;
            }
            _ => {
                for record in batch.drain(..) {
                    let channel = match &mut self.route {
                        Route::RoundRobin { next } => {
                            *next = (*next + 1) % channels;
                            *next
                        }
                        Route::Shuffle(rng) => rng.usize(..channels),
                        Route::Forward | Route::Broadcast | Route::Hash(_) => {
                            unreachable!("handled above")
                        }
                    };
                    self.push_to(channel, record)?;
                }
            }
        }
        Ok(())
    }

    fn push_watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.send_to_all(|| StreamMessage::Watermark(watermark))
    }

    fn push_watermark_status(&mut self, status: WatermarkStatus) -> Result<()> {
        self.send_to_all(|| StreamMessage::Status(status))
    }

    fn checkpoint(&mut self, task: &mut TaskSnapshot) -> Result<()> {
        let barrier = task.barrier;
        self.send_to_all(|| StreamMessage::Barrier(barrier))
    }

    fn flush(&mut self) -> Result<()> {
        (0..self.channels.len()).try_for_each(|channel| self.send_buffer(channel))
    }

    fn finish(&mut self) -> Result<()> {
        self.send_to_all(|| StreamMessage::EndOfInput)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crossbeam_channel::{Receiver, bounded};
    use weir_types::key_group_for_key;

    use super::*;
    use crate::exchange::CancelHandle;

    fn writer(
        partitioning: Partitioning,
        consumers: usize,
        batch_size: usize,
    ) -> (ChannelWriter<u64>, Vec<Receiver<StreamMessage<u64>>>, CancelHandle) {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..consumers).map(|_| bounded(64)).unzip();
        let (handle, token) = CancelHandle::new();
        (ChannelWriter::new(&partitioning, senders, settings(batch_size, token)), receivers, handle)
    }

    fn settings(batch_size: usize, cancel: CancelToken) -> WriterSettings {
        WriterSettings {
            subtask: 0,
            max_parallelism: 128,
            batch_size,
            batch_bytes: usize::MAX,
            cancel,
            consumer: "c".into(),
            load: Arc::default(),
        }
    }

    fn drain(receiver: &Receiver<StreamMessage<u64>>) -> (Vec<u64>, Vec<String>) {
        let (mut values, mut control) = (Vec::new(), Vec::new());
        for message in receiver.try_iter() {
            match message {
                StreamMessage::Records(batch) => values.extend(batch.into_iter().map(|r| r.value)),
                other => control.push(format!("{other:?}")),
            }
        }
        (values, control)
    }

    #[test]
    fn hash_routes_each_key_to_its_key_group_owner() {
        let key: Arc<dyn Fn(&u64) -> u64 + Send + Sync> = Arc::new(|v| *v % 10);
        let (mut writer, receivers, _cancel) = writer(Partitioning::hash(key), 3, 4);
        writer.push_batch(&mut (0..100).map(Record::new).collect()).unwrap();
        writer.finish().unwrap();
        for (subtask, receiver) in receivers.iter().enumerate() {
            let (values, control) = drain(receiver);
            assert_eq!(control, vec!["EndOfInput"]);
            for value in values {
                let group = key_group_for_key(&(value % 10), 128).unwrap();
                assert_eq!(subtask_for_key_group(group, 128, 3), subtask, "value {value}");
            }
        }
    }

    #[test]
    fn rebalance_spreads_evenly_and_broadcast_copies() {
        let (mut writer, receivers, _cancel) = writer(Partitioning::Rebalance, 4, 1000);
        writer.push_batch(&mut (0..100).map(Record::new).collect()).unwrap();
        writer.flush().unwrap();
        let counts: Vec<usize> = receivers.iter().map(|r| drain(r).0.len()).collect();
        assert_eq!(counts, vec![25, 25, 25, 25]);

        let (mut writer, receivers, _cancel) = writer_broadcast();
        writer.push_batch(&mut (0..10).map(Record::new).collect()).unwrap();
        writer.push_watermark(Watermark(5)).unwrap();
        for receiver in &receivers {
            let (values, control) = drain(receiver);
            assert_eq!(values, (0..10).collect::<Vec<_>>());
            assert_eq!(control, vec!["Watermark(Watermark(5))"], "records precede the watermark");
        }
    }

    fn writer_broadcast() -> (ChannelWriter<u64>, Vec<Receiver<StreamMessage<u64>>>, CancelHandle) {
        writer(Partitioning::Broadcast, 2, 1000)
    }

    #[test]
    fn forward_sends_batches_of_at_most_batch_size() {
        let (mut writer, receivers, _cancel) = writer(Partitioning::Forward, 1, 4);
        writer.push_batch(&mut (0..10).map(Record::new).collect()).unwrap();
        writer.flush().unwrap();
        let sizes: Vec<usize> = receivers[0]
            .try_iter()
            .map(|m| match m {
                StreamMessage::Records(batch) => batch.len(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(sizes, vec![4, 4, 2]);
    }

    #[test]
    fn batches_close_at_their_bytes_by_the_encoded_size_of_their_first_record() {
        let (sender, receiver) = bounded(64);
        let (_handle, token) = CancelHandle::new();
        let settings = WriterSettings { batch_bytes: 10_000, ..settings(100, token) };
        let mut writer = ChannelWriter::new(&Partitioning::Forward, vec![sender], settings);
        // A 1000-byte string encodes to 1002 bytes: 9 of them fill 10 000 bytes.
        let mut big: Vec<_> = (0..20).map(|_| Record::new("x".repeat(1000))).collect();
        writer.push_batch(&mut big).unwrap();
        // Small records are sized by their in-memory size, up to `batch_size`.
        let mut small: Vec<_> = (0..150).map(|i| Record::new(i.to_string())).collect();
        writer.push_batch(&mut small).unwrap();
        writer.flush().unwrap();
        let sizes: Vec<usize> = receiver
            .try_iter()
            .map(|m| match m {
                StreamMessage::Records(batch) => batch.len(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(sizes, vec![9, 9, 2 + 7, 100, 43]);
    }

    #[test]
    fn full_channel_blocks_until_cancelled() {
        let (sender, _receiver) = bounded(1);
        let (handle, token) = CancelHandle::new();
        let settings = settings(1, token);
        let load = settings.load.clone();
        let mut writer = ChannelWriter::new(&Partitioning::Forward, vec![sender], settings);
        let blocked = std::thread::spawn(move || {
            (0..3u64).try_for_each(|i| writer.push_batch(&mut vec![Record::new(i)]))
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!blocked.is_finished(), "a full channel must block the producer");
        let backpressured = load.totals().backpressured_ns;
        assert!(backpressured >= 50_000_000, "the block counts as backpressure: {backpressured}");
        handle.cancel();
        assert!(matches!(blocked.join().unwrap(), Err(Error::Cancelled)));
    }
}
