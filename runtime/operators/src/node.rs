//! Operators and the nodes that run them inside a chain: metrics, failure attribution, and
//! handing collected output on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use weir_types::{CheckpointBarrier, CheckpointId, Record, Timestamp, Watermark, WatermarkStatus};

use crate::function::FnResult;
use crate::{
    Collector, Error, OperatorMetrics, OperatorSnapshot, Output, Result, SideOutput, StateRestore,
    SubtaskInfo, TaskSnapshot,
};

/// An operator with one input. Only `process_batch` is required.
pub trait OneInputOperator: Send {
    /// Input record type.
    type In;
    /// Output record type.
    type Out;

    /// Called once, on the task's thread, before `open`: builds the operator's state from
    /// `restore` (empty on a fresh start). Stateful operators create their state here.
    fn initialize_state(&mut self, _info: &SubtaskInfo, _restore: StateRestore) -> FnResult {
        Ok(())
    }
    /// A checkpoint barrier reached the operator: return its state as of now, in the form
    /// the barrier's kind needs (savepoints: canonical only).
    fn snapshot_state(&mut self, _barrier: CheckpointBarrier) -> FnResult<OperatorSnapshot> {
        Ok(OperatorSnapshot::default())
    }
    /// Checkpoint `checkpoint` completed everywhere: side effects held back for it (a
    /// transaction) may now become visible.
    fn notify_checkpoint_complete(&mut self, _checkpoint: CheckpointId) -> FnResult {
        Ok(())
    }
    /// Checkpoint `checkpoint` failed; a later one will cover what it would have.
    fn notify_checkpoint_aborted(&mut self, _checkpoint: CheckpointId) -> FnResult {
        Ok(())
    }
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
    /// Event time advanced to `watermark`: fire what is due, then pass the watermark on with
    /// `out.emit_watermark` (the default does only that).
    fn process_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<Self::Out>,
    ) -> FnResult {
        out.emit_watermark(watermark);
        Ok(())
    }
    /// End of input: emit anything held back.
    fn finish(&mut self, _out: &mut Collector<Self::Out>) -> FnResult {
        Ok(())
    }
    /// The stream became idle or active; passed on by default.
    fn process_watermark_status(
        &mut self,
        status: WatermarkStatus,
        out: &mut Collector<Self::Out>,
    ) -> FnResult {
        out.emit_watermark_status(status);
        Ok(())
    }
    /// Processing time reached `now`, at or after [`Self::next_processing_deadline`].
    fn on_processing_time(&mut self, _now: Timestamp, _out: &mut Collector<Self::Out>) -> FnResult {
        Ok(())
    }
    /// When the operator next wants [`Self::on_processing_time`] (timers, periodic work).
    fn next_processing_deadline(&self) -> Option<Timestamp> {
        None
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

    /// Called once, on the task's thread, before `open`: builds the operator's state from
    /// `restore` (empty on a fresh start). Stateful operators create their state here.
    fn initialize_state(&mut self, _info: &SubtaskInfo, _restore: StateRestore) -> FnResult {
        Ok(())
    }
    /// A checkpoint barrier reached the operator: return its state as of now, in the form
    /// the barrier's kind needs (savepoints: canonical only).
    fn snapshot_state(&mut self, _barrier: CheckpointBarrier) -> FnResult<OperatorSnapshot> {
        Ok(OperatorSnapshot::default())
    }
    /// Checkpoint `checkpoint` completed everywhere: side effects held back for it (a
    /// transaction) may now become visible.
    fn notify_checkpoint_complete(&mut self, _checkpoint: CheckpointId) -> FnResult {
        Ok(())
    }
    /// Checkpoint `checkpoint` failed; a later one will cover what it would have.
    fn notify_checkpoint_aborted(&mut self, _checkpoint: CheckpointId) -> FnResult {
        Ok(())
    }
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
    /// Event time (the minimum of both inputs) advanced; passed on by default.
    fn process_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<Self::Out>,
    ) -> FnResult {
        out.emit_watermark(watermark);
        Ok(())
    }
    /// End of both inputs.
    fn finish(&mut self, _out: &mut Collector<Self::Out>) -> FnResult {
        Ok(())
    }
    /// The stream became idle or active; passed on by default.
    fn process_watermark_status(
        &mut self,
        status: WatermarkStatus,
        out: &mut Collector<Self::Out>,
    ) -> FnResult {
        out.emit_watermark_status(status);
        Ok(())
    }
    /// Processing time reached `now`, at or after [`Self::next_processing_deadline`].
    fn on_processing_time(&mut self, _now: Timestamp, _out: &mut Collector<Self::Out>) -> FnResult {
        Ok(())
    }
    /// When the operator next wants [`Self::on_processing_time`] (timers, periodic work).
    fn next_processing_deadline(&self) -> Option<Timestamp> {
        None
    }
}

/// The part every node shares: who it is, what it counts, where its output goes, and the
/// order of the lifecycle (outputs open before the operator; the operator's last output
/// leaves before a watermark or end of input is passed on).
struct NodeCore<Out> {
    info: SubtaskInfo,
    metrics: Arc<OperatorMetrics>,
    /// What the operator emits, and where it goes.
    collector: Collector<Out>,
    /// The state to start from, taken by `open`.
    restore: Option<StateRestore>,
}

impl<Out: Send> NodeCore<Out> {
    fn new(
        info: SubtaskInfo,
        metrics: Arc<OperatorMetrics>,
        output: Box<dyn Output<Out>>,
        side_outputs: Vec<SideOutput>,
    ) -> Self {
        let collector = Collector::sending_to(output, Arc::clone(&metrics), side_outputs);
        NodeCore { info, metrics, collector, restore: None }
    }

    /// Runs user code, turning an error or a panic into an error naming this operator.
    fn guarded(&mut self, call: impl FnOnce(&mut Collector<Out>) -> FnResult) -> Result<()> {
        let collector = &mut self.collector;
        run_guarded(&self.info, || call(collector))
    }

    /// Opens every output (main and side), then the operator with `open`, given the state
    /// to start from (empty unless restoring).
    fn open(&mut self, open: impl FnOnce(&SubtaskInfo, StateRestore) -> FnResult) -> Result<()> {
        self.collector.next_node().open()?;
        for side in self.collector.side_outputs() {
            side.open()?;
        }
        let restore = self.restore.take().unwrap_or_default();
        run_guarded(&self.info, || open(&self.info, restore))
    }

    /// Adds the operator's state (from `snapshot`) to `task`, then lets the barrier pass on to
    /// every output.
    fn checkpoint(
        &mut self,
        task: &mut TaskSnapshot,
        snapshot: impl FnOnce(CheckpointBarrier) -> FnResult<OperatorSnapshot>,
    ) -> Result<()> {
        let state = run_guarded(&self.info, || snapshot(task.barrier))?;
        task.add(&self.info, state);
        for side in self.collector.side_outputs() {
            side.checkpoint(task)?;
        }
        self.collector.next_node().checkpoint(task)
    }

    /// Tells the operator (with `notify`), then everything downstream in the task, that a
    /// checkpoint completed or was aborted.
    fn notify_checkpoint(
        &mut self,
        checkpoint: CheckpointId,
        complete: bool,
        notify: impl FnOnce() -> FnResult,
    ) -> Result<()> {
        run_guarded(&self.info, notify)?;
        for side in self.collector.side_outputs() {
            side.notify_checkpoint(checkpoint, complete)?;
        }
        self.collector.next_node().notify_checkpoint(checkpoint, complete)
    }

    /// Processes a batch of `records` records with `process`, then sends what it emitted.
    fn batch(
        &mut self,
        records: usize,
        process: impl FnOnce(&mut Collector<Out>) -> FnResult,
    ) -> Result<()> {
        self.metrics.add_in(records);
        self.guarded(process)?;
        self.collector.emit()
    }

    /// Lets the operator react to a watermark or status change with `process` (which passes
    /// it on when the operator wants to).
    fn control(&mut self, process: impl FnOnce(&mut Collector<Out>) -> FnResult) -> Result<()> {
        self.collector.set_timestamp(None);
        self.guarded(process)?;
        self.collector.emit()
    }

    /// Runs the operator's due processing-time work with `process`, then that of everything
    /// downstream.
    fn processing_time(
        &mut self,
        now: Timestamp,
        process: impl FnOnce(&mut Collector<Out>) -> FnResult,
    ) -> Result<()> {
        self.control(process)?;
        for side in self.collector.side_outputs() {
            side.on_processing_time(now)?;
        }
        self.collector.next_node().on_processing_time(now)
    }

    /// The earliest of the operator's `own` deadline and those downstream.
    fn deadline(&self, own: Option<Timestamp>) -> Option<Timestamp> {
        let next = self.collector.next_node_ref().next_processing_deadline();
        [own, next, self.collector.side_output_deadline()].into_iter().flatten().min()
    }

    fn flush(&mut self) -> Result<()> {
        for side in self.collector.side_outputs() {
            side.flush()?;
        }
        self.collector.next_node().flush()
    }

    /// Lets the operator emit what it holds back with `finish`, then ends every output.
    fn finish(&mut self, finish: impl FnOnce(&mut Collector<Out>) -> FnResult) -> Result<()> {
        self.collector.set_timestamp(None);
        self.guarded(finish)?;
        self.collector.emit()?;
        for side in self.collector.side_outputs() {
            side.finish()?;
        }
        self.collector.next_node().finish()
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

/// A readable message from a panic's payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
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

    /// Starts the operator from `restore` instead of empty state.
    pub fn restoring(mut self, restore: StateRestore) -> Self {
        self.core.restore = Some(restore);
        self
    }
}

impl<Op> Output<Op::In> for ChainedOperator<Op>
where
    Op: OneInputOperator,
    Op::Out: Send,
{
    fn open(&mut self) -> Result<()> {
        let ChainedOperator { operator, core } = self;
        core.open(|info, restore| {
            operator.initialize_state(info, restore)?;
            operator.open(info)
        })
    }

    fn checkpoint(&mut self, task: &mut TaskSnapshot) -> Result<()> {
        let operator = &mut self.operator;
        self.core.checkpoint(task, |barrier| operator.snapshot_state(barrier))
    }

    fn notify_checkpoint(&mut self, checkpoint: CheckpointId, complete: bool) -> Result<()> {
        let operator = &mut self.operator;
        self.core.notify_checkpoint(checkpoint, complete, || {
            if complete {
                operator.notify_checkpoint_complete(checkpoint)
            } else {
                operator.notify_checkpoint_aborted(checkpoint)
            }
        })
    }

    fn push_batch(&mut self, batch: &mut Vec<Record<Op::In>>) -> Result<()> {
        let operator = &mut self.operator;
        self.core.batch(batch.len(), |out| operator.process_batch(batch, out))
    }

    fn push_watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.core.metrics.watermark_reached(watermark);
        let operator = &mut self.operator;
        self.core.control(|out| operator.process_watermark(watermark, out))
    }

    fn push_watermark_status(&mut self, status: WatermarkStatus) -> Result<()> {
        self.core.metrics.status_changed(status);
        let operator = &mut self.operator;
        self.core.control(|out| operator.process_watermark_status(status, out))
    }

    fn on_processing_time(&mut self, now: Timestamp) -> Result<()> {
        let operator = &mut self.operator;
        self.core.processing_time(now, |out| operator.on_processing_time(now, out))
    }

    fn next_processing_deadline(&self) -> Option<Timestamp> {
        self.core.deadline(self.operator.next_processing_deadline())
    }

    fn flush(&mut self) -> Result<()> {
        self.core.flush()
    }

    fn finish(&mut self) -> Result<()> {
        let operator = &mut self.operator;
        self.core.finish(|out| operator.finish(out))
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

    /// Starts the operator from `restore` instead of empty state.
    pub fn restoring(mut self, restore: StateRestore) -> Self {
        self.core.restore = Some(restore);
        self
    }

    /// Opens the outputs, then the operator.
    pub fn open(&mut self) -> Result<()> {
        let TwoInputNode { operator, core } = self;
        core.open(|info, restore| {
            operator.initialize_state(info, restore)?;
            operator.open(info)
        })
    }

    /// A checkpoint barrier arrived on all inputs: snapshot, then pass the barrier on.
    pub fn checkpoint(&mut self, task: &mut TaskSnapshot) -> Result<()> {
        let operator = &mut self.operator;
        self.core.checkpoint(task, |barrier| operator.snapshot_state(barrier))
    }

    /// A checkpoint completed or was aborted.
    pub fn notify_checkpoint(&mut self, checkpoint: CheckpointId, complete: bool) -> Result<()> {
        let operator = &mut self.operator;
        self.core.notify_checkpoint(checkpoint, complete, || {
            if complete {
                operator.notify_checkpoint_complete(checkpoint)
            } else {
                operator.notify_checkpoint_aborted(checkpoint)
            }
        })
    }

    /// A batch arrived on the first input.
    pub fn push_batch1(&mut self, batch: &mut Vec<Record<Op::In1>>) -> Result<()> {
        let operator = &mut self.operator;
        self.core.batch(batch.len(), |out| operator.process_batch1(batch, out))
    }

    /// A batch arrived on the second input.
    pub fn push_batch2(&mut self, batch: &mut Vec<Record<Op::In2>>) -> Result<()> {
        let operator = &mut self.operator;
        self.core.batch(batch.len(), |out| operator.process_batch2(batch, out))
    }

    /// The combined watermark of both inputs advanced.
    pub fn push_watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.core.metrics.watermark_reached(watermark);
        let operator = &mut self.operator;
        self.core.control(|out| operator.process_watermark(watermark, out))
    }

    /// Both inputs became idle, or one became active again.
    pub fn push_watermark_status(&mut self, status: WatermarkStatus) -> Result<()> {
        self.core.metrics.status_changed(status);
        let operator = &mut self.operator;
        self.core.control(|out| operator.process_watermark_status(status, out))
    }

    /// Processing time reached `now`.
    pub fn on_processing_time(&mut self, now: Timestamp) -> Result<()> {
        let operator = &mut self.operator;
        self.core.processing_time(now, |out| operator.on_processing_time(now, out))
    }

    /// When this task next has processing-time work.
    pub fn next_processing_deadline(&self) -> Option<Timestamp> {
        self.core.deadline(self.operator.next_processing_deadline())
    }

    /// Sends buffered output now.
    pub fn flush(&mut self) -> Result<()> {
        self.core.flush()
    }

    /// Both inputs ended.
    pub fn finish(&mut self) -> Result<()> {
        let operator = &mut self.operator;
        self.core.finish(|out| operator.finish(out))
    }
}
