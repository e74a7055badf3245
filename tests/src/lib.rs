//! Shared helpers of the end-to-end tests: configurations and result normalisation.

use weir::ExecutionConfig;

/// An execution config for tests: `parallelism`, small batches so that several batches and
/// channels are exercised, and no progress lines.
pub fn config(parallelism: usize) -> ExecutionConfig {
    ExecutionConfig { parallelism, batch_size: 16, progress_interval_ms: 0, ..Default::default() }
}

/// `values` sorted, for comparing outputs whose order depends on scheduling.
pub fn sorted<T: Ord>(mut values: Vec<T>) -> Vec<T> {
    values.sort();
    values
}
