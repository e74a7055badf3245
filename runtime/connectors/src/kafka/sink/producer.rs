//! A librdkafka producer that remembers failed deliveries, and sending with backpressure.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use super::ProducerRecord;
use crate::kafka::KafkaProperties;
use crate::kafka::properties::BROKER_TIMEOUT;
use crate::{Error, Result};

/// How long a send waits for room in librdkafka's queue before trying again.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);

/// How long a flush waits for delivery reports before looking at the queue again.
const FLUSH_POLL: Duration = Duration::from_millis(1);

/// Keeps the first delivery that failed, so that the next flush reports it.
#[derive(Default)]
pub(crate) struct Deliveries {
    failed: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            let mut failed = self.failed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            failed.get_or_insert_with(|| {
                format!("delivery to {}[{}] failed: {error}", message.topic(), message.partition())
            });
        }
    }
}

/// A producer whose failed deliveries surface at the next [`flush`].
pub(crate) type KafkaProducer = BaseProducer<Deliveries>;

/// A producer over `properties`, with `extra` on top.
pub(crate) fn create(
    properties: &KafkaProperties,
    extra: &[(&str, &str)],
) -> Result<KafkaProducer> {
    let mut config = properties.client_config();
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config
        .create_with_context(Deliveries::default())
        .map_err(|source| Error::kafka("creating a producer".into(), source))
}

/// Sends `record`, waiting while librdkafka's queue is full (backpressure).
pub(crate) fn send(producer: &KafkaProducer, record: &ProducerRecord) -> Result<()> {
    loop {
        let mut base = BaseRecord::<[u8], [u8]>::to(&record.topic).payload(&record.value[..]);
        if let Some(key) = &record.key {
            base = base.key(&key[..]);
        }
        if let Some(timestamp) = record.timestamp {
            base = base.timestamp(timestamp);
        }
        match producer.send(base) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(QUEUE_FULL_WAIT);
            }
            Err((source, _)) => {
                return Err(Error::kafka(format!("sending to {}", record.topic), source));
            }
        }
    }
}

/// Waits until everything sent is acknowledged; fails if any delivery failed.
///
/// Polls in short steps instead of calling rdkafka's `flush`, which alternates a
/// non-blocking `rd_kafka_flush` with 100 ms polls: the last delivery reports are often
/// served by the former, and the poll then sleeps its 100 ms out (measured: 100 ms at every
/// checkpoint barrier).
pub(crate) fn flush(producer: &KafkaProducer) -> Result<()> {
    let deadline = Instant::now() + BROKER_TIMEOUT;
    while producer.in_flight_count() > 0 {
        if Instant::now() >= deadline {
            let timeout = KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut);
            return Err(Error::kafka("flushing".into(), timeout));
        }
        producer.poll(FLUSH_POLL);
    }
    let failed = producer.context().failed.lock().unwrap_or_else(|p| p.into_inner()).take();
    match failed {
        Some(failure) => Err(Error::KafkaDelivery(failure)),
        None => Ok(()),
    }
}

/// Aborts the producer's transaction. What it still holds is delivered first (into the
/// transaction being aborted), serving the delivery reports: librdkafka's abort waits for
/// those reports and nothing else polls a [`BaseProducer`], so an abort with records still
/// queued would otherwise hang until its timeout and fail.
pub(crate) fn abort(producer: &KafkaProducer) -> KafkaResult<()> {
    producer.flush(BROKER_TIMEOUT)?;
    producer.abort_transaction(BROKER_TIMEOUT)
}
