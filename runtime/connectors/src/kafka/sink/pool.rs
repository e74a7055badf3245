//! The transactional producers of one exactly-once sink subtask, reused from transaction
//! to transaction: slot `n` has the stable transactional id `{prefix}-{subtask}-{n}`, and
//! a slot is added (one `init_transactions`) only when every producer holds a transaction.

use std::sync::Arc;
use std::thread::JoinHandle;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaResult;
use rdkafka::producer::Producer;

use super::marker;
use super::producer::{self, KafkaProducer};
use crate::kafka::KafkaProperties;
use crate::kafka::properties::BROKER_TIMEOUT;
use crate::{Error, Result};

/// A transactional producer and its slot.
pub(super) struct Pooled {
    /// `{prefix}-{subtask}-{slot}`.
    pub id: String,
    pub slot: usize,
    /// Shared with the thread sending its transaction's marker.
    pub producer: Arc<KafkaProducer>,
    /// The group its transactions commit their markers to, once one did.
    group: Option<Arc<ConsumerGroupMetadata>>,
    /// The commit marker of its open transaction, on its way to the broker.
    marker: Option<JoinHandle<Result<()>>>,
}

impl Pooled {
    /// A producer for slot `slot` with id `id`, initialized: a transaction of that id still
    /// open is aborted and the producer that began it fenced.
    pub fn init(properties: &KafkaProperties, id: String, slot: usize) -> Result<Self> {
        let producer = producer::create(properties, &[("transactional.id", &id)])?;
        producer
            .init_transactions(BROKER_TIMEOUT)
            .map_err(|source| Error::kafka(format!("initializing transactions of {id}"), source))?;
        Ok(Pooled { id, slot, producer: Arc::new(producer), group: None, marker: None })
    }

    /// Adds commit marker `marker` (for `topic`) to its open transaction from another
    /// thread: it takes a few round trips to the group coordinator (tens of milliseconds),
    /// which overlap the wait for the checkpoint. The commit waits for it.
    pub fn send_marker(
        &mut self,
        properties: &KafkaProperties,
        topic: &str,
        marker: i64,
    ) -> Result<()> {
        if self.group.is_none() {
            self.group = Some(Arc::new(marker::group(properties, &self.id)?));
        }
        let group = Arc::clone(self.group.as_ref().expect("just set"));
        let (producer, topic) = (Arc::clone(&self.producer), topic.to_string());
        self.marker =
            Some(std::thread::spawn(move || marker::send(&producer, &group, &topic, marker)));
        Ok(())
    }

    /// Waits until the marker sent in the background, if any, is in the transaction.
    pub fn marker_sent(&mut self) -> Result<()> {
        match self.marker.take() {
            None => Ok(()),
            Some(sending) => sending.join().unwrap_or_else(|_| {
                Err(Error::KafkaDelivery(format!(
                    "sending the commit marker of {} panicked",
                    self.id
                )))
            }),
        }
    }

    /// Aborts its transaction, once its marker (if any) is no longer on its way.
    pub fn abort(&mut self) -> KafkaResult<()> {
        if let Err(error) = self.marker_sent() {
            tracing::debug!(transactional_id = self.id, %error, "aborting after a failed marker");
        }
        producer::abort(&self.producer)
    }
}

/// The idle producers of one sink subtask.
pub(super) struct ProducerPool {
    properties: KafkaProperties,
    /// `{prefix}-{subtask}`.
    ids: String,
    /// Slots `0..size` may have been used (by this instance or those it was restored from).
    size: usize,
    /// Producers without a transaction, ready to begin one.
    idle: Vec<Pooled>,
}

impl ProducerPool {
    /// The pool of subtask `subtask` of the sink with transactional id prefix `prefix`.
    pub fn new(properties: KafkaProperties, prefix: &str, subtask: usize) -> Self {
        ProducerPool { properties, ids: format!("{prefix}-{subtask}"), size: 0, idle: Vec::new() }
    }

    /// How many slots may have been used.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether `pooled` is a slot of this pool.
    pub fn owns(&self, pooled: &Pooled) -> bool {
        pooled.id == self.id(pooled.slot)
    }

    fn id(&self, slot: usize) -> String {
        format!("{}-{slot}", self.ids)
    }

    /// Counts slots `0..size` as used (by the run the sink was restored from).
    pub fn grow_to(&mut self, size: usize) {
        self.size = self.size.max(size);
    }

    /// An idle producer, or the producer of a new slot.
    pub fn acquire(&mut self) -> Result<Pooled> {
        if let Some(pooled) = self.idle.pop() {
            return Ok(pooled);
        }
        let slot = self.size;
        let pooled = Pooled::init(&self.properties, self.id(slot), slot)?;
        tracing::debug!(transactional_id = pooled.id, "new Kafka producer in the pool");
        self.size += 1;
        Ok(pooled)
    }

    /// Takes back `pooled`, whose transaction is finished; drops it if it is not ours (a
    /// restored transaction of another subtask).
    pub fn release(&mut self, pooled: Pooled) {
        if self.owns(&pooled) {
            self.idle.push(pooled);
        }
    }

    /// Initializes every used slot without an idle producer, aborting the transaction a
    /// producer that died left open there.
    pub fn fence(&mut self) -> Result<()> {
        for slot in 0..self.size {
            if !self.idle.iter().any(|pooled| pooled.slot == slot) {
                tracing::debug!(
                    transactional_id = self.id(slot),
                    "fencing a Kafka transactional id"
                );
                let pooled = Pooled::init(&self.properties, self.id(slot), slot)?;
                self.idle.push(pooled);
            }
        }
        Ok(())
    }

    /// Takes the idle producers.
    pub fn drain(&mut self) -> impl Iterator<Item = Pooled> + '_ {
        self.idle.drain(..)
    }
}
