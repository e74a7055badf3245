//! The collector user functions emit into, with side outputs selected by [`OutputTag`].

use std::any::Any;
use std::marker::PhantomData;

use weir_types::{Record, Timestamp, Watermark};

use crate::{Output, Result};

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

/// Collects what a function emits for one input batch. Emitted records carry the timestamp of
/// the input record being processed, as in Flink.
pub struct Collector<T> {
    pub(crate) records: Vec<Record<T>>,
    timestamp: Option<Timestamp>,
    side_outputs: Vec<SideOutput>,
}

impl<T> Default for Collector<T> {
    fn default() -> Self {
        Collector { records: Vec::new(), timestamp: None, side_outputs: Vec::new() }
    }
}

impl<T> Collector<T> {
    /// A collector with the given side outputs attached.
    pub fn new(side_outputs: Vec<SideOutput>) -> Self {
        Collector { records: Vec::new(), timestamp: None, side_outputs }
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

    /// Sends everything collected to `main` and the side outputs' consumers.
    pub(crate) fn emit(&mut self, main: &mut dyn Output<T>) -> Result<usize> {
        let emitted = self.records.len();
        if emitted > 0 {
            main.push_batch(&mut self.records)?;
        }
        for side in &mut self.side_outputs {
            side.port.emit()?;
        }
        Ok(emitted)
    }

    pub(crate) fn side_outputs(&mut self) -> impl Iterator<Item = &mut (dyn SidePort + 'static)> {
        self.side_outputs.iter_mut().map(|s| s.port.as_mut())
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
    fn open(&mut self) -> Result<()>;
    fn emit(&mut self) -> Result<()>;
    fn output_watermark(&mut self, watermark: Watermark) -> Result<()>;
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
    fn open(&mut self) -> Result<()> {
        self.output.open()
    }
    fn emit(&mut self) -> Result<()> {
        if self.buffer.is_empty() { Ok(()) } else { self.output.push_batch(&mut self.buffer) }
    }
    fn output_watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.output.push_watermark(watermark)
    }
    fn flush(&mut self) -> Result<()> {
        self.output.flush()
    }
    fn finish(&mut self) -> Result<()> {
        self.output.finish()
    }
}
