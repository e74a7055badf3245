//! A task's event time over its one or two inputs, as Flink's two-input operators combine
//! theirs: the minimum watermark over the inputs that are not idle, idle when all are.

use weir_types::{Watermark, WatermarkStatus};

use super::gate::GateProgress;

/// A change of event time a task passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeEvent {
    /// The watermark advanced.
    Watermark(Watermark),
    /// The status changed.
    Status(WatermarkStatus),
}

/// One input's watermark and idleness, as its gate passed them on.
#[derive(Debug, Clone, Copy)]
struct InputTime {
    watermark: Watermark,
    idle: bool,
}

/// The watermark and status a task passed on, advanced from its inputs' gates.
///
/// An idle input does not hold the task back; when every input is idle the task goes idle
/// without moving event time (each gate already flushed its own channels).
#[derive(Debug)]
pub struct TaskEventTime {
    inputs: [Option<InputTime>; 2],
    emitted: Watermark,
    idle: bool,
}

impl TaskEventTime {
    /// Event time over the inputs that exist (`present`: whether each has channels).
    pub fn new(present: [bool; 2]) -> Self {
        let fresh = InputTime { watermark: Watermark::MIN, idle: false };
        TaskEventTime {
            inputs: present.map(|p| p.then_some(fresh)),
            emitted: Watermark::MIN,
            idle: false,
        }
    }

    /// Accounts for what `progress` changed on input `input` (0 or 1) and passes on to
    /// `output` what that changes for the task.
    pub fn on_progress<E>(
        &mut self,
        input: usize,
        progress: GateProgress,
        output: &mut impl FnMut(TimeEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(time) = self.inputs[input].as_mut() else {
            return Ok(()); // a gate without channels reports nothing
        };
        if progress.status == Some(WatermarkStatus::Active) {
            time.idle = false;
            if std::mem::replace(&mut self.idle, false) {
                output(TimeEvent::Status(WatermarkStatus::Active))?;
            }
        }
        if let Some(watermark) = progress.watermark {
            time.watermark = watermark;
        }
        let time = *time;
        self.advance(output)?;
        if progress.status == Some(WatermarkStatus::Idle) {
            self.inputs[input] = Some(InputTime { idle: true, ..time });
            self.advance(output)?;
            if self.inputs.iter().flatten().all(|i| i.idle) && !self.idle {
                self.idle = true;
                output(TimeEvent::Status(WatermarkStatus::Idle))?;
            }
        }
        Ok(())
    }

    /// Passes on the minimum watermark over active inputs if it advanced.
    fn advance<E>(&mut self, output: &mut impl FnMut(TimeEvent) -> Result<(), E>) -> Result<(), E> {
        let active = self.inputs.iter().flatten().filter(|i| !i.idle);
        match active.map(|i| i.watermark).min() {
            Some(minimum) if minimum > self.emitted => {
                self.emitted = minimum;
                output(TimeEvent::Watermark(minimum))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the task passed on, in order.
    #[derive(Debug, PartialEq)]
    enum Out {
        Mark(i64),
        Idle,
        Active,
    }

    fn mark(ts: i64) -> GateProgress {
        GateProgress { watermark: Some(Watermark(ts)), status: None }
    }

    fn idle_at(ts: Option<i64>) -> GateProgress {
        GateProgress { watermark: ts.map(Watermark), status: Some(WatermarkStatus::Idle) }
    }

    const ACTIVE: GateProgress =
        GateProgress { watermark: None, status: Some(WatermarkStatus::Active) };

    fn feed(time: &mut TaskEventTime, steps: &[(usize, GateProgress)]) -> Vec<Out> {
        let mut out = Vec::new();
        let mut record = |event| {
            out.push(match event {
                TimeEvent::Watermark(watermark) => Out::Mark(watermark.0),
                TimeEvent::Status(WatermarkStatus::Idle) => Out::Idle,
                TimeEvent::Status(WatermarkStatus::Active) => Out::Active,
            });
            Ok::<(), ()>(())
        };
        for &(input, progress) in steps {
            time.on_progress(input, progress, &mut record).unwrap();
        }
        out
    }

    #[test]
    fn one_input_passes_its_gate_through() {
        let mut time = TaskEventTime::new([true, false]);
        let out =
            feed(&mut time, &[(0, mark(5)), (0, idle_at(Some(9))), (0, ACTIVE), (0, mark(12))]);
        assert_eq!(out, [Out::Mark(5), Out::Mark(9), Out::Idle, Out::Active, Out::Mark(12)]);
    }

    #[test]
    fn two_inputs_take_the_minimum_of_the_active_ones() {
        let mut time = TaskEventTime::new([true, true]);
        let out =
            feed(&mut time, &[(0, mark(10)), (1, mark(5)), (1, mark(20)), (1, idle_at(None))]);
        assert_eq!(out, [Out::Mark(5), Out::Mark(10)], "input 1 idle leaves input 0's 10");
        assert_eq!(feed(&mut time, &[(0, mark(15))]), [Out::Mark(15)]);
    }

    #[test]
    fn all_inputs_idle_go_idle_without_moving_event_time() {
        let mut time = TaskEventTime::new([true, true]);
        feed(&mut time, &[(0, mark(100)), (1, mark(50))]);
        // Both idle: the task idles and stays at 50 (Flink's combined watermark does not flush
        // across inputs), so input 1's records at 60 after it wakes up are not late.
        let out = feed(&mut time, &[(0, idle_at(None)), (1, idle_at(None))]);
        assert_eq!(out, [Out::Idle]);
        let out = feed(&mut time, &[(1, ACTIVE), (1, mark(60))]);
        assert_eq!(out, [Out::Active, Out::Mark(60)]);
        assert_eq!(feed(&mut time, &[(0, ACTIVE), (1, mark(110))]), [Out::Mark(100)]);
    }

    #[test]
    fn a_missing_input_is_ignored() {
        let mut time = TaskEventTime::new([true, false]);
        assert_eq!(feed(&mut time, &[(1, mark(7)), (0, mark(3))]), [Out::Mark(3)]);
    }
}
