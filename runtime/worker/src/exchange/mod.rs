//! Moving batches between tasks: bounded channels, partitioning writers, input gates with their event time, and the
//! cancellation signal every blocking step listens to.

mod cancel;
mod combined;
mod gate;
mod writer;

pub use cancel::{CancelHandle, CancelToken};
pub use combined::{TaskEventTime, TimeEvent};
pub use gate::{Delivery, GateProgress, InputGate};
pub use writer::ChannelWriter;
pub(crate) use writer::send_or_cancel;
