//! Barrier alignment at a task with several input channels, free of I/O: which channels to
//! hold back, when to snapshot, which channels' records are in flight (unaligned), and when
//! the task has seen a checkpoint's barrier on all of them.

use std::time::{Duration, Instant};

use weir_types::{CheckpointBarrier, CheckpointId};

use super::BarrierMode;

/// Tracks the barriers of the checkpoint in progress over a task's input channels.
#[derive(Debug)]
pub struct BarrierAligner {
    mode: BarrierMode,
    arrived: Vec<bool>,
    /// Channels that delivered end of input: a barrier after it is a final checkpoint's.
    ended: Vec<bool>,
    pending: Option<Pending>,
    /// The newest checkpoint snapshotted or given up; older barriers are stale.
    last: Option<CheckpointId>,
}

#[derive(Debug)]
struct Pending {
    barrier: CheckpointBarrier,
    started: Instant,
    phase: Phase,
}

/// Where the checkpoint in progress stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Channels that delivered the barrier are held back; at `deadline`, if any, the
    /// checkpoint goes unaligned.
    Aligning { deadline: Option<Instant> },
    /// Nothing is held back; the snapshot waits for the last barrier (at-least-once).
    Flowing,
    /// The snapshot was taken after waiting `waited`; records arriving on channels that have
    /// not delivered the barrier are in flight.
    Unaligned { waited: Duration },
}

/// What a barrier, a closed channel or the passing of time means for the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    /// Keep going; more barriers are due.
    Waiting,
    /// Snapshot now and pass the barrier on without waiting for the other channels; from now
    /// on, records read on channels [`BarrierAligner::is_recording`] names are in flight and
    /// belong to the checkpoint.
    Unaligned {
        /// The barrier to snapshot for and pass on.
        barrier: CheckpointBarrier,
    },
    /// Every live channel delivered the barrier: the task acknowledges the checkpoint and
    /// every channel is released.
    Complete {
        /// The barrier of the checkpoint.
        barrier: CheckpointBarrier,
        /// How long the barrier waited before the snapshot: from the first barrier to the
        /// last (aligned) or to the switch to unaligned.
        alignment: Duration,
        /// The snapshot was taken at [`Alignment::Unaligned`] and the records in flight
        /// complete it; when false, snapshot now and pass the barrier on.
        unaligned: bool,
    },
}

impl BarrierAligner {
    /// An aligner over `channels` input channels.
    pub fn new(channels: usize, mode: BarrierMode) -> Self {
        BarrierAligner {
            mode,
            arrived: vec![false; channels],
            ended: vec![false; channels],
            pending: None,
            last: None,
        }
    }

    /// A barrier arrived on `channel` at `now`; `live` tells which channels can still deliver
    /// one. Returns the checkpoint given up because a newer barrier overtook it, if any.
    pub fn on_barrier(
        &mut self,
        channel: usize,
        barrier: CheckpointBarrier,
        live: impl Fn(usize) -> bool,
        now: Instant,
    ) -> (Option<CheckpointId>, Alignment) {
        let current = self.pending.as_ref().map(|pending| pending.barrier.id);
        if self.last.is_some_and(|last| barrier.id <= last)
            || current.is_some_and(|id| barrier.id < id)
        {
            return (None, Alignment::Waiting);
        }
        let mut abandoned = None;
        if current != Some(barrier.id) {
            abandoned = current;
            self.arrived.fill(false);
            let phase = self.first_phase(barrier, channel, now);
            self.pending = Some(Pending { barrier, started: now, phase });
        }
        self.arrived[channel] = true;
        (abandoned, self.check(live, now))
    }

    /// A channel closed; the barrier may now have arrived on every live channel.
    pub fn on_channel_closed(&mut self, live: impl Fn(usize) -> bool, now: Instant) -> Alignment {
        self.check(live, now)
    }

    /// `channel` delivered end of input: a barrier it delivers later belongs to a checkpoint
    /// taken after the end, which stays aligned so that the task's snapshot is final.
    pub fn on_end_of_input(&mut self, channel: usize) {
        self.ended[channel] = true;
    }

    /// Time passed: at the alignment timeout the checkpoint in progress goes unaligned.
    pub fn on_time(&mut self, live: impl Fn(usize) -> bool, now: Instant) -> Alignment {
        self.check(live, now)
    }

    /// The coordinator aborted `checkpoint`: if it is in progress here, give it up (release
    /// held channels, stop recording records in flight); its later barriers are stale.
    /// Returns whether it was in progress.
    pub fn on_abort(&mut self, checkpoint: CheckpointId) -> bool {
        if self.pending.as_ref().is_none_or(|pending| pending.barrier.id != checkpoint) {
            return false;
        }
        self.last = Some(checkpoint);
        self.pending = None;
        self.arrived.fill(false);
        true
    }

    /// When the checkpoint being aligned goes unaligned, if it can.
    pub fn deadline(&self) -> Option<Instant> {
        match self.pending.as_ref()?.phase {
            Phase::Aligning { deadline } => deadline,
            Phase::Flowing | Phase::Unaligned { .. } => None,
        }
    }

    /// Whether `channel` is held back until the others deliver the barrier.
    pub fn is_blocked(&self, channel: usize) -> bool {
        self.pending.as_ref().is_some_and(|p| matches!(p.phase, Phase::Aligning { .. }))
            && self.arrived[channel]
    }

    /// Whether records read on `channel` are in flight for the unaligned checkpoint in
    /// progress: it was snapshotted before they were processed.
    pub fn is_recording(&self, channel: usize) -> bool {
        self.pending.as_ref().is_some_and(|p| matches!(p.phase, Phase::Unaligned { .. }))
            && !self.arrived[channel]
    }

    /// Whether a checkpoint is being aligned.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// How a checkpoint whose first barrier arrived on `channel` starts. Savepoints and
    /// checkpoints after the end of input always align.
    fn first_phase(&self, barrier: CheckpointBarrier, channel: usize, now: Instant) -> Phase {
        if barrier.kind.is_savepoint() || self.ended[channel] {
            return Phase::Aligning { deadline: None };
        }
        match self.mode {
            BarrierMode::Aligned => Phase::Aligning { deadline: None },
            BarrierMode::AtLeastOnce => Phase::Flowing,
            BarrierMode::Unaligned { alignment_timeout } => {
                Phase::Aligning { deadline: Some(now + alignment_timeout) }
            }
        }
    }

    fn check(&mut self, live: impl Fn(usize) -> bool, now: Instant) -> Alignment {
        let Some(pending) = &mut self.pending else { return Alignment::Waiting };
        let missing =
            (0..self.arrived.len()).any(|channel| live(channel) && !self.arrived[channel]);
        if missing {
            return match pending.phase {
                Phase::Aligning { deadline: Some(deadline) } if now >= deadline => {
                    let waited = now.saturating_duration_since(pending.started);
                    pending.phase = Phase::Unaligned { waited };
                    Alignment::Unaligned { barrier: pending.barrier }
                }
                _ => Alignment::Waiting,
            };
        }
        let (alignment, unaligned) = match pending.phase {
            Phase::Unaligned { waited } => (waited, true),
            Phase::Aligning { .. } | Phase::Flowing => {
                (now.saturating_duration_since(pending.started), false)
            }
        };
        let outcome = Alignment::Complete { barrier: pending.barrier, alignment, unaligned };
        self.last = Some(pending.barrier.id);
        self.pending = None;
        self.arrived.fill(false);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_types::{SavepointFormat, SnapshotType};

    fn barrier(id: CheckpointId) -> CheckpointBarrier {
        CheckpointBarrier { id, timestamp: 0, kind: SnapshotType::Checkpoint }
    }

    fn all(_: usize) -> bool {
        true
    }

    fn completed(outcome: Alignment) -> Option<CheckpointId> {
        match outcome {
            Alignment::Complete { barrier, .. } => Some(barrier.id),
            Alignment::Waiting | Alignment::Unaligned { .. } => None,
        }
    }

    fn unaligned(timeout_ms: u64) -> BarrierMode {
        BarrierMode::Unaligned { alignment_timeout: Duration::from_millis(timeout_ms) }
    }

    fn ms(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn aligned_blocks_channels_until_all_delivered() {
        let mut aligner = BarrierAligner::new(3, BarrierMode::Aligned);
        let now = Instant::now();
        assert_eq!(aligner.on_barrier(1, barrier(1), all, now), (None, Alignment::Waiting));
        assert!(aligner.is_blocked(1) && !aligner.is_blocked(0));
        assert!(!aligner.is_recording(0), "aligned checkpoints have nothing in flight");
        assert_eq!(aligner.deadline(), None, "aligned checkpoints never time out");
        assert_eq!(aligner.on_barrier(0, barrier(1), all, now).1, Alignment::Waiting);
        let outcome = aligner.on_barrier(2, barrier(1), all, ms(now, 30)).1;
        let alignment = Duration::from_millis(30);
        assert_eq!(
            outcome,
            Alignment::Complete { barrier: barrier(1), alignment, unaligned: false }
        );
        assert!(!aligner.is_blocked(1), "released after the snapshot");
        assert!(!aligner.is_pending());
    }

    #[test]
    fn at_least_once_never_blocks_but_savepoints_align() {
        let mut aligner = BarrierAligner::new(2, BarrierMode::AtLeastOnce);
        let now = Instant::now();
        aligner.on_barrier(0, barrier(1), all, now);
        assert!(!aligner.is_blocked(0) && !aligner.is_recording(1));
        assert_eq!(completed(aligner.on_barrier(1, barrier(1), all, now).1), Some(1));
        let savepoint = CheckpointBarrier {
            kind: SnapshotType::Savepoint(SavepointFormat::Canonical),
            ..barrier(2)
        };
        aligner.on_barrier(0, savepoint, all, now);
        assert!(aligner.is_blocked(0));
    }

    #[test]
    fn closed_channels_are_not_waited_for() {
        let mut aligner = BarrierAligner::new(2, BarrierMode::Aligned);
        let now = Instant::now();
        aligner.on_barrier(0, barrier(4), all, now);
        assert_eq!(completed(aligner.on_channel_closed(|channel| channel == 0, now)), Some(4));
        assert_eq!(completed(aligner.on_barrier(0, barrier(5), |c| c == 0, now).1), Some(5));
    }

    #[test]
    fn a_newer_barrier_abandons_the_older_and_stale_ones_are_ignored() {
        let mut aligner = BarrierAligner::new(2, BarrierMode::Aligned);
        let now = Instant::now();
        aligner.on_barrier(0, barrier(1), all, now);
        let (abandoned, outcome) = aligner.on_barrier(1, barrier(2), all, now);
        assert_eq!((abandoned, outcome), (Some(1), Alignment::Waiting));
        assert!(!aligner.is_blocked(0), "the abandoned checkpoint's hold is released");
        assert_eq!(aligner.on_barrier(0, barrier(1), all, now), (None, Alignment::Waiting));
        assert!(aligner.is_blocked(1), "a stale barrier leaves the newer checkpoint alone");
        assert_eq!(completed(aligner.on_barrier(0, barrier(2), all, now).1), Some(2));
        assert_eq!(aligner.on_barrier(0, barrier(1), all, now), (None, Alignment::Waiting));
        assert!(!aligner.is_pending(), "stale barriers start nothing");
    }

    #[test]
    fn unaligned_snapshots_at_the_first_barrier_and_records_the_channels_still_missing_it() {
        let mut aligner = BarrierAligner::new(3, unaligned(0));
        let now = Instant::now();
        let (abandoned, outcome) = aligner.on_barrier(1, barrier(7), all, now);
        assert_eq!((abandoned, outcome), (None, Alignment::Unaligned { barrier: barrier(7) }));
        assert!((0..3).all(|channel| !aligner.is_blocked(channel)), "nothing is held back");
        assert_eq!(
            (0..3).map(|c| aligner.is_recording(c)).collect::<Vec<_>>(),
            [true, false, true]
        );
        assert_eq!(aligner.on_barrier(2, barrier(7), all, ms(now, 5)).1, Alignment::Waiting);
        assert!(aligner.is_recording(0) && !aligner.is_recording(2), "channel 2 stops recording");
        let outcome = aligner.on_barrier(0, barrier(7), all, ms(now, 9)).1;
        let complete =
            Alignment::Complete { barrier: barrier(7), alignment: Duration::ZERO, unaligned: true };
        assert_eq!(outcome, complete, "the snapshot did not wait");
        assert!((0..3).all(|channel| !aligner.is_recording(channel)));
        assert!(!aligner.is_pending());
    }

    #[test]
    fn unaligned_completes_when_the_missing_channels_close() {
        let mut aligner = BarrierAligner::new(2, unaligned(0));
        let now = Instant::now();
        assert_eq!(
            aligner.on_barrier(0, barrier(3), all, now).1,
            Alignment::Unaligned { barrier: barrier(3) }
        );
        let outcome = aligner.on_channel_closed(|channel| channel == 0, now);
        assert!(matches!(outcome, Alignment::Complete { unaligned: true, .. }), "{outcome:?}");
    }

    #[test]
    fn a_single_live_channel_completes_at_once_without_going_unaligned() {
        let mut aligner = BarrierAligner::new(2, unaligned(0));
        let now = Instant::now();
        let outcome = aligner.on_barrier(1, barrier(2), |channel| channel == 1, now).1;
        assert!(matches!(outcome, Alignment::Complete { unaligned: false, .. }), "{outcome:?}");
    }

    #[test]
    fn savepoints_and_checkpoints_after_the_end_of_input_stay_aligned() {
        let mut aligner = BarrierAligner::new(2, unaligned(0));
        let now = Instant::now();
        let savepoint = CheckpointBarrier {
            kind: SnapshotType::Savepoint(SavepointFormat::Canonical),
            ..barrier(1)
        };
        assert_eq!(aligner.on_barrier(0, savepoint, all, now).1, Alignment::Waiting);
        assert!(aligner.is_blocked(0) && aligner.deadline().is_none());
        assert!(matches!(
            aligner.on_barrier(1, savepoint, all, now).1,
            Alignment::Complete { unaligned: false, .. }
        ));
        aligner.on_end_of_input(1);
        assert_eq!(aligner.on_barrier(1, barrier(2), all, now).1, Alignment::Waiting);
        assert!(aligner.is_blocked(1) && aligner.deadline().is_none(), "a final checkpoint");
    }

    #[test]
    fn the_alignment_timeout_switches_to_unaligned_and_releases_the_held_channels() {
        let mut aligner = BarrierAligner::new(3, unaligned(50));
        let now = Instant::now();
        assert_eq!(aligner.on_barrier(0, barrier(1), all, now).1, Alignment::Waiting);
        assert_eq!(aligner.deadline(), Some(ms(now, 50)));
        assert!(aligner.is_blocked(0) && !aligner.is_recording(1), "it starts aligned");
        assert_eq!(aligner.on_barrier(2, barrier(1), all, ms(now, 20)).1, Alignment::Waiting);
        assert_eq!(aligner.on_time(all, ms(now, 49)), Alignment::Waiting, "not yet");
        let outcome = aligner.on_time(all, ms(now, 50));
        assert_eq!(outcome, Alignment::Unaligned { barrier: barrier(1) });
        assert!(!aligner.is_blocked(0) && !aligner.is_blocked(2), "held channels released");
        let recording: Vec<_> = (0..3).map(|c| aligner.is_recording(c)).collect();
        assert_eq!(recording, [false, true, false], "only the channel missing the barrier");
        assert_eq!(aligner.deadline(), None);
        assert_eq!(aligner.on_time(all, ms(now, 80)), Alignment::Waiting, "switches once");
        let outcome = aligner.on_barrier(1, barrier(1), all, ms(now, 90)).1;
        let alignment = Duration::from_millis(50);
        assert_eq!(
            outcome,
            Alignment::Complete { barrier: barrier(1), alignment, unaligned: true }
        );
    }

    #[test]
    fn alignment_within_the_timeout_stays_aligned() {
        let mut aligner = BarrierAligner::new(2, unaligned(50));
        let now = Instant::now();
        aligner.on_barrier(1, barrier(1), all, now);
        let outcome = aligner.on_barrier(0, barrier(1), all, ms(now, 49)).1;
        assert!(matches!(outcome, Alignment::Complete { unaligned: false, .. }), "{outcome:?}");
        assert_eq!(aligner.deadline(), None);
        assert_eq!(aligner.on_time(all, ms(now, 100)), Alignment::Waiting, "nothing pending");
    }

    #[test]
    fn an_aborted_checkpoint_stops_recording_and_its_late_barriers_are_stale() {
        let mut aligner = BarrierAligner::new(2, unaligned(0));
        let now = Instant::now();
        aligner.on_barrier(0, barrier(3), all, now);
        assert!(!aligner.on_abort(2), "not the checkpoint in progress");
        assert!(aligner.is_recording(1));
        assert!(aligner.on_abort(3));
        assert!(!aligner.is_recording(1) && !aligner.is_pending());
        assert_eq!(aligner.on_barrier(1, barrier(3), all, now), (None, Alignment::Waiting));
        assert!(!aligner.is_pending(), "a late barrier of it starts nothing");
    }

    #[test]
    fn a_newer_barrier_abandons_an_unaligned_checkpoint_and_records_for_itself() {
        let mut aligner = BarrierAligner::new(2, unaligned(0));
        let now = Instant::now();
        aligner.on_barrier(0, barrier(1), all, now);
        assert!(aligner.is_recording(1));
        let (abandoned, outcome) = aligner.on_barrier(1, barrier(2), all, now);
        assert_eq!((abandoned, outcome), (Some(1), Alignment::Unaligned { barrier: barrier(2) }));
        assert!(aligner.is_recording(0) && !aligner.is_recording(1), "now for checkpoint 2");
        assert_eq!(aligner.on_barrier(0, barrier(1), all, now), (None, Alignment::Waiting));
        assert!(aligner.is_recording(0), "the stale barrier stops nothing");
        assert!(matches!(
            aligner.on_barrier(0, barrier(2), all, now).1,
            Alignment::Complete { unaligned: true, .. }
        ));
    }
}
