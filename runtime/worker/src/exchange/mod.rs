//! Moving batches between tasks: bounded channels, partitioning writers, input gates, and the
//! cancellation signal every blocking step listens to.

mod cancel;
mod gate;
mod writer;

pub use cancel::{CancelHandle, CancelToken};
pub use gate::InputGate;
pub use writer::ChannelWriter;
pub(crate) use writer::send_or_cancel;
