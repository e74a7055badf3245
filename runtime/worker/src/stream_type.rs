//! Type erasure at plan time: a [`StreamType`] knows one record type and builds the typed
//! channels, writers and task loops for it, so the planner can wire a graph of unknown types.
//! Downcasts happen once per task when it is built, never per record.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use weir_operators::{DiscardOutput, FanOut, Output, OutputTag, SideOutput};
use weir_types::{Data, StreamMessage};

use crate::checkpoint::TaskInFlight;
use crate::cluster::{FrameSink, FrameSource, TypedFrameSink, TypedFrameSource};
use crate::exchange::{CancelToken, ChannelWriter};
use crate::graph::Partitioning;
use crate::load::TaskLoad;
use crate::task::{InputTask, TaskBody};

/// A `Sender<StreamMessage<T>>`, type-erased.
pub type AnySender = Box<dyn Any + Send>;
/// A `Receiver<StreamMessage<T>>`, type-erased.
pub type AnyReceiver = Box<dyn Any + Send>;
/// A `Box<dyn Output<T>>`, type-erased.
pub type AnyOutput = Box<dyn Any + Send>;

/// Where a writer sits and how it batches.
#[derive(Clone, Debug)]
pub struct WriterSettings {
    /// The producing subtask's index.
    pub subtask: usize,
    /// Key groups, for hash routing.
    pub max_parallelism: usize,
    /// Most records per batch.
    pub batch_size: usize,
    /// Most bytes of records per batch (see [`crate::ExecutionConfig::batch_bytes`]).
    pub batch_bytes: usize,
    /// The job's cancellation signal.
    pub cancel: CancelToken,
    /// Name of the consuming operator, for errors of its key selector.
    pub consumer: String,
    /// The producing task's time accounting, charged with time blocked on full channels.
    pub load: Arc<TaskLoad>,
}

/// Builds typed plumbing for one record type.
pub trait StreamType: Send + Sync {
    /// The record type's name, for checks and diagnostics.
    fn type_name(&self) -> &'static str;
    /// A bounded channel holding `capacity` messages.
    fn channel(&self, capacity: usize) -> (AnySender, AnyReceiver);
    /// A writer sending to `senders` (one per consumer subtask) with `partitioning`.
    fn writer(
        &self,
        partitioning: &Partitioning,
        senders: Vec<AnySender>,
        settings: WriterSettings,
    ) -> AnyOutput;
    /// An output copying to each of `outputs`.
    fn fan_out(&self, outputs: Vec<AnyOutput>) -> AnyOutput;
    /// An output that drops everything.
    fn discard(&self) -> AnyOutput;
    /// Routes the side output `tag` of a producer to `output`.
    fn side_output(&self, tag: &str, output: AnyOutput) -> SideOutput;
    /// The loop of a task whose head reads this type from `receivers`.
    fn input_task(
        &self,
        receivers: Vec<AnyReceiver>,
        head: AnyOutput,
        in_flight: TaskInFlight,
    ) -> Box<dyn TaskBody>;
    /// The network end of a channel whose consumer runs in another process: serializes what
    /// arrives on `receiver`.
    fn frame_source(&self, receiver: AnyReceiver) -> Box<dyn FrameSource>;
    /// The network end of a channel whose producer runs in another process: deserializes
    /// into `sender`.
    fn frame_sink(&self, sender: AnySender) -> Box<dyn FrameSink>;
}

/// The [`StreamType`] of records of type `T`.
pub struct TypedStream<T>(PhantomData<fn() -> T>);

impl<T: Data> TypedStream<T> {
    /// The stream type of `T`, shareable between graph nodes.
    pub fn arc() -> Arc<dyn StreamType> {
        Arc::new(TypedStream::<T>(PhantomData))
    }
}

/// Recovers the typed output behind `output`.
pub fn downcast_output<T: 'static>(output: AnyOutput) -> Box<dyn Output<T>> {
    *output.downcast::<Box<dyn Output<T>>>().expect("output wired to a stream of its own type")
}

/// Recovers the typed receivers behind `receivers`.
pub fn downcast_receivers<T: 'static>(
    receivers: Vec<AnyReceiver>,
) -> Vec<Receiver<StreamMessage<T>>> {
    receivers
        .into_iter()
        .map(|r| *r.downcast().expect("receiver wired to a stream of its own type"))
        .collect()
}

/// Erases a typed output.
pub fn erase_output<T: 'static>(output: Box<dyn Output<T>>) -> AnyOutput {
    Box::new(output)
}

impl<T: Data> StreamType for TypedStream<T> {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn channel(&self, capacity: usize) -> (AnySender, AnyReceiver) {
        let (sender, receiver) = crossbeam_channel::bounded::<StreamMessage<T>>(capacity);
        (Box::new(sender), Box::new(receiver))
    }

    fn writer(
        &self,
        partitioning: &Partitioning,
        senders: Vec<AnySender>,
        settings: WriterSettings,
    ) -> AnyOutput {
        let senders: Vec<Sender<StreamMessage<T>>> = senders
            .into_iter()
            .map(|s| *s.downcast().expect("sender wired to a stream of its own type"))
            .collect();
        erase_output::<T>(Box::new(ChannelWriter::new(partitioning, senders, settings)))
    }

    fn fan_out(&self, outputs: Vec<AnyOutput>) -> AnyOutput {
        erase_output::<T>(Box::new(FanOut::new(outputs.into_iter().map(downcast_output).collect())))
    }

    fn discard(&self) -> AnyOutput {
        erase_output::<T>(Box::new(DiscardOutput))
    }

    fn side_output(&self, tag: &str, output: AnyOutput) -> SideOutput {
        SideOutput::new(&OutputTag::<T>::new(tag), downcast_output(output))
    }

    fn input_task(
        &self,
        receivers: Vec<AnyReceiver>,
        head: AnyOutput,
        in_flight: TaskInFlight,
    ) -> Box<dyn TaskBody> {
        Box::new(InputTask::one_input(
            downcast_receivers::<T>(receivers),
            downcast_output::<T>(head),
            in_flight,
        ))
    }

    fn frame_source(&self, receiver: AnyReceiver) -> Box<dyn FrameSource> {
        let receiver = *receiver.downcast().expect("receiver wired to a stream of its own type");
        Box::new(TypedFrameSource::<T>(receiver))
    }

    fn frame_sink(&self, sender: AnySender) -> Box<dyn FrameSink> {
        let sender = *sender.downcast().expect("sender wired to a stream of its own type");
        Box::new(TypedFrameSink::<T>(sender))
    }
}
