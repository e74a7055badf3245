//! The operator that assigns timestamps and generates watermarks (Flink's
//! `TimestampsAndWatermarksOperator`).

use std::time::Duration;

use weir_types::{Record, Timestamp, Watermark, WatermarkStatus};

use super::{WatermarkGenerator, WatermarkOutput, WatermarkStrategy};
use crate::function::FnResult;
use crate::{Collector, OneInputOperator, SubtaskInfo, processing_time_now};

/// Assigns each record its event timestamp and emits the generator's watermarks: after the
/// record that produced them, and every `interval` from the periodic emit. Upstream
/// watermarks are dropped, except the final [`Watermark::MAX`].
pub struct TimestampsAndWatermarks<T> {
    strategy: WatermarkStrategy<T>,
    interval: Option<Duration>,
    generator: Option<Box<dyn WatermarkGenerator<T>>>,
    emitted: Watermark,
    idle: bool,
    last_event: Timestamp,
    /// When the periodic emit runs next (`None`: never).
    next_periodic: Option<Timestamp>,
}

impl<T: 'static> TimestampsAndWatermarks<T> {
    /// Applies `strategy`, calling the periodic emit every `interval` (none: never).
    pub fn new(strategy: WatermarkStrategy<T>, interval: Option<Duration>) -> Self {
        TimestampsAndWatermarks {
            strategy,
            interval,
            generator: None,
            emitted: Watermark::MIN,
            idle: false,
            last_event: 0,
            next_periodic: None,
        }
    }

    /// Passes on what the generator emitted: idleness, or a watermark that advanced.
    fn publish(&mut self, output: WatermarkOutput, out: &mut Collector<T>) {
        if let Some(watermark) = output.watermark.filter(|w| *w > self.emitted) {
            self.set_idle(false, out);
            self.emitted = watermark;
            out.emit_watermark(watermark);
        } else if output.idle {
            self.set_idle(true, out);
        }
    }

    fn set_idle(&mut self, idle: bool, out: &mut Collector<T>) {
        if idle != self.idle {
            self.idle = idle;
            out.emit_watermark_status(if idle {
                WatermarkStatus::Idle
            } else {
                WatermarkStatus::Active
            });
        }
    }

    /// When the stream goes idle if no event arrives (`None`: no idleness or already idle).
    fn idle_deadline(&self) -> Option<Timestamp> {
        let timeout = self.strategy.idleness.filter(|_| !self.idle)?;
        Some(self.last_event + timeout.as_millis() as Timestamp)
    }
}

impl<T: Send + 'static> OneInputOperator for TimestampsAndWatermarks<T> {
    type In = T;
    type Out = T;

    fn open(&mut self, _info: &SubtaskInfo) -> FnResult {
        self.generator = Some((self.strategy.generator)());
        let now = processing_time_now();
        self.last_event = now;
        self.next_periodic = self.interval.map(|interval| now + interval.as_millis() as Timestamp);
        Ok(())
    }

    fn process_batch(&mut self, batch: &mut Vec<Record<T>>, out: &mut Collector<T>) -> FnResult {
        if batch.is_empty() {
            return Ok(());
        }
        self.last_event = processing_time_now();
        self.set_idle(false, out);
        for record in batch.drain(..) {
            let timestamp = match &self.strategy.timestamp_assigner {
                Some(assign) => assign(&record.value, record.timestamp),
                None => record.timestamp.unwrap_or(Timestamp::MIN),
            };
            let mut output = WatermarkOutput::default();
            let generator = self.generator.as_mut().expect("opened before processing");
            generator.on_event(&record.value, timestamp, &mut output);
            out.collect_with_timestamp(record.value, timestamp);
            if output != WatermarkOutput::default() {
                self.publish(output, out);
            }
        }
        Ok(())
    }

    fn process_watermark(&mut self, watermark: Watermark, out: &mut Collector<T>) -> FnResult {
        if watermark == Watermark::MAX && self.emitted != Watermark::MAX {
            self.emitted = Watermark::MAX;
            out.emit_watermark(Watermark::MAX);
        }
        Ok(())
    }

    fn process_watermark_status(&mut self, _: WatermarkStatus, _: &mut Collector<T>) -> FnResult {
        Ok(())
    }

    fn on_processing_time(&mut self, now: Timestamp, out: &mut Collector<T>) -> FnResult {
        if let (Some(due), Some(interval)) = (self.next_periodic, self.interval)
            && now >= due
        {
            let mut output = WatermarkOutput::default();
            let generator = self.generator.as_mut().expect("opened before processing");
            generator.on_periodic_emit(&mut output);
            self.publish(output, out);
            self.next_periodic = Some(now + (interval.as_millis() as Timestamp).max(1));
        }
        if self.idle_deadline().is_some_and(|deadline| now >= deadline) {
            self.set_idle(true, out);
        }
        Ok(())
    }

    fn next_processing_deadline(&self) -> Option<Timestamp> {
        self.next_periodic.into_iter().chain(self.idle_deadline()).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watermark::BoundedOutOfOrderness;

    fn info() -> SubtaskInfo {
        SubtaskInfo::new("wm", 0, 1, 128)
    }

    /// Emits `max_ts - 1` after every event.
    struct PerEvent(Timestamp);

    impl WatermarkGenerator<i64> for PerEvent {
        fn on_event(&mut self, _: &i64, timestamp: Timestamp, output: &mut WatermarkOutput) {
            self.0 = self.0.max(timestamp);
            output.emit_watermark(Watermark(self.0 - 1));
        }
        fn on_periodic_emit(&mut self, _: &mut WatermarkOutput) {}
    }

    #[test]
    fn per_event_watermarks_follow_their_record_and_never_go_back() {
        let strategy = WatermarkStrategy::for_generator(|| PerEvent(Timestamp::MIN))
            .with_timestamp_assigner(|v: &i64, _| *v);
        let mut op = TimestampsAndWatermarks::new(strategy, None);
        op.open(&info()).unwrap();
        let mut out = Collector::default();
        op.process_batch(&mut vec![Record::new(10), Record::new(30), Record::new(20)], &mut out)
            .unwrap();
        assert_eq!(out.watermarks(), vec![Watermark(9), Watermark(29)]);
        let records = out.take_records();
        assert_eq!(
            records.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
            [Some(10), Some(30), Some(20)]
        );
        let mut out = Collector::default();
        op.process_watermark(Watermark(1_000), &mut out).unwrap();
        assert!(out.watermarks().is_empty(), "upstream watermarks are not forwarded");
        op.process_watermark(Watermark::MAX, &mut out).unwrap();
        assert_eq!(out.watermarks(), vec![Watermark::MAX]);
    }

    #[test]
    fn periodic_emit_runs_on_processing_time() {
        let strategy = WatermarkStrategy::for_generator(|| BoundedOutOfOrderness::new(100));
        let mut op =
            TimestampsAndWatermarks::<i64>::new(strategy, Some(Duration::from_millis(200)));
        op.open(&info()).unwrap();
        let deadline = op.next_processing_deadline().unwrap();
        let mut out = Collector::default();
        op.process_batch(&mut vec![Record::with_timestamp(7, 5_000)], &mut out).unwrap();
        assert!(out.watermarks().is_empty());
        op.on_processing_time(deadline - 1, &mut out).unwrap();
        assert!(out.watermarks().is_empty(), "not due yet");
        op.on_processing_time(deadline, &mut out).unwrap();
        assert_eq!(out.watermarks(), vec![Watermark(4_899)]);
        assert!(op.next_processing_deadline().unwrap() >= deadline + 200);
    }

    #[test]
    fn idleness_marks_the_stream_idle_and_events_make_it_active() {
        let strategy = WatermarkStrategy::<i64>::for_monotonous_timestamps()
            .with_idleness(Duration::from_millis(50));
        let mut op = TimestampsAndWatermarks::new(strategy, None);
        op.open(&info()).unwrap();
        let mut out = Collector::default();
        let start = processing_time_now();
        op.on_processing_time(start + 60, &mut out).unwrap();
        assert!(out.marks_for_test().contains(&"Idle".to_string()));
        let mut out = Collector::default();
        op.process_batch(&mut vec![Record::with_timestamp(1, 10)], &mut out).unwrap();
        assert_eq!(out.marks_for_test(), vec!["Active".to_string()]);
    }
}
