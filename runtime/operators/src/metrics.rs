//! Per-subtask counters that the runtime reads while the job runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// Records into and out of one operator subtask. Updated once per batch.
#[derive(Debug, Default)]
pub struct OperatorMetrics {
    records_in: AtomicU64,
    records_out: AtomicU64,
}

impl OperatorMetrics {
    /// Counts `n` records taken in.
    pub fn add_in(&self, n: usize) {
        self.records_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts `n` records sent on.
    pub fn add_out(&self, n: usize) {
        self.records_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Replaces the counts with those the subtask reported from another process.
    pub fn store(&self, records_in: u64, records_out: u64) {
        self.records_in.store(records_in, Ordering::Relaxed);
        self.records_out.store(records_out, Ordering::Relaxed);
    }

    /// Records taken in so far.
    pub fn records_in(&self) -> u64 {
        self.records_in.load(Ordering::Relaxed)
    }

    /// Records sent on so far.
    pub fn records_out(&self) -> u64 {
        self.records_out.load(Ordering::Relaxed)
    }
}
