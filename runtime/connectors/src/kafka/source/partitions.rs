//! Partitions as splits: which subtask reads which partition, and where each one stands.

use serde::{Deserialize, Serialize};

/// A partition of a topic: the unit of work the subtasks share.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Partition {
    pub(crate) topic: String,
    pub(crate) partition: i32,
}

/// What checkpoints store per partition, in the union list state: the offset of the next
/// record to read. Every subtask gets every entry back on restore and keeps those of the
/// partitions it owns at the new parallelism.
pub(crate) type StoredOffset = (String, i32, i64);

impl Partition {
    /// `topic[partition]`, for messages.
    pub(crate) fn describe(&self) -> String {
        format!("{}[{}]", self.topic, self.partition)
    }

    /// The subtask of `parallelism` that reads this partition, as Flink's Kafka source
    /// assigns it: a topic's partitions go round-robin from a start subtask that depends on
    /// the topic's name (Java's `String.hashCode`), so that several topics spread evenly.
    pub(crate) fn owner(&self, parallelism: usize) -> usize {
        let hash = (self.topic.encode_utf16())
            .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)));
        let parallelism = parallelism.max(1) as i64;
        let start = i64::from(hash.wrapping_mul(31) & 0x7FFF_FFFF) % parallelism;
        ((start + i64::from(self.partition)) % parallelism) as usize
    }
}

/// One partition this subtask reads.
#[derive(Debug)]
pub(crate) struct PartitionReader {
    pub(crate) partition: Partition,
    /// The offset of the next record to emit.
    pub(crate) next: i64,
    /// In bounded mode, the offset where reading stops (exclusive).
    pub(crate) stop: Option<i64>,
}

impl PartitionReader {
    /// Whether a bounded partition has reached its stopping offset.
    pub(crate) fn is_finished(&self) -> bool {
        self.stop.is_some_and(|stop| self.next >= stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(topic: &str, partition: i32) -> Partition {
        Partition { topic: topic.into(), partition }
    }

    #[test]
    fn a_topics_partitions_go_round_robin_over_subtasks() {
        for parallelism in 1..6 {
            let owners: Vec<usize> =
                (0..12).map(|p| partition("events", p).owner(parallelism)).collect();
            let start = owners[0];
            for (p, owner) in owners.iter().enumerate() {
                assert_eq!(*owner, (start + p) % parallelism, "parallelism {parallelism}");
            }
        }
    }

    #[test]
    fn the_start_subtask_follows_javas_string_hash() {
        // "a".hashCode() = 97, 97 * 31 = 3007; "ab".hashCode() = 3105, 3105 * 31 = 96255.
        assert_eq!(partition("a", 0).owner(4), 3007 % 4);
        assert_eq!(partition("ab", 0).owner(7), 96255 % 7);
        // A long name overflows i32 as in Java, and the result stays non-negative.
        let long = partition(&"topic".repeat(20), 3);
        assert!(long.owner(5) < 5);
    }
}
