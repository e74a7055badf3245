//! Sinks: where the records of a job end up. Each is a one-input operator with no output.

mod collect;
mod discard;
mod print;
mod text_file;

pub use collect::{CollectHandle, CollectSink};
pub use discard::DiscardSink;
pub use print::PrintSink;
pub use text_file::TextFileSink;
