//! Receiving in a `select!` loop from channels whose senders may all go away.

use crossbeam_channel::{Receiver, RecvError};

/// What `receiver` gave. Once every sender is gone, it is swapped for a receiver that never
/// delivers: a disconnected receiver is always ready, and a `select!` loop over it would
/// spin a core instead of waiting for its other channels.
pub(crate) fn received<T>(receiver: &mut Receiver<T>, result: Result<T, RecvError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(RecvError) => {
            *receiver = crossbeam_channel::never();
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crossbeam_channel::select;

    use super::*;

    #[test]
    fn a_receiver_whose_senders_are_gone_stops_being_ready() {
        let (sender, mut receiver) = crossbeam_channel::unbounded();
        sender.send(1).unwrap();
        drop(sender);
        let ready = |receiver: &Receiver<i32>| {
            select! {
                recv(receiver) -> result => Some(result),
                default(Duration::from_millis(50)) => None,
            }
        };
        let first = ready(&receiver).expect("a value waits");
        assert_eq!(received(&mut receiver, first), Some(1));
        let disconnected = ready(&receiver).expect("a disconnected receiver is ready at once");
        assert_eq!(received(&mut receiver, disconnected), None);
        let started = Instant::now();
        assert!(ready(&receiver).is_none(), "swapped for one that never delivers");
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
