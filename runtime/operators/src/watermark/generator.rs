//! Watermark generators: how event time advances from the timestamps seen.

use weir_types::{Timestamp, Watermark};

/// Where a generator emits watermarks and idleness (Flink's `WatermarkOutput`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WatermarkOutput {
    pub(crate) watermark: Option<Watermark>,
    pub(crate) idle: bool,
}

impl WatermarkOutput {
    /// Emits `watermark`; lower ones than already emitted are ignored downstream.
    pub fn emit_watermark(&mut self, watermark: Watermark) {
        self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
        self.idle = false;
    }

    /// Marks the stream idle until the next watermark.
    pub fn mark_idle(&mut self) {
        self.idle = true;
    }
}

/// Generates watermarks per event, periodically, or both (Flink's `WatermarkGenerator`).
pub trait WatermarkGenerator<T>: Send {
    /// Called for every event with its timestamp.
    fn on_event(&mut self, event: &T, timestamp: Timestamp, output: &mut WatermarkOutput);
    /// Called every auto-watermark interval (default 200 ms).
    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput);
}

/// Emits, periodically, the highest timestamp seen minus the allowed lateness of events,
/// minus 1 ms: `max_ts - delay - 1` (Flink's `BoundedOutOfOrdernessWatermarks`).
#[derive(Clone, Debug)]
pub struct BoundedOutOfOrderness {
    max_timestamp: Timestamp,
    delay: Timestamp,
}

impl BoundedOutOfOrderness {
    /// Events may arrive up to `delay_ms` milliseconds out of order.
    pub fn new(delay_ms: Timestamp) -> Self {
        // Start so that the first watermark is MIN, as in Flink.
        BoundedOutOfOrderness { max_timestamp: Timestamp::MIN + delay_ms + 1, delay: delay_ms }
    }
}

impl<T> WatermarkGenerator<T> for BoundedOutOfOrderness {
    fn on_event(&mut self, _event: &T, timestamp: Timestamp, _output: &mut WatermarkOutput) {
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput) {
        output.emit_watermark(Watermark(self.max_timestamp - self.delay - 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_out_of_orderness_is_max_minus_delay_minus_one() {
        let mut generator = BoundedOutOfOrderness::new(500);
        let mut output = WatermarkOutput::default();
        WatermarkGenerator::<()>::on_periodic_emit(&mut generator, &mut output);
        assert_eq!(output.watermark, Some(Watermark(Timestamp::MIN)), "nothing seen yet");
        for ts in [1_000, 3_000, 2_000] {
            generator.on_event(&(), ts, &mut output);
        }
        let mut output = WatermarkOutput::default();
        WatermarkGenerator::<()>::on_periodic_emit(&mut generator, &mut output);
        assert_eq!(output.watermark, Some(Watermark(2_499)));
    }
}
