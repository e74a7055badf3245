//! Sinks: where the records of a job end up. Each is a one-input operator with no output, or
//! a two-phase commit sink that one runs.

mod collect;
mod discard;
mod file;
mod print;
mod text_file;

pub use collect::{CollectHandle, CollectSink};
pub use discard::DiscardSink;
pub use file::{
    BucketAssigner, BucketClock, DateField, FileSink, FileTransaction, PendingPart, RollingPolicy,
    StorageOptions, Upload,
};
pub use print::PrintSink;
pub use text_file::TextFileSink;
