//! Barrier alignment at a task with several input channels, free of I/O: which channels to
//! hold back and when the task has seen a checkpoint's barrier on all of them.

use std::time::{Duration, Instant};

use weir_types::{CheckpointBarrier, CheckpointId, SnapshotType};

use super::BarrierMode;

/// Tracks the barriers of the checkpoint in progress over a task's input channels.
#[derive(Debug)]
pub struct BarrierAligner {
    mode: BarrierMode,
    arrived: Vec<bool>,
    pending: Option<Pending>,
    /// The newest checkpoint snapshotted or given up; older barriers are stale.
    last: Option<CheckpointId>,
}

#[derive(Debug)]
struct Pending {
    barrier: CheckpointBarrier,
    started: Instant,
    aligned: bool,
}

/// What a barrier (or a closed channel) means for the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    /// Keep going; more barriers are due.
    Waiting,
    /// Every live channel delivered the barrier: snapshot now, then release all channels.
    Complete {
        /// The barrier to snapshot for and pass on.
        barrier: CheckpointBarrier,
        /// Time from the first barrier to the last.
        alignment: Duration,
    },
}

impl BarrierAligner {
    /// An aligner over `channels` input channels.
    pub fn new(channels: usize, mode: BarrierMode) -> Self {
        BarrierAligner { mode, arrived: vec![false; channels], pending: None, last: None }
    }

    /// A barrier arrived on `channel`; `live` tells which channels can still deliver one.
    /// Returns the checkpoint given up because a newer barrier overtook it, if any.
    pub fn on_barrier(
        &mut self,
        channel: usize,
        barrier: CheckpointBarrier,
        live: impl Fn(usize) -> bool,
    ) -> (Option<CheckpointId>, Alignment) {
        if self.last.is_some_and(|last| barrier.id <= last) {
            return (None, Alignment::Waiting);
        }
        let mut abandoned = None;
        match &self.pending {
            Some(pending) if pending.barrier.id == barrier.id => {}
            other => {
                abandoned = other.as_ref().map(|pending| pending.barrier.id);
                self.arrived.fill(false);
                let aligned =
                    self.mode == BarrierMode::Aligned || barrier.kind == SnapshotType::Savepoint;
                self.pending = Some(Pending { barrier, started: Instant::now(), aligned });
            }
        }
        self.arrived[channel] = true;
        (abandoned, self.check(live))
    }

    /// A channel closed; the barrier may now have arrived on every live channel.
    pub fn on_channel_closed(&mut self, live: impl Fn(usize) -> bool) -> Alignment {
        self.check(live)
    }

    /// Whether `channel` is held back until the others deliver the barrier.
    pub fn is_blocked(&self, channel: usize) -> bool {
        self.pending.as_ref().is_some_and(|pending| pending.aligned) && self.arrived[channel]
    }

    /// Whether a checkpoint is being aligned.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn check(&mut self, live: impl Fn(usize) -> bool) -> Alignment {
        let Some(pending) = &self.pending else { return Alignment::Waiting };
        if (0..self.arrived.len()).any(|channel| live(channel) && !self.arrived[channel]) {
            return Alignment::Waiting;
        }
        let outcome =
            Alignment::Complete { barrier: pending.barrier, alignment: pending.started.elapsed() };
        self.last = Some(pending.barrier.id);
        self.pending = None;
        self.arrived.fill(false);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn barrier(id: CheckpointId) -> CheckpointBarrier {
        CheckpointBarrier { id, timestamp: 0, kind: SnapshotType::Checkpoint }
    }

    fn all(_: usize) -> bool {
        true
    }

    fn completed(outcome: Alignment) -> Option<CheckpointId> {
        match outcome {
            Alignment::Complete { barrier, .. } => Some(barrier.id),
            Alignment::Waiting => None,
        }
    }

    #[test]
    fn aligned_blocks_channels_until_all_delivered() {
        let mut aligner = BarrierAligner::new(3, BarrierMode::Aligned);
        assert_eq!(aligner.on_barrier(1, barrier(1), all), (None, Alignment::Waiting));
        assert!(aligner.is_blocked(1) && !aligner.is_blocked(0));
        assert_eq!(aligner.on_barrier(0, barrier(1), all).1, Alignment::Waiting);
        assert_eq!(completed(aligner.on_barrier(2, barrier(1), all).1), Some(1));
        assert!(!aligner.is_blocked(1), "released after the snapshot");
        assert!(!aligner.is_pending());
    }

    #[test]
    fn at_least_once_never_blocks_but_savepoints_align() {
        let mut aligner = BarrierAligner::new(2, BarrierMode::AtLeastOnce);
        aligner.on_barrier(0, barrier(1), all);
        assert!(!aligner.is_blocked(0));
        assert_eq!(completed(aligner.on_barrier(1, barrier(1), all).1), Some(1));
        let savepoint = CheckpointBarrier { kind: SnapshotType::Savepoint, ..barrier(2) };
        aligner.on_barrier(0, savepoint, all);
        assert!(aligner.is_blocked(0));
    }

    #[test]
    fn closed_channels_are_not_waited_for() {
        let mut aligner = BarrierAligner::new(2, BarrierMode::Aligned);
        aligner.on_barrier(0, barrier(4), all);
        assert_eq!(completed(aligner.on_channel_closed(|channel| channel == 0)), Some(4));
        assert_eq!(completed(aligner.on_barrier(0, barrier(5), |c| c == 0).1), Some(5));
    }

    #[test]
    fn a_newer_barrier_abandons_the_older_and_stale_ones_are_ignored() {
        let mut aligner = BarrierAligner::new(2, BarrierMode::Aligned);
        aligner.on_barrier(0, barrier(1), all);
        let (abandoned, outcome) = aligner.on_barrier(1, barrier(2), all);
        assert_eq!((abandoned, outcome), (Some(1), Alignment::Waiting));
        assert!(!aligner.is_blocked(0), "the abandoned checkpoint's hold is released");
        assert_eq!(completed(aligner.on_barrier(0, barrier(2), all).1), Some(2));
        assert_eq!(aligner.on_barrier(0, barrier(1), all), (None, Alignment::Waiting));
        assert!(!aligner.is_pending(), "stale barriers start nothing");
    }
}
