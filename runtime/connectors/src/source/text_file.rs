//! A parallel source reading lines of text files, like Flink's `readTextFile`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir_operators::function::FnResult;
use weir_operators::{RuntimeContext, SourceFunction, SourcePoll, SubtaskInfo};
use weir_state::OperatorStateStore;
use weir_types::{CheckpointId, Record};

use super::file_monitor::FileMonitor;
use crate::{Error, Result};

/// The longest a watching subtask waits before polling again.
const MAX_WAIT: Duration = Duration::from_millis(50);

/// The operator list state holding a subtask's splits not read to their end, one element per
/// split.
const SPLITS_STATE: &str = "text-file-splits";

/// Reads a file, or every regular file of a directory (sorted by name, not recursive; names
/// starting with `.` or `_` are skipped, as Flink's default file filter does), and emits its
/// lines as `String`s without the `"\n"` or `"\r\n"` ending.
///
/// Parallel: subtask `i` of `p` reads the byte range `[i * len / p, (i + 1) * len / p)` of
/// every file, and a line belongs to the range holding its first byte, so the subtasks
/// together emit every line once. Files are read through a buffer, never whole. Bytes that
/// are not UTF-8 fail the source with an error naming the file and offset.
///
/// Checkpoints store, in the operator list state `text-file-splits`, each split not read to
/// its end with the offset of its next unread line (or its first byte, if not opened yet).
/// A restore reads on from there, also at another parallelism: the splits are dealt out over
/// the new subtasks, and each still owns the lines that start in its range. The files are
/// not listed again, and split paths must be valid UTF-8 to be stored.
///
/// With [`Self::monitor_continuously`] the source never ends: it lists the directory every
/// interval (Flink's `FileSource.monitorContinuously`), and each file not seen before is read
/// whole by the subtask its path hashes to. Files must appear complete (moved in, not
/// written in place): a file is read up to the length it had when first listed. The files
/// taken are kept in checkpoints (see `FileMonitor`), with the splits not read to their end.
pub struct TextFileSource {
    path: PathBuf,
    monitor_interval: Option<Duration>,
    /// This subtask's ranges, in the order they are read; set in `open`.
    splits: VecDeque<Split>,
    current: Option<SplitReader>,
    /// Set in `open` when watching.
    monitor: Option<FileMonitor>,
}

/// A byte range of one file, owning the lines that start in it.
#[derive(Clone, Debug, PartialEq)]
struct Split {
    path: PathBuf,
    start: u64,
    end: u64,
}

/// A split as stored in operator state: `(path, start, end)`.
type StoredSplit = (PathBuf, u64, u64);

impl Split {
    /// Whether no line can start in the range.
    fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

impl From<StoredSplit> for Split {
    fn from((path, start, end): StoredSplit) -> Self {
        Split { path, start, end }
    }
}

impl From<Split> for StoredSplit {
    fn from(split: Split) -> Self {
        (split.path, split.start, split.end)
    }
}

impl TextFileSource {
    /// A source reading the file or directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TextFileSource {
            path: path.into(),
            monitor_interval: None,
            splits: VecDeque::new(),
            current: None,
            monitor: None,
        }
    }

    /// Keeps watching the directory for new files, listing it every `interval`.
    pub fn monitor_continuously(mut self, interval: Duration) -> Self {
        self.monitor_interval = Some(interval);
        self
    }

    /// What a subtask that has read all its splits does: finish, or scan for new files when
    /// due and wait otherwise.
    fn without_splits(&mut self) -> Result<Option<SourcePoll>> {
        let Some(monitor) = &mut self.monitor else { return Ok(Some(SourcePoll::Finished)) };
        let now = Instant::now();
        let wait = monitor.wait(now);
        if !wait.is_zero() {
            return Ok(Some(SourcePoll::Pending(wait.min(MAX_WAIT))));
        }
        let new = monitor.take_new(list_files(&self.path)?, now);
        self.splits.extend(whole_files(new)?);
        Ok(if self.splits.is_empty() { Some(SourcePoll::Pending(MAX_WAIT)) } else { None })
    }
}

impl Clone for TextFileSource {
    /// Clones the configuration; the clone has not started reading.
    fn clone(&self) -> Self {
        TextFileSource {
            monitor_interval: self.monitor_interval,
            ..TextFileSource::new(self.path.clone())
        }
    }
}

impl std::fmt::Debug for TextFileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextFileSource").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The regular files to read: `path` itself, or the files directly inside it that are not
/// hidden (`.name`) or in-progress/metadata (`_name`), sorted by name.
fn list_files(path: &Path) -> Result<Vec<PathBuf>> {
    let metadata =
        std::fs::metadata(path).map_err(|source| Error::OpenFile { path: path.into(), source })?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let listing = |source| Error::ListDirectory { path: path.into(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(listing)? {
        let entry_path = entry.map_err(listing)?.path();
        let hidden = entry_path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with('.') || name.starts_with('_'));
        // Follows symbolic links, so a link to a file counts as a file.
        if !hidden && std::fs::metadata(&entry_path).is_ok_and(|m| m.is_file()) {
            files.push(entry_path);
        }
    }
    files.sort();
    Ok(files)
}

/// This subtask's byte range of each file.
fn splits_for_subtask(files: Vec<PathBuf>, index: usize, parallelism: usize) -> Result<Vec<Split>> {
    let (index, parallelism) = (index as u128, parallelism.max(1) as u128);
    files
        .into_iter()
        .map(|path| {
            let len = match std::fs::metadata(&path) {
                Ok(metadata) => metadata.len() as u128,
                Err(source) => return Err(Error::OpenFile { path, source }),
            };
            let start = (index * len / parallelism) as u64;
            let end = ((index + 1) * len / parallelism) as u64;
            Ok(Split { path, start, end })
        })
        .collect()
}

/// One split per file, covering it whole.
fn whole_files(files: Vec<PathBuf>) -> Result<Vec<Split>> {
    splits_for_subtask(files, 0, 1)
}

/// Reads the lines of one split.
struct SplitReader {
    split: Split,
    reader: BufReader<File>,
    /// File offset of the next unread byte.
    position: u64,
    line: Vec<u8>,
}

impl SplitReader {
    fn open(split: Split) -> Result<Self> {
        let file = File::open(&split.path)
            .map_err(|source| Error::OpenFile { path: split.path.clone(), source })?;
        let mut reader =
            SplitReader { reader: BufReader::new(file), position: 0, line: Vec::new(), split };
        if reader.split.start > 0 {
            // The line holding byte `start - 1` belongs to an earlier split: skip through its
            // end (just that byte when `start` begins a line, as a resumed split's does).
            let skip_from = reader.split.start - 1;
            reader.reader.seek(SeekFrom::Start(skip_from)).map_err(|e| reader.read_error(e))?;
            reader.position = skip_from;
            reader.read_line()?;
        }
        Ok(reader)
    }

    /// The part of the split still to read: from the start of the next unread line.
    fn remaining(&self) -> Split {
        Split { start: self.position, ..self.split.clone() }
    }

    fn read_error(&self, source: std::io::Error) -> Error {
        Error::ReadFile { path: self.split.path.clone(), source }
    }

    /// Reads the next raw line (with its ending) into `self.line`; false at end of file.
    fn read_line(&mut self) -> Result<bool> {
        self.line.clear();
        let read = self.reader.read_until(b'\n', &mut self.line).map_err(|e| self.read_error(e))?;
        self.position += read as u64;
        Ok(read > 0)
    }

    /// The next line of this split, or `None` when the split is done.
    fn next_line(&mut self) -> Result<Option<String>> {
        let line_start = self.position;
        if line_start >= self.split.end || !self.read_line()? {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        String::from_utf8(line).map(Some).map_err(|e| Error::InvalidUtf8 {
            path: self.split.path.clone(),
            offset: line_start + e.utf8_error().valid_up_to() as u64,
        })
    }
}

impl SourceFunction<String> for TextFileSource {
    fn open(&mut self, info: &SubtaskInfo, ctx: &mut RuntimeContext<'_>) -> FnResult {
        let stored = ctx.operator_state().list_state::<StoredSplit>(SPLITS_STATE)?;
        self.monitor = match self.monitor_interval {
            Some(interval) => Some(FileMonitor::open(
                interval,
                info.index,
                info.parallelism,
                ctx.operator_state(),
            )?),
            None => None,
        };
        let splits = if ctx.is_restored() {
            stored.get(ctx.operator_state()).iter().cloned().map(Split::from).collect()
        } else if let Some(monitor) = &mut self.monitor {
            whole_files(monitor.take_new(list_files(&self.path)?, Instant::now()))?
        } else {
            splits_for_subtask(list_files(&self.path)?, info.index, info.parallelism)?
        };
        self.splits = splits.into();
        self.current = None;
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Record<String>>, max: usize) -> FnResult<SourcePoll> {
        let mut emitted = 0;
        while emitted < max {
            let reader = match &mut self.current {
                Some(reader) => reader,
                None => match self.splits.pop_front() {
                    // An empty range holds no line start: skip it without opening the file.
                    Some(split) if split.is_empty() => continue,
                    Some(split) => self.current.insert(SplitReader::open(split)?),
                    None if emitted > 0 && self.monitor.is_some() => break,
                    None => match self.without_splits()? {
                        Some(poll) => return Ok(poll),
                        None => continue,
                    },
                },
            };
            match reader.next_line()? {
                Some(line) => {
                    out.push(Record::new(line));
                    emitted += 1;
                }
                None => self.current = None,
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn snapshot_state(&mut self, _: CheckpointId, state: &mut OperatorStateStore) -> FnResult {
        let current = self.current.as_ref().map(SplitReader::remaining);
        let remaining = current.into_iter().chain(self.splits.iter().cloned());
        let stored = remaining.filter(|split| !split.is_empty()).map(StoredSplit::from).collect();
        state.list_state::<StoredSplit>(SPLITS_STATE)?.update(state, stored);
        if let Some(monitor) = &self.monitor {
            monitor.snapshot(state)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::test_util::{
        RESCALINGS, Subtask, drain, info, open_source, output_across_restores, redistribute,
        run_and_fail, run_subtask, sorted, stored_list,
    };

    fn write_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::File::create(&path).unwrap().write_all(content).unwrap();
        path
    }

    /// The lines a reader of the whole file expects.
    fn expected_lines(content: &str) -> Vec<String> {
        content.lines().map(str::to_string).collect()
    }

    /// Every subtask's lines, in subtask order.
    fn read_split(path: &Path, parallelism: usize, max: usize) -> Vec<Vec<String>> {
        let source = TextFileSource::new(path);
        (0..parallelism).map(|i| run_subtask(&source, i, parallelism, max).unwrap()).collect()
    }

    #[test]
    fn union_of_splits_is_every_line_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut varied = String::new();
        for i in 0..200 {
            varied.push_str(&"x".repeat(i * 7 % 23));
            varied.push_str(&format!("line {i}"));
            varied.push_str(if i % 5 == 0 { "\r\n" } else { "\n" });
            if i % 17 == 0 {
                varied.push('\n'); // an empty line
            }
        }
        let cases = [
            ("varied", varied.clone()),
            ("no_trailing_newline", format!("{varied}last without newline")),
            ("empty", String::new()),
            ("only_newlines", "\n\n\n".to_string()),
            ("single_line", "one".to_string()),
            ("short_lines", "a\nbb\nc\n\nddd\ne".to_string()),
            ("unicode", "grüße\nłódź\n日本語のテキスト\n".to_string()),
        ];
        for (name, content) in cases {
            let path = write_file(dir.path(), name, content.as_bytes());
            let expected = expected_lines(&content);
            let mut parallelisms = vec![1, 2, 3, 7, 64];
            if content.len() <= 64 {
                // Small files: every possible set of boundaries, down to one byte per split.
                parallelisms.extend(8..=content.len() + 2);
            }
            for parallelism in parallelisms {
                let splits = read_split(&path, parallelism, 3);
                let union: Vec<String> = splits.concat();
                assert_eq!(union, expected, "{name} with parallelism {parallelism}");
            }
        }
    }

    #[test]
    fn a_split_boundary_at_a_line_start_gives_that_line_to_the_later_split() {
        let dir = tempfile::tempdir().unwrap();
        // 8 bytes, two subtasks: the boundary at byte 4 is exactly where "bbb" starts.
        let path = write_file(dir.path(), "f", b"aaa\nbbb\n");
        assert_eq!(read_split(&path, 2, 10), vec![vec!["aaa"], vec!["bbb"]]);
        // 9 bytes, three subtasks: both boundaries (3 and 6) are line starts.
        let path = write_file(dir.path(), "g", b"aa\nbb\nccc");
        assert_eq!(read_split(&path, 3, 10), vec![vec!["aa"], vec!["bb"], vec!["ccc"]]);
        // 7 bytes, three subtasks: boundaries inside "aaaa" and on its newline.
        let path = write_file(dir.path(), "h", b"aaaa\nb\n");
        assert_eq!(read_split(&path, 3, 10), vec![vec!["aaaa"], vec![], vec!["b"]]);
    }

    #[test]
    fn reads_the_files_of_a_directory_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        write_file(dir.path(), "2", b"two a\ntwo b\n");
        write_file(dir.path(), "1", b"one a\none b");
        write_file(dir.path(), "3", b"");
        std::fs::create_dir(dir.path().join("0-nested")).unwrap();
        write_file(&dir.path().join("0-nested"), "ignored", b"nested\n");
        write_file(dir.path(), ".DS_Store", b"hidden\n");
        write_file(dir.path(), "_SUCCESS", b"marker\n");
        let expected = vec!["one a", "one b", "two a", "two b"];
        assert_eq!(read_split(dir.path(), 1, 3).concat(), expected);
        // With two subtasks, each reads its half of every file.
        assert_eq!(
            read_split(dir.path(), 2, 3),
            vec![vec!["one a", "two a"], vec!["one b", "two b"]]
        );
    }

    #[test]
    fn a_missing_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.txt");
        let mut source = TextFileSource::new(&path);
        let error = open_source(&mut source, &info(0, 1)).unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_path_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), "bad", b"fine\nok \xff bad\n");
        let error = run_subtask(&TextFileSource::new(&path), 0, 1, 10).unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("byte offset 8"), "{error}");
    }

    #[test]
    fn polls_emit_at_most_max_and_ready_until_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), "f", b"1\n2\n3\n4\n5\n");
        let mut source = TextFileSource::new(&path);
        open_source(&mut source, &info(0, 1)).unwrap();
        let mut out = Vec::new();
        assert_eq!(source.poll(&mut out, 2).unwrap(), SourcePoll::Ready);
        assert_eq!(out.len(), 2);
        assert_eq!(source.poll(&mut out, 2).unwrap(), SourcePoll::Ready);
        assert_eq!(source.poll(&mut out, 2).unwrap(), SourcePoll::Finished);
        let values: Vec<String> = out.into_iter().map(|r| r.value).collect();
        assert_eq!(values, vec!["1", "2", "3", "4", "5"]);
    }

    #[test]
    fn restores_resume_at_the_next_unread_line_at_any_parallelism() {
        let dir = tempfile::tempdir().unwrap();
        let mut long = String::new();
        for i in 0..60 {
            long.push_str(&format!("{}line {i}", "y".repeat(i * 5 % 13)));
            long.push_str(if i % 4 == 0 { "\r\n" } else { "\n" });
        }
        write_file(dir.path(), "a", long.as_bytes());
        write_file(dir.path(), "b", "b1\nb2\n\nb4\ngrüße\nb6 without newline".as_bytes());
        write_file(dir.path(), "c", b"");
        let source = TextFileSource::new(dir.path());
        let expected = sorted(read_split(dir.path(), 1, 100).concat());
        for parallelisms in RESCALINGS {
            for last in [1, 2, 3] {
                for (polls, max) in [(0, 1), (1, 1), (2, 1), (3, 2), (5, 1), (7, 3), (40, 1)] {
                    let output =
                        output_across_restores(&source, parallelisms, last, polls, max).unwrap();
                    assert_eq!(
                        sorted(output),
                        expected,
                        "{parallelisms:?} then {last}, {polls} polls of {max}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_split_is_stored_from_its_next_unread_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), "f", b"aaa\nbbb\ncc\nd\n");
        let source = TextFileSource::new(&path);
        // 13 bytes. Subtask 0 of 2 owns the lines starting in bytes 0..6: it read "aaa",
        // "bbb" (at 4) is next. Subtask 1 owns 6..13, read "cc" (the first line starting
        // there, at 8), and "d" (at 11) is next.
        let (output, checkpoint) = run_and_fail(&source, &[2], 1, 1).unwrap();
        assert_eq!(output, ["aaa", "cc"]);
        let stored = stored_list::<StoredSplit>(&checkpoint, SPLITS_STATE);
        assert_eq!(stored, [(path.clone(), 4, 6), (path.clone(), 11, 13)]);
        // Restored at parallelism 1, the resumed offsets are line starts and are read as such.
        let mut subtask = Subtask::open(&source, 0, 1, redistribute(&checkpoint, 1).pop()).unwrap();
        assert_eq!(drain(&mut subtask.source, 10).unwrap(), ["bbb", "d"]);
    }

    #[test]
    fn a_subtask_restored_without_a_split_finishes_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), "f", b"a\nb\nc\n");
        let source = TextFileSource::new(&path);
        let (output, checkpoint) = run_and_fail(&source, &[1], 1, 1).unwrap();
        assert_eq!(output, ["a"]);
        // One split left, dealt out over three subtasks: only the last gets it.
        let mut restores = redistribute(&checkpoint, 3).into_iter();
        for index in 0..2 {
            Subtask::open(&source, index, 3, restores.next()).unwrap().assert_finishes_empty();
        }
        let mut subtask = Subtask::open(&source, 2, 3, restores.next()).unwrap();
        assert_eq!(drain(&mut subtask.source, 10).unwrap(), ["b", "c"]);
    }

    /// Moves a complete file into `dir`, as writers feeding a watched directory must.
    fn move_in(dir: &Path, name: &str, content: &str) {
        let staged = write_file(dir, &format!(".{name}"), content.as_bytes());
        std::fs::rename(staged, dir.join(name)).unwrap();
    }

    #[test]
    fn monitoring_reads_each_new_file_once_across_restores_and_rescaling() {
        let dir = tempfile::tempdir().unwrap();
        move_in(dir.path(), "a.txt", "a1\na2\n");
        let source = TextFileSource::new(dir.path()).monitor_continuously(Duration::ZERO);
        let mut subtasks: Vec<_> =
            (0..2).map(|i| Subtask::open(&source, i, 2, None).unwrap()).collect();
        let mut seen = Vec::new();
        let poll_all = |subtasks: &mut Vec<Subtask<TextFileSource>>, seen: &mut Vec<String>| {
            for subtask in subtasks.iter_mut() {
                seen.extend(subtask.poll_times(3, 10).unwrap());
            }
        };
        poll_all(&mut subtasks, &mut seen);
        assert_eq!(sorted(seen.clone()), ["a1", "a2"], "a file is read by one subtask");
        move_in(dir.path(), "b.txt", "b1\n");
        poll_all(&mut subtasks, &mut seen);
        assert_eq!(sorted(seen.clone()), ["a1", "a2", "b1"]);

        // Checkpoint, then restore at parallelism 3: nothing is read again, new files are.
        let checkpoint: Vec<_> = subtasks.iter_mut().map(|s| s.snapshot().unwrap()).collect();
        let mut subtasks: Vec<_> = redistribute(&checkpoint, 3)
            .into_iter()
            .enumerate()
            .map(|(i, restore)| Subtask::open(&source, i, 3, Some(restore)).unwrap())
            .collect();
        move_in(dir.path(), "c.txt", "c1\nc2\n");
        let mut after = Vec::new();
        poll_all(&mut subtasks, &mut after);
        assert_eq!(sorted(after), ["c1", "c2"]);
        let mut out = Vec::new();
        let poll = subtasks[0].source.poll(&mut out, 10).unwrap();
        assert!(matches!(poll, SourcePoll::Pending(_)), "a watching source waits: {poll:?}");
    }
}
