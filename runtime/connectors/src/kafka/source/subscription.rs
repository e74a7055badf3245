//! What the source reads: a list of topics or the topics matching a pattern, and their
//! partitions as the brokers list them now.

use std::fmt;

use rdkafka::consumer::{BaseConsumer, Consumer};
use regex::Regex;

use super::partitions::Partition;
use crate::kafka::properties::BROKER_TIMEOUT;
use crate::{Error, Result};

/// The topics a source reads (Flink's `setTopics` and `setTopicPattern`).
#[derive(Clone)]
pub(crate) enum Subscription {
    /// These topics, each of which must exist.
    Topics(Vec<String>),
    /// Every topic whose whole name matches, except internal ones (`__…`); none may match.
    Pattern(Regex),
}

impl Subscription {
    /// The topics whose whole name matches `pattern` (a regular expression).
    pub(crate) fn pattern(pattern: &str) -> Result<Self> {
        let whole = format!("^(?:{pattern})$");
        Regex::new(&whole).map(Subscription::Pattern).map_err(|error| {
            Error::KafkaConfig(format!("invalid topic pattern {pattern:?}: {error}"))
        })
    }

    /// Every partition of the subscribed topics.
    pub(crate) fn partitions(&self, consumer: &BaseConsumer) -> Result<Vec<Partition>> {
        match self {
            Subscription::Topics(topics) => {
                let mut all = Vec::new();
                for topic in topics {
                    let found = partitions_of(consumer, Some(topic), |name| name == topic)?;
                    if found.is_empty() {
                        return Err(Error::KafkaConfig(format!("topic {topic} has no partitions")));
                    }
                    all.extend(found);
                }
                Ok(all)
            }
            Subscription::Pattern(pattern) => partitions_of(consumer, None, |name| {
                !name.starts_with("__") && pattern.is_match(name)
            }),
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subscription::Topics(topics) => f.debug_tuple("Topics").field(topics).finish(),
            Subscription::Pattern(pattern) => {
                f.debug_tuple("Pattern").field(&pattern.as_str()).finish()
            }
        }
    }
}

/// The partitions of the topics in the metadata of `topic` (every topic for `None`) whose
/// names `wanted` accepts.
fn partitions_of(
    consumer: &BaseConsumer,
    topic: Option<&str>,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<Partition>> {
    let metadata = consumer.fetch_metadata(topic, BROKER_TIMEOUT).map_err(|source| {
        Error::kafka(format!("reading metadata of {}", topic.unwrap_or("all topics")), source)
    })?;
    let topics = metadata.topics().iter().filter(|t| t.error().is_none() && wanted(t.name()));
    Ok(topics
        .flat_map(|t| {
            let topic = t.name();
            t.partitions().iter().map(|p| Partition { topic: topic.to_string(), partition: p.id() })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matches_whole_topic_names() {
        let Subscription::Pattern(pattern) = Subscription::pattern("events-[0-9]+").unwrap() else {
            panic!("a pattern");
        };
        assert!(pattern.is_match("events-12"));
        assert!(!pattern.is_match("old-events-12"));
        assert!(!pattern.is_match("events-12-archive"));
    }

    #[test]
    fn an_invalid_pattern_is_a_clear_error() {
        let error = Subscription::pattern("events-[").unwrap_err().to_string();
        assert!(error.contains("invalid topic pattern \"events-[\""), "{error}");
    }
}
