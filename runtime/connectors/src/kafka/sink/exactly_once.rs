//! The exactly-once Kafka sink: one Kafka transaction per subtask and checkpoint, committed
//! when the checkpoint completes, on producers reused from a per-subtask pool.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use serde::{Deserialize, Serialize};
use weir_operators::SubtaskInfo;
use weir_operators::builtin::TwoPhaseCommitSink;
use weir_operators::function::FnResult;
use weir_types::Timestamp;

use super::left_open::{self, Held, Left};
use super::pool::{Pooled, ProducerPool};
use super::write_ahead::{WriteAhead, WriteAheadBuffer};
use super::{ProducerRecord, Serializer, serialize};
use super::{marker, producer};
use crate::kafka::KafkaProperties;
use crate::kafka::properties::BROKER_TIMEOUT;
use crate::{Error, Result};

/// librdkafka's default `transaction.timeout.ms`.
const DEFAULT_TRANSACTION_TIMEOUT_MS: u64 = 60_000;

/// A transaction of [`TransactionalKafkaSink`], as stored in checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaTransaction {
    /// `{prefix}-{subtask}-{slot}`: the id of the pooled producer that holds it.
    pub transactional_id: String,
    /// The subtask that began it.
    pub subtask: usize,
    /// Its producer's slot in that subtask's pool.
    pub slot: usize,
    /// The transaction's number within its subtask (a producer's transactions follow each
    /// other under one id).
    pub number: u64,
    /// How many slots that subtask's pool had when the transaction began: a restore fences
    /// each of their ids.
    pub pool_size: usize,
    /// With a write-ahead copy (the default; see
    /// [`TransactionalKafkaSink::without_write_ahead`]): unique to the transaction, the
    /// commit marker it commits with its records.
    pub marker: Option<i64>,
    /// With a write-ahead copy: the records written into it (once it is pre-committed),
    /// kept in checkpoints until it commits, written again if its producer died before
    /// committing it.
    pub records: WriteAhead,
}

/// Writes records to Kafka exactly once (Flink's `KafkaSink` with
/// `DeliveryGuarantee.EXACTLY_ONCE`); run it with `sink_to_two_phase`.
///
/// Each checkpoint interval of each subtask is one Kafka transaction: its records are
/// flushed when the checkpoint barrier passes and the transaction is committed when the
/// checkpoint completes, so consumers with `isolation.level=read_committed` see each record
/// once.
///
/// Transactions run on a small pool of producers per subtask with stable transactional ids
/// `{prefix}-{subtask}-{slot}`: a producer whose transaction committed begins the next one
/// without initializing again, and a slot is added (one `init_transactions`, tens of
/// milliseconds) only when every producer holds a transaction pre-committed for a checkpoint
/// that has not completed yet. In steady state a subtask has two: one pre-committed and
/// waiting for its checkpoint to complete, one taking records.
///
/// On restore, the transaction that was open at the checkpoint is aborted and every slot the
/// pool had then is fenced: its id is initialized again, which aborts a transaction left
/// open there and fences a zombie producer still using it. After a task failure in the same
/// process, the producers the failed instance left are reused instead, their transactions
/// aborted. After a process died, a transaction of a slot the dead run added after the
/// restored checkpoint (checkpoints pending for longer than an interval) is aborted when the
/// restored pool grows to that slot, or else times out after `transaction.timeout.ms`,
/// holding back read_committed consumers until then: librdkafka cannot tell whether an id
/// was ever used (Flink probes ids upwards until it finds one whose producer epoch is 0), so
/// the sink does not guess how far to look.
///
/// Restored at the same parallelism, each subtask gets back its own transactions. At another
/// parallelism, a subtask finishes the restored transactions it is dealt whoever began them,
/// but takes over (pools and fences) only the slots of its own index: the slots of a
/// subtask index the new run lacks are not fenced, so what a dead run left open there
/// beyond the restored transactions times out; and a subtask ending a transaction of
/// another index by initializing its id (after a process died) may fence the producer that
/// index's subtask just took into its pool, failing the job once more.
///
/// A transaction pre-committed for the restored checkpoint may not be committed yet (the
/// failure came between the checkpoint's completion and the commit). After a task failure
/// in the same process, the restored sink commits it with the producer the failed instance
/// left behind. After the process died, it cannot: committing needs the dead producer's id
/// and epoch, which librdkafka neither exposes nor accepts (Flink sets them through the Java
/// client's internals), and initializing the transactional id again aborts the transaction.
///
/// So by default each transaction keeps a write-ahead copy of its records (as Flink's
/// `GenericWriteAheadSink` does): encoded as they are written, frozen at the pre-commit into
/// bytes the checkpointed transaction shares (checkpoints and memory hold the records of the
/// checkpoint intervals not committed yet, usually one; dropped once committed). And it
/// commits, atomically with its records, a marker: offset `marker` (random, unique to the
/// transaction) of partition 0 of its first record's topic for the consumer group named
/// after its transactional id (`send_offsets_to_transaction`, sent from another thread at
/// the pre-commit, once the records are flushed, so that its round trips to the group
/// coordinator overlap the wait for the checkpoint instead of delaying the commit). The
/// restored sink initializes the transaction's id (which aborts it if it is still open, or
/// finishes a commit the broker had begun), then reads the group's committed offset: if it is the transaction's marker,
/// the transaction committed; otherwise it writes the records again in a new transaction
/// with the marker and commits that. Restored from the latest checkpoint, no later
/// transaction of the id can have committed in between (it would have needed a later
/// checkpoint to complete), so the marker is exact; restored from an older checkpoint, a
/// transaction whose marker a later one overwrote is written again, as is everything else
/// after that checkpoint. Transactions are recovered as they were written: with the copy if
/// they have one, whatever the restored sink's setting.
///
/// [`without_write_ahead`](Self::without_write_ahead) drops the copy and the marker for a
/// little throughput (see `BENCHMARKS.md`). The restored sink then ends a transaction whose
/// producer died at once by initializing its id (which aborts it if it is still open,
/// instead of leaving read_committed consumers stuck until it times out) and logs an error
/// naming it: **its records are lost** unless its commit reached the broker before the
/// process died. A process dying in the moment between a checkpoint's completion and its
/// commits then loses the output of that checkpoint interval of the subtasks whose commit
/// had not gone out.
///
/// `transaction.timeout.ms` (default 60 s) must exceed the job's checkpoint interval, or
/// the broker would abort transactions before their checkpoint completes: `open` fails
/// otherwise.
pub struct TransactionalKafkaSink<T> {
    properties: KafkaProperties,
    serializer: Serializer<T>,
    prefix: String,
    /// Set in `open`.
    subtask: usize,
    /// The number of the next transaction.
    next: u64,
    /// Idle producers; set in `open`.
    pool: Option<ProducerPool>,
    /// The transactions begun and not finished, by transactional id.
    busy: HashMap<String, Busy>,
    /// Whether the transactions of earlier runs were ended (at the first
    /// `begin_transaction`, after the restored ones were finished).
    lingering_ended: bool,
    /// Whether transactions keep a write-ahead copy and commit a marker.
    write_ahead: bool,
}

/// A transaction begun and not finished.
struct Busy {
    /// Its number.
    number: u64,
    /// The producer holding it.
    pooled: Pooled,
    /// The records written into it so far, with a write-ahead copy.
    copy: WriteAheadBuffer,
    /// The topic of its first record, which its commit marker is for.
    marker_topic: Option<String>,
}

impl<T> TransactionalKafkaSink<T> {
    /// A sink writing with `properties` the records `serializer` makes, in transactions
    /// with ids starting with `prefix` (unique to this sink across jobs sharing the
    /// brokers).
    pub fn new(
        properties: KafkaProperties,
        prefix: &str,
        serializer: impl Fn(&T) -> ProducerRecord + Send + Sync + 'static,
    ) -> Self {
        TransactionalKafkaSink {
            properties,
            serializer: Arc::new(serializer),
            prefix: prefix.to_string(),
            subtask: 0,
            next: 0,
            pool: None,
            busy: HashMap::new(),
            lingering_ended: false,
            write_ahead: true,
        }
    }

    /// Keeps no write-ahead copy of the transactions' records and commits no marker with
    /// them: a little faster, but a transaction the process died before committing is lost
    /// (see the type's documentation).
    pub fn without_write_ahead(mut self) -> Self {
        self.write_ahead = false;
        self
    }

    fn pool(&mut self) -> &mut ProducerPool {
        self.pool.as_mut().expect("TransactionalKafkaSink used before open")
    }

    /// Aborts the transactions failed instances of this subtask left open and fences every
    /// slot the restored run may have used.
    fn end_lingering(&mut self) -> Result<()> {
        let pool = self.pool.as_mut().expect("TransactionalKafkaSink used before open");
        for Left { mut pooled, number } in
            left_open::take_all(brokers(&self.properties), |pooled| pool.owns(pooled))
        {
            if number.is_some() {
                tracing::debug!(
                    transactional_id = pooled.id,
                    "aborting a lingering Kafka transaction"
                );
                pooled.abort().map_err(|source| {
                    Error::kafka(format!("aborting lingering transaction {}", pooled.id), source)
                })?;
            }
            pool.release(pooled);
        }
        pool.fence()
    }

    /// Ends `txn`, whose producer is gone, by initializing its transactional id: aborts it if
    /// it is still open and fences the producer that began it. The new producer joins the
    /// pool if the slot is ours.
    fn end_by_initializing(&mut self, txn: &KafkaTransaction) -> Result<()> {
        let pooled = Pooled::init(&self.properties, txn.transactional_id.clone(), txn.slot)?;
        self.pool().release(pooled);
        Ok(())
    }

    /// Commits `txn`, pre-committed by a process that died: ends it by initializing its id,
    /// then writes its records again in a new transaction unless its marker shows that it
    /// committed.
    fn recover_from_write_ahead(&mut self, txn: &KafkaTransaction, marker: i64) -> Result<()> {
        let id = &txn.transactional_id;
        let mut pooled = Pooled::init(&self.properties, id.clone(), txn.slot)?;
        let records = txn.records.records()?;
        if let Some(first) = records.first() {
            if marker::committed(&self.properties, id, &first.topic)? == Some(marker) {
                tracing::debug!(
                    transactional_id = id,
                    txn.number,
                    "Kafka transaction committed before the process died"
                );
            } else {
                tracing::info!(
                    transactional_id = id,
                    txn.number,
                    records = records.len(),
                    "writing a Kafka transaction the process that began it did not commit \
                     again from its write-ahead copy"
                );
                pooled.producer.begin_transaction().map_err(|source| {
                    Error::kafka(format!("beginning a transaction of {id}"), source)
                })?;
                for record in &records {
                    producer::send(&pooled.producer, record)?;
                }
                producer::flush(&pooled.producer)?;
                pooled.send_marker(&self.properties, &first.topic, marker)?;
                commit(&mut pooled, txn).map_err(Error::from)?;
            }
        }
        self.pool().release(pooled);
        Ok(())
    }

    /// Where the producer of `txn` is: this instance's, or one a failed instance left.
    fn take_producer(&mut self, txn: &KafkaTransaction) -> Held {
        match self.busy.remove(&txn.transactional_id) {
            Some(busy) if busy.number == txn.number => Held::Here(busy.pooled),
            Some(other) => {
                self.busy.insert(txn.transactional_id.clone(), other);
                Held::Finished
            }
            None => left_open::take(brokers(&self.properties), &txn.transactional_id, txn.number),
        }
    }

    /// Takes note of a transaction restored from a checkpoint.
    fn restored(&mut self, txn: &KafkaTransaction) {
        self.next = self.next.max(txn.number + 1);
        if txn.subtask == self.subtask {
            self.pool().grow_to(txn.pool_size);
        }
    }
}

/// Why a commit failed.
enum Committing {
    /// librdkafka says the commit may be tried again: the producer still holds the
    /// transaction.
    Retriable(Error),
    /// The transaction cannot be committed with this producer.
    Failed(Error),
}

impl From<Error> for Committing {
    fn from(error: Error) -> Self {
        Committing::Failed(error)
    }
}

impl From<Committing> for Error {
    fn from(committing: Committing) -> Self {
        match committing {
            Committing::Retriable(error) | Committing::Failed(error) => error,
        }
    }
}

/// Commits `txn`, flushed on `pooled`, with its marker if it sent one.
fn commit(pooled: &mut Pooled, txn: &KafkaTransaction) -> std::result::Result<(), Committing> {
    let id = &txn.transactional_id;
    pooled.marker_sent()?;
    pooled.producer.commit_transaction(BROKER_TIMEOUT).map_err(|source| {
        let retriable = matches!(&source, KafkaError::Transaction(error) if error.is_retriable());
        let error = Error::kafka(format!("committing transaction {id} #{}", txn.number), source);
        if retriable { Committing::Retriable(error) } else { Committing::Failed(error) }
    })?;
    tracing::debug!(transactional_id = id, txn.number, "Kafka transaction committed");
    Ok(())
}

/// The brokers `properties` reach: where left producers are filed.
fn brokers(properties: &KafkaProperties) -> &str {
    properties.get("bootstrap.servers").unwrap_or_default()
}

/// Fails unless transactions (`transaction.timeout.ms` of `properties`) outlive a checkpoint
/// `interval`.
fn check_timeout(properties: &KafkaProperties, interval: Duration) -> Result<()> {
    let timeout = match properties.get("transaction.timeout.ms") {
        Some(value) => value.parse::<u64>().map_err(|_| {
            Error::KafkaConfig(format!("transaction.timeout.ms is not a number: {value}"))
        })?,
        None => DEFAULT_TRANSACTION_TIMEOUT_MS,
    };
    let interval = interval.as_millis() as u64;
    if timeout <= interval {
        return Err(Error::KafkaConfig(format!(
            "transaction.timeout.ms ({timeout} ms) must exceed the job's checkpoint interval \
             ({interval} ms): a transaction stays open for a whole interval and the broker \
             would abort it first; raise transaction.timeout.ms (up to the broker's \
             transaction.max.timeout.ms) or checkpoint more often"
        )));
    }
    Ok(())
}

impl<T> fmt::Debug for TransactionalKafkaSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionalKafkaSink")
            .field("prefix", &self.prefix)
            .field("properties", &self.properties)
            .finish_non_exhaustive()
    }
}

impl<T: Send> TwoPhaseCommitSink<T> for TransactionalKafkaSink<T> {
    type Transaction = KafkaTransaction;

    fn open(&mut self, info: &SubtaskInfo) -> FnResult {
        if let Some(interval) = info.checkpoint_interval {
            check_timeout(&self.properties, interval)?;
        }
        self.subtask = info.index;
        self.pool = Some(ProducerPool::new(self.properties.clone(), &self.prefix, info.index));
        Ok(())
    }

    fn begin_transaction(&mut self) -> FnResult<KafkaTransaction> {
        if !std::mem::replace(&mut self.lingering_ended, true) {
            // Transactions of earlier runs would hold back read_committed consumers until
            // they time out.
            self.end_lingering()?;
        }
        let pool = self.pool();
        let pooled = pool.acquire()?;
        let pool_size = pool.size();
        pooled.producer.begin_transaction().map_err(|source| {
            Error::kafka(format!("beginning a transaction of {}", pooled.id), source)
        })?;
        let number = self.next;
        self.next += 1;
        tracing::debug!(transactional_id = pooled.id, number, "Kafka transaction begun");
        let txn = KafkaTransaction {
            transactional_id: pooled.id.clone(),
            subtask: self.subtask,
            slot: pooled.slot,
            number,
            pool_size,
            marker: self.write_ahead.then(|| fastrand::i64(0..i64::MAX)),
            records: WriteAhead::default(),
        };
        self.busy.insert(
            pooled.id.clone(),
            Busy { number, pooled, copy: Default::default(), marker_topic: None },
        );
        Ok(txn)
    }

    fn write(
        &mut self,
        txn: &mut KafkaTransaction,
        value: T,
        timestamp: Option<Timestamp>,
    ) -> FnResult {
        let record = serialize(&self.serializer, &value, timestamp);
        let busy = self.busy.get_mut(&txn.transactional_id).expect("a transaction this sink began");
        producer::send(&busy.pooled.producer, &record)?;
        if txn.marker.is_some() {
            if busy.copy.is_empty() {
                busy.marker_topic = Some(record.topic.clone());
            }
            busy.copy.push(&record)?;
        }
        Ok(())
    }

    fn pre_commit(&mut self, txn: &mut KafkaTransaction) -> FnResult {
        let properties = &self.properties;
        let busy = self.busy.get_mut(&txn.transactional_id).expect("a transaction this sink began");
        producer::flush(&busy.pooled.producer)?;
        if let Some(marker) = txn.marker {
            txn.records = busy.copy.freeze();
            // Sent once the records are flushed (every partition is in the transaction),
            // never while librdkafka still adds partitions to it: with the marker sent
            // alongside the first record, tansu was seen to report the marker of a
            // transaction that never committed as committed.
            if let Some(topic) = busy.marker_topic.take() {
                busy.pooled.send_marker(properties, &topic, marker)?;
            }
        }
        Ok(())
    }

    fn commit(&mut self, txn: KafkaTransaction) -> FnResult {
        let id = &txn.transactional_id;
        match self.take_producer(&txn) {
            Held::Here(mut pooled) => match commit(&mut pooled, &txn) {
                Ok(()) => self.pool().release(pooled),
                Err(Committing::Retriable(error)) => {
                    // The producer still holds the transaction: the restored instance
                    // retries the commit with it.
                    let busy = Busy {
                        number: txn.number,
                        pooled,
                        copy: Default::default(),
                        marker_topic: None,
                    };
                    self.busy.insert(id.clone(), busy);
                    return Err(error.into());
                }
                Err(Committing::Failed(error)) => return Err(error.into()),
            },
            Held::Finished => {
                tracing::debug!(
                    transactional_id = id,
                    txn.number,
                    "Kafka transaction committed before"
                );
            }
            Held::Gone => match txn.marker {
                Some(marker) => self.recover_from_write_ahead(&txn, marker)?,
                None => {
                    tracing::error!(
                        transactional_id = id,
                        txn.number,
                        "a Kafka transaction pre-committed for the restored checkpoint cannot \
                         be committed: the process that began it died, and librdkafka cannot \
                         resume another producer's transaction; aborting it, so its records are \
                         lost unless its commit reached the broker before the process died \
                         (the sink was built without_write_ahead)"
                    );
                    self.end_by_initializing(&txn)?;
                }
            },
        }
        Ok(())
    }

    fn abort(&mut self, txn: KafkaTransaction) -> FnResult {
        let id = &txn.transactional_id;
        match self.take_producer(&txn) {
            Held::Here(mut pooled) => {
                pooled.abort().map_err(|source| {
                    Error::kafka(format!("aborting transaction {id} #{}", txn.number), source)
                })?;
                tracing::debug!(transactional_id = id, txn.number, "Kafka transaction aborted");
                self.pool().release(pooled);
            }
            Held::Finished => {}
            Held::Gone => {
                tracing::debug!(
                    transactional_id = id,
                    "aborting a Kafka transaction by initializing its id"
                );
                self.end_by_initializing(&txn)?;
            }
        }
        Ok(())
    }

    fn recover_and_commit(&mut self, txn: KafkaTransaction) -> FnResult {
        self.restored(&txn);
        self.commit(txn)
    }

    fn recover_and_abort(&mut self, txn: KafkaTransaction) -> FnResult {
        self.restored(&txn);
        self.abort(txn)
    }

    /// Closes the producers: no restored instance will need them.
    fn close(&mut self) -> FnResult {
        for (id, Busy { number, .. }) in self.busy.drain() {
            tracing::warn!(transactional_id = id, number, "closing with an unfinished transaction");
        }
        self.pool = None;
        Ok(())
    }
}

impl<T> Drop for TransactionalKafkaSink<T> {
    /// Leaves the producers, with their unfinished transactions, to the instance restored
    /// next (none after `close`).
    fn drop(&mut self) {
        let busy = self
            .busy
            .drain()
            .map(|(_, busy)| Left { pooled: busy.pooled, number: Some(busy.number) });
        let idle = self
            .pool
            .iter_mut()
            .flat_map(|pool| pool.drain())
            .map(|pooled| Left { pooled, number: None });
        left_open::leave(brokers(&self.properties), busy.chain(idle));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::info;

    fn sink(timeout_ms: Option<&str>) -> TransactionalKafkaSink<String> {
        let mut properties = KafkaProperties::new("127.0.0.1:1");
        if let Some(timeout) = timeout_ms {
            properties = properties.set("transaction.timeout.ms", timeout);
        }
        TransactionalKafkaSink::new(properties, "t", |v: &String| {
            ProducerRecord::new("out", v.as_bytes())
        })
    }

    /// Opens `sink` in a job checkpointing every `interval`.
    fn open(mut sink: TransactionalKafkaSink<String>, interval: Option<Duration>) -> FnResult {
        sink.open(&SubtaskInfo { checkpoint_interval: interval, ..info(0, 1) })
    }

    #[test]
    fn a_transaction_timeout_below_the_checkpoint_interval_is_a_clear_error() {
        let seconds = |s| Some(Duration::from_secs(s));
        let error = open(sink(Some("5000")), seconds(10)).unwrap_err().to_string();
        assert!(error.contains("transaction.timeout.ms (5000 ms)"), "{error}");
        assert!(error.contains("checkpoint interval (10000 ms)"), "{error}");
        let error = open(sink(None), seconds(60)).unwrap_err().to_string();
        assert!(error.contains("(60000 ms) must exceed"), "{error}");
        let error = open(sink(Some("soon")), seconds(1)).unwrap_err().to_string();
        assert!(error.contains("not a number: soon"), "{error}");
        open(sink(Some("20000")), seconds(10)).unwrap();
        open(sink(None), None).expect("without checkpoints, no interval to outlive");
    }
}
