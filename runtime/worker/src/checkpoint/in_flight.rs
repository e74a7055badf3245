//! Records in flight at unaligned checkpoints: logged as a task reads them, stored as a block
//! of the state file of the operator heading its chain, and replayed into that operator
//! before anything else on restore.
//!
//! The log is a sequence of batches, each a tag byte (which input it came on) followed by the
//! postcard encoding of its records, in the order the task read them.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_checkpoint::Block;
use weir_operators::{OperatorSnapshot, SubtaskInfo, SubtaskSnapshot};
use weir_types::Record;

use super::files::{StateFile, encode};
use crate::InputSlot;

/// The tag of a batch read on the first (or only) input.
const FIRST: u8 = 0;
/// The tag of a batch read on the second input.
const SECOND: u8 = 1;

/// The batches a task read on channels still missing the barrier of its unaligned
/// checkpoint, encoded as they arrive.
#[derive(Debug, Default)]
pub struct InFlightLog {
    bytes: Vec<u8>,
}

impl InFlightLog {
    /// Appends `batch`, read on `input`.
    pub fn log<T: Serialize>(
        &mut self,
        input: InputSlot,
        batch: &[Record<T>],
    ) -> Result<(), postcard::Error> {
        let tag = match input {
            InputSlot::First => FIRST,
            InputSlot::Second => SECOND,
        };
        self.bytes.push(tag);
        self.bytes = postcard::to_extend(batch, std::mem::take(&mut self.bytes))?;
        Ok(())
    }

    /// Drops what was logged (the checkpoint was given up).
    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// What was logged, leaving the log empty.
    pub fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.bytes))
    }
}

/// The records in flight at one task when it took a checkpoint unaligned.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// The operator subtask heading the task's chain, whose state carries them.
    pub head: SubtaskInfo,
    /// The logged batches (empty when nothing was in flight).
    pub bytes: Bytes,
}

impl InFlight {
    /// Adds the records as the `in_flight` block of the head's state file among `files`,
    /// or of a file of its own when the head has no other state; nothing when no record was
    /// in flight.
    pub fn attach_to(self, files: &mut Vec<StateFile>) {
        if self.bytes.is_empty() {
            return;
        }
        let head = &self.head;
        let position = files.iter().position(|file| {
            file.operator_id == head.operator_id && file.state.subtask == head.index
        });
        let file = match position {
            Some(position) => &mut files[position],
            None => {
                let state = OperatorSnapshot::default();
                let empty = encode(&SubtaskSnapshot { info: self.head.clone(), state });
                files.push(empty.expect("an empty snapshot has nothing that could fail"));
                files.last_mut().expect("just pushed")
            }
        };
        let mut bytes = Vec::with_capacity(file.bytes.len() + self.bytes.len());
        bytes.extend_from_slice(&file.bytes);
        let block = Block { offset: bytes.len() as u64, len: self.bytes.len() as u64 };
        bytes.extend_from_slice(&self.bytes);
        file.bytes = Bytes::from(bytes);
        file.state.in_flight = Some(block);
    }
}

/// The in-flight side of a task with network inputs: the operator heading its chain, whose
/// state carries the task's records in flight, and those restored, to replay first.
#[derive(Debug, Clone)]
pub struct TaskInFlight {
    /// The chain head's subtask.
    pub head: SubtaskInfo,
    /// The records in flight at the checkpoint the job restores from, if it had some.
    pub restored: Option<Bytes>,
}

/// One logged batch, on the input it was read on.
#[derive(Debug, PartialEq)]
pub enum InFlightBatch<A, B> {
    /// Read on the first (or only) input.
    First(Vec<Record<A>>),
    /// Read on the second input.
    Second(Vec<Record<B>>),
}

impl<A: DeserializeOwned, B: DeserializeOwned> InFlightBatch<A, B> {
    /// The batches of a log, in the order they were read.
    pub fn decode_all(mut bytes: &[u8]) -> Result<Vec<Self>, postcard::Error> {
        let mut batches = Vec::new();
        while let Some((&tag, rest)) = bytes.split_first() {
            let (batch, rest) = match tag {
                FIRST => {
                    let (records, rest) = postcard::take_from_bytes(rest)?;
                    (InFlightBatch::First(records), rest)
                }
                SECOND => {
                    let (records, rest) = postcard::take_from_bytes(rest)?;
                    (InFlightBatch::Second(records), rest)
                }
                _ => return Err(postcard::Error::DeserializeBadEnum),
            };
            batches.push(batch);
            bytes = rest;
        }
        Ok(batches)
    }
}

#[cfg(test)]
mod tests {
    use weir_operators::SubtaskInfo;

    use super::*;

    fn records(values: &[u64]) -> Vec<Record<u64>> {
        values.iter().map(|&value| Record::with_timestamp(value, value as i64 * 10)).collect()
    }

    #[test]
    fn logged_batches_decode_in_order_on_their_inputs() {
        let mut log = InFlightLog::default();
        log.log(InputSlot::First, &records(&[1, 2])).unwrap();
        log.log(InputSlot::Second, &[Record::new("x".to_string())]).unwrap();
        log.log(InputSlot::First, &records(&[3])).unwrap();
        let bytes = log.take();
        assert!(log.take().is_empty(), "taking empties the log");
        let batches = InFlightBatch::<u64, String>::decode_all(&bytes).unwrap();
        assert_eq!(
            batches,
            [
                InFlightBatch::First(records(&[1, 2])),
                InFlightBatch::Second(vec![Record::new("x".to_string())]),
                InFlightBatch::First(records(&[3])),
            ]
        );
        assert!(
            InFlightBatch::<u64, String>::decode_all(&bytes[..bytes.len() - 1]).is_err(),
            "truncated"
        );
    }

    #[test]
    fn in_flight_records_join_the_head_file_or_get_one_of_their_own() {
        let head = SubtaskInfo::new("Keyed Count", 1, 2, 128);
        let mut log = InFlightLog::default();
        log.log(InputSlot::First, &records(&[5, 6, 7])).unwrap();
        let in_flight = InFlight { head: head.clone(), bytes: log.take() };

        let mut files = Vec::new();
        in_flight.clone().attach_to(&mut files);
        assert_eq!(files.len(), 1, "a file for a head without other state");
        let block = files[0].state.in_flight.expect("an in-flight block");
        assert_eq!((block.offset, block.len), (0, in_flight.bytes.len() as u64));
        assert_eq!(files[0].state.subtask, 1);

        let mut keyed = weir_state::KeyedSnapshot::new();
        keyed.add(70, "count", vec![1, 2, 3]);
        let state = OperatorSnapshot { keyed, lists: Vec::new(), native: None };
        let mut files = vec![encode(&SubtaskSnapshot { info: head.clone(), state }).unwrap()];
        let before = files[0].bytes.len();
        in_flight.clone().attach_to(&mut files);
        let block = files[0].state.in_flight.expect("an in-flight block");
        assert_eq!(block.offset, before as u64, "appended after the state's blocks");
        let range = block.offset as usize..(block.offset + block.len) as usize;
        let batches = InFlightBatch::<u64, ()>::decode_all(&files[0].bytes[range]).unwrap();
        assert_eq!(batches, [InFlightBatch::First(records(&[5, 6, 7]))]);
        assert_eq!(files[0].state.size(), files[0].bytes.len() as u64);

        let mut files = Vec::new();
        InFlight { head, bytes: Bytes::new() }.attach_to(&mut files);
        assert!(files.is_empty(), "nothing in flight, nothing written");
    }
}
