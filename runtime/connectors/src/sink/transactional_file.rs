//! An exactly-once sink writing records as lines of part files that become visible only
//! when committed, named as by Flink's `FileSink`.

use std::collections::HashMap;
use std::fmt::Display;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use weir_operators::SubtaskInfo;
use weir_operators::builtin::TwoPhaseCommitSink;
use weir_operators::function::FnResult;
use weir_types::Timestamp;

use crate::{Error, Result};

/// A transaction of [`TransactionalFileSink`]: one part file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartFile {
    /// The name it gets when committed (`part-{run}-{subtask}-{n}`).
    pub name: String,
    /// Lines written to it; a transaction without lines has no file.
    pub lines: u64,
}

/// Writes each record with `Display` on its own line, into part files of the directory
/// given (created if missing) that become visible only when their transaction commits.
///
/// Run it with [`weir_operators::builtin::TwoPhaseCommitSinkOperator`] for exactly-once
/// output: each transaction (one per checkpoint interval) is one part file, named as by
/// Flink's `FileSink`. It is written as the hidden in-progress file
/// `.part-{run}-{subtask}-{n}.inprogress`, flushed to disk and renamed to the hidden pending
/// file `.part-{run}-{subtask}-{n}.pending` when the checkpoint barrier passes
/// (pre-commit), and renamed to the visible `part-{run}-{subtask}-{n}` when the checkpoint
/// completes (commit). `run` is random hex chosen when the sink opens, so names never
/// collide across restarts or parallelism changes. Readers must skip names starting with
/// `.` or `_`, as [`crate::TextFileSource`] does; they then see committed output only.
pub struct TransactionalFileSink<T> {
    dir: PathBuf,
    /// `part-{run}-{subtask}`, set in `open`.
    prefix: Option<String>,
    /// The `n` of the next transaction.
    next_part: u64,
    /// The in-progress files of the transactions written to and not pre-committed, by name.
    writers: HashMap<String, BufWriter<File>>,
    _type: PhantomData<fn(T)>,
}

impl<T> TransactionalFileSink<T> {
    /// A sink writing part files into the directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TransactionalFileSink {
            dir: dir.into(),
            prefix: None,
            next_part: 0,
            writers: HashMap::new(),
            _type: PhantomData,
        }
    }

    fn path(&self, name: &str, stage: Stage) -> PathBuf {
        part_path(&self.dir, name, stage)
    }
}

impl<T> Clone for TransactionalFileSink<T> {
    /// Clones the configuration; the clone has no open file.
    fn clone(&self) -> Self {
        TransactionalFileSink::new(self.dir.clone())
    }
}

impl<T> std::fmt::Debug for TransactionalFileSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalFileSink").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Where a part file is in its life.
#[derive(Clone, Copy)]
enum Stage {
    /// Being written.
    InProgress,
    /// Pre-committed: durable, waiting for its checkpoint to complete.
    Pending,
    /// Committed: visible.
    Committed,
}

/// The path of the part file `name` of `dir` at `stage`.
fn part_path(dir: &Path, name: &str, stage: Stage) -> PathBuf {
    match stage {
        Stage::InProgress => dir.join(format!(".{name}.inprogress")),
        Stage::Pending => dir.join(format!(".{name}.pending")),
        Stage::Committed => dir.join(name),
    }
}

/// Random hex telling this run of a subtask from every other: hashes the time and process
/// id with the standard library's randomly keyed hasher.
fn random_run_id() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

fn rename(from: PathBuf, to: PathBuf) -> Result<()> {
    std::fs::rename(&from, &to).map_err(|source| Error::Rename { from, to, source })
}

/// Makes the renames in `dir` durable. Directories cannot be synced on Windows; there it
/// does nothing.
fn sync_dir(dir: &Path) -> Result<()> {
    if cfg!(unix) {
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| Error::Sync { path: dir.into(), source })?;
    }
    Ok(())
}

/// Deletes `path`; a missing file is fine.
fn delete(path: PathBuf) -> Result<()> {
    match std::fs::remove_file(&path) {
        Err(source) if source.kind() != io::ErrorKind::NotFound => {
            Err(Error::Delete { path, source })
        }
        _ => Ok(()),
    }
}

impl<T: Display> TwoPhaseCommitSink<T> for TransactionalFileSink<T> {
    type Transaction = PartFile;

    fn open(&mut self, info: &SubtaskInfo) -> FnResult {
        std::fs::create_dir_all(&self.dir)
            .map_err(|source| Error::Create { path: self.dir.clone(), source })?;
        let prefix = format!("part-{}-{}", random_run_id(), info.index);
        tracing::debug!(dir = %self.dir.display(), prefix, "transactional file sink opened");
        self.prefix = Some(prefix);
        Ok(())
    }

    fn begin_transaction(&mut self) -> FnResult<PartFile> {
        let prefix = self.prefix.as_ref().expect("TransactionalFileSink used before open");
        let name = format!("{prefix}-{}", self.next_part);
        self.next_part += 1;
        Ok(PartFile { name, lines: 0 })
    }

    fn write(&mut self, txn: &mut PartFile, value: T, _timestamp: Option<Timestamp>) -> FnResult {
        let PartFile { name, lines } = txn;
        let path = || part_path(&self.dir, name, Stage::InProgress);
        if !self.writers.contains_key(name.as_str()) {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path())
                .map_err(|source| Error::Create { path: path(), source })?;
            self.writers.insert(name.clone(), BufWriter::new(file));
        }
        let writer = self.writers.get_mut(name.as_str()).expect("inserted above");
        writeln!(writer, "{value}").map_err(|source| Error::WriteFile { path: path(), source })?;
        *lines += 1;
        Ok(())
    }

    fn pre_commit(&mut self, PartFile { name, lines }: &mut PartFile) -> FnResult {
        if *lines == 0 {
            return Ok(());
        }
        let in_progress = self.path(name, Stage::InProgress);
        let writer =
            self.writers.remove(name.as_str()).expect("pre-commit of a part this sink wrote");
        let file = writer.into_inner().map_err(|error| Error::WriteFile {
            path: in_progress.clone(),
            source: error.into_error(),
        })?;
        file.sync_all().map_err(|source| Error::Sync { path: in_progress.clone(), source })?;
        rename(in_progress, self.path(name, Stage::Pending))?;
        sync_dir(&self.dir)?;
        Ok(())
    }

    fn commit(&mut self, PartFile { name, lines }: PartFile) -> FnResult {
        if lines == 0 {
            return Ok(());
        }
        let (pending, committed) =
            (self.path(&name, Stage::Pending), self.path(&name, Stage::Committed));
        match std::fs::rename(&pending, &committed) {
            Ok(()) => {
                sync_dir(&self.dir)?;
                tracing::debug!(file = %committed.display(), lines, "part file committed");
            }
            // Committed before the job was restored.
            Err(error)
                if error.kind() == io::ErrorKind::NotFound
                    && matches!(committed.try_exists(), Ok(true)) =>
            {
                tracing::debug!(file = %committed.display(), "part file already committed");
            }
            Err(source) => {
                return Err(Error::Rename { from: pending, to: committed, source }.into());
            }
        }
        Ok(())
    }

    fn abort(&mut self, PartFile { name, .. }: PartFile) -> FnResult {
        // Restored transactions were stored before they had lines: look for files anyway.
        self.writers.remove(name.as_str());
        delete(self.path(&name, Stage::InProgress))?;
        delete(self.path(&name, Stage::Pending))?;
        tracing::debug!(dir = %self.dir.display(), name, "part file aborted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use weir_operators::builtin::TwoPhaseCommitSinkOperator;
    use weir_operators::{Collector, OneInputOperator, OperatorSnapshot, StateRestore};
    use weir_types::CheckpointBarrier;

    use super::*;
    use crate::test_util::{info, push};

    type Operator = TwoPhaseCommitSinkOperator<String, TransactionalFileSink<String>>;

    /// A sink operator on `dir` for subtask 0 of 1, started from `snapshot` if given.
    fn start(dir: &Path, checkpointing: bool, snapshot: Option<&OperatorSnapshot>) -> Operator {
        let mut restore = StateRestore::default();
        if let Some(snapshot) = snapshot {
            restore.operator.mark_restored();
            for list in &snapshot.lists {
                restore.operator.add(&list.name, list.elements.clone());
            }
        }
        let info = SubtaskInfo { checkpointing, ..info(0, 1) };
        let mut operator = TwoPhaseCommitSinkOperator::new(TransactionalFileSink::new(dir));
        operator.initialize_state(&info, restore).unwrap();
        operator.open(&info).unwrap();
        operator
    }

    fn write(operator: &mut Operator, lines: &[&str]) {
        push(operator, lines.iter().map(|line| line.to_string())).unwrap();
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// The lines of the visible files of `dir`, sorted.
    fn visible_lines(dir: &Path) -> Vec<String> {
        let mut lines: Vec<String> = names(dir)
            .into_iter()
            .filter(|name| !name.starts_with('.') && !name.starts_with('_'))
            .flat_map(|name| {
                let text = std::fs::read_to_string(dir.join(name)).unwrap();
                text.lines().map(str::to_string).collect::<Vec<_>>()
            })
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn lines_are_visible_only_after_commit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut operator = start(&out, true, None);
        write(&mut operator, &["a", "b"]);
        let [in_progress] = &names(&out)[..] else { panic!("{:?}", names(&out)) };
        assert!(in_progress.starts_with(".part-") && in_progress.ends_with("-0-0.inprogress"));

        operator.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap();
        write(&mut operator, &["c"]);
        let listed = names(&out);
        assert!(listed.iter().all(|name| name.starts_with('.')), "{listed:?}");
        assert!(listed.iter().any(|name| name.ends_with("-0-0.pending")), "{listed:?}");
        assert!(visible_lines(&out).is_empty());

        operator.notify_checkpoint_complete(1).unwrap();
        assert_eq!(visible_lines(&out), ["a", "b"]);
        let committed = names(&out).into_iter().find(|name| !name.starts_with('.')).unwrap();
        assert!(committed.starts_with("part-") && committed.ends_with("-0-0"), "{committed}");
    }

    #[test]
    fn abort_removes_in_progress_and_pending_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = TransactionalFileSink::<&str>::new(dir.path());
        sink.open(&info(0, 1)).unwrap();
        let mut pending = sink.begin_transaction().unwrap();
        sink.write(&mut pending, "a", None).unwrap();
        sink.pre_commit(&mut pending).unwrap();
        let mut in_progress = sink.begin_transaction().unwrap();
        sink.write(&mut in_progress, "b", None).unwrap();
        assert_eq!(names(dir.path()).len(), 2);

        sink.abort(pending.clone()).unwrap();
        sink.abort(in_progress).unwrap();
        assert!(names(dir.path()).is_empty());
        sink.abort(pending).unwrap();
    }

    #[test]
    fn recommit_after_restore_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mut operator = start(dir.path(), true, None);
        write(&mut operator, &["a"]);
        let snapshot = operator.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap();
        operator.notify_checkpoint_complete(1).unwrap();
        assert_eq!(visible_lines(dir.path()), ["a"]);

        // Restored from checkpoint 1, whose transaction is already committed.
        start(dir.path(), true, Some(&snapshot));
        assert_eq!(visible_lines(dir.path()), ["a"]);
        assert_eq!(names(dir.path()).len(), 1);
    }

    #[test]
    fn a_transaction_without_lines_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut operator = start(dir.path(), true, None);
        operator.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap();
        operator.notify_checkpoint_complete(1).unwrap();
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn crash_then_restore_commits_pending_and_aborts_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let mut operator = start(dir.path(), true, None);
        write(&mut operator, &["a", "b"]);
        let snapshot = operator.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap();
        write(&mut operator, &["c"]);
        // The job fails before checkpoint 1's completion reaches the sink.
        drop(operator);
        let listed = names(dir.path());
        assert!(listed.iter().any(|name| name.ends_with(".pending")), "{listed:?}");
        assert!(listed.iter().any(|name| name.ends_with(".inprogress")), "{listed:?}");
        assert!(visible_lines(dir.path()).is_empty());

        let mut operator = start(dir.path(), true, Some(&snapshot));
        assert_eq!(visible_lines(dir.path()), ["a", "b"]);
        let listed = names(dir.path());
        assert!(!listed.iter().any(|name| name.starts_with('.')), "{listed:?}");
        // The source replays what followed checkpoint 1.
        write(&mut operator, &["c"]);
        operator.snapshot_state(CheckpointBarrier::checkpoint(2, 0)).unwrap();
        operator.notify_checkpoint_complete(2).unwrap();
        assert_eq!(visible_lines(dir.path()), ["a", "b", "c"]);
        assert_eq!(names(dir.path()).len(), 2, "the new run names its parts apart");
    }

    #[test]
    fn finish_without_checkpointing_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut operator = start(dir.path(), false, None);
        write(&mut operator, &["a"]);
        operator.finish(&mut Collector::default()).unwrap();
        assert_eq!(visible_lines(dir.path()), ["a"]);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("a-file");
        std::fs::write(&blocker, "").unwrap();
        let mut sink = TransactionalFileSink::<i32>::new(blocker.join("out"));
        let error = sink.open(&info(0, 1)).unwrap_err().to_string();
        assert!(error.contains(&blocker.display().to_string()), "{error}");

        let mut sink = TransactionalFileSink::<i32>::new(dir.path());
        sink.open(&info(0, 1)).unwrap();
        let error = sink
            .commit(PartFile { name: "part-lost".to_string(), lines: 1 })
            .unwrap_err()
            .to_string();
        assert!(error.contains(".part-lost.pending"), "{error}");
    }
}
