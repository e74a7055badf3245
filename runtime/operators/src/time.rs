//! Processing time and the two time domains.

use std::time::{SystemTime, UNIX_EPOCH};

use weir_types::Timestamp;

/// Which clock a timer or window follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeDomain {
    /// Event time: advanced by watermarks.
    EventTime,
    /// Processing time: the wall clock of the machine.
    ProcessingTime,
}

/// The wall clock in milliseconds since the Unix epoch.
pub fn processing_time_now() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Timestamp)
}
