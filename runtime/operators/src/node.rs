//! Operators and the nodes that run them inside a chain: metrics, failure attribution, and
//! handing collected output on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use weir_types::{Record, Watermark};

use crate::function::FnResult;
use crate::{Collector, Error, OperatorMetrics, Output, Result, SideOutput, SubtaskInfo};

/// An operator with one input. Only `process_batch` is required.
pub trait OneInputOperator: Send {
    /// Input record type.
    type In;
    /// Output record type.
    type Out;

    /// Called once, on the task's thread, before the first batch.
    fn open(&mut self, _info: &SubtaskInfo) -> FnResult {
        Ok(())
    }
    /// Processes every record of `batch` (draining it), emitting into `out`.
    fn process_batch(
        &mut self,
        batch: &mut Vec<Record<Self::In>>,
        out: &mut Collector<Self::Out>,
    ) -> FnResult;
    /// Event time advanced to `watermark`; the node forwards the watermark afterwards.
    fn process_watermark(
        &mut self,
        _watermark: Watermark,
        _out: &mut Collector<Self::Out>,
    ) -> FnResult {
        Ok(())
    }
    /// End of input: emit anything held back.
    fn finish(&mut self, _out: &mut Collector<Self::Out>) -> FnResult {
        Ok(())
    }
}

/// An operator with two inputs (connected streams). Always the head of its task.
pub trait TwoInputOperator: Send {
    /// First input's record type.
    type In1;
    /// Second input's record type.
    type In2;
    /// Output record type.
    type Out;

    /// Called once, on the task's thread, before the first batch.
    fn open(&mut self, _info: &SubtaskInfo) -> FnResult {
        Ok(())
    }
    /// Processes a batch of the first input.
    fn process_batch1(
        &mut self,
        batch: &mut Vec<Record<Self::In1>>,
        out: &mut Collector<Self::Out>,
    ) -> FnResult;
    /// Processes a batch of the second input.
    fn process_batch2(
        &mut self,
        batch: &mut Vec<Record<Self::In2>>,
        out: &mut Collector<Self::Out>,
    ) -> FnResult;
    /// Event time (the minimum of both inputs) advanced.
    fn process_watermark(
        &mut self,
        _watermark: Watermark,
        _out: &mut Collector<Self::Out>,
    ) -> FnResult {
        Ok(())
    }
    /// End of both inputs.
    fn finish(&mut self, _out: &mut Collector<Self::Out>) -> FnResult {
        Ok(())
    }
}

/// The part every node shares: who it is, what it counts, where its output goes.
struct NodeCore<Out> {
    info: SubtaskInfo,
    metrics: Arc<OperatorMetrics>,
    collector: Collector<Out>,
    output: Box<dyn Output<Out>>,
}

impl<Out: Send> NodeCore<Out> {
    fn new(
        info: SubtaskInfo,
        metrics: Arc<OperatorMetrics>,
        output: Box<dyn Output<Out>>,
        side_outputs: Vec<SideOutput>,
    ) -> Self {
        NodeCore { info, metrics, collector: Collector::new(side_outputs), output }
    }

    /// Runs user code, turning an error or a panic into an error naming this operator.
    fn guarded(&mut self, call: impl FnOnce(&mut Collector<Out>) -> FnResult) -> Result<()> {
        let collector = &mut self.collector;
        run_guarded(&self.info, || call(collector))
    }

    fn emit(&mut self) -> Result<()> {
        let emitted = self.collector.emit(self.output.as_mut())?;
        self.metrics.add_out(emitted);
        Ok(())
    }

    fn forward_watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.emit()?;
        for side in self.collector.side_outputs() {
            side.output_watermark(watermark)?;
        }
        self.output.push_watermark(watermark)
    }

    fn flush(&mut self) -> Result<()> {
        for side in self.collector.side_outputs() {
            side.flush()?;
        }
        self.output.flush()
    }

    fn finish_outputs(&mut self) -> Result<()> {
        self.emit()?;
        for side in self.collector.side_outputs() {
            side.finish()?;
        }
        self.output.finish()
    }
}

/// Runs user code for the subtask `info`: an error or a panic becomes an [`Error::Operator`]
/// naming the operator and subtask.
pub fn run_guarded<R>(info: &SubtaskInfo, call: impl FnOnce() -> FnResult<R>) -> Result<R> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Error::operator(info, error)),
        Err(panic) => Err(Error::operator(info, panic_message(panic.as_ref()).into())),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_string());
    format!("panicked: {text}")
}

/// A one-input operator placed in a chain: it is the [`Output`] of whatever comes before it.
pub struct ChainedOperator<Op: OneInputOperator> {
    operator: Op,
    core: NodeCore<Op::Out>,
}

impl<Op: OneInputOperator> ChainedOperator<Op>
where
    Op::Out: Send,
{
    /// Places `operator` in front of `output`, with `side_outputs` for records sent by tag.
    pub fn new(
        operator: Op,
        info: SubtaskInfo,
        metrics: Arc<OperatorMetrics>,
        output: Box<dyn Output<Op::Out>>,
        side_outputs: Vec<SideOutput>,
    ) -> Self {
        ChainedOperator { operator, core: NodeCore::new(info, metrics, output, side_outputs) }
    }
}

impl<Op> Output<Op::In> for ChainedOperator<Op>
where
    Op: OneInputOperator,
    Op::Out: Send,
{
    fn open(&mut self) -> Result<()> {
        self.core.output.open()?;
        let info = self.core.info.clone();
        let operator = &mut self.operator;
        self.core.guarded(|_| operator.open(&info))
    }

    fn push_batch(&mut self, batch: &mut Vec<Record<Op::In>>) -> Result<()> {
        self.core.metrics.add_in(batch.len());
        let operator = &mut self.operator;
        self.core.guarded(|out| operator.process_batch(batch, out))?;
        self.core.emit()
    }

    fn push_watermark(&mut self, watermark: Watermark) -> Result<()> {
        let operator = &mut self.operator;
        self.core.guarded(|out| operator.process_watermark(watermark, out))?;
        self.core.forward_watermark(watermark)
    }

    fn flush(&mut self) -> Result<()> {
        self.core.flush()
    }

    fn finish(&mut self) -> Result<()> {
        let operator = &mut self.operator;
        self.core.guarded(|out| operator.finish(out))?;
        self.core.finish_outputs()
    }
}

/// A two-input operator at the head of its task, fed by the task's two input gates.
pub struct TwoInputNode<Op: TwoInputOperator> {
    operator: Op,
    core: NodeCore<Op::Out>,
}

impl<Op: TwoInputOperator> TwoInputNode<Op>
where
    Op::Out: Send,
{
    /// Places `operator` in front of `output`.
    pub fn new(
        operator: Op,
        info: SubtaskInfo,
        metrics: Arc<OperatorMetrics>,
        output: Box<dyn Output<Op::Out>>,
        side_outputs: Vec<SideOutput>,
    ) -> Self {
        TwoInputNode { operator, core: NodeCore::new(info, metrics, output, side_outputs) }
    }

    /// Opens the outputs, then the operator.
    pub fn open(&mut self) -> Result<()> {
        self.core.output.open()?;
        let info = self.core.info.clone();
        let operator = &mut self.operator;
        self.core.guarded(|_| operator.open(&info))
    }

    /// A batch arrived on the first input.
    pub fn push_batch1(&mut self, batch: &mut Vec<Record<Op::In1>>) -> Result<()> {
        self.core.metrics.add_in(batch.len());
        let operator = &mut self.operator;
        self.core.guarded(|out| operator.process_batch1(batch, out))?;
        self.core.emit()
    }

    /// A batch arrived on the second input.
    pub fn push_batch2(&mut self, batch: &mut Vec<Record<Op::In2>>) -> Result<()> {
        self.core.metrics.add_in(batch.len());
        let operator = &mut self.operator;
        self.core.guarded(|out| operator.process_batch2(batch, out))?;
        self.core.emit()
    }

    /// The combined watermark of both inputs advanced.
    pub fn push_watermark(&mut self, watermark: Watermark) -> Result<()> {
        let operator = &mut self.operator;
        self.core.guarded(|out| operator.process_watermark(watermark, out))?;
        self.core.forward_watermark(watermark)
    }

    /// Sends buffered output now.
    pub fn flush(&mut self) -> Result<()> {
        self.core.flush()
    }

    /// Both inputs ended.
    pub fn finish(&mut self) -> Result<()> {
        let operator = &mut self.operator;
        self.core.guarded(|out| operator.finish(out))?;
        self.core.finish_outputs()
    }
}
