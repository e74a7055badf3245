//! The collector user functions emit into, with side outputs selected by [`OutputTag`].

use std::any::Any;
use std::marker::PhantomData;

use weir_types::{CheckpointId, Record, Timestamp, Watermark, WatermarkStatus};

use crate::{OperatorMetrics, Output, Result, TaskSnapshot};

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

/// How many records' room the main output's buffer keeps between batches.
const KEPT_RECORDS: usize = 1 << 16;

/// Collects what a function emits for one input batch. Emitted records carry the timestamp of
/// the input record being processed, as in Flink.
pub struct Collector<T> {
    pub(crate) records: Vec<Record<T>>,
    timestamp: Option<Timestamp>,
    side_outputs: Vec<SideOutput>,
    /// Watermarks and status changes, each after the records emitted before it.
    marks: Vec<(usize, Mark)>,
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
    /// A collector with the given side outputs attached.
    pub fn new(side_outputs: Vec<SideOutput>) -> Self {
        Collector { records: Vec::new(), timestamp: None, side_outputs, marks: Vec::new() }
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
    pub fn collect(&mut self, value: T) {
        self.records.push(Record { value, timestamp: self.timestamp });
    }

    /// Emits `value` with an explicit timestamp.
    pub fn collect_with_timestamp(&mut self, value: T, timestamp: Timestamp) {
        self.records.push(Record::with_timestamp(value, timestamp));
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

    /// Records emitted on the main output since the last drain.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing was emitted on the main output since the last drain.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Sends everything collected to `main` and the side outputs' consumers, with each
    /// watermark or status change after the main-output records emitted before it; shows the
    /// watermarks emitted in `metrics`.
    pub(crate) fn emit(
        &mut self,
        main: &mut dyn Output<T>,
        metrics: &OperatorMetrics,
    ) -> Result<usize> {
        let emitted = self.records.len();
        let mut sent = 0;
        for (position, mark) in std::mem::take(&mut self.marks) {
            if position > sent {
                if position - sent == self.records.len() {
                    // Every record left comes before the mark (firing at a watermark): sent
                    // as they are, not copied out first.
                    main.push_batch(&mut self.records)?;
                } else {
                    let mut before: Vec<Record<T>> =
                        self.records.drain(..position - sent).collect();
                    main.push_batch(&mut before)?;
                }
                sent = position;
            }
            for side in &mut self.side_outputs {
                side.port.emit()?;
                side.port.mark(mark)?;
            }
            match mark {
                Mark::Watermark(watermark) => {
                    metrics.watermark_reached(watermark);
                    main.push_watermark(watermark)?;
                }
                Mark::Status(status) => main.push_watermark_status(status)?,
            }
        }
        if !self.records.is_empty() {
            main.push_batch(&mut self.records)?;
        }
        // One large firing (every window at the end of input) does not keep its room.
        self.records.shrink_to(KEPT_RECORDS);
        for side in &mut self.side_outputs {
            side.port.emit()?;
        }
        Ok(emitted)
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
