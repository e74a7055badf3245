//! Built-in connectors: the sources that start a Weir job and the sinks that end it.
//!
//! Sources implement [`weir_operators::SourceFunction`] and sinks implement
//! [`weir_operators::OneInputOperator`] with `Out = ()`, or, for exactly-once output,
//! [`weir_operators::builtin::TwoPhaseCommitSink`] (run by
//! [`weir_operators::builtin::TwoPhaseCommitSinkOperator`]). Every connector is built once per
//! parallel subtask (cloned from the value the user passed) and learns its subtask index and
//! parallelism in `open`, so a parallel connector reads or writes only its share.
//!
//! | Connector | Flink counterpart | Parallel |
//! |---|---|---|
//! | [`CollectionSource`] | `fromCollection` / `fromElements` | no |
//! | [`DataGeneratorSource`] | `DataGeneratorSource` | yes |
//! | [`source::nexmark::source`] | Nexmark's generator source | yes, event numbers in strides |
//! | [`SocketTextSource`] | `socketTextStream` | no |
//! | [`TextFileSource`] | `readTextFile`, `FileSource` (`monitor_continuously`) | yes |
//! | [`PrintSink`] | `print()` / `printToErr()` | yes |
//! | [`DiscardSink`] | `DiscardingSink` | yes |
//! | [`TextFileSink`] | `writeAsText` | yes |
//! | [`FileSink`] | `FileSink` (row format, buckets, rolling, exactly-once; local or S3) | yes |
//! | [`CollectSink`] | `executeAndCollect` (in-process) | yes |
//! | `kafka::KafkaSource` (feature `kafka`) | `KafkaSource` (topic lists or patterns, partition discovery, dead letters) | yes, partitions as splits |
//! | `kafka::KafkaSink` (feature `kafka`) | `KafkaSink`, at-least-once | yes |
//! | `kafka::TransactionalKafkaSink` (feature `kafka`) | `KafkaSink`, exactly-once | yes |

mod error;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod sink;
pub mod source;
#[cfg(test)]
mod test_util;

pub use error::{Error, Result};
pub use sink::{CollectHandle, CollectSink, DiscardSink, FileSink, PrintSink, TextFileSink};
pub use source::{CollectionSource, DataGeneratorSource, SocketTextSource, TextFileSource};
