//! Tasks: the single-threaded loop that drives one chain of one subtask, and the factories
//! the planner calls to build chains.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select};
use serde::Serialize;
use tracing::info;
use weir_operators::processing_time_now;
use weir_operators::{
    ChainedOperator, Error, OneInputOperator, OperatorMetrics, OperatorSnapshot, Output, Result,
    RuntimeContext, SideOutput, SourceFunction, SourceOutput, SourcePoll, StateRestore,
    SubtaskInfo, TaskSnapshot, TwoInputNode, TwoInputOperator, run_guarded,
};
use weir_state::OperatorStateStore;
use weir_types::{
    CheckpointBarrier, CheckpointId, Data, Record, StreamMessage, Timestamp, Watermark,
    WatermarkStatus,
};

use crate::InputSlot;
use crate::checkpoint::{
    Alignment, BarrierAligner, InFlight, InFlightBatch, InFlightLog, TaskCommand, TaskControl,
    TaskEvent, TaskInFlight, TaskState,
};
use crate::config::records_per_batch;
use crate::exchange::{CancelToken, Delivery, GateProgress, InputGate, TaskEventTime, TimeEvent};
use crate::load::TaskLoad;
use crate::source_event_time::SourceEventTime;
use crate::stream_type::{
    AnyOutput, AnyReceiver, downcast_output, downcast_receivers, erase_output,
};

/// What a running task may use from its surroundings.
#[derive(Clone, Debug)]
pub struct TaskContext {
    /// The job's cancellation signal.
    pub cancel: CancelToken,
    /// Most records per batch.
    pub batch_size: usize,
    /// Most bytes of records per batch.
    pub batch_bytes: usize,
    /// Longest time output may wait in a partly filled batch.
    pub buffer_timeout: Duration,
    /// The task's line to the checkpoint coordinator.
    pub control: TaskControl,
    /// Its time accounting, charged with its waits for input.
    pub load: Arc<TaskLoad>,
}

/// A built task, ready to run on its own thread.
pub trait TaskBody: Send {
    /// Runs until end of input, failure or cancellation.
    fn run(self: Box<Self>, context: &TaskContext) -> Result<()>;
}

/// Everything a factory gets to build one subtask of its node.
pub struct BuildContext {
    /// The subtask being built.
    pub info: SubtaskInfo,
    /// Its counters.
    pub metrics: Arc<OperatorMetrics>,
    /// Where its main output goes (a `Box<dyn Output<Out>>`).
    pub output: AnyOutput,
    /// Its side outputs that something reads.
    pub side_outputs: Vec<SideOutput>,
    /// The state it starts from (empty on a fresh start).
    pub restore: StateRestore,
}

/// Builds the subtasks of a source.
pub trait SourceFactory: Send {
    /// The task of one source subtask.
    fn build(&self, context: BuildContext) -> Box<dyn TaskBody>;
}

/// Builds the subtasks of a one-input operator.
pub trait OneInputFactory: Send {
    /// The operator as the (type-erased) `Box<dyn Output<In>>` of what feeds it.
    fn build(&self, context: BuildContext) -> AnyOutput;
}

/// Builds the subtasks of a two-input operator, which always heads its task.
pub trait TwoInputFactory: Send {
    /// The task reading `first` and `second`, replaying its records in flight first.
    fn build(
        &self,
        context: BuildContext,
        first: Vec<AnyReceiver>,
        second: Vec<AnyReceiver>,
        in_flight: TaskInFlight,
    ) -> Box<dyn TaskBody>;
}

/// A factory calling its closure once per subtask.
pub(crate) struct PerSubtask<M>(pub(crate) M);

/// A source factory calling its closure once per subtask.
pub(crate) struct PerSubtaskSource<T, M>(
    pub(crate) M,
    pub(crate) std::marker::PhantomData<fn() -> T>,
);

impl<T, S, M> SourceFactory for PerSubtaskSource<T, M>
where
    T: Data,
    S: SourceFunction<T> + 'static,
    M: Fn(&SubtaskInfo) -> S + Send,
{
    fn build(&self, context: BuildContext) -> Box<dyn TaskBody> {
        let mut operator_state = OperatorStateStore::new();
        operator_state.restore(context.restore.operator);
        Box::new(SourceTask {
            source: Box::new((self.0)(&context.info)),
            head: SourceOutput::new(downcast_output::<T>(context.output), context.side_outputs),
            info: context.info,
            metrics: context.metrics,
            operator_state,
            finished: false,
            event_time: SourceEventTime::default(),
            stopping_at: None,
        })
    }
}

impl<Op, M> OneInputFactory for PerSubtask<M>
where
    Op: OneInputOperator + 'static,
    Op::In: Data,
    Op::Out: Data,
    M: Fn(&SubtaskInfo) -> Op + Send,
{
    fn build(&self, context: BuildContext) -> AnyOutput {
        let operator = ChainedOperator::new(
            (self.0)(&context.info),
            context.info,
            context.metrics,
            downcast_output::<Op::Out>(context.output),
            context.side_outputs,
        )
        .restoring(context.restore);
        erase_output::<Op::In>(Box::new(operator))
    }
}

impl<Op, M> TwoInputFactory for PerSubtask<M>
where
    Op: TwoInputOperator + 'static,
    Op::In1: Data,
    Op::In2: Data,
    Op::Out: Data,
    M: Fn(&SubtaskInfo) -> Op + Send,
{
    fn build(
        &self,
        context: BuildContext,
        first: Vec<AnyReceiver>,
        second: Vec<AnyReceiver>,
        in_flight: TaskInFlight,
    ) -> Box<dyn TaskBody> {
        let node = TwoInputNode::new(
            (self.0)(&context.info),
            context.info,
            context.metrics,
            downcast_output::<Op::Out>(context.output),
            context.side_outputs,
        )
        .restoring(context.restore);
        Box::new(InputTask {
            first: downcast_receivers::<Op::In1>(first),
            second: downcast_receivers::<Op::In2>(second),
            sink: node,
            in_flight,
        })
    }
}

/// Polls a source and pushes what it produces into its chain.
struct SourceTask<T> {
    source: Box<dyn SourceFunction<T>>,
    head: SourceOutput<T>,
    info: SubtaskInfo,
    metrics: Arc<OperatorMetrics>,
    operator_state: OperatorStateStore,
    /// The input is exhausted; the task waits for its final checkpoint.
    finished: bool,
    /// What was emitted of the source's own watermark.
    event_time: SourceEventTime,
    /// The stop-with-savepoint whose barrier it emitted last: it emits nothing more unless
    /// that savepoint is aborted.
    stopping_at: Option<CheckpointId>,
}

impl<T: Data> TaskBody for SourceTask<T> {
    fn run(mut self: Box<Self>, context: &TaskContext) -> Result<()> {
        self.head.open()?;
        {
            let SourceTask { source, info, operator_state, .. } = &mut *self;
            run_guarded(info, || {
                source.open(info, &mut RuntimeContext::new(info, operator_state))
            })?;
        }
        let record_bytes = std::mem::size_of::<Record<T>>();
        let batch_size = records_per_batch(context.batch_size, context.batch_bytes, record_bytes);
        let mut batch: Vec<Record<T>> = Vec::with_capacity(batch_size);
        let mut flush_timer = FlushTimer::new(context.buffer_timeout);
        loop {
            if context.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            for command in context.control.commands.try_iter() {
                self.on_command(command, &context.control)?;
            }
            if self.stopping_at.is_some() {
                self.await_command(context)?;
                continue;
            }
            let poll = run_guarded(&self.info, || self.source.poll(&mut batch, batch_size))?;
            if !batch.is_empty() {
                self.metrics.add_out(batch.len());
                self.head.push_batch(&mut batch)?;
            }
            self.head.emit_side_outputs(&mut *self.source, &self.info)?;
            if let Some(mark) = self.source.watermark() {
                self.event_time.update(mark, &mut self.head, &self.metrics)?;
            }
            let deadline = fire_due_processing_time(&mut self.head)?;
            match poll {
                SourcePoll::Ready if flush_timer.due() => self.head.flush()?,
                SourcePoll::Ready => {}
                SourcePoll::Pending(wait) => {
                    self.head.flush()?;
                    flush_timer.reset();
                    if context.load.idle(|| context.cancel.wait(wait.min(until(deadline)))) {
                        return Err(Error::Cancelled);
                    }
                }
                SourcePoll::Finished => {
                    self.event_time.end_of_input(&mut self.head, &self.metrics)?;
                    self.head.finish()?;
                    self.finished = true;
                    return self.await_final_checkpoint(context);
                }
            }
        }
    }
}

impl<T: Data> SourceTask<T> {
    fn on_command(&mut self, command: TaskCommand, control: &TaskControl) -> Result<()> {
        match command {
            TaskCommand::Trigger(barrier) | TaskCommand::StopAfter(barrier) => {
                let mut task = TaskSnapshot::new(barrier);
                let SourceTask { source, info, operator_state, .. } = self;
                run_guarded(info, || source.snapshot_state(barrier.id, operator_state))?;
                let lists = run_guarded(info, || Ok(operator_state.snapshot()?))?;
                task.add(info, OperatorSnapshot { lists, ..Default::default() });
                self.head.checkpoint(&mut task)?;
                self.head.flush()?;
                control.report(TaskEvent::Acknowledged(Box::new(TaskState {
                    task: control.task,
                    snapshot: task,
                    alignment: Duration::ZERO,
                    finished: self.finished,
                    in_flight: None,
                })));
                if let TaskCommand::StopAfter(barrier) = command {
                    self.stopping_at = Some(barrier.id);
                }
            }
            TaskCommand::Complete(checkpoint) => {
                run_guarded(&self.info, || self.source.notify_checkpoint_complete(checkpoint))?;
                self.head.notify_checkpoint(checkpoint, true)?;
            }
            TaskCommand::Abort(checkpoint) => {
                if self.stopping_at == Some(checkpoint) {
                    self.stopping_at = None; // the job goes on
                }
                self.head.notify_checkpoint(checkpoint, false)?;
            }
        }
        Ok(())
    }

    /// Waits for the next command, or the cancel (while stopping).
    fn await_command(&mut self, context: &TaskContext) -> Result<()> {
        crossbeam_channel::select! {
            recv(context.cancel.receiver()) -> _ => Err(Error::Cancelled),
            recv(context.control.commands) -> command => match command {
                Ok(command) => self.on_command(command, &context.control),
                Err(_) => Err(Error::Cancelled),
            },
        }
    }

    /// With checkpointing on, a finished source stays until a checkpoint taken after its
    /// end completes, so that what its chain emitted last is committed (Flink's final
    /// checkpoint).
    fn await_final_checkpoint(&mut self, context: &TaskContext) -> Result<()> {
        let control = &context.control;
        if !control.final_checkpoint {
            return Ok(());
        }
        control.report(TaskEvent::EndOfData { task: control.task });
        let mut first_after_end = None;
        loop {
            crossbeam_channel::select! {
                recv(context.cancel.receiver()) -> _ => return Err(Error::Cancelled),
                recv(control.commands) -> command => {
                    let Ok(command) = command else { return Ok(()) };
                    self.on_command(command, control)?;
                    match command {
                        TaskCommand::Trigger(barrier) | TaskCommand::StopAfter(barrier) => {
                            first_after_end.get_or_insert(barrier.id);
                        }
                        TaskCommand::Complete(id) if first_after_end.is_some_and(|f| id >= f) => {
                            return Ok(());
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// Runs the processing-time work that is due downstream of `head`; returns the next deadline.
fn fire_due_processing_time(head: &mut dyn ProcessingTime) -> Result<Option<Timestamp>> {
    let Some(deadline) = head.next_processing_deadline() else {
        return Ok(None);
    };
    let now = processing_time_now();
    if now < deadline {
        return Ok(Some(deadline));
    }
    head.on_processing_time(now)?;
    Ok(head.next_processing_deadline())
}

/// How long until `deadline` (a long time when there is none).
fn until(deadline: Option<Timestamp>) -> Duration {
    deadline.map_or(Duration::from_secs(3600), |deadline| {
        Duration::from_millis(deadline.saturating_sub(processing_time_now()).max(0) as u64)
    })
}

/// Says when output has waited in partly filled batches for the buffer timeout.
struct FlushTimer {
    timeout: Duration,
    last_flush: Instant,
}

impl FlushTimer {
    fn new(timeout: Duration) -> Self {
        FlushTimer { timeout, last_flush: Instant::now() }
    }

    /// Whether a flush is due; if so, counts it as done.
    fn due(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.last_flush) < self.timeout {
            return false;
        }
        self.last_flush = now;
        true
    }

    fn reset(&mut self) {
        self.last_flush = Instant::now();
    }
}

/// The head of a task with network inputs: one or two typed inputs.
pub(crate) trait InputSink<A, B>: Send {
    fn open(&mut self) -> Result<()>;
    fn first(&mut self, batch: &mut Vec<Record<A>>) -> Result<()>;
    fn second(&mut self, batch: &mut Vec<Record<B>>) -> Result<()>;
    fn watermark(&mut self, watermark: Watermark) -> Result<()>;
    fn watermark_status(&mut self, status: WatermarkStatus) -> Result<()>;
    fn checkpoint(&mut self, task: &mut TaskSnapshot) -> Result<()>;
    fn notify_checkpoint(&mut self, checkpoint: CheckpointId, complete: bool) -> Result<()>;
    fn flush(&mut self) -> Result<()>;
    fn finish(&mut self) -> Result<()>;
    /// The processing-time side of the head, as an [`Output`] of nothing.
    fn timers(&mut self) -> &mut dyn ProcessingTime;
}

/// What a task loop needs to drive processing time.
pub(crate) trait ProcessingTime {
    fn on_processing_time(&mut self, now: Timestamp) -> Result<()>;
    fn next_processing_deadline(&self) -> Option<Timestamp>;
}

/// A chain head fed by one input; the second input type is never used.
pub(crate) struct SingleInput<T>(Box<dyn Output<T>>);

impl<T: Send> InputSink<T, ()> for SingleInput<T> {
    fn open(&mut self) -> Result<()> {
        self.0.open()
    }
    fn first(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        self.0.push_batch(batch)
    }
    fn second(&mut self, _: &mut Vec<Record<()>>) -> Result<()> {
        unreachable!("a one-input task has no second input")
    }
    fn watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.0.push_watermark(watermark)
    }
    fn watermark_status(&mut self, status: WatermarkStatus) -> Result<()> {
        self.0.push_watermark_status(status)
    }
    fn checkpoint(&mut self, task: &mut TaskSnapshot) -> Result<()> {
        self.0.checkpoint(task)
    }
    fn notify_checkpoint(&mut self, checkpoint: CheckpointId, complete: bool) -> Result<()> {
        self.0.notify_checkpoint(checkpoint, complete)
    }
    fn flush(&mut self) -> Result<()> {
        self.0.flush()
    }
    fn finish(&mut self) -> Result<()> {
        self.0.finish()
    }
    fn timers(&mut self) -> &mut dyn ProcessingTime {
        &mut self.0
    }
}

/// A chain head's processing-time side.
impl<T> ProcessingTime for Box<dyn Output<T>> {
    fn on_processing_time(&mut self, now: Timestamp) -> Result<()> {
        (**self).on_processing_time(now)
    }
    fn next_processing_deadline(&self) -> Option<Timestamp> {
        (**self).next_processing_deadline()
    }
}

impl<T: Send + 'static> ProcessingTime for SourceOutput<T> {
    fn on_processing_time(&mut self, now: Timestamp) -> Result<()> {
        Output::on_processing_time(self, now)
    }
    fn next_processing_deadline(&self) -> Option<Timestamp> {
        Output::next_processing_deadline(self)
    }
}

impl<Op> InputSink<Op::In1, Op::In2> for TwoInputNode<Op>
where
    Op: TwoInputOperator,
    Op::Out: Send,
{
    fn open(&mut self) -> Result<()> {
        TwoInputNode::open(self)
    }
    fn first(&mut self, batch: &mut Vec<Record<Op::In1>>) -> Result<()> {
        self.push_batch1(batch)
    }
    fn second(&mut self, batch: &mut Vec<Record<Op::In2>>) -> Result<()> {
        self.push_batch2(batch)
    }
    fn watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.push_watermark(watermark)
    }
    fn watermark_status(&mut self, status: WatermarkStatus) -> Result<()> {
        self.push_watermark_status(status)
    }
    fn checkpoint(&mut self, task: &mut TaskSnapshot) -> Result<()> {
        TwoInputNode::checkpoint(self, task)
    }
    fn notify_checkpoint(&mut self, checkpoint: CheckpointId, complete: bool) -> Result<()> {
        TwoInputNode::notify_checkpoint(self, checkpoint, complete)
    }
    fn flush(&mut self) -> Result<()> {
        TwoInputNode::flush(self)
    }
    fn finish(&mut self) -> Result<()> {
        TwoInputNode::finish(self)
    }
    fn timers(&mut self) -> &mut dyn ProcessingTime {
        self
    }
}

impl<Op> ProcessingTime for TwoInputNode<Op>
where
    Op: TwoInputOperator,
    Op::Out: Send,
{
    fn on_processing_time(&mut self, now: Timestamp) -> Result<()> {
        TwoInputNode::on_processing_time(self, now)
    }
    fn next_processing_deadline(&self) -> Option<Timestamp> {
        TwoInputNode::next_processing_deadline(self)
    }
}

/// Reads the channels of one or two inputs, aligning watermarks, until every channel ends.
/// Output is flushed whenever no input is ready, so batches fill under load and latency stays
/// low when idle.
pub(crate) struct InputTask<A, B, S> {
    first: Vec<Receiver<StreamMessage<A>>>,
    second: Vec<Receiver<StreamMessage<B>>>,
    sink: S,
    in_flight: TaskInFlight,
}

impl<T: Data> InputTask<T, (), SingleInput<T>> {
    /// A task whose chain head `head` reads `receivers`, replaying its records in flight first.
    pub(crate) fn one_input(
        receivers: Vec<Receiver<StreamMessage<T>>>,
        head: Box<dyn Output<T>>,
        in_flight: TaskInFlight,
    ) -> Self {
        InputTask { first: receivers, second: Vec::new(), sink: SingleInput(head), in_flight }
    }
}

impl<A: Data, B: Data, S: InputSink<A, B>> TaskBody for InputTask<A, B, S> {
    fn run(mut self: Box<Self>, context: &TaskContext) -> Result<()> {
        let InputTask { first, second, sink, in_flight } = &mut *self;
        sink.open()?;
        if let Some(records) = in_flight.restored.take() {
            replay_in_flight(&records, &in_flight.head, sink)?;
        }
        let mut gates = [InputGate::new(first.len()), InputGate::new(second.len())];
        let mut event_time = TaskEventTime::new(gates.each_ref().map(InputGate::has_channels));
        let head = in_flight.head.clone();
        let mut channels = ChannelStates::new(first.len() + second.len(), &context.control, head);
        let mut flush_timer = FlushTimer::new(context.buffer_timeout);
        loop {
            channels.on_time(sink)?;
            let mut select = channels.select(first, second, context);
            let deadline = fire_due_processing_time(sink.timers())?;
            if flush_timer.due() {
                sink.flush()?;
            }
            let operation = match select.select.try_select() {
                Ok(operation) => operation,
                Err(_) => {
                    sink.flush()?;
                    flush_timer.reset();
                    let wait = until(deadline).min(channels.until_alignment_timeout());
                    match context.load.idle(|| select.select.select_timeout(wait)) {
                        Ok(operation) => operation,
                        Err(_) => continue, // processing time or the alignment timeout is due
                    }
                }
            };
            match select.sources[operation.index()] {
                Readable::Cancel => {
                    let _ = operation.recv(context.cancel.receiver());
                    return Err(Error::Cancelled);
                }
                Readable::Commands => match operation.recv(&context.control.commands) {
                    Ok(command) => channels.on_command(command, sink)?,
                    Err(_) => channels.coordinator_gone(),
                },
                Readable::Channel(channel) if channel < first.len() => {
                    let message = operation.recv(&first[channel]);
                    match channels.receive(channel, &mut gates[0], channel, message, sink)? {
                        Delivery::Records(mut batch) => {
                            channels.log_in_flight(channel, InputSlot::First, &batch)?;
                            sink.first(&mut batch)?;
                            continue;
                        }
                        Delivery::Progress(progress) => {
                            event_time.on_progress(0, progress, &mut |e| pass_on(sink, e))?;
                        }
                    }
                }
                Readable::Channel(channel) => {
                    let local = channel - first.len();
                    let message = operation.recv(&second[local]);
                    match channels.receive(channel, &mut gates[1], local, message, sink)? {
                        Delivery::Records(mut batch) => {
                            channels.log_in_flight(channel, InputSlot::Second, &batch)?;
                            sink.second(&mut batch)?;
                            continue;
                        }
                        Delivery::Progress(progress) => {
                            event_time.on_progress(1, progress, &mut |e| pass_on(sink, e))?;
                        }
                    }
                }
            }
            if !channels.finished && gates.iter().all(InputGate::is_finished) {
                sink.finish()?;
                channels.finished = true;
            }
            if channels.done() {
                return Ok(());
            }
        }
    }
}

/// Passes a change of the task's event time on to its chain head.
fn pass_on<A, B>(sink: &mut impl InputSink<A, B>, event: TimeEvent) -> Result<()> {
    match event {
        TimeEvent::Watermark(watermark) => sink.watermark(watermark),
        TimeEvent::Status(status) => sink.watermark_status(status),
    }
}

/// Feeds the records in flight at the restored checkpoint to the chain head `head`, on the
/// inputs they were read on, before any new input.
fn replay_in_flight<A: Data, B: Data>(
    records: &[u8],
    head: &SubtaskInfo,
    sink: &mut impl InputSink<A, B>,
) -> Result<()> {
    let batches = InFlightBatch::<A, B>::decode_all(records).map_err(|error| {
        Error::Runtime(format!(
            "the records in flight restored for '{}' (subtask {}/{}) do not decode: {error}",
            head.operator_name,
            head.index + 1,
            head.parallelism
        ))
    })?;
    info!(
        operator = %head.operator_name,
        subtask = head.index + 1,
        batches = batches.len(),
        "replaying the records in flight at the restored checkpoint"
    );
    for batch in batches {
        match batch {
            InFlightBatch::First(mut records) => sink.first(&mut records)?,
            InFlightBatch::Second(mut records) => sink.second(&mut records)?,
        }
    }
    Ok(())
}

/// What one operation of a task's select reads.
#[derive(Clone, Copy)]
enum Readable {
    Cancel,
    Commands,
    Channel(usize),
}

/// The select over what a task can read now, with what each of its indices reads.
struct TaskSelect<'a> {
    select: Select<'a>,
    sources: Vec<Readable>,
}

/// A task's input channels (numbered over both inputs) and its line to the coordinator:
/// which channels ended or closed, barrier alignment, records in flight, and the final
/// checkpoint.
struct ChannelStates<'c> {
    control: &'c TaskControl,
    /// The channel delivered end of input (with checkpointing, a final barrier may follow).
    ended: Vec<bool>,
    /// Nothing more can come from the channel.
    closed: Vec<bool>,
    /// Barrier alignment, when checkpointing is on.
    aligner: Option<BarrierAligner>,
    coordinator_alive: bool,
    /// Every input ended and the chain finished.
    finished: bool,
    /// The first checkpoint snapshotted after finishing, and whether it completed.
    first_after_end: Option<CheckpointId>,
    final_complete: bool,
    /// The snapshot of the checkpoint in progress when it went unaligned.
    unaligned: Option<UnalignedSnapshot>,
    /// The records read since then on channels still missing its barrier.
    in_flight: InFlightLog,
    /// The operator heading the chain, whose state carries the records in flight.
    head: SubtaskInfo,
}

/// A snapshot taken before every barrier arrived, waiting for its records in flight.
struct UnalignedSnapshot {
    snapshot: TaskSnapshot,
    /// Whether the chain had finished when it was taken.
    finished: bool,
}

impl<'c> ChannelStates<'c> {
    fn new(channels: usize, control: &'c TaskControl, head: SubtaskInfo) -> Self {
        ChannelStates {
            control,
            ended: vec![false; channels],
            closed: vec![false; channels],
            aligner: control.checkpointing.map(|mode| BarrierAligner::new(channels, mode)),
            coordinator_alive: true,
            finished: false,
            first_after_end: None,
            final_complete: false,
            unaligned: None,
            in_flight: InFlightLog::default(),
            head,
        }
    }

    /// A select over cancellation, coordinator commands and every channel that is open and
    /// not held back by alignment.
    fn select<'a, A, B>(
        &self,
        first: &'a [Receiver<StreamMessage<A>>],
        second: &'a [Receiver<StreamMessage<B>>],
        context: &'a TaskContext,
    ) -> TaskSelect<'a> {
        let mut select = Select::new();
        let mut sources = vec![Readable::Cancel];
        select.recv(context.cancel.receiver());
        if self.coordinator_alive && self.aligner.is_some() {
            select.recv(&context.control.commands);
            sources.push(Readable::Commands);
        }
        let blocked = |channel| self.aligner.as_ref().is_some_and(|a| a.is_blocked(channel));
        for (channel, receiver) in first.iter().enumerate() {
            if !self.closed[channel] && !blocked(channel) {
                select.recv(receiver);
                sources.push(Readable::Channel(channel));
            }
        }
        for (local, receiver) in second.iter().enumerate() {
            let channel = first.len() + local;
            if !self.closed[channel] && !blocked(channel) {
                select.recv(receiver);
                sources.push(Readable::Channel(channel));
            }
        }
        TaskSelect { select, sources }
    }

    /// Handles what arrived on `channel` (`local` within its input's `gate`): the records it
    /// carried, or what it changed in event time.
    fn receive<T, A, B>(
        &mut self,
        channel: usize,
        gate: &mut InputGate,
        local: usize,
        message: Result<StreamMessage<T>, crossbeam_channel::RecvError>,
        sink: &mut impl InputSink<A, B>,
    ) -> Result<Delivery<T>> {
        match message {
            // A channel that disconnects without ending means its producer failed.
            Err(_) if !self.ended[channel] => Err(Error::Cancelled),
            Err(_) => {
                self.closed[channel] = true;
                if let Some(aligner) = &mut self.aligner {
                    let closed = &self.closed;
                    let outcome = aligner.on_channel_closed(|c| !closed[c], Instant::now());
                    self.on_alignment(outcome, sink)?;
                }
                Ok(Delivery::Progress(GateProgress::default()))
            }
            Ok(StreamMessage::Barrier(barrier)) => {
                if let Some(aligner) = &mut self.aligner {
                    let closed = &self.closed;
                    let live = |c: usize| !closed[c];
                    let (abandoned, outcome) =
                        aligner.on_barrier(channel, barrier, live, Instant::now());
                    if let Some(checkpoint) = abandoned {
                        self.unaligned = None;
                        self.in_flight.clear();
                        self.control.report(TaskEvent::Declined {
                            task: self.control.task,
                            checkpoint,
                            reason: format!("barrier of checkpoint {} overtook it", barrier.id),
                        });
                    }
                    self.on_alignment(outcome, sink)?;
                }
                Ok(Delivery::Progress(GateProgress::default()))
            }
            Ok(message) => {
                if matches!(message, StreamMessage::EndOfInput) {
                    self.ended[channel] = true;
                    if let Some(aligner) = &mut self.aligner {
                        aligner.on_end_of_input(channel);
                    }
                    // A final checkpoint's barrier may follow the end; else nothing does.
                    self.closed[channel] = !self.control.final_checkpoint;
                }
                Ok(gate.on_message(local, message))
            }
        }
    }

    /// Snapshots the chain and passes the barrier on once it arrived on every live channel,
    /// or when the checkpoint goes unaligned; acknowledges it once complete, with the records
    /// in flight if it went unaligned.
    fn on_alignment<A, B>(
        &mut self,
        outcome: Alignment,
        sink: &mut impl InputSink<A, B>,
    ) -> Result<()> {
        match outcome {
            Alignment::Waiting => {}
            Alignment::Unaligned { barrier } => {
                let snapshot = self.snapshot(barrier, sink)?;
                self.in_flight.clear();
                self.unaligned = Some(UnalignedSnapshot { snapshot, finished: self.finished });
            }
            Alignment::Complete { barrier, alignment, unaligned } => {
                let (snapshot, finished, in_flight) = match self.unaligned.take() {
                    Some(taken) if unaligned => {
                        let in_flight =
                            InFlight { head: self.head.clone(), bytes: self.in_flight.take() };
                        (taken.snapshot, taken.finished, Some(in_flight))
                    }
                    _ => (self.snapshot(barrier, sink)?, self.finished, None),
                };
                self.control.report(TaskEvent::Acknowledged(Box::new(TaskState {
                    task: self.control.task,
                    snapshot,
                    alignment,
                    finished,
                    in_flight,
                })));
            }
        }
        Ok(())
    }

    /// Snapshots the chain for `barrier`, passing the barrier on.
    fn snapshot<A, B>(
        &mut self,
        barrier: CheckpointBarrier,
        sink: &mut impl InputSink<A, B>,
    ) -> Result<TaskSnapshot> {
        let mut task = TaskSnapshot::new(barrier);
        sink.checkpoint(&mut task)?;
        if self.finished {
            self.first_after_end.get_or_insert(barrier.id);
        }
        Ok(task)
    }

    /// Takes the checkpoint being aligned unaligned once its alignment timeout has passed.
    fn on_time<A, B>(&mut self, sink: &mut impl InputSink<A, B>) -> Result<()> {
        let Some(aligner) = &mut self.aligner else { return Ok(()) };
        let Some(deadline) = aligner.deadline() else { return Ok(()) };
        let now = Instant::now();
        if now < deadline {
            return Ok(());
        }
        let closed = &self.closed;
        let outcome = aligner.on_time(|c| !closed[c], now);
        self.on_alignment(outcome, sink)
    }

    /// How long the task may wait for input before the alignment timeout is due.
    fn until_alignment_timeout(&self) -> Duration {
        let deadline = self.aligner.as_ref().and_then(BarrierAligner::deadline);
        deadline.map_or(Duration::MAX, |at| at.saturating_duration_since(Instant::now()))
    }

    /// Logs `batch`, read on `channel` of `input`, when it is in flight for the unaligned
    /// checkpoint in progress (the channel has not delivered its barrier yet).
    fn log_in_flight<T: Serialize>(
        &mut self,
        channel: usize,
        input: InputSlot,
        batch: &[Record<T>],
    ) -> Result<()> {
        if self.aligner.as_ref().is_some_and(|aligner| aligner.is_recording(channel)) {
            self.in_flight.log(input, batch).map_err(|error| {
                Error::Runtime(format!("cannot store records in flight: {error}"))
            })?;
        }
        Ok(())
    }

    fn on_command<A, B>(
        &mut self,
        command: TaskCommand,
        sink: &mut impl InputSink<A, B>,
    ) -> Result<()> {
        match command {
            TaskCommand::Trigger(_) | TaskCommand::StopAfter(_) => {} // only sources are
            TaskCommand::Complete(checkpoint) => {
                sink.notify_checkpoint(checkpoint, true)?;
                if self.first_after_end.is_some_and(|first| checkpoint >= first) {
                    self.final_complete = true;
                }
            }
            TaskCommand::Abort(checkpoint) => {
                if self.aligner.as_mut().is_some_and(|aligner| aligner.on_abort(checkpoint)) {
                    self.unaligned = None;
                    self.in_flight.clear();
                }
                sink.notify_checkpoint(checkpoint, false)?;
            }
        }
        Ok(())
    }

    fn coordinator_gone(&mut self) {
        self.coordinator_alive = false;
    }

    /// Whether the task may end: its chain finished and, with periodic checkpoints, a checkpoint
    /// taken after that completed and every channel closed.
    fn done(&self) -> bool {
        self.finished
            && (!self.control.final_checkpoint
                || (self.closed.iter().all(|&closed| closed)
                    && (self.final_complete || !self.coordinator_alive)))
    }
}
