//! Event time: timestamps and watermarks.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, as in Flink.
pub type Timestamp = i64;

/// An assertion that no record with a timestamp at or below this one is still to come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Watermark(pub Timestamp);

impl Watermark {
    /// The watermark before any event time is known.
    pub const MIN: Watermark = Watermark(Timestamp::MIN);
    /// The watermark that closes event time: emitted at the end of bounded input.
    pub const MAX: Watermark = Watermark(Timestamp::MAX);

    /// The timestamp this watermark asserts.
    pub fn timestamp(self) -> Timestamp {
        self.0
    }
}

/// Whether a stream currently drives event time. An idle stream (no data for a while, e.g.
/// an empty partition) does not hold back the watermark of the operators it feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatermarkStatus {
    /// Records and watermarks are flowing.
    Active,
    /// Nothing is flowing; downstream ignores this input's watermark until it is active again.
    Idle,
}
