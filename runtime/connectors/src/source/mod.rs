//! Sources: where the records of a job come from.

mod collection;
mod datagen;
mod file_monitor;
pub mod nexmark;
mod socket;
mod text_file;

pub use collection::CollectionSource;
pub use datagen::{DataGeneratorSource, EventTime};
pub use socket::SocketTextSource;
pub use text_file::TextFileSource;
