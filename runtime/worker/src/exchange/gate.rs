//! The consuming side's bookkeeping for the channels of one input: per-channel watermarks and
//! idleness combined into the input's event time as Flink's `StatusWatermarkValve` does, and
//! end of input.

use weir_types::{Record, StreamMessage, Watermark, WatermarkStatus};

/// What one message changed in an input's event time. A gate that turned active says so
/// before its watermark is passed on; one that went idle says so after its last watermark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GateProgress {
    /// The input's watermark, when it advanced.
    pub watermark: Option<Watermark>,
    /// The input's status, when it changed.
    pub status: Option<WatermarkStatus>,
}

/// What a message delivered: records for the operator, or a change of event time.
#[derive(Debug, PartialEq)]
pub enum Delivery<T> {
    /// A batch of records.
    Records(Vec<Record<T>>),
    /// Event time, possibly unchanged (barriers and duplicates change nothing).
    Progress(GateProgress),
}

/// Where one channel's event time stands.
#[derive(Debug, Clone, Copy)]
struct ChannelTime {
    watermark: Watermark,
    idle: bool,
    /// Whether the channel's watermark counts towards the input's: an idle channel does not,
    /// nor one back from idleness until its watermark caught up with the input's.
    aligned: bool,
    open: bool,
}

/// Watermarks, idleness and end-of-input of the channels feeding one input of a task.
///
/// The input's watermark is the minimum over aligned channels, and never goes back. A channel
/// that goes idle stops holding it back; when every channel is idle the input flushes to the
/// highest watermark any channel reached and goes idle itself. A channel back from idleness
/// holds the input back again only once its watermark caught up with the input's, so its
/// records behind that watermark are late, as in Flink. A channel that ended counts as active
/// at the maximum watermark, which is what Flink's sources send before they end.
#[derive(Debug)]
pub struct InputGate {
    channels: Vec<ChannelTime>,
    open_count: usize,
    output: Watermark,
    idle: bool,
}

impl InputGate {
    /// A gate over `channels` channels, none of which has sent anything.
    pub fn new(channels: usize) -> Self {
        let fresh =
            ChannelTime { watermark: Watermark::MIN, idle: false, aligned: true, open: true };
        InputGate {
            channels: vec![fresh; channels],
            open_count: channels,
            output: Watermark::MIN,
            idle: false,
        }
    }

    /// Accounts for `message` from `channel`.
    pub fn on_message<T>(&mut self, channel: usize, message: StreamMessage<T>) -> Delivery<T> {
        let progress = match message {
            StreamMessage::Records(records) => return Delivery::Records(records),
            StreamMessage::Watermark(watermark) => self.on_watermark(channel, watermark),
            StreamMessage::Status(WatermarkStatus::Idle) => self.on_idle(channel),
            StreamMessage::Status(WatermarkStatus::Active) => self.on_active(channel),
            StreamMessage::Barrier(_) => GateProgress::default(), // alignment is the task's
            StreamMessage::EndOfInput => self.on_end(channel),
        };
        Delivery::Progress(progress)
    }

    /// Whether every channel has ended.
    pub fn is_finished(&self) -> bool {
        self.open_count == 0
    }

    /// Whether the gate has any channel at all (a one-input task's second gate has none).
    pub fn has_channels(&self) -> bool {
        !self.channels.is_empty()
    }

    fn on_watermark(&mut self, channel: usize, watermark: Watermark) -> GateProgress {
        let output = self.output;
        let time = &mut self.channels[channel];
        // An idle channel's watermarks are ignored, and a channel never goes back.
        if !time.open || time.idle || watermark <= time.watermark {
            return GateProgress::default();
        }
        time.watermark = watermark;
        time.aligned |= watermark >= output;
        GateProgress { watermark: self.advance_to_aligned_minimum(), status: None }
    }

    fn on_idle(&mut self, channel: usize) -> GateProgress {
        let time = &mut self.channels[channel];
        if !time.open || time.idle {
            return GateProgress::default();
        }
        time.idle = true;
        time.aligned = false;
        let held_back = time.watermark == self.output;
        if self.channels.iter().all(|c| c.idle) {
            // Nothing will advance any more: event time moves to the furthest any channel got.
            let watermark = if held_back { self.advance_to_maximum() } else { None };
            self.idle = true;
            GateProgress { watermark, status: Some(WatermarkStatus::Idle) }
        } else if held_back {
            GateProgress { watermark: self.advance_to_aligned_minimum(), status: None }
        } else {
            GateProgress::default()
        }
    }

    fn on_active(&mut self, channel: usize) -> GateProgress {
        let output = self.output;
        let time = &mut self.channels[channel];
        if !time.open || !time.idle {
            return GateProgress::default();
        }
        time.idle = false;
        time.aligned = time.watermark >= output;
        GateProgress { watermark: None, status: self.wake() }
    }

    fn on_end(&mut self, channel: usize) -> GateProgress {
        let time = &mut self.channels[channel];
        if !time.open {
            return GateProgress::default();
        }
        *time = ChannelTime { watermark: Watermark::MAX, idle: false, aligned: true, open: false };
        self.open_count -= 1;
        let status = self.wake();
        GateProgress { watermark: self.advance_to_aligned_minimum(), status }
    }

    /// Marks the input active again; `Active` when it was idle.
    fn wake(&mut self) -> Option<WatermarkStatus> {
        std::mem::replace(&mut self.idle, false).then_some(WatermarkStatus::Active)
    }

    fn advance_to_aligned_minimum(&mut self) -> Option<Watermark> {
        let minimum = self.channels.iter().filter(|c| c.aligned).map(|c| c.watermark).min()?;
        self.advance(minimum)
    }

    fn advance_to_maximum(&mut self) -> Option<Watermark> {
        let maximum = self.channels.iter().map(|c| c.watermark).max()?;
        self.advance(maximum)
    }

    fn advance(&mut self, watermark: Watermark) -> Option<Watermark> {
        (watermark > self.output).then(|| {
            self.output = watermark;
            watermark
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: StreamMessage<()> = StreamMessage::Status(WatermarkStatus::Idle);
    const ACTIVE: StreamMessage<()> = StreamMessage::Status(WatermarkStatus::Active);

    fn progress(gate: &mut InputGate, channel: usize, message: StreamMessage<()>) -> GateProgress {
        match gate.on_message(channel, message) {
            Delivery::Progress(progress) => progress,
            Delivery::Records(_) => panic!("no records were sent"),
        }
    }

    /// The watermark the gate passes on for `ts` from `channel`, if any.
    fn watermark(gate: &mut InputGate, channel: usize, ts: i64) -> Option<i64> {
        let progress = progress(gate, channel, StreamMessage::Watermark(Watermark(ts)));
        assert_eq!(progress.status, None, "a watermark changes no status");
        progress.watermark.map(|w| w.0)
    }

    fn status(progress: GateProgress) -> Option<WatermarkStatus> {
        progress.status
    }

    #[test]
    fn watermark_is_the_minimum_and_channels_never_go_back() {
        let mut gate = InputGate::new(2);
        assert_eq!(watermark(&mut gate, 0, 10), None, "channel 1 still at MIN");
        assert_eq!(watermark(&mut gate, 1, 5), Some(5));
        assert_eq!(watermark(&mut gate, 1, 20), Some(10));
        assert_eq!(watermark(&mut gate, 0, 8), None, "a channel cannot go back");
        assert_eq!(watermark(&mut gate, 0, 15), Some(15));
    }

    #[test]
    fn ended_channels_stop_holding_back() {
        let mut gate = InputGate::new(3);
        watermark(&mut gate, 0, 100);
        watermark(&mut gate, 1, 50);
        let ended = progress(&mut gate, 2, StreamMessage::EndOfInput);
        assert_eq!(ended, GateProgress { watermark: Some(Watermark(50)), status: None });
        let ended = progress(&mut gate, 1, StreamMessage::EndOfInput);
        assert_eq!(ended.watermark, Some(Watermark(100)));
        assert!(!gate.is_finished());
        let ended = progress(&mut gate, 0, StreamMessage::EndOfInput);
        assert!(gate.is_finished());
        assert_eq!(ended.watermark, Some(Watermark::MAX));
        assert_eq!(progress(&mut gate, 0, StreamMessage::EndOfInput), GateProgress::default());
    }

    #[test]
    fn idle_channels_stop_holding_back() {
        let mut gate = InputGate::new(3);
        watermark(&mut gate, 0, 100);
        watermark(&mut gate, 1, 40);
        let idle = progress(&mut gate, 2, IDLE);
        assert_eq!(idle, GateProgress { watermark: Some(Watermark(40)), status: None });
        let idle = progress(&mut gate, 1, IDLE);
        assert_eq!(idle, GateProgress { watermark: Some(Watermark(100)), status: None });
        assert_eq!(watermark(&mut gate, 1, 200), None, "an idle channel's watermarks are ignored");
    }

    #[test]
    fn all_idle_flushes_to_the_highest_watermark_then_goes_idle() {
        let mut gate = InputGate::new(2);
        watermark(&mut gate, 0, 100);
        watermark(&mut gate, 1, 40);
        assert_eq!(progress(&mut gate, 0, IDLE), GateProgress::default(), "40 still holds");
        let idle = progress(&mut gate, 1, IDLE);
        assert_eq!(
            idle,
            GateProgress { watermark: Some(Watermark(100)), status: Some(WatermarkStatus::Idle) }
        );
        assert_eq!(progress(&mut gate, 1, IDLE), GateProgress::default(), "already idle");
    }

    #[test]
    fn a_channel_back_from_idleness_holds_back_only_once_it_caught_up() {
        let mut gate = InputGate::new(2);
        watermark(&mut gate, 0, 100);
        watermark(&mut gate, 1, 40);
        progress(&mut gate, 1, IDLE);
        assert_eq!(watermark(&mut gate, 0, 120), Some(120));
        // Back at 40, behind the input's 120: its records behind 120 are late, and it does not
        // stop channel 0 from advancing the input.
        assert_eq!(status(progress(&mut gate, 1, ACTIVE)), None, "the input never went idle");
        assert_eq!(watermark(&mut gate, 1, 60), None);
        assert_eq!(watermark(&mut gate, 0, 150), Some(150));
        // Caught up at 160: it holds the input back again.
        assert_eq!(watermark(&mut gate, 1, 160), None, "channel 1 aligned at 160 > 150 ");
        assert_eq!(watermark(&mut gate, 0, 300), Some(160));
        assert_eq!(watermark(&mut gate, 1, 200), Some(200));
    }

    #[test]
    fn an_idle_input_comes_back_without_going_back() {
        let mut gate = InputGate::new(2);
        watermark(&mut gate, 0, 100);
        watermark(&mut gate, 1, 40);
        progress(&mut gate, 1, IDLE);
        progress(&mut gate, 0, IDLE);
        let active = progress(&mut gate, 1, ACTIVE);
        assert_eq!(active, GateProgress { watermark: None, status: Some(WatermarkStatus::Active) });
        assert_eq!(watermark(&mut gate, 1, 90), None, "behind the flushed 100");
        assert_eq!(watermark(&mut gate, 1, 110), Some(110));
    }

    #[test]
    fn an_ending_channel_wakes_an_idle_input_at_the_maximum() {
        let mut gate = InputGate::new(2);
        watermark(&mut gate, 0, 100);
        progress(&mut gate, 0, IDLE);
        progress(&mut gate, 1, IDLE);
        let ended = progress(&mut gate, 1, StreamMessage::EndOfInput);
        assert_eq!(
            ended,
            GateProgress { watermark: Some(Watermark::MAX), status: Some(WatermarkStatus::Active) }
        );
    }

    #[test]
    fn records_pass_through() {
        let mut gate = InputGate::new(1);
        let delivered = gate.on_message(0, StreamMessage::Records(vec![Record::new(7)]));
        assert_eq!(delivered, Delivery::Records(vec![Record::new(7)]));
    }
}
