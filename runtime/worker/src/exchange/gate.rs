//! The consuming side's bookkeeping for the channels of one input: per-channel watermarks,
//! the input's watermark (the minimum over channels still open) and end of input.

use weir_types::{Record, StreamMessage, Watermark, WatermarkStatus};

/// Watermarks and end-of-input of the channels feeding one input of a task.
#[derive(Debug)]
pub struct InputGate {
    watermarks: Vec<Watermark>,
    open: Vec<bool>,
    idle: Vec<bool>,
    open_count: usize,
}

impl InputGate {
    /// A gate over `channels` channels, none of which has sent anything.
    pub fn new(channels: usize) -> Self {
        InputGate {
            watermarks: vec![Watermark::MIN; channels],
            open: vec![true; channels],
            idle: vec![false; channels],
            open_count: channels,
        }
    }

    /// Accounts for `message` from `channel`; hands back the records when it carries some.
    pub fn on_message<T>(
        &mut self,
        channel: usize,
        message: StreamMessage<T>,
    ) -> Option<Vec<Record<T>>> {
        match message {
            StreamMessage::Records(records) => return Some(records),
            StreamMessage::Watermark(watermark) => {
                let slot = &mut self.watermarks[channel];
                *slot = (*slot).max(watermark);
            }
            StreamMessage::Status(status) => {
                self.idle[channel] = status == WatermarkStatus::Idle;
            }
            StreamMessage::Barrier(_) => {} // alignment is the task's business
            StreamMessage::EndOfInput => {
                if std::mem::replace(&mut self.open[channel], false) {
                    self.open_count -= 1;
                }
            }
        }
        None
    }

    /// The input's watermark: the minimum over open, active channels; ended and idle
    /// channels do not hold it back, and an input whose channels all ended is at
    /// [`Watermark::MAX`].
    pub fn watermark(&self) -> Watermark {
        (0..self.watermarks.len())
            .filter(|&channel| self.open[channel] && !self.idle[channel])
            .map(|channel| self.watermarks[channel])
            .min()
            .unwrap_or(Watermark::MAX)
    }

    /// The highest watermark of the open channels: where event time stands once every
    /// channel is idle (Flink's valve then flushes to the maximum).
    pub fn max_watermark(&self) -> Watermark {
        (0..self.watermarks.len())
            .filter(|&channel| self.open[channel])
            .map(|channel| self.watermarks[channel])
            .max()
            .unwrap_or(Watermark::MAX)
    }

    /// Whether every open channel is idle (an input that ended is not idle).
    pub fn is_idle(&self) -> bool {
        self.open_count > 0
            && (0..self.open.len()).all(|channel| !self.open[channel] || self.idle[channel])
    }

    /// Whether every channel has ended.
    pub fn is_finished(&self) -> bool {
        self.open_count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watermark(gate: &mut InputGate, channel: usize, ts: i64) -> Watermark {
        assert!(gate.on_message::<()>(channel, StreamMessage::Watermark(Watermark(ts))).is_none());
        gate.watermark()
    }

    #[test]
    fn watermark_is_the_minimum_and_channels_never_go_back() {
        let mut gate = InputGate::new(2);
        assert_eq!(watermark(&mut gate, 0, 10), Watermark::MIN, "channel 1 still at MIN");
        assert_eq!(watermark(&mut gate, 1, 5), Watermark(5));
        assert_eq!(watermark(&mut gate, 1, 20), Watermark(10));
        assert_eq!(watermark(&mut gate, 0, 8), Watermark(10), "a channel cannot go back");
    }

    #[test]
    fn ended_channels_stop_holding_back() {
        let mut gate = InputGate::new(3);
        watermark(&mut gate, 0, 100);
        watermark(&mut gate, 1, 50);
        gate.on_message::<()>(2, StreamMessage::EndOfInput);
        assert_eq!(gate.watermark(), Watermark(50));
        gate.on_message::<()>(1, StreamMessage::EndOfInput);
        assert_eq!(gate.watermark(), Watermark(100));
        assert!(!gate.is_finished());
        gate.on_message::<()>(0, StreamMessage::EndOfInput);
        assert!(gate.is_finished());
        assert_eq!(gate.watermark(), Watermark::MAX);
    }

    #[test]
    fn idle_channels_do_not_hold_back_and_count_again_when_active() {
        let mut gate = InputGate::new(2);
        watermark(&mut gate, 0, 100);
        assert_eq!(gate.watermark(), Watermark::MIN, "channel 1 has sent nothing yet");
        gate.on_message::<()>(1, StreamMessage::Status(WatermarkStatus::Idle));
        assert_eq!(gate.watermark(), Watermark(100));
        assert!(!gate.is_idle());
        gate.on_message::<()>(0, StreamMessage::Status(WatermarkStatus::Idle));
        assert!(gate.is_idle());
        gate.on_message::<()>(1, StreamMessage::Status(WatermarkStatus::Active));
        assert_eq!(watermark(&mut gate, 1, 40), Watermark(40));
        assert!(!gate.is_idle());
    }

    #[test]
    fn records_pass_through() {
        let mut gate = InputGate::new(1);
        let batch = gate.on_message(0, StreamMessage::Records(vec![Record::new(7)]));
        assert_eq!(batch, Some(vec![Record::new(7)]));
    }
}
