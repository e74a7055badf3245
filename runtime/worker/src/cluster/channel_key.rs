//! The name of one remote channel: which attempt, which edge, which producer and consumer.

use std::fmt;

use weir_rpc::v1::ChannelId;

/// Identifies one channel between a producer subtask and a consumer subtask of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChannelKey {
    /// The attempt of the job (channels of an earlier attempt are refused).
    pub attempt: u64,
    /// The consuming node.
    pub consumer_node: usize,
    /// The consuming node's input edge.
    pub edge: usize,
    /// The producing subtask.
    pub producer: usize,
    /// The consuming subtask.
    pub consumer: usize,
}

impl fmt::Display for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "attempt {} node {} edge {} subtask {} -> {}",
            self.attempt, self.consumer_node, self.edge, self.producer, self.consumer
        )
    }
}

impl From<ChannelKey> for ChannelId {
    fn from(key: ChannelKey) -> Self {
        let narrow = |n: usize| u32::try_from(n).expect("graph sizes fit in u32");
        ChannelId {
            attempt: key.attempt,
            consumer_node: narrow(key.consumer_node),
            edge: narrow(key.edge),
            producer: narrow(key.producer),
            consumer: narrow(key.consumer),
        }
    }
}

impl From<ChannelId> for ChannelKey {
    fn from(id: ChannelId) -> Self {
        ChannelKey {
            attempt: id.attempt,
            consumer_node: id.consumer_node as usize,
            edge: id.edge as usize,
            producer: id.producer as usize,
            consumer: id.consumer as usize,
        }
    }
}
