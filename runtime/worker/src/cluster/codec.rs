//! The bytes of a remote channel: each frame is one [`StreamMessage`] serialized with
//! `bitcode`. Measured against postcard (the format of state and in-flight records in
//! checkpoints, where a stable format matters), bincode and JSON by
//! `cargo bench -p weir-types --bench codec`, it encodes and decodes batches faster in total
//! for every record shape tried and writes the fewest bytes (4.4 bytes per `(u64, i64, u64)`
//! record against postcard's 10.9); both ends of a channel run the same binary, so its
//! format need not be stable across versions.
//! The typed ends are built per channel by [`crate::StreamType`], so the data plane itself
//! never knows record types.

use crossbeam_channel::{Receiver, Sender, select};
use weir_types::{Data, StreamMessage};

use crate::exchange::CancelToken;
use crate::exchange::send_or_cancel;

/// Reads a local channel's messages and serializes them for the network.
pub trait FrameSource: Send {
    /// Blocks for the next message and returns it serialized; `None` once the producer
    /// closed the channel (after its end of input and any final barrier) or the job was
    /// cancelled.
    fn next_frame(&mut self, cancel: &CancelToken) -> Option<Result<Vec<u8>, String>>;
}

/// Deserializes frames from the network into a local channel.
pub trait FrameSink: Send {
    /// Hands `frame` on to the consuming task, blocking while its channel is full; returns
    /// whether the frame ended the channel. Fails when the frame does not decode or the job
    /// was cancelled.
    fn deliver(&mut self, frame: &[u8], cancel: &CancelToken) -> Result<bool, String>;
}

/// The [`FrameSource`] of a channel of `T` records.
pub(crate) struct TypedFrameSource<T>(pub(crate) Receiver<StreamMessage<T>>);

/// The [`FrameSink`] of a channel of `T` records.
pub(crate) struct TypedFrameSink<T>(pub(crate) Sender<StreamMessage<T>>);

impl<T: Data> FrameSource for TypedFrameSource<T> {
    fn next_frame(&mut self, cancel: &CancelToken) -> Option<Result<Vec<u8>, String>> {
        let message = select! {
            recv(self.0) -> message => message.ok()?,
            recv(cancel.receiver()) -> _ => return None,
        };
        Some(bitcode::serialize(&message).map_err(|e| e.to_string()))
    }
}

impl<T: Data> FrameSink for TypedFrameSink<T> {
    fn deliver(&mut self, frame: &[u8], cancel: &CancelToken) -> Result<bool, String> {
        let message: StreamMessage<T> = bitcode::deserialize(frame).map_err(|e| {
            format!("a frame of {} bytes does not decode as a message of {}: {e}", frame.len(), {
                std::any::type_name::<T>()
            })
        })?;
        let end = matches!(message, StreamMessage::EndOfInput);
        send_or_cancel(&self.0, message, cancel).map_err(|_| "cancelled".to_string())?;
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use weir_types::{Record, Watermark};

    use super::*;
    use crate::exchange::CancelHandle;

    #[test]
    fn messages_cross_as_frames_in_order() {
        let (_handle, cancel) = CancelHandle::new();
        let (producer, outgoing) = crossbeam_channel::bounded(4);
        let (incoming, consumer) = crossbeam_channel::bounded(4);
        let mut source = TypedFrameSource::<(String, u64)>(outgoing);
        let mut sink = TypedFrameSink::<(String, u64)>(incoming);
        producer.send(StreamMessage::Records(vec![Record::new(("a".to_string(), 1))])).unwrap();
        producer.send(StreamMessage::Watermark(Watermark(7))).unwrap();
        producer.send(StreamMessage::EndOfInput).unwrap();
        let mut ends = Vec::new();
        for _ in 0..3 {
            let frame = source.next_frame(&cancel).unwrap().unwrap();
            ends.push(sink.deliver(&frame, &cancel).unwrap());
        }
        assert_eq!(ends, [false, false, true], "the sink knows the end of input");
        assert!(matches!(consumer.recv().unwrap(), StreamMessage::Records(r) if r[0].value.1 == 1));
        assert!(matches!(consumer.recv().unwrap(), StreamMessage::Watermark(Watermark(7))));
        assert!(matches!(consumer.recv().unwrap(), StreamMessage::EndOfInput));
        drop(producer);
        assert!(source.next_frame(&cancel).is_none(), "a closed producer ends the source");
    }

    #[test]
    fn a_frame_of_another_type_is_a_clear_error() {
        let (_handle, cancel) = CancelHandle::new();
        let (incoming, _consumer) = crossbeam_channel::bounded(1);
        let mut sink = TypedFrameSink::<u64>(incoming);
        let error = sink.deliver(&[0x00, 0xff, 0xff], &cancel).unwrap_err();
        assert!(error.contains("does not decode as a message of u64"), "{error}");
    }
}
