//! Credit-based flow control of one remote channel: the consumer grants bytes as it hands
//! frames on to its task, and the producer sends a frame only when its bytes are covered.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::exchange::CancelToken;

/// The producer's view of one channel's credit.
#[derive(Debug, Default)]
pub(crate) struct Credits {
    state: Mutex<CreditState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct CreditState {
    /// Bytes granted and not yet used; negative after a frame larger than the window.
    available: i64,
    /// Bytes sent and not yet given back: what the consumer's buffers hold for this channel.
    outstanding: u64,
    /// The consumer is gone: no credit will come.
    closed: bool,
}

impl Credits {
    /// The consumer granted `bytes` more.
    pub(crate) fn grant(&self, bytes: u64) {
        let mut state = self.state.lock().expect("credit lock");
        state.available += i64::try_from(bytes).unwrap_or(i64::MAX);
        state.outstanding = state.outstanding.saturating_sub(bytes);
        self.changed.notify_all();
    }

    /// No more credit will come (the consumer closed the channel).
    pub(crate) fn close(&self) {
        self.state.lock().expect("credit lock").closed = true;
        self.changed.notify_all();
    }

    /// Waits until `bytes` are covered, or nothing is outstanding (a frame larger than the
    /// whole window still goes, alone); takes them. Returns false when the channel closed or
    /// the job was cancelled.
    pub(crate) fn acquire(&self, bytes: u64, cancel: &CancelToken) -> bool {
        let mut state = self.state.lock().expect("credit lock");
        loop {
            if state.closed || cancel.is_cancelled() {
                return false;
            }
            let wanted = i64::try_from(bytes).unwrap_or(i64::MAX);
            if state.available >= wanted || (state.outstanding == 0 && state.available > 0) {
                state.available -= wanted;
                state.outstanding += bytes;
                return true;
            }
            // Cancellation has no condvar of its own: look again now and then.
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .expect("credit lock")
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::exchange::CancelHandle;

    #[test]
    fn sends_only_what_was_granted_until_credit_returns() {
        let (_handle, cancel) = CancelHandle::new();
        let credits = Arc::new(Credits::default());
        credits.grant(100);
        assert!(credits.acquire(60, &cancel));
        let waiting = {
            let credits = credits.clone();
            let cancel = cancel.clone();
            std::thread::spawn(move || credits.acquire(60, &cancel))
        };
        std::thread::sleep(Duration::from_millis(150));
        assert!(!waiting.is_finished(), "40 bytes left cannot cover 60 while 60 are outstanding");
        credits.grant(60);
        assert!(waiting.join().unwrap());
    }

    #[test]
    fn an_oversized_frame_goes_alone() {
        let (_handle, cancel) = CancelHandle::new();
        let credits = Credits::default();
        credits.grant(10);
        assert!(credits.acquire(1_000, &cancel), "nothing outstanding: the big frame goes");
        credits.grant(1_000);
        assert!(credits.acquire(10, &cancel), "the window is back to 10 bytes");
        assert_eq!(credits.state.lock().unwrap().available, 0, "and no more than 10");
    }

    #[test]
    fn cancel_and_close_release_a_waiting_producer() {
        let (handle, cancel) = CancelHandle::new();
        let credits = Arc::new(Credits::default());
        let waiting = {
            let credits = credits.clone();
            std::thread::spawn(move || credits.acquire(1, &cancel))
        };
        handle.cancel();
        assert!(!waiting.join().unwrap());
        let (_handle, cancel) = CancelHandle::new();
        credits.close();
        assert!(!credits.acquire(1, &cancel));
    }
}
