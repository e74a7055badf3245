//! The write-ahead copy of an exactly-once sink transaction: its records, encoded one after
//! another while they are written, then frozen into shared bytes that checkpoints clone for
//! free until the transaction commits.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use weir_types::AppendBytes;

use super::ProducerRecord;
use crate::{Error, Result};

/// The records of a pre-committed transaction, in the order they were written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteAhead {
    /// postcard-encoded [`ProducerRecord`]s, one after another.
    encoded: Bytes,
    count: usize,
}

impl WriteAhead {
    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds no record (the transaction had no copy, or nothing was written).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The records, decoded.
    pub fn records(&self) -> Result<Vec<ProducerRecord>> {
        let mut records = Vec::with_capacity(self.count);
        let mut rest = &self.encoded[..];
        while !rest.is_empty() {
            let (record, tail) = postcard::take_from_bytes(rest)
                .map_err(|source| Error::WriteAhead { action: "decode", source })?;
            records.push(record);
            rest = tail;
        }
        Ok(records)
    }
}

/// The copy of a transaction still taking records.
#[derive(Default)]
pub(super) struct WriteAheadBuffer {
    encoded: Vec<u8>,
    count: usize,
}

impl WriteAheadBuffer {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends `record`.
    pub fn push(&mut self, record: &ProducerRecord) -> Result<()> {
        postcard::serialize_with_flavor(record, AppendBytes(&mut self.encoded))
            .map_err(|source| Error::WriteAhead { action: "encode", source })?;
        self.count += 1;
        Ok(())
    }

    /// What was written, frozen; leaves the buffer empty for the next transaction.
    pub fn freeze(&mut self) -> WriteAhead {
        let encoded = std::mem::take(&mut self.encoded);
        WriteAhead { encoded: Bytes::from(encoded), count: std::mem::take(&mut self.count) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_and_clones_share_the_bytes() {
        let written = [
            ProducerRecord::new("a", "one").with_key("k"),
            ProducerRecord { timestamp: Some(7), ..ProducerRecord::new("b", vec![0u8, 255]) },
            ProducerRecord::new("a", ""),
        ];
        let mut buffer = WriteAheadBuffer::default();
        assert!(buffer.is_empty());
        for record in &written {
            buffer.push(record).unwrap();
        }
        let frozen = buffer.freeze();
        assert!(buffer.is_empty(), "the buffer starts over");
        assert_eq!(frozen.len(), 3);
        assert_eq!(frozen.records().unwrap(), written);
        let copy = frozen.clone();
        assert_eq!(copy.encoded.as_ptr(), frozen.encoded.as_ptr(), "a clone copies no record");
        assert!(buffer.freeze().records().unwrap().is_empty());
    }

    #[test]
    fn a_damaged_copy_is_an_error() {
        let mut buffer = WriteAheadBuffer::default();
        buffer.push(&ProducerRecord::new("topic", "value")).unwrap();
        let mut frozen = buffer.freeze();
        frozen.encoded = frozen.encoded.slice(..frozen.encoded.len() - 2);
        let error = frozen.records().unwrap_err().to_string();
        assert!(error.contains("write-ahead record"), "{error}");
    }
}
