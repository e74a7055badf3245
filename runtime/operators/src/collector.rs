//! The collector user functions emit into, with side outputs selected by [`OutputTag`].

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use weir_types::{CheckpointId, Record, Timestamp, Watermark, WatermarkStatus};

use crate::{Error, OperatorMetrics, Output, Result, TaskSnapshot};

/// Names a side output of type `T`. Two tags are the same side output when their names are.
#[derive(Debug)]
pub struct OutputTag<T> {
    name: String,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for OutputTag<T> {
    fn clone(&self) -> Self {
        OutputTag { name: self.name.clone(), _type: PhantomData }
    }
}

impl<T> OutputTag<T> {
    /// A side output called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        OutputTag { name: name.into(), _type: PhantomData }
    }

    /// The tag's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How many records the main output gathers before they are sent on, during a call if need
/// be: one batch of the default size. A call that emits millions of records (every window
/// firing at the end of input) sends them in batches, as it goes, instead of holding them all.
const SEND_AT: usize = 8192;

/// Collects what a function emits and sends it on in batches. Emitted records carry the
/// timestamp of the input record being processed, as in Flink.
pub struct Collector<T> {
    pub(crate) records: Vec<Record<T>>,
    timestamp: Option<Timestamp>,
    side_outputs: Vec<SideOutput>,
    /// Watermarks and status changes, each after the records emitted before it.
    marks: Vec<(usize, Mark)>,
    /// Where the main output's records go: an operator's next node. A collector without one
    /// (tests of operators) keeps its records until they are taken.
    downstream: Option<Downstream<T>>,
}

/// An operator's main output and its counts.
struct Downstream<T> {
    output: Box<dyn Output<T>>,
    metrics: Arc<OperatorMetrics>,
    /// The first error sending records during a call, returned when the call ends.
    failed: Option<Error>,
}

/// A control element an operator emits between records.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mark {
    Watermark(Watermark),
    Status(WatermarkStatus),
}

impl<T> Default for Collector<T> {
    fn default() -> Self {
        Collector::new(Vec::new())
    }
}

impl<T> Collector<T> {
    /// A collector with the given side outputs attached, keeping its main output's records
    /// until they are taken.
    pub fn new(side_outputs: Vec<SideOutput>) -> Self {
        Collector {
            records: Vec::new(),
            timestamp: None,
            side_outputs,
            marks: Vec::new(),
            downstream: None,
        }
    }

    /// A collector sending its main output's records to `output`, counted in `metrics`, with
    /// the given side outputs attached.
    pub(crate) fn sending_to(
        output: Box<dyn Output<T>>,
        metrics: Arc<OperatorMetrics>,
        side_outputs: Vec<SideOutput>,
    ) -> Self {
        let downstream = Some(Downstream { output, metrics, failed: None });
        Collector { downstream, ..Collector::new(side_outputs) }
    }

    /// The main output's next node.
    ///
    /// # Panics
    /// For a collector that keeps its records (made by [`Collector::new`]).
    pub(crate) fn next_node(&mut self) -> &mut dyn Output<T> {
        self.downstream.as_mut().expect("a node's collector sends its records").output.as_mut()
    }

    /// The main output's next node.
    ///
    /// # Panics
    /// For a collector that keeps its records (made by [`Collector::new`]).
    pub(crate) fn next_node_ref(&self) -> &dyn Output<T> {
        self.downstream.as_ref().expect("a node's collector sends its records").output.as_ref()
    }

    /// Emits a watermark after the records collected so far (main and side outputs).
    pub fn emit_watermark(&mut self, watermark: Watermark) {
        self.marks.push((self.records.len(), Mark::Watermark(watermark)));
    }

    /// Marks the output idle or active after the records collected so far.
    pub fn emit_watermark_status(&mut self, status: WatermarkStatus) {
        self.marks.push((self.records.len(), Mark::Status(status)));
    }

    /// The watermarks emitted since the last drain (for tests of operators).
    pub fn watermarks(&self) -> Vec<Watermark> {
        self.marks
            .iter()
            .filter_map(|(_, mark)| match mark {
                Mark::Watermark(watermark) => Some(*watermark),
                Mark::Status(_) => None,
            })
            .collect()
    }

    /// The watermarks and statuses emitted since the last drain, as text (for tests).
    #[doc(hidden)]
    pub fn marks_for_test(&self) -> Vec<String> {
        self.marks
            .iter()
            .map(|(_, mark)| match mark {
                Mark::Watermark(watermark) => format!("{}", watermark.timestamp()),
                Mark::Status(status) => format!("{status:?}"),
            })
            .collect()
    }

    /// The records emitted on the main output since the last drain (for tests of operators).
    pub fn take_records(&mut self) -> Vec<Record<T>> {
        std::mem::take(&mut self.records)
    }

    /// Emits `value` on the main output.
    #[inline]
    pub fn collect(&mut self, value: T) {
        self.records.push(Record { value, timestamp: self.timestamp });
        self.send_if_full();
    }

    /// Emits `value` with an explicit timestamp.
    #[inline]
    pub fn collect_with_timestamp(&mut self, value: T, timestamp: Timestamp) {
        self.records.push(Record::with_timestamp(value, timestamp));
        self.send_if_full();
    }

    #[inline]
    fn send_if_full(&mut self) {
        if self.records.len() >= SEND_AT && self.downstream.is_some() {
            self.send_during_call();
        }
    }

    /// Sends what was collected so far while the call goes on; an error is kept for the
    /// call's end (and nothing more is sent until then).
    #[cold]
    fn send_during_call(&mut self) {
        if self.downstream.as_ref().is_some_and(|downstream| downstream.failed.is_none())
            && let Err(error) = self.send()
            && let Some(downstream) = &mut self.downstream
        {
            downstream.failed = Some(error);
        }
    }

    /// Emits `value` on the side output `tag`. Dropped when no stream reads that side output.
    ///
    /// # Panics
    /// When the stream reading this side output expects another type than `S` (the panic
    /// fails the job, naming the operator).
    pub fn output<S: Send + 'static>(&mut self, tag: &OutputTag<S>, value: S) {
        let timestamp = self.timestamp;
        let Some(side) = self.side_outputs.iter_mut().find(|s| s.name == tag.name) else {
            return;
        };
        let expected = side.port.type_name();
        match side.port.buffer().downcast_mut::<Vec<Record<S>>>() {
            Some(buffer) => buffer.push(Record { value, timestamp }),
            None => panic!(
                "side output '{}' is emitted as {} but read as {expected}",
                tag.name,
                std::any::type_name::<S>()
            ),
        }
    }

    /// Sets the timestamp that following `collect` calls attach.
    pub fn set_timestamp(&mut self, timestamp: Option<Timestamp>) {
        self.timestamp = timestamp;
    }

    /// Records emitted on the main output and not sent or taken yet.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record emitted on the main output waits to be sent or taken.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// At the end of a call: sends everything collected since the last send, or returns the
    /// error of a send during the call.
    ///
    /// # Panics
    /// For a collector that keeps its records (made by [`Collector::new`]).
    pub(crate) fn emit(&mut self) -> Result<()> {
        let downstream = self.downstream.as_mut().expect("a node's collector sends its records");
        match downstream.failed.take() {
            Some(error) => Err(error),
            None => self.send(),
        }
    }

    /// Sends everything collected to the main output's next node and the side outputs'
    /// consumers, with each watermark or status change after the main-output records emitted
    /// before it; counts the records and shows the watermarks in the operator's metrics.
    fn send(&mut self) -> Result<()> {
        let Collector { records, side_outputs, marks, downstream, .. } = self;
        let Some(Downstream { output, metrics, .. }) = downstream else { return Ok(()) };
        metrics.add_out(records.len());
        let mut sent = 0;
        for (position, mark) in marks.drain(..) {
            if position > sent {
                if position - sent == records.len() {
                    // Every record left comes before the mark (firing at a watermark): sent
                    // as they are, not copied out first.
                    output.push_batch(records)?;
                } else {
                    let mut before: Vec<Record<T>> = records.drain(..position - sent).collect();
                    output.push_batch(&mut before)?;
                }
                sent = position;
            }
            for side in side_outputs.iter_mut() {
                side.port.emit()?;
                side.port.mark(mark)?;
            }
            match mark {
                Mark::Watermark(watermark) => {
                    metrics.watermark_reached(watermark);
                    output.push_watermark(watermark)?;
                }
                Mark::Status(status) => output.push_watermark_status(status)?,
            }
        }
        if !records.is_empty() {
            output.push_batch(records)?;
        }
        for side in side_outputs.iter_mut() {
            side.port.emit()?;
        }
        Ok(())
    }

    pub(crate) fn side_outputs(&mut self) -> impl Iterator<Item = &mut (dyn SidePort + 'static)> {
        self.side_outputs.iter_mut().map(|s| s.port.as_mut())
    }

    pub(crate) fn side_output_deadline(&self) -> Option<Timestamp> {
        self.side_outputs.iter().filter_map(|s| s.port.next_processing_deadline()).min()
    }
}

/// A side output that someone reads: its name and where its records go.
pub struct SideOutput {
    name: String,
    port: Box<dyn SidePort>,
}

impl SideOutput {
    /// Routes records emitted on `tag` to `output`.
    pub fn new<S: Send + 'static>(tag: &OutputTag<S>, output: Box<dyn Output<S>>) -> Self {
        SideOutput {
            name: tag.name.clone(),
            port: Box::new(TypedSidePort { buffer: Vec::new(), output }),
        }
    }
}

/// A side output's buffer and consumer, with its type erased.
pub(crate) trait SidePort: Send {
    fn type_name(&self) -> &'static str;
    fn buffer(&mut self) -> &mut dyn Any;
    fn emit(&mut self) -> Result<()>;
    fn mark(&mut self, mark: Mark) -> Result<()>;
    fn open(&mut self) -> Result<()>;
    fn on_processing_time(&mut self, now: Timestamp) -> Result<()>;
    fn next_processing_deadline(&self) -> Option<Timestamp>;
    fn checkpoint(&mut self, task: &mut TaskSnapshot) -> Result<()>;
    fn notify_checkpoint(&mut self, checkpoint: CheckpointId, complete: bool) -> Result<()>;
    fn flush(&mut self) -> Result<()>;
    fn finish(&mut self) -> Result<()>;
}

struct TypedSidePort<S> {
    buffer: Vec<Record<S>>,
    output: Box<dyn Output<S>>,
}

impl<S: Send + 'static> SidePort for TypedSidePort<S> {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<S>()
    }
    fn buffer(&mut self) -> &mut dyn Any {
        &mut self.buffer
    }
    fn emit(&mut self) -> Result<()> {
        if self.buffer.is_empty() { Ok(()) } else { self.output.push_batch(&mut self.buffer) }
    }
    fn mark(&mut self, mark: Mark) -> Result<()> {
        match mark {
            Mark::Watermark(watermark) => self.output.push_watermark(watermark),
            Mark::Status(status) => self.output.push_watermark_status(status),
        }
    }
    fn open(&mut self) -> Result<()> {
        self.output.open()
    }
    fn on_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.output.on_processing_time(now)
    }
    fn next_processing_deadline(&self) -> Option<Timestamp> {
        self.output.next_processing_deadline()
    }
    fn checkpoint(&mut self, task: &mut TaskSnapshot) -> Result<()> {
        self.output.checkpoint(task)
    }
    fn notify_checkpoint(&mut self, checkpoint: CheckpointId, complete: bool) -> Result<()> {
        self.output.notify_checkpoint(checkpoint, complete)
    }
    fn flush(&mut self) -> Result<()> {
        self.output.flush()
    }
    fn finish(&mut self) -> Result<()> {
        self.output.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// What reaches an output: batches by length, watermarks by time, status changes.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Batch(usize),
        Watermark(i64),
        Status(WatermarkStatus),
    }

    /// An output logging what reaches it, and failing every batch once told to.
    #[derive(Clone, Default)]
    struct Log {
        seen: Arc<Mutex<Vec<Seen>>>,
        values: Arc<Mutex<Vec<u64>>>,
        failing: bool,
    }

    impl Output<u64> for Log {
        fn push_batch(&mut self, batch: &mut Vec<Record<u64>>) -> Result<()> {
            if self.failing {
                return Err(Error::Runtime("the channel closed".into()));
            }
            self.seen.lock().unwrap().push(Seen::Batch(batch.len()));
            self.values.lock().unwrap().extend(batch.drain(..).map(|record| record.value));
            Ok(())
        }
        fn push_watermark(&mut self, watermark: Watermark) -> Result<()> {
            self.seen.lock().unwrap().push(Seen::Watermark(watermark.timestamp()));
            Ok(())
        }
        fn push_watermark_status(&mut self, status: WatermarkStatus) -> Result<()> {
            self.seen.lock().unwrap().push(Seen::Status(status));
            Ok(())
        }
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_call_emitting_more_than_a_batch_sends_it_on_in_batches_and_in_order() {
        let (log, metrics) = (Log::default(), Arc::new(OperatorMetrics::default()));
        let mut out = Collector::sending_to(Box::new(log.clone()), metrics.clone(), Vec::new());
        let emitted = 2 * SEND_AT as u64 + 100;
        for value in 0..emitted {
            out.collect(value);
            if value == 10 {
                out.emit_watermark(Watermark(7));
            }
            if value == SEND_AT as u64 + 5 {
                out.emit_watermark_status(WatermarkStatus::Idle);
            }
            assert!(out.len() < SEND_AT, "the buffer never holds more than a batch");
        }
        out.emit().unwrap();
        let seen = std::mem::take(&mut *log.seen.lock().unwrap());
        assert_eq!(
            seen,
            [
                Seen::Batch(11),
                Seen::Watermark(7),
                Seen::Batch(SEND_AT - 11),
                Seen::Batch(6),
                Seen::Status(WatermarkStatus::Idle),
                Seen::Batch(SEND_AT - 6),
                Seen::Batch(100)
            ]
        );
        assert!(log.values.lock().unwrap().iter().copied().eq(0..emitted));
        assert_eq!(metrics.records_out(), emitted);
        assert_eq!(metrics.watermark().map(|w| w.timestamp()), Some(7));
        out.emit().unwrap();
        assert!(log.seen.lock().unwrap().is_empty(), "nothing is sent twice");
    }

    #[test]
    fn a_send_failing_during_a_call_fails_the_call_at_its_end() {
        let log = Log { failing: true, ..Log::default() };
        let metrics = Arc::new(OperatorMetrics::default());
        let mut out = Collector::sending_to(Box::new(log), metrics, Vec::new());
        for value in 0..3 * SEND_AT as u64 {
            out.collect(value);
        }
        let error = out.emit().expect_err("the failed send is reported");
        assert_eq!(error.to_string(), "the channel closed");
    }

    #[test]
    fn a_collector_without_a_next_node_keeps_what_it_collects() {
        let mut out = Collector::default();
        for value in 0..2 * SEND_AT as u64 {
            out.collect(value);
        }
        assert_eq!(out.take_records().len(), 2 * SEND_AT);
    }
}
