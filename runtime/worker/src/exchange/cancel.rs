//! Job-wide cancellation: dropping the [`CancelHandle`] wakes every task that waits.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

/// Held by the executor; dropping it (or calling `cancel`) cancels every token.
#[derive(Debug)]
pub struct CancelHandle {
    _sender: Sender<()>,
}

/// Held by every task; becomes ready (disconnected) on cancellation, so it can sit in a
/// `select` beside data channels.
#[derive(Clone, Debug)]
pub struct CancelToken {
    receiver: Receiver<()>,
}

impl CancelHandle {
    /// A handle and the token it controls.
    pub fn new() -> (CancelHandle, CancelToken) {
        let (sender, receiver) = crossbeam_channel::bounded(0);
        (CancelHandle { _sender: sender }, CancelToken { receiver })
    }

    /// Cancels every token.
    pub fn cancel(self) {}
}

impl CancelToken {
    /// Whether the job was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.receiver.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// Waits up to `timeout`; returns whether the job was cancelled meanwhile.
    pub fn wait(&self, timeout: Duration) -> bool {
        matches!(self.receiver.recv_timeout(timeout), Err(RecvTimeoutError::Disconnected))
    }

    /// The receiver to add to a `crossbeam_channel::Select`.
    pub(crate) fn receiver(&self) -> &Receiver<()> {
        &self.receiver
    }
}
