//! A sink printing records to stdout or stderr, like Flink's `print()` and `printToErr()`.

use std::fmt::Debug;
use std::io::{self, Write};
use std::marker::PhantomData;

use weir_operators::function::FnResult;
use weir_operators::{Collector, OneInputOperator, SubtaskInfo};
use weir_types::Record;

use crate::Error;

/// Buffered output is handed to the stream once it grows past this many bytes.
const WRITE_THRESHOLD: usize = 64 * 1024;

/// Prints each record with `{:?}` on its own line, prefixed as Flink's `PrintSinkFunction`
/// does: `"2> "` for subtask 2 (from 1) when the parallelism is above 1, `"id:2> "` with an
/// identifier, `"id> "` with an identifier at parallelism 1, nothing otherwise.
///
/// A batch is written under one lock of the stream and flushed at its end, so lines of
/// different subtasks never interleave mid-line. A closed stream (a broken pipe) fails the
/// job instead of panicking.
pub struct PrintSink<T> {
    identifier: Option<String>,
    to_stderr: bool,
    prefix: String,
    buffer: Vec<u8>,
    _type: PhantomData<fn(T)>,
}

/// The prefix of every printed line, as Flink's `PrintSinkOutputWriter` builds it (an empty
/// identifier counts as none).
pub(crate) fn print_prefix(identifier: Option<&str>, index: usize, parallelism: usize) -> String {
    let identifier = identifier.unwrap_or("");
    let prefix = match (identifier.is_empty(), parallelism > 1) {
        (_, false) => identifier.to_string(),
        (true, true) => format!("{}", index + 1),
        (false, true) => format!("{identifier}:{}", index + 1),
    };
    if prefix.is_empty() { prefix } else { format!("{prefix}> ") }
}

/// Appends one line per record to `buffer`, handing it to `stream` whenever it grows large.
fn write_batch<T: Debug, W: Write>(
    stream: &mut W,
    buffer: &mut Vec<u8>,
    prefix: &str,
    batch: &mut Vec<Record<T>>,
) -> io::Result<()> {
    for record in batch.drain(..) {
        buffer.extend_from_slice(prefix.as_bytes());
        writeln!(buffer, "{:?}", record.value)?;
        if buffer.len() >= WRITE_THRESHOLD {
            stream.write_all(buffer)?;
            buffer.clear();
        }
    }
    let written = stream.write_all(buffer);
    buffer.clear();
    written?;
    stream.flush()
}

impl<T> PrintSink<T> {
    /// A sink printing to stdout, or to stderr when `to_stderr`, with lines prefixed by
    /// `identifier` and the subtask.
    pub fn new(identifier: Option<String>, to_stderr: bool) -> Self {
        PrintSink {
            identifier,
            to_stderr,
            prefix: String::new(),
            buffer: Vec::new(),
            _type: PhantomData,
        }
    }

    fn stream_name(&self) -> &'static str {
        if self.to_stderr { "stderr" } else { "stdout" }
    }
}

impl<T> Clone for PrintSink<T> {
    fn clone(&self) -> Self {
        PrintSink::new(self.identifier.clone(), self.to_stderr)
    }
}

impl<T> std::fmt::Debug for PrintSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrintSink")
            .field("identifier", &self.identifier)
            .field("to_stderr", &self.to_stderr)
            .finish_non_exhaustive()
    }
}

impl<T: Debug> OneInputOperator for PrintSink<T> {
    type In = T;
    type Out = ();

    fn open(&mut self, info: &SubtaskInfo) -> FnResult {
        self.prefix = print_prefix(self.identifier.as_deref(), info.index, info.parallelism);
        Ok(())
    }

    fn process_batch(&mut self, batch: &mut Vec<Record<T>>, _out: &mut Collector<()>) -> FnResult {
        if batch.is_empty() {
            return Ok(());
        }
        let written = if self.to_stderr {
            write_batch(&mut io::stderr().lock(), &mut self.buffer, &self.prefix, batch)
        } else {
            write_batch(&mut io::stdout().lock(), &mut self.buffer, &self.prefix, batch)
        };
        batch.clear();
        Ok(written.map_err(|source| Error::Print { stream: self.stream_name(), source })?)
    }

    fn finish(&mut self, _out: &mut Collector<()>) -> FnResult {
        let flushed = if self.to_stderr { io::stderr().flush() } else { io::stdout().flush() };
        Ok(flushed.map_err(|source| Error::Print { stream: self.stream_name(), source })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{info, push};

    #[test]
    fn prefixes_match_flink() {
        assert_eq!(print_prefix(None, 0, 1), "");
        assert_eq!(print_prefix(None, 0, 4), "1> ");
        assert_eq!(print_prefix(None, 3, 4), "4> ");
        assert_eq!(print_prefix(Some("sensor"), 0, 1), "sensor> ");
        assert_eq!(print_prefix(Some("sensor"), 1, 2), "sensor:2> ");
        assert_eq!(print_prefix(Some(""), 1, 2), "2> ");
        assert_eq!(print_prefix(Some(""), 0, 1), "");
    }

    #[test]
    fn a_batch_is_one_line_per_record_with_the_prefix() {
        let mut stream = Vec::new();
        let mut buffer = Vec::new();
        let mut batch = vec![Record::new(("a", 1)), Record::new(("b", 2))];
        write_batch(&mut stream, &mut buffer, "3> ", &mut batch).unwrap();
        assert!(batch.is_empty());
        assert_eq!(String::from_utf8(stream).unwrap(), "3> (\"a\", 1)\n3> (\"b\", 2)\n");
    }

    #[test]
    fn large_batches_are_written_in_pieces_and_nothing_is_lost() {
        let mut stream = Vec::new();
        let mut buffer = Vec::new();
        let mut batch: Vec<Record<u64>> = (0..50_000).map(Record::new).collect();
        write_batch(&mut stream, &mut buffer, "", &mut batch).unwrap();
        let text = String::from_utf8(stream).unwrap();
        assert_eq!(text.lines().count(), 50_000);
        assert_eq!(text.lines().last(), Some("49999"));
        assert!(buffer.is_empty());
    }

    /// A stream whose reader went away.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_is_an_error() {
        let mut buffer = Vec::new();
        let mut batch = vec![Record::new(1)];
        let error = write_batch(&mut ClosedPipe, &mut buffer, "", &mut batch).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        assert!(buffer.is_empty(), "a failed batch is not printed again with the next");
    }

    #[test]
    fn prints_to_stderr() {
        let mut sink = PrintSink::new(Some("weir-connectors test".to_string()), true);
        sink.open(&info(0, 1)).unwrap();
        push(&mut sink, vec!["printed to stderr by a test"]).unwrap();
        sink.finish(&mut Collector::default()).unwrap();
    }
}
