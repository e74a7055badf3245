//! Shared helpers of the end-to-end tests: configurations and result normalisation.

use weir::ExecutionConfig;

pub mod cluster;
pub mod services;

/// An execution config for tests: `parallelism`, small batches so that several batches and
/// channels are exercised, and no progress lines.
pub fn config(parallelism: usize) -> ExecutionConfig {
    ExecutionConfig { parallelism, batch_size: 16, progress_interval_ms: 0, ..Default::default() }
}

/// The directory of the package whose test is running, read when it runs (set by cargo and
/// nextest): a test binary reused from a build cache shared with another checkout must read
/// this checkout, which the compile-time `env!("CARGO_MANIFEST_DIR")` would not.
pub fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo test")
}

/// `values` sorted, for comparing outputs whose order depends on scheduling.
pub fn sorted<T: Ord>(mut values: Vec<T>) -> Vec<T> {
    values.sort();
    values
}

/// A watermark generator that emits `max timestamp seen - 1` after every event, for tests that
/// need event time to advance deterministically between records.
pub struct EveryEvent(pub i64);

impl<T> weir::time::WatermarkGenerator<T> for EveryEvent {
    fn on_event(&mut self, _: &T, timestamp: i64, output: &mut weir::time::WatermarkOutput) {
        self.0 = self.0.max(timestamp);
        output.emit_watermark(weir::Watermark(self.0 - 1));
    }

    fn on_periodic_emit(&mut self, _: &mut weir::time::WatermarkOutput) {}
}
