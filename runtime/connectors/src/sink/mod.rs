//! Sinks: where the records of a job end up. Each is a one-input operator with no output, or
//! a two-phase commit sink that one runs.

mod collect;
mod discard;
mod print;
mod text_file;
mod transactional_file;

pub use collect::{CollectHandle, CollectSink};
pub use discard::DiscardSink;
pub use print::PrintSink;
pub use text_file::TextFileSink;
pub use transactional_file::{PartFile, TransactionalFileSink};
