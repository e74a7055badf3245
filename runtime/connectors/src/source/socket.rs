//! A source reading delimited text from a TCP socket, like Flink's `socketTextStream` (what
//! `nc -lk 9999` feeds).

use std::io::{ErrorKind, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use weir_operators::function::FnResult;
use weir_operators::{RuntimeContext, SourceFunction, SourcePoll, SubtaskInfo};
use weir_types::Record;

use crate::{Error, Result};

/// How long a read blocks before the source returns `Pending`, so cancellation stays prompt.
const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// The pause before reconnecting after the server closed the connection (Flink's value).
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8192;

/// Connects to `host:port` and emits the text between delimiters as `String`s.
///
/// Not parallel: it runs as a single subtask and fails to open with a higher parallelism.
/// With the delimiter `b'\n'`, a trailing `'\r'` is stripped from each line, as Flink does.
/// Bytes that are not UTF-8 are replaced with U+FFFD, as Java's decoder does in Flink. When
/// the server closes the connection, any partial last line is emitted and the source
/// reconnects after 500 ms, up to `max_retries` times over its lifetime; then it finishes.
/// A connection that cannot be established is an error naming the address once no retries
/// are left.
pub struct SocketTextSource {
    host: String,
    port: u16,
    delimiter: u8,
    max_retries: u32,
    retries_used: u32,
    state: State,
    /// Bytes read but not yet emitted; `buffer[scanned..]` was not searched for a delimiter.
    buffer: Vec<u8>,
    scanned: usize,
}

enum State {
    /// Not opened yet.
    Closed,
    Connected(TcpStream),
    /// Waiting to reconnect.
    Waiting {
        retry_at: Instant,
    },
    Done,
}

impl SocketTextSource {
    /// A source reading from `host:port`, splitting on `delimiter` (Flink's default is
    /// `b'\n'`) and reconnecting up to `max_retries` times.
    pub fn new(host: impl Into<String>, port: u16, delimiter: u8, max_retries: u32) -> Self {
        SocketTextSource {
            host: host.into(),
            port,
            delimiter,
            max_retries,
            retries_used: 0,
            state: State::Closed,
            buffer: Vec::new(),
            scanned: 0,
        }
    }

    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn connect(&self) -> Result<TcpStream> {
        let address = self.address();
        let failed = |source| Error::Connect { address: address.clone(), source };
        tracing::info!(address, "connecting to server socket");
        let mut last =
            std::io::Error::new(ErrorKind::NotFound, "the host name resolved to nothing");
        for candidate in (self.host.as_str(), self.port).to_socket_addrs().map_err(failed)? {
            match TcpStream::connect_timeout(&candidate, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(failed)?;
                    return Ok(stream);
                }
                Err(error) => last = error,
            }
        }
        Err(failed(last))
    }

    /// Moves complete lines from the buffer into `out`, at most `max` of them.
    fn take_lines(&mut self, out: &mut Vec<Record<String>>, max: usize) {
        let mut start = 0;
        let mut emitted = 0;
        while emitted < max {
            let Some(found) = self.buffer[self.scanned..].iter().position(|&b| b == self.delimiter)
            else {
                self.scanned = self.buffer.len();
                break;
            };
            let end = self.scanned + found;
            out.push(Record::new(self.decode(&self.buffer[start..end])));
            emitted += 1;
            start = end + 1;
            self.scanned = start;
        }
        self.buffer.drain(..start);
        self.scanned -= start;
    }

    /// Emits what is left in the buffer as the last line of a connection.
    fn take_partial_line(&mut self, out: &mut Vec<Record<String>>) {
        if !self.buffer.is_empty() {
            out.push(Record::new(self.decode(&self.buffer)));
        }
        self.buffer.clear();
        self.scanned = 0;
    }

    fn decode(&self, mut line: &[u8]) -> String {
        if self.delimiter == b'\n' {
            line = line.strip_suffix(b"\r").unwrap_or(line);
        }
        String::from_utf8_lossy(line).into_owned()
    }

    /// The connection ended or could not be made (`failure`): reconnect later if retries are
    /// left, else finish (or fail with `failure`).
    fn after_connection(&mut self, failure: Option<Error>) -> Result<()> {
        if self.retries_used < self.max_retries {
            match &failure {
                Some(error) => tracing::warn!(%error, "retrying in 500 ms"),
                None => tracing::warn!(
                    address = self.address(),
                    "lost connection to server socket; retrying in 500 ms"
                ),
            }
            self.state = State::Waiting { retry_at: Instant::now() + RETRY_DELAY };
            Ok(())
        } else {
            self.state = State::Done;
            failure.map_or(Ok(()), Err)
        }
    }
}

impl Clone for SocketTextSource {
    /// Clones the configuration; the clone is not connected.
    fn clone(&self) -> Self {
        SocketTextSource::new(self.host.clone(), self.port, self.delimiter, self.max_retries)
    }
}

impl std::fmt::Debug for SocketTextSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketTextSource")
            .field("address", &self.address())
            .field("delimiter", &(self.delimiter as char))
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl SourceFunction<String> for SocketTextSource {
    fn open(&mut self, info: &SubtaskInfo, _ctx: &mut RuntimeContext<'_>) -> FnResult {
        Error::check_not_parallel("SocketTextSource", info.parallelism)?;
        match self.connect() {
            Ok(stream) => self.state = State::Connected(stream),
            Err(error) => self.after_connection(Some(error))?,
        }
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Record<String>>, max: usize) -> FnResult<SourcePoll> {
        let before = out.len();
        self.take_lines(out, max);
        if out.len() > before {
            return Ok(SourcePoll::Ready);
        }
        match &mut self.state {
            State::Closed => unreachable!("SocketTextSource polled before open"),
            State::Done => Ok(SourcePoll::Finished),
            State::Waiting { retry_at } => {
                let now = Instant::now();
                if now < *retry_at {
                    return Ok(SourcePoll::Pending((*retry_at - now).min(READ_TIMEOUT)));
                }
                self.retries_used += 1;
                match self.connect() {
                    Ok(stream) => self.state = State::Connected(stream),
                    Err(error) => self.after_connection(Some(error))?,
                }
                Ok(if matches!(self.state, State::Done) {
                    SourcePoll::Finished
                } else {
                    SourcePoll::Ready
                })
            }
            State::Connected(stream) => {
                let len = self.buffer.len();
                self.buffer.resize(len + READ_CHUNK, 0);
                let read = stream.read(&mut self.buffer[len..]);
                self.buffer.truncate(len + *read.as_ref().unwrap_or(&0));
                match read {
                    Ok(0) => {
                        self.take_partial_line(out);
                        self.after_connection(None)?;
                        Ok(if matches!(self.state, State::Done) {
                            SourcePoll::Finished
                        } else {
                            SourcePoll::Ready
                        })
                    }
                    Ok(_) => {
                        self.take_lines(out, max);
                        Ok(SourcePoll::Ready)
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        // The read already waited; let the task flush and check cancellation.
                        Ok(SourcePoll::Pending(Duration::ZERO))
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => Ok(SourcePoll::Ready),
                    Err(source) => {
                        Err(Error::SocketRead { address: self.address(), source }.into())
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpListener;
    use std::thread;

    use super::*;
    use crate::test_util::{drain, info, open_source};

    /// A server on an ephemeral port that serves `connections`, each a list of writes with
    /// a short pause between them, then closes.
    fn serve(connections: Vec<Vec<&'static [u8]>>) -> (u16, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            for writes in connections {
                let (mut stream, _) = listener.accept().unwrap();
                for chunk in writes {
                    stream.write_all(chunk).unwrap();
                    stream.flush().unwrap();
                    thread::sleep(Duration::from_millis(20));
                }
            }
        });
        (port, server)
    }

    fn read_all(source: &mut SocketTextSource, max: usize) -> Vec<String> {
        open_source(source, &info(0, 1)).unwrap();
        drain(source, max).unwrap()
    }

    #[test]
    fn splits_lines_strips_cr_and_emits_the_partial_last_line() {
        let (port, server) =
            serve(vec![vec![b"hello wor", b"ld\r\nsecond\n\nthi", b"rd\nfourth\nno newline"]]);
        let mut source = SocketTextSource::new("127.0.0.1", port, b'\n', 0);
        let lines = read_all(&mut source, 2);
        assert_eq!(lines, vec!["hello world", "second", "", "third", "fourth", "no newline"]);
        server.join().unwrap();
    }

    #[test]
    fn custom_delimiter_keeps_carriage_returns() {
        let (port, server) = serve(vec![vec![b"a;b\r;c"]]);
        let mut source = SocketTextSource::new("127.0.0.1", port, b';', 0);
        assert_eq!(read_all(&mut source, 100), vec!["a", "b\r", "c"]);
        server.join().unwrap();
    }

    #[test]
    fn reconnects_up_to_max_retries_then_finishes() {
        // Three connections are served, but one retry allows only two.
        let (port, _server) = serve(vec![vec![b"x\n"], vec![b"y\npartial"], vec![b"z\n"]]);
        let mut source = SocketTextSource::new("127.0.0.1", port, b'\n', 1);
        let started = Instant::now();
        assert_eq!(read_all(&mut source, 100), vec!["x", "y", "partial"]);
        assert!(started.elapsed() >= RETRY_DELAY, "reconnecting pauses {RETRY_DELAY:?}");
    }

    #[test]
    fn failed_connection_names_the_address() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut source = SocketTextSource::new("127.0.0.1", port, b'\n', 0);
        let error = open_source(&mut source, &info(0, 1)).unwrap_err().to_string();
        assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");

        // With a retry, open succeeds and the error surfaces once the retry failed too.
        let mut source = SocketTextSource::new("127.0.0.1", port, b'\n', 1);
        open_source(&mut source, &info(0, 1)).unwrap();
        let error = drain(&mut source, 10).unwrap_err().to_string();
        assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    }

    #[test]
    fn an_idle_connection_returns_pending_promptly() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut source = SocketTextSource::new("127.0.0.1", port, b'\n', 0);
        open_source(&mut source, &info(0, 1)).unwrap();
        let (_connection, _) = listener.accept().unwrap();
        let started = Instant::now();
        let mut out = Vec::new();
        assert!(matches!(source.poll(&mut out, 10).unwrap(), SourcePoll::Pending(_)));
        assert!(out.is_empty());
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    }

    #[test]
    fn refuses_parallelism_above_one() {
        let mut source = SocketTextSource::new("127.0.0.1", 9, b'\n', 0);
        let error = open_source(&mut source, &info(1, 2)).unwrap_err().to_string();
        assert!(error.contains("SocketTextSource"), "{error}");
    }
}
