//! Tasks: the single-threaded loop that drives one chain of one subtask, and the factories
//! the planner calls to build chains.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select};
use weir_operators::processing_time_now;
use weir_operators::{
    ChainedOperator, Error, OneInputOperator, OperatorMetrics, OperatorSnapshot, Output, Result,
    RuntimeContext, SideOutput, SourceFunction, SourcePoll, StateRestore, SubtaskInfo,
    TaskSnapshot, TwoInputNode, TwoInputOperator, run_guarded,
};
use weir_state::OperatorStateStore;
use weir_types::{
    CheckpointId, Data, Record, StreamMessage, Timestamp, Watermark, WatermarkStatus,
};

use crate::checkpoint::{Alignment, BarrierAligner, TaskCommand, TaskControl, TaskEvent};
use crate::exchange::{CancelToken, InputGate};
use crate::stream_type::{
    AnyOutput, AnyReceiver, downcast_output, downcast_receivers, erase_output,
};

/// What a running task may use from its surroundings.
#[derive(Clone, Debug)]
pub struct TaskContext {
    /// The job's cancellation signal.
    pub cancel: CancelToken,
    /// Records per batch.
    pub batch_size: usize,
    /// Longest time output may wait in a partly filled batch.
    pub buffer_timeout: Duration,
    /// The task's line to the checkpoint coordinator.
    pub control: TaskControl,
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
    /// The task reading `first` and `second`.
    fn build(
        &self,
        context: BuildContext,
        first: Vec<AnyReceiver>,
        second: Vec<AnyReceiver>,
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
            head: downcast_output::<T>(context.output),
            info: context.info,
            metrics: context.metrics,
            operator_state,
            finished: false,
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
        })
    }
}

/// Polls a source and pushes what it produces into its chain.
struct SourceTask<T> {
    source: Box<dyn SourceFunction<T>>,
    head: Box<dyn Output<T>>,
    info: SubtaskInfo,
    metrics: Arc<OperatorMetrics>,
    operator_state: OperatorStateStore,
    /// The input is exhausted; the task waits for its final checkpoint.
    finished: bool,
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
        let mut batch: Vec<Record<T>> = Vec::with_capacity(context.batch_size);
        let mut flush_timer = FlushTimer::new(context.buffer_timeout);
        loop {
            if context.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            for command in context.control.commands.try_iter() {
                self.on_command(command, &context.control)?;
            }
            let poll =
                run_guarded(&self.info, || self.source.poll(&mut batch, context.batch_size))?;
            if !batch.is_empty() {
                self.metrics.add_out(batch.len());
                self.head.push_batch(&mut batch)?;
            }
            let deadline = fire_due_processing_time(&mut self.head)?;
            match poll {
                SourcePoll::Ready if flush_timer.due() => self.head.flush()?,
                SourcePoll::Ready => {}
                SourcePoll::Pending(wait) => {
                    self.head.flush()?;
                    flush_timer.reset();
                    if context.cancel.wait(wait.min(until(deadline))) {
                        return Err(Error::Cancelled);
                    }
                }
                SourcePoll::Finished => {
                    self.head.push_watermark(Watermark::MAX)?;
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
            TaskCommand::Trigger(barrier) => {
                let mut task = TaskSnapshot::new(barrier);
                let SourceTask { source, info, operator_state, .. } = self;
                run_guarded(info, || source.snapshot_state(operator_state))?;
                let lists = run_guarded(info, || Ok(operator_state.snapshot()?))?;
                task.add(info, OperatorSnapshot { lists, ..Default::default() });
                self.head.checkpoint(&mut task)?;
                self.head.flush()?;
                control.report(TaskEvent::Acknowledged {
                    task: control.task,
                    snapshot: task,
                    alignment: Duration::ZERO,
                    finished: self.finished,
                });
            }
            TaskCommand::Complete(checkpoint) => {
                run_guarded(&self.info, || self.source.notify_checkpoint_complete(checkpoint))?;
                self.head.notify_checkpoint(checkpoint, true)?;
            }
            TaskCommand::Abort(checkpoint) => self.head.notify_checkpoint(checkpoint, false)?,
        }
        Ok(())
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
                        TaskCommand::Trigger(barrier) => {
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
}

impl<T: Data> InputTask<T, (), SingleInput<T>> {
    /// A task whose chain head `head` reads `receivers`.
    pub(crate) fn one_input(
        receivers: Vec<Receiver<StreamMessage<T>>>,
        head: Box<dyn Output<T>>,
    ) -> Self {
        InputTask { first: receivers, second: Vec::new(), sink: SingleInput(head) }
    }
}

impl<A: Send, B: Send, S: InputSink<A, B>> TaskBody for InputTask<A, B, S> {
    fn run(mut self: Box<Self>, context: &TaskContext) -> Result<()> {
        let InputTask { first, second, sink } = &mut *self;
        sink.open()?;
        let mut gates = [InputGate::new(first.len()), InputGate::new(second.len())];
        let mut event_time = EventTimeProgress::default();
        let mut channels = ChannelStates::new(first.len() + second.len(), &context.control);
        let mut flush_timer = FlushTimer::new(context.buffer_timeout);
        loop {
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
                    match select.select.select_timeout(until(deadline)) {
                        Ok(operation) => operation,
                        Err(_) => continue, // processing time is due
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
                    let received =
                        channels.receive(channel, &mut gates[0], channel, message, sink)?;
                    if let Some(mut batch) = received {
                        sink.first(&mut batch)?;
                        continue;
                    }
                }
                Readable::Channel(channel) => {
                    let local = channel - first.len();
                    let message = operation.recv(&second[local]);
                    let received =
                        channels.receive(channel, &mut gates[1], local, message, sink)?;
                    if let Some(mut batch) = received {
                        sink.second(&mut batch)?;
                        continue;
                    }
                }
            }
            event_time.update(&gates, sink)?;
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
/// which channels ended or closed, barrier alignment, and the final checkpoint.
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
}

impl<'c> ChannelStates<'c> {
    fn new(channels: usize, control: &'c TaskControl) -> Self {
        ChannelStates {
            control,
            ended: vec![false; channels],
            closed: vec![false; channels],
            aligner: control.checkpointing.map(|mode| BarrierAligner::new(channels, mode)),
            coordinator_alive: true,
            finished: false,
            first_after_end: None,
            final_complete: false,
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

    /// Handles what arrived on `channel` (`local` within its input's `gate`); hands back
    /// the records when it carried some.
    fn receive<T, A, B>(
        &mut self,
        channel: usize,
        gate: &mut InputGate,
        local: usize,
        message: Result<StreamMessage<T>, crossbeam_channel::RecvError>,
        sink: &mut impl InputSink<A, B>,
    ) -> Result<Option<Vec<Record<T>>>> {
        match message {
            // A channel that disconnects without ending means its producer failed.
            Err(_) if !self.ended[channel] => Err(Error::Cancelled),
            Err(_) => {
                self.closed[channel] = true;
                if let Some(aligner) = &mut self.aligner {
                    let closed = &self.closed;
                    let outcome = aligner.on_channel_closed(|c| !closed[c]);
                    self.on_alignment(outcome, sink)?;
                }
                Ok(None)
            }
            Ok(StreamMessage::Barrier(barrier)) => {
                if let Some(aligner) = &mut self.aligner {
                    let closed = &self.closed;
                    let (abandoned, outcome) = aligner.on_barrier(channel, barrier, |c| !closed[c]);
                    if let Some(checkpoint) = abandoned {
                        self.control.report(TaskEvent::Declined {
                            task: self.control.task,
                            checkpoint,
                            reason: format!("barrier of checkpoint {} overtook it", barrier.id),
                        });
                    }
                    self.on_alignment(outcome, sink)?;
                }
                Ok(None)
            }
            Ok(message) => {
                if matches!(message, StreamMessage::EndOfInput) {
                    self.ended[channel] = true;
                    // A final checkpoint's barrier may follow the end; else nothing does.
                    self.closed[channel] = !self.control.final_checkpoint;
                }
                Ok(gate.on_message(local, message))
            }
        }
    }

    /// Snapshots the chain and passes the barrier on once it arrived on every live channel.
    fn on_alignment<A, B>(
        &mut self,
        outcome: Alignment,
        sink: &mut impl InputSink<A, B>,
    ) -> Result<()> {
        let Alignment::Complete { barrier, alignment } = outcome else { return Ok(()) };
        let mut task = TaskSnapshot::new(barrier);
        sink.checkpoint(&mut task)?;
        if self.finished {
            self.first_after_end.get_or_insert(barrier.id);
        }
        self.control.report(TaskEvent::Acknowledged {
            task: self.control.task,
            snapshot: task,
            alignment,
            finished: self.finished,
        });
        Ok(())
    }

    fn on_command<A, B>(
        &mut self,
        command: TaskCommand,
        sink: &mut impl InputSink<A, B>,
    ) -> Result<()> {
        match command {
            TaskCommand::Trigger(_) => {} // only sources are triggered
            TaskCommand::Complete(checkpoint) => {
                sink.notify_checkpoint(checkpoint, true)?;
                if self.first_after_end.is_some_and(|first| checkpoint >= first) {
                    self.final_complete = true;
                }
            }
            TaskCommand::Abort(checkpoint) => sink.notify_checkpoint(checkpoint, false)?,
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

/// The watermark and status a task has passed on, advanced from its input gates.
#[derive(Default)]
struct EventTimeProgress {
    emitted: Option<Watermark>,
    idle: bool,
}

impl EventTimeProgress {
    /// Passes on the combined watermark of the active inputs if it advanced, and status
    /// changes. When every input goes idle, event time moves to the highest watermark any
    /// channel reached (as Flink's `StatusWatermarkValve` does) and the task goes idle.
    fn update<A, B>(
        &mut self,
        gates: &[InputGate; 2],
        sink: &mut impl InputSink<A, B>,
    ) -> Result<()> {
        let idle = gates.iter().any(InputGate::is_idle)
            && gates.iter().all(|g| g.is_idle() || g.is_finished());
        if !idle && self.idle {
            self.idle = false;
            sink.watermark_status(WatermarkStatus::Active)?;
        }
        let target = if idle {
            gates.iter().filter(|g| g.is_idle()).map(InputGate::max_watermark).max()
        } else {
            gates.iter().filter(|g| !g.is_idle()).map(InputGate::watermark).min()
        }
        .unwrap_or(Watermark::MAX);
        if target > Watermark::MIN && self.emitted.is_none_or(|emitted| target > emitted) {
            self.emitted = Some(target);
            sink.watermark(target)?;
        }
        if idle && !self.idle {
            self.idle = true;
            sink.watermark_status(WatermarkStatus::Idle)?;
        }
        Ok(())
    }
}
