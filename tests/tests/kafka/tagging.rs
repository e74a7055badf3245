//! A transactional sink that tags each record with its transaction's token and keeps a
//! ledger of the tokens it committed: how the exactly-once tests tell committed records
//! from aborted ones on tansu.
//!
//! Works around two bugs of tansu's read_committed isolation: its consumers get the records
//! of aborted transactions too, and after some runs of aborts and restarts (all of them ended
//! by an EndTxn the sink logs at debug level) its last stable offset stops moving, hiding
//! every later committed transaction for good. [`Tagging`] writes every record as
//! `token|value`, the token unique to the transaction (and to this attempt of it, in this
//! process), and appends the tokens of the transactions it committed (after
//! `commit_transaction` returned) to the ledger file. A test then reads every record the
//! broker holds and keeps those of committed tokens, which is what read_committed returns
//! from a correct broker; what it asserts about them depends on neither bug.

use std::collections::HashSet;
use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use weir::connectors::kafka::{KafkaTransaction, TransactionalKafkaSink};
use weir::prelude::*;

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(0);
static COMMITS: AtomicU64 = AtomicU64::new(0);
/// Held while a token is appended to a ledger.
static RECORDING: Mutex<()> = Mutex::new(());

/// Where committed tokens are written, and when the process dies.
#[derive(Clone, Debug)]
pub struct Ledger {
    path: PathBuf,
    /// Abort the process at this commit (counted over the process), before committing.
    die_at_commit: Option<u64>,
    /// Whether a restored pre-committed transaction counts as committed: it does after a
    /// task failure (the sink commits it with the failed instance's producer) and with a
    /// write-ahead copy, not in a new process without one (the producer died, and the sink
    /// cannot commit it).
    recovered_commits: bool,
}

impl Ledger {
    /// A ledger in the file `path`.
    pub fn new(path: &Path) -> Self {
        Ledger { path: path.to_path_buf(), die_at_commit: None, recovered_commits: true }
    }

    /// The process aborts at its `n`th commit, just before it, after writing the token of
    /// the transaction it was about to commit to [`Self::dying_token`]'s file.
    pub fn dying_at_commit(self, n: u64) -> Self {
        Ledger { die_at_commit: Some(n), ..self }
    }

    /// Restored pre-committed transactions do not count as committed (they are still
    /// listed in [`Self::recovered`]).
    pub fn in_a_new_process(self) -> Self {
        Ledger { recovered_commits: false, ..self }
    }

    /// The tokens of every committed transaction.
    pub fn committed(&self) -> HashSet<String> {
        lines(&self.path)
    }

    /// The tokens of the pre-committed transactions committed on restore (also counted as
    /// committed, unless [`Self::in_a_new_process`]).
    pub fn recovered(&self) -> HashSet<String> {
        lines(&self.path.with_extension("recovered"))
    }

    /// The token of the transaction the process was about to commit when it died.
    pub fn dying_token(&self) -> Option<String> {
        std::fs::read_to_string(self.path.with_extension("dying")).ok()
    }

    fn record(&self, token: &str) {
        append(&self.path, token);
    }

    fn record_recovered(&self, token: &str) {
        append(&self.path.with_extension("recovered"), token);
        if self.recovered_commits {
            self.record(token);
        }
    }

    fn before_commit(&self, token: &str) {
        let n = COMMITS.fetch_add(1, Ordering::SeqCst) + 1;
        if self.die_at_commit == Some(n) {
            std::fs::write(self.path.with_extension("dying"), token).unwrap();
            std::process::abort();
        }
    }
}

fn lines(path: &Path) -> HashSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(str::to_string).collect()
}

/// Appends `token` to `path` as one line. Subtasks commit at the same moment, and `writeln!`
/// would write the token and the line break separately: two subtasks' lines could interleave
/// (`t1t2\n\n`) and neither token count as committed. So the line is written at once, one
/// writer at a time.
fn append(path: &Path, token: &str) {
    let _one_writer = RECORDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(format!("{token}\n").as_bytes()).unwrap();
}

/// Splits `token|value` records into the values of committed tokens (`committed`) and the
/// records of the others, as `(token, value)`.
pub fn split_committed(
    records: Vec<String>,
    committed: &HashSet<String>,
) -> (Vec<String>, Vec<(String, String)>) {
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    for record in records {
        let (token, value) = record.split_once('|').unwrap();
        if committed.contains(token) {
            kept.push(value.to_string());
        } else {
            dropped.push((token.to_string(), value.to_string()));
        }
    }
    (kept, dropped)
}

/// The exactly-once Kafka sink, tagging records and keeping a [`Ledger`].
pub struct Tagging {
    pub sink: TransactionalKafkaSink<String>,
    pub ledger: Ledger,
}

impl<T: Display + Send> TwoPhaseCommitSink<T> for Tagging {
    type Transaction = (KafkaTransaction, String);

    fn open(&mut self, info: &SubtaskInfo) -> FnResult {
        self.sink.open(info)
    }
    fn begin_transaction(&mut self) -> FnResult<Self::Transaction> {
        let token = format!("{}-{}", std::process::id(), NEXT_TOKEN.fetch_add(1, Ordering::SeqCst));
        Ok((self.sink.begin_transaction()?, token))
    }
    fn write(
        &mut self,
        (txn, token): &mut Self::Transaction,
        value: T,
        ts: Option<Timestamp>,
    ) -> FnResult {
        self.sink.write(txn, format!("{token}|{value}"), ts)
    }
    fn pre_commit(&mut self, (txn, _): &mut Self::Transaction) -> FnResult {
        self.sink.pre_commit(txn)
    }
    fn commit(&mut self, (txn, token): Self::Transaction) -> FnResult {
        self.ledger.before_commit(&token);
        self.sink.commit(txn)?;
        self.ledger.record(&token);
        Ok(())
    }
    fn abort(&mut self, (txn, _): Self::Transaction) -> FnResult {
        self.sink.abort(txn)
    }
    fn recover_and_commit(&mut self, (txn, token): Self::Transaction) -> FnResult {
        self.sink.recover_and_commit(txn)?;
        self.ledger.record_recovered(&token);
        Ok(())
    }
    fn recover_and_abort(&mut self, (txn, _): Self::Transaction) -> FnResult {
        self.sink.recover_and_abort(txn)
    }
    fn close(&mut self) -> FnResult {
        self.sink.close()
    }
}

/// Subtasks commit at the same moment: every token they record reads back, on its own line.
#[test]
fn ledger_keeps_every_token_recorded_at_the_same_time() {
    const THREADS: usize = 4;
    const TOKENS: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(&dir.path().join("committed"));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                (0..TOKENS).for_each(|i| ledger.record(&format!("{thread}-{i}")));
            })
        })
        .collect();
    threads.into_iter().for_each(|thread| thread.join().unwrap());
    let committed = ledger.committed();
    let expected: HashSet<String> =
        (0..THREADS).flat_map(|t| (0..TOKENS).map(move |i| format!("{t}-{i}"))).collect();
    let lost = expected.difference(&committed).count();
    assert_eq!(lost, 0, "{lost} tokens lost of {}", expected.len());
    assert_eq!(committed, expected);
}
