//! Per-subtask counters and event-time position that the runtime reads while the job runs.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use weir_types::{Watermark, WatermarkStatus};

/// Records into and out of one operator subtask, and the watermark it has reached. Counters
/// are updated once per batch, the watermark once per watermark.
#[derive(Debug)]
pub struct OperatorMetrics {
    records_in: AtomicU64,
    records_out: AtomicU64,
    /// The latest watermark the subtask received or emitted; `i64::MIN` for none.
    watermark: AtomicI64,
    /// Its input is idle (a source: it emits nothing to wait for).
    idle: AtomicBool,
}

impl Default for OperatorMetrics {
    fn default() -> Self {
        OperatorMetrics {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            watermark: AtomicI64::new(Watermark::MIN.0),
            idle: AtomicBool::new(false),
        }
    }
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

    /// The subtask's watermark advanced to `watermark`.
    pub fn watermark_reached(&self, watermark: Watermark) {
        self.watermark.store(watermark.0, Ordering::Relaxed);
    }

    /// The subtask's input went idle or active.
    pub fn status_changed(&self, status: WatermarkStatus) {
        self.idle.store(status == WatermarkStatus::Idle, Ordering::Relaxed);
    }

    /// Replaces the figures with those the subtask reported from another process.
    pub fn store(
        &self,
        records_in: u64,
        records_out: u64,
        watermark: Option<Watermark>,
        idle: bool,
    ) {
        self.records_in.store(records_in, Ordering::Relaxed);
        self.records_out.store(records_out, Ordering::Relaxed);
        self.watermark.store(watermark.unwrap_or(Watermark::MIN).0, Ordering::Relaxed);
        self.idle.store(idle, Ordering::Relaxed);
    }

    /// Records taken in so far.
    pub fn records_in(&self) -> u64 {
        self.records_in.load(Ordering::Relaxed)
    }

    /// Records sent on so far.
    pub fn records_out(&self) -> u64 {
        self.records_out.load(Ordering::Relaxed)
    }

    /// The latest watermark, if one arrived.
    pub fn watermark(&self) -> Option<Watermark> {
        let watermark = Watermark(self.watermark.load(Ordering::Relaxed));
        (watermark > Watermark::MIN).then_some(watermark)
    }

    /// Whether the subtask's input is idle.
    pub fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed)
    }
}
