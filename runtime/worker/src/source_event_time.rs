//! What a source task emitted of its source's own event time: idleness, and a watermark that
//! only advances.

use weir_operators::{OperatorMetrics, Output, Result, SourceWatermark};
use weir_types::{Watermark, WatermarkStatus};

/// The watermark and idleness a source task emitted for its source's own event time.
#[derive(Default)]
pub(crate) struct SourceEventTime {
    emitted: Option<Watermark>,
    idle: bool,
}

impl SourceEventTime {
    /// Emits into `head` what changed in `mark`: idleness, and a watermark that advanced.
    /// Shows the source's event time in its `metrics`.
    pub(crate) fn update<T>(
        &mut self,
        mark: SourceWatermark,
        head: &mut dyn Output<T>,
        metrics: &OperatorMetrics,
    ) -> Result<()> {
        let idle = mark == SourceWatermark::Idle;
        if idle != self.idle {
            self.idle = idle;
            let status = if idle { WatermarkStatus::Idle } else { WatermarkStatus::Active };
            metrics.status_changed(status);
            head.push_watermark_status(status)?;
        }
        if let SourceWatermark::Watermark(watermark) = mark
            && self.emitted.is_none_or(|emitted| watermark > emitted)
        {
            self.emitted = Some(watermark);
            metrics.watermark_reached(watermark);
            head.push_watermark(watermark)?;
        }
        Ok(())
    }

    /// The source ended: event time goes to the end, announced as active first, since
    /// downstream ignores an idle stream's watermarks (what Flink's FLINK-40499 fixes there).
    pub(crate) fn end_of_input<T>(
        &mut self,
        head: &mut dyn Output<T>,
        metrics: &OperatorMetrics,
    ) -> Result<()> {
        self.update(SourceWatermark::Watermark(Watermark::MAX), head, metrics)
    }
}

#[cfg(test)]
mod tests {
    use weir_types::Record;

    use super::*;

    /// An output that logs the watermarks and statuses reaching it.
    #[derive(Default)]
    struct Marks(Vec<String>);

    impl Output<u8> for Marks {
        fn push_batch(&mut self, batch: &mut Vec<Record<u8>>) -> Result<()> {
            batch.clear();
            Ok(())
        }
        fn push_watermark(&mut self, watermark: Watermark) -> Result<()> {
            self.0.push(format!("watermark {}", watermark.timestamp()));
            Ok(())
        }
        fn push_watermark_status(&mut self, status: WatermarkStatus) -> Result<()> {
            self.0.push(format!("{status:?}"));
            Ok(())
        }
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    fn play(marks: &[SourceWatermark]) -> (Vec<String>, OperatorMetrics) {
        let (mut time, mut out, metrics) =
            (SourceEventTime::default(), Marks::default(), OperatorMetrics::default());
        for &mark in marks {
            time.update(mark, &mut out, &metrics).unwrap();
        }
        time.end_of_input(&mut out, &metrics).unwrap();
        (out.0, metrics)
    }

    #[test]
    fn watermarks_only_advance_and_idleness_is_announced_once() {
        let (marks, _) = play(&[
            SourceWatermark::Watermark(Watermark(5)),
            SourceWatermark::Watermark(Watermark(3)),
            SourceWatermark::Idle,
            SourceWatermark::Idle,
            SourceWatermark::Watermark(Watermark(7)),
        ]);
        let end = format!("watermark {}", Watermark::MAX.timestamp());
        assert_eq!(marks, ["watermark 5", "Idle", "Active", "watermark 7", end.as_str()]);
    }

    #[test]
    fn a_source_that_ends_while_idle_announces_itself_active_before_the_last_watermark() {
        let (marks, metrics) =
            play(&[SourceWatermark::Watermark(Watermark(5)), SourceWatermark::Idle]);
        let end = format!("watermark {}", Watermark::MAX.timestamp());
        assert_eq!(marks, ["watermark 5", "Idle", "Active", end.as_str()]);
        assert!(!metrics.is_idle(), "the ended source shows as active");
        assert_eq!(metrics.watermark(), Some(Watermark::MAX));
    }
}
