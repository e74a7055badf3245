//! `WatermarkStrategy`: a timestamp assigner, a watermark generator and idleness together.

use std::sync::Arc;
use std::time::Duration;

use weir_types::Timestamp;

use super::{BoundedOutOfOrderness, WatermarkGenerator};

type GeneratorFactory<T> = Arc<dyn Fn() -> Box<dyn WatermarkGenerator<T>> + Send + Sync>;
type TimestampAssigner<T> = Arc<dyn Fn(&T, Option<Timestamp>) -> Timestamp + Send + Sync>;

/// How a stream gets event timestamps and watermarks.
///
/// ```
/// use std::time::Duration;
/// use weir_operators::watermark::WatermarkStrategy;
///
/// let strategy = WatermarkStrategy::<(String, i64)>::for_bounded_out_of_orderness(Duration::from_secs(5))
///     .with_timestamp_assigner(|(_, ts), _| *ts)
///     .with_idleness(Duration::from_secs(60));
/// ```
pub struct WatermarkStrategy<T> {
    pub(crate) generator: GeneratorFactory<T>,
    pub(crate) timestamp_assigner: Option<TimestampAssigner<T>>,
    pub(crate) idleness: Option<Duration>,
}

impl<T> Clone for WatermarkStrategy<T> {
    fn clone(&self) -> Self {
        WatermarkStrategy {
            generator: self.generator.clone(),
            timestamp_assigner: self.timestamp_assigner.clone(),
            idleness: self.idleness,
        }
    }
}

impl<T: 'static> WatermarkStrategy<T> {
    /// Watermarks `max_ts - delay - 1`, for events at most `delay` out of order.
    pub fn for_bounded_out_of_orderness(delay: Duration) -> Self {
        let delay = delay.as_millis() as Timestamp;
        Self::for_generator(move || BoundedOutOfOrderness::new(delay))
    }

    /// Watermarks for timestamps that never decrease: `max_ts - 1`.
    pub fn for_monotonous_timestamps() -> Self {
        Self::for_bounded_out_of_orderness(Duration::ZERO)
    }

    /// Watermarks from a custom generator, built once per subtask by `make`.
    pub fn for_generator<G, M>(make: M) -> Self
    where
        G: WatermarkGenerator<T> + 'static,
        M: Fn() -> G + Send + Sync + 'static,
    {
        WatermarkStrategy {
            generator: Arc::new(move || Box::new(make())),
            timestamp_assigner: None,
            idleness: None,
        }
    }

    /// No watermarks at all (event time never advances until the end of input).
    pub fn no_watermarks() -> Self {
        Self::for_generator(|| NoWatermarks)
    }

    /// Takes each event's timestamp from `assigner(event, timestamp from the source)`.
    pub fn with_timestamp_assigner(
        self,
        assigner: impl Fn(&T, Option<Timestamp>) -> Timestamp + Send + Sync + 'static,
    ) -> Self {
        WatermarkStrategy { timestamp_assigner: Some(Arc::new(assigner)), ..self }
    }

    /// Marks the stream idle after `timeout` without events, so that it stops holding back
    /// the watermark downstream; the next event makes it active again.
    pub fn with_idleness(self, timeout: Duration) -> Self {
        WatermarkStrategy { idleness: Some(timeout), ..self }
    }
}

struct NoWatermarks;

impl<T> WatermarkGenerator<T> for NoWatermarks {
    fn on_event(&mut self, _: &T, _: Timestamp, _: &mut super::WatermarkOutput) {}
    fn on_periodic_emit(&mut self, _: &mut super::WatermarkOutput) {}
}
