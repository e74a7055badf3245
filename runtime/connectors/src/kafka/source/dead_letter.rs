//! Records the deserializer rejects: fail naming them, skip them, or send them to a
//! dead-letter side output.

use serde::{Deserialize, Serialize};
use weir_operators::{Collector, OutputTag};

use super::KafkaMessage;
use crate::{Error, Result};

/// A record the deserializer rejected, as sent to the dead-letter side output: its raw bytes,
/// where it was, and why it was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value, if any.
    pub value: Option<Vec<u8>>,
    /// Its Kafka timestamp, ms since the epoch (also the side output record's timestamp).
    pub timestamp: Option<i64>,
    /// What the deserializer said.
    pub error: String,
}

/// What happens to a record the deserializer rejects.
#[derive(Clone, Debug, Default)]
pub enum DeserializationErrorPolicy {
    /// The job fails with an error naming the topic, partition and offset (the default).
    #[default]
    Fail,
    /// The record is skipped with a warning naming it, and counted.
    Skip,
    /// The record is skipped and sent, as a [`DeadLetter`], to the side output with this tag:
    /// read it with `get_side_output` on the source's stream. Dropped when nothing reads it.
    DeadLetter(OutputTag<DeadLetter>),
}

/// Applies the policy to a subtask's rejected records.
#[derive(Debug)]
pub(crate) struct Rejects {
    policy: DeserializationErrorPolicy,
    /// Dead letters not yet emitted.
    pending: Vec<DeadLetter>,
    /// Records skipped or sent to the dead-letter output.
    skipped: u64,
}

impl Rejects {
    pub(crate) fn new(policy: DeserializationErrorPolicy) -> Self {
        Rejects { policy, pending: Vec::new(), skipped: 0 }
    }

    /// Handles `message`, rejected for `reason`: an error under [`DeserializationErrorPolicy::Fail`].
    pub(crate) fn reject(&mut self, message: &KafkaMessage<'_>, reason: String) -> Result<()> {
        let KafkaMessage { topic, partition, offset, .. } = *message;
        let tag = match &self.policy {
            DeserializationErrorPolicy::Fail => {
                return Err(Error::Deserialize { topic: topic.into(), partition, offset, reason });
            }
            DeserializationErrorPolicy::Skip => None,
            DeserializationErrorPolicy::DeadLetter(tag) => Some(tag.name()),
        };
        self.skipped += 1;
        tracing::warn!(
            topic,
            partition,
            offset,
            reason,
            skipped = self.skipped,
            dead_letters = tag,
            "skipping a record that cannot be deserialized"
        );
        if tag.is_some() {
            self.pending.push(DeadLetter {
                topic: topic.into(),
                partition,
                offset,
                key: message.key.map(<[u8]>::to_vec),
                value: message.payload.map(<[u8]>::to_vec),
                timestamp: message.timestamp,
                error: reason,
            });
        }
        Ok(())
    }

    /// Sends the pending dead letters to their side output in `out`.
    pub(crate) fn emit(&mut self, out: &mut Collector<()>) {
        let DeserializationErrorPolicy::DeadLetter(tag) = &self.policy else { return };
        for letter in self.pending.drain(..) {
            out.set_timestamp(letter.timestamp);
            out.output(tag, letter);
        }
        out.set_timestamp(None);
    }
}
