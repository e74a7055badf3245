//! The exactly-once Kafka sink: one Kafka transaction per subtask and checkpoint, committed
//! when the checkpoint completes.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::producer::Producer;
use serde::{Deserialize, Serialize};
use weir_operators::SubtaskInfo;
use weir_operators::builtin::TwoPhaseCommitSink;
use weir_operators::function::FnResult;
use weir_types::Timestamp;

use super::producer::{self, KafkaProducer};
use super::{ProducerRecord, Serializer, serialize};
use crate::kafka::KafkaProperties;
use crate::kafka::properties::BROKER_TIMEOUT;
use crate::{Error, Result};

/// librdkafka's default `transaction.timeout.ms`.
const DEFAULT_TRANSACTION_TIMEOUT_MS: u64 = 60_000;

/// Producers of unfinished transactions left by sink instances that were dropped (a failed
/// task), by transactional id: the instance restored in the same process finishes them.
static LEFT_OPEN: Mutex<Option<HashMap<String, KafkaProducer>>> = Mutex::new(None);

/// The producers left open in this process.
fn left_open() -> MutexGuard<'static, Option<HashMap<String, KafkaProducer>>> {
    LEFT_OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes the producer a dropped sink instance left for `transactional_id`.
fn take_left_open(transactional_id: &str) -> Option<KafkaProducer> {
    left_open().as_mut()?.remove(transactional_id)
}

/// Takes every producer dropped sink instances left with ids starting with `prefix`.
fn take_all_left_open(prefix: &str) -> Vec<(String, KafkaProducer)> {
    let mut left = left_open();
    let Some(left) = left.as_mut() else { return Vec::new() };
    let ids: Vec<String> = left.keys().filter(|id| id.starts_with(prefix)).cloned().collect();
    ids.into_iter().filter_map(|id| left.remove_entry(&id)).collect()
}

/// A transaction of [`TransactionalKafkaSink`], as stored in checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaTransaction {
    /// `{prefix}-{subtask}-{number}`.
    pub transactional_id: String,
    /// The transaction's number within its subtask.
    pub number: u64,
}

/// Writes records to Kafka exactly once (Flink's `KafkaSink` with
/// `DeliveryGuarantee.EXACTLY_ONCE`); run it with `sink_to_two_phase`.
///
/// Each checkpoint interval of each subtask is one Kafka transaction with its own
/// transactional id, `{prefix}-{subtask}-{number}`: its records are flushed when the
/// checkpoint barrier passes and the transaction is committed when the checkpoint
/// completes, so consumers with `isolation.level=read_committed` see each record once.
///
/// On restore, the transaction that was open at the checkpoint is aborted by initializing
/// its transactional id again (which also fences a zombie producer still using it), and
/// numbering resumes there, so the ids of the failed run are reused in order and every
/// transaction it left open is aborted as the new run reaches it. After a task failure in
/// the same process, the transactions the failed instance began after the checkpoint are
/// aborted at once; after a process died, those the new run does not reach (the failed run
/// got further than the new one goes, say at the end of a bounded input) time out after
/// `transaction.timeout.ms`, holding back read_committed consumers until then: librdkafka
/// cannot tell whether an id was ever used (Flink probes ids upwards until it finds one
/// whose producer epoch is 0), so the sink does not guess how far to look.
///
/// A transaction pre-committed for the restored checkpoint may not be committed yet (the
/// failure came between the checkpoint's completion and the commit). After a task failure
/// in the same process, the restored sink commits it with the producer the failed instance
/// left behind. After the process died, it cannot: committing needs the dead producer's id
/// and epoch, which librdkafka neither exposes nor accepts (Flink sets them through the Java
/// client's internals), and initializing the transactional id again aborts the transaction.
/// So the restored sink ends it at once by initializing its id (which commits nothing and
/// aborts it if it is still open, instead of leaving read_committed consumers stuck until
/// it times out) and logs an error naming it: **its records are lost** unless its commit
/// reached the broker before the process died. That is the one gap in exactly-once: a
/// process dying in the moment between a checkpoint's completion and its commits loses
/// the output of that checkpoint interval of the subtasks whose commit had not gone out.
///
/// `transaction.timeout.ms` (default 60 s) must exceed the checkpoint interval, or the
/// broker would abort transactions before their checkpoint completes: `open` fails
/// otherwise.
pub struct TransactionalKafkaSink<T> {
    properties: KafkaProperties,
    serializer: Serializer<T>,
    prefix: String,
    checkpoint_interval: Duration,
    /// Set in `open`.
    subtask: usize,
    /// The number of the next transaction.
    next: u64,
    /// Producers of the transactions begun and not finished, by transactional id.
    producers: HashMap<String, KafkaProducer>,
    /// Whether the transactions failed instances of this subtask left open were aborted
    /// (at the first `begin_transaction`, after the restored ones were finished).
    lingering_aborted: bool,
}

impl<T> TransactionalKafkaSink<T> {
    /// A sink writing with `properties` the records `serializer` makes, in transactions
    /// with ids starting with `prefix` (unique to this sink across jobs sharing the
    /// brokers), for a job checkpointing every `checkpoint_interval`.
    pub fn new(
        properties: KafkaProperties,
        prefix: &str,
        checkpoint_interval: Duration,
        serializer: impl Fn(&T) -> ProducerRecord + Send + Sync + 'static,
    ) -> Self {
        TransactionalKafkaSink {
            properties,
            serializer: Arc::new(serializer),
            prefix: prefix.to_string(),
            checkpoint_interval,
            subtask: 0,
            next: 0,
            producers: HashMap::new(),
            lingering_aborted: false,
        }
    }

    /// Fails unless transactions outlive a checkpoint interval.
    fn check_timeout(&self) -> Result<()> {
        let timeout = match self.properties.get("transaction.timeout.ms") {
            Some(value) => value.parse::<u64>().map_err(|_| {
                Error::KafkaConfig(format!("transaction.timeout.ms is not a number: {value}"))
            })?,
            None => DEFAULT_TRANSACTION_TIMEOUT_MS,
        };
        let interval = self.checkpoint_interval.as_millis() as u64;
        if timeout <= interval {
            return Err(Error::KafkaConfig(format!(
                "transaction.timeout.ms ({timeout} ms) must exceed the checkpoint interval \
                 ({interval} ms): a transaction stays open for a whole interval and the broker \
                 would abort it first; raise transaction.timeout.ms (up to the broker's \
                 transaction.max.timeout.ms) or checkpoint more often"
            )));
        }
        Ok(())
    }

    /// A producer for `transactional_id`, initialized: any earlier transaction of that id
    /// still open is aborted and its producer fenced.
    fn init_producer(&self, transactional_id: &str) -> Result<KafkaProducer> {
        let producer =
            producer::create(&self.properties, &[("transactional.id", transactional_id)])?;
        producer.init_transactions(BROKER_TIMEOUT).map_err(|source| {
            Error::kafka(format!("initializing transactions of {transactional_id}"), source)
        })?;
        Ok(producer)
    }

    /// Ends `txn`, whose producer is gone, by initializing its transactional id: aborts it if
    /// it is still open and fences the producer that began it.
    fn end_by_initializing(&self, txn: &KafkaTransaction) -> Result<()> {
        self.init_producer(&txn.transactional_id).map(drop)
    }

    /// The producer of `txn`: this instance's, or one a failed instance left.
    fn take_producer(&mut self, txn: &KafkaTransaction) -> Option<KafkaProducer> {
        let id = &txn.transactional_id;
        self.producers.remove(id).or_else(|| take_left_open(id))
    }

    fn producer(&self, txn: &KafkaTransaction) -> &KafkaProducer {
        self.producers.get(&txn.transactional_id).expect("a transaction this sink began")
    }
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
        self.check_timeout()?;
        self.subtask = info.index;
        Ok(())
    }

    fn begin_transaction(&mut self) -> FnResult<KafkaTransaction> {
        if !std::mem::replace(&mut self.lingering_aborted, true) {
            // Transactions a failed instance began after the restored checkpoint would hold
            // back read_committed consumers until they time out.
            for (id, producer) in take_all_left_open(&format!("{}-{}-", self.prefix, self.subtask))
            {
                tracing::debug!(transactional_id = id, "aborting a lingering Kafka transaction");
                producer::abort(&producer).map_err(|source| {
                    Error::kafka(format!("aborting lingering transaction {id}"), source)
                })?;
            }
        }
        let number = self.next;
        self.next += 1;
        let transactional_id = format!("{}-{}-{number}", self.prefix, self.subtask);
        // A producer a failed instance left with this id is fenced by the new one anyway.
        drop(take_left_open(&transactional_id));
        let producer = self.init_producer(&transactional_id)?;
        producer.begin_transaction().map_err(|source| {
            Error::kafka(format!("beginning transaction {transactional_id}"), source)
        })?;
        tracing::debug!(transactional_id, "Kafka transaction begun");
        self.producers.insert(transactional_id.clone(), producer);
        Ok(KafkaTransaction { transactional_id, number })
    }

    fn write(
        &mut self,
        txn: &mut KafkaTransaction,
        value: T,
        timestamp: Option<Timestamp>,
    ) -> FnResult {
        let record = serialize(&self.serializer, &value, timestamp);
        Ok(producer::send(self.producer(txn), &record)?)
    }

    fn pre_commit(&mut self, txn: &mut KafkaTransaction) -> FnResult {
        Ok(producer::flush(self.producer(txn))?)
    }

    fn commit(&mut self, txn: KafkaTransaction) -> FnResult {
        let Some(producer) = self.take_producer(&txn) else {
            tracing::error!(
                transactional_id = txn.transactional_id,
                "a Kafka transaction pre-committed for the restored checkpoint cannot be \
                 committed: the process that began it died, and librdkafka cannot resume \
                 another producer's transaction; aborting it, so its records are lost unless \
                 its commit reached the broker before the process died"
            );
            return Ok(self.end_by_initializing(&txn)?);
        };
        producer.commit_transaction(BROKER_TIMEOUT).map_err(|source| {
            Error::kafka(format!("committing transaction {}", txn.transactional_id), source)
        })?;
        tracing::debug!(transactional_id = txn.transactional_id, "Kafka transaction committed");
        Ok(())
    }

    fn abort(&mut self, txn: KafkaTransaction) -> FnResult {
        let producer = match self.take_producer(&txn) {
            Some(producer) => producer,
            None => {
                tracing::debug!(
                    transactional_id = txn.transactional_id,
                    "aborting a Kafka transaction by initializing its id"
                );
                return Ok(self.end_by_initializing(&txn)?);
            }
        };
        producer::abort(&producer).map_err(|source| {
            Error::kafka(format!("aborting transaction {}", txn.transactional_id), source)
        })?;
        tracing::debug!(transactional_id = txn.transactional_id, "Kafka transaction aborted");
        Ok(())
    }

    fn recover_and_commit(&mut self, txn: KafkaTransaction) -> FnResult {
        self.next = self.next.max(txn.number + 1);
        self.commit(txn)
    }

    fn recover_and_abort(&mut self, txn: KafkaTransaction) -> FnResult {
        self.next = self.next.max(txn.number);
        self.abort(txn)
    }
}

impl<T> Drop for TransactionalKafkaSink<T> {
    /// Leaves the producers of unfinished transactions to the instance restored next.
    fn drop(&mut self) {
        if !self.producers.is_empty() {
            left_open().get_or_insert_with(HashMap::new).extend(self.producers.drain());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::info;

    fn sink(timeout_ms: Option<&str>, interval: Duration) -> TransactionalKafkaSink<String> {
        let mut properties = KafkaProperties::new("127.0.0.1:1");
        if let Some(timeout) = timeout_ms {
            properties = properties.set("transaction.timeout.ms", timeout);
        }
        TransactionalKafkaSink::new(properties, "t", interval, |v: &String| {
            ProducerRecord::new("out", v.as_bytes())
        })
    }

    #[test]
    fn a_transaction_timeout_below_the_checkpoint_interval_is_a_clear_error() {
        let error = sink(Some("5000"), Duration::from_secs(10)).open(&info(0, 1)).unwrap_err();
        let error = error.to_string();
        assert!(error.contains("transaction.timeout.ms (5000 ms)"), "{error}");
        assert!(error.contains("checkpoint interval (10000 ms)"), "{error}");
        let error = sink(None, Duration::from_secs(60)).open(&info(0, 1)).unwrap_err();
        assert!(error.to_string().contains("(60000 ms) must exceed"), "{error}");
        let error = sink(Some("soon"), Duration::from_secs(1)).open(&info(0, 1)).unwrap_err();
        assert!(error.to_string().contains("not a number: soon"), "{error}");
        sink(Some("20000"), Duration::from_secs(10)).open(&info(0, 1)).unwrap();
    }
}
