//! The at-least-once Kafka sink: sends as records come, flushes at every checkpoint.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use weir_operators::function::FnResult;
use weir_operators::{Collector, OneInputOperator, OperatorSnapshot, SubtaskInfo};
use weir_types::{CheckpointBarrier, Record};

use super::producer::{self, KafkaProducer};
use super::{ProducerRecord, Serializer, serialize};
use crate::kafka::KafkaProperties;

/// Writes records to Kafka at least once (Flink's `KafkaSink` with
/// `DeliveryGuarantee.AT_LEAST_ONCE`): records are sent as they come, and each checkpoint
/// barrier waits until every record sent before it is acknowledged, failing the checkpoint
/// (and the job) if one was not. A restore replays what followed the checkpoint, so records
/// may be written twice, never lost. The end of input flushes too.
pub struct KafkaSink<T> {
    properties: KafkaProperties,
    serializer: Serializer<T>,
    producer: Option<KafkaProducer>,
}

impl<T> KafkaSink<T> {
    /// A sink writing with `properties` the records `serializer` makes.
    pub fn new(
        properties: KafkaProperties,
        serializer: impl Fn(&T) -> ProducerRecord + Send + Sync + 'static,
    ) -> Self {
        KafkaSink { properties, serializer: Arc::new(serializer), producer: None }
    }

    fn producer(&self) -> &KafkaProducer {
        self.producer.as_ref().expect("KafkaSink used before open")
    }
}

impl<T> Clone for KafkaSink<T> {
    /// Clones the configuration; the clone is not open.
    fn clone(&self) -> Self {
        KafkaSink {
            properties: self.properties.clone(),
            serializer: Arc::clone(&self.serializer),
            producer: None,
        }
    }
}

impl<T> fmt::Debug for KafkaSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSink").field("properties", &self.properties).finish_non_exhaustive()
    }
}

impl<T: Send + 'static> OneInputOperator for KafkaSink<T> {
    type In = T;
    type Out = ();

    fn open(&mut self, _info: &SubtaskInfo) -> FnResult {
        self.producer = Some(producer::create(&self.properties, &[])?);
        Ok(())
    }

    fn process_batch(&mut self, batch: &mut Vec<Record<T>>, _out: &mut Collector<()>) -> FnResult {
        let producer = self.producer();
        for record in batch.drain(..) {
            producer::send(
                producer,
                &serialize(&self.serializer, &record.value, record.timestamp),
            )?;
        }
        producer.poll(Duration::ZERO);
        Ok(())
    }

    fn snapshot_state(&mut self, _barrier: CheckpointBarrier) -> FnResult<OperatorSnapshot> {
        producer::flush(self.producer())?;
        Ok(OperatorSnapshot::default())
    }

    fn finish(&mut self, _out: &mut Collector<()>) -> FnResult {
        Ok(producer::flush(self.producer())?)
    }
}
