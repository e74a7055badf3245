//! Exactly-once sinks through two-phase commit, as Flink's `TwoPhaseCommitSinkFunction`.
//!
//! A [`TwoPhaseCommitSink`] writes records into transactions that stay invisible until they
//! are committed. The [`TwoPhaseCommitSinkOperator`] drives it along the checkpoints: when a
//! barrier passes it pre-commits the current transaction (making it durable) and begins the
//! next; when the checkpoint completes it commits what was pre-committed for it. On restore,
//! the transactions pre-committed for the restored (hence complete) checkpoint are committed
//! and the one that was open is aborted, so every record becomes visible exactly once.

use std::collections::VecDeque;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use weir_state::{OperatorListState, OperatorStateStore};
use weir_types::{CheckpointBarrier, CheckpointId, Data, Record, Timestamp};

use crate::function::FnResult;
use crate::{Collector, OneInputOperator, OperatorSnapshot, StateRestore, SubtaskInfo};

/// The operator list state holding a subtask's transactions.
const STATE_NAME: &str = "two-phase-commit";

/// A sink whose output becomes visible only when a transaction is committed (Flink's
/// `TwoPhaseCommitSinkFunction`); run it with [`TwoPhaseCommitSinkOperator`].
///
/// A transaction's handle is stored in checkpoints and may be committed or aborted by another
/// sink instance after a restore, so it must name everything needed to finish it (a file
/// name, a transaction id), not hold open resources; the sink keeps those itself.
pub trait TwoPhaseCommitSink<T>: Send {
    /// What identifies a transaction; stored in checkpoints.
    type Transaction: Data;

    /// Called once per subtask, before anything else (including the recovery of restored
    /// transactions).
    fn open(&mut self, _info: &SubtaskInfo) -> FnResult {
        Ok(())
    }
    /// Starts a new transaction.
    fn begin_transaction(&mut self) -> FnResult<Self::Transaction>;
    /// Writes `value` (with its event `timestamp`, if any) into `txn`.
    fn write(
        &mut self,
        txn: &mut Self::Transaction,
        value: T,
        timestamp: Option<Timestamp>,
    ) -> FnResult;
    /// First phase: makes `txn` durable. Once this returns, `txn` must survive a crash and
    /// remain committable; nothing more is written to it.
    fn pre_commit(&mut self, txn: &mut Self::Transaction) -> FnResult;
    /// Second phase: makes a pre-committed `txn` visible. Must be idempotent: after a
    /// restore it may be called again for a transaction already committed.
    fn commit(&mut self, txn: Self::Transaction) -> FnResult;
    /// Discards `txn`. Must be idempotent: after a restore it may be called for a
    /// transaction already aborted (or never written to).
    fn abort(&mut self, txn: Self::Transaction) -> FnResult;
    /// Commits a transaction restored from a checkpoint (default: [`Self::commit`]).
    fn recover_and_commit(&mut self, txn: Self::Transaction) -> FnResult {
        self.commit(txn)
    }
    /// Aborts a transaction restored from a checkpoint (default: [`Self::abort`]).
    fn recover_and_abort(&mut self, txn: Self::Transaction) -> FnResult {
        self.abort(txn)
    }
    /// The input ended and every transaction is committed or aborted: nothing else is
    /// called. Releases what the sink keeps for an instance restored after a failure (a sink
    /// dropped without `close` failed).
    fn close(&mut self) -> FnResult {
        Ok(())
    }
}

/// One element of the list state. Kept as a flat list so that, when the job is restored at
/// another parallelism, each new subtask takes over whichever transactions its share holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum StoredTransaction<Txn> {
    /// Pre-committed at `checkpoint`, not known to be committed yet: committed on restore.
    Pending {
        /// The checkpoint the transaction belongs to.
        checkpoint: CheckpointId,
        /// The transaction.
        txn: Txn,
    },
    /// Open at the checkpoint: aborted on restore.
    Current(Txn),
}

/// Runs a [`TwoPhaseCommitSink`] as a sink operator with exactly-once output.
///
/// - `initialize_state` opens the sink, commits the transactions pre-committed for the
///   restored checkpoint ([`TwoPhaseCommitSink::recover_and_commit`], in checkpoint order),
///   aborts the transaction that was open then ([`TwoPhaseCommitSink::recover_and_abort`]),
///   and begins a new one.
/// - Records are written to the current transaction.
/// - At a checkpoint barrier the current transaction is pre-committed and kept pending for
///   the checkpoint, and a new one begins; pending and current transactions are stored in
///   the list state `"two-phase-commit"`.
/// - When a checkpoint completes, every transaction pending for it or an earlier checkpoint
///   is committed, oldest first. An aborted checkpoint changes nothing: a later one covers
///   its transactions.
/// - At the end of input, without checkpointing, the current transaction is pre-committed
///   and committed; with checkpointing, the final checkpoint (the first taken after the end)
///   commits it. Then the transaction begun after it, empty, is aborted and the sink closed
///   ([`TwoPhaseCommitSink::close`]); later checkpoints store no transaction.
pub struct TwoPhaseCommitSinkOperator<T, S: TwoPhaseCommitSink<T>> {
    sink: S,
    /// Holds the list state; built in `initialize_state`.
    state: OperatorStateStore,
    transactions: Option<OperatorListState<StoredTransaction<S::Transaction>>>,
    /// Pre-committed transactions by increasing checkpoint id.
    pending: VecDeque<(CheckpointId, S::Transaction)>,
    /// The transaction records go to; `None` before `initialize_state` and after a `finish`
    /// without checkpointing.
    current: Option<S::Transaction>,
    checkpointing: bool,
    /// The input ended.
    finished: bool,
    /// The first checkpoint taken after the end of input: its completion commits the last
    /// records.
    final_checkpoint: Option<CheckpointId>,
    _input: PhantomData<fn(T)>,
}

impl<T, S: TwoPhaseCommitSink<T>> TwoPhaseCommitSinkOperator<T, S> {
    /// Runs `sink`.
    pub fn new(sink: S) -> Self {
        TwoPhaseCommitSinkOperator {
            sink,
            state: OperatorStateStore::new(),
            transactions: None,
            pending: VecDeque::new(),
            current: None,
            checkpointing: false,
            finished: false,
            final_checkpoint: None,
            _input: PhantomData,
        }
    }

    fn current(&mut self) -> (&mut S, &mut S::Transaction) {
        let txn = self.current.as_mut().expect("initialized before processing, not finished");
        (&mut self.sink, txn)
    }

    /// Aborts the transaction begun after the final checkpoint (nothing was written to it)
    /// and closes the sink.
    fn close(&mut self) -> FnResult {
        if let Some(txn) = self.current.take() {
            self.sink.abort(txn)?;
        }
        self.sink.close()
    }
}

impl<T, S: TwoPhaseCommitSink<T>> OneInputOperator for TwoPhaseCommitSinkOperator<T, S> {
    type In = T;
    type Out = ();

    fn initialize_state(&mut self, info: &SubtaskInfo, restore: StateRestore) -> FnResult {
        self.checkpointing = info.checkpointing();
        self.sink.open(info)?;
        self.state.restore(restore.operator);
        let transactions =
            self.state.list_state::<StoredTransaction<S::Transaction>>(STATE_NAME)?;
        let mut restored = transactions.get(&self.state).to_vec();
        transactions.clear(&mut self.state);
        // After a rescale, those of several old subtasks follow each other: commit oldest
        // first, then abort.
        restored.sort_by_key(|stored| match stored {
            StoredTransaction::Pending { checkpoint, .. } => (false, *checkpoint),
            StoredTransaction::Current(_) => (true, 0),
        });
        for stored in restored {
            match stored {
                StoredTransaction::Pending { txn, .. } => self.sink.recover_and_commit(txn)?,
                StoredTransaction::Current(txn) => self.sink.recover_and_abort(txn)?,
            }
        }
        self.transactions = Some(transactions);
        self.current = Some(self.sink.begin_transaction()?);
        Ok(())
    }

    fn process_batch(&mut self, batch: &mut Vec<Record<T>>, _out: &mut Collector<()>) -> FnResult {
        let (sink, txn) = self.current();
        batch.drain(..).try_for_each(|record| sink.write(txn, record.value, record.timestamp))
    }

    fn snapshot_state(&mut self, barrier: CheckpointBarrier) -> FnResult<OperatorSnapshot> {
        if self.current.is_some() {
            let (sink, txn) = self.current();
            sink.pre_commit(txn)?;
            let next = self.sink.begin_transaction()?;
            let committing = self.current.replace(next).expect("a current transaction");
            self.pending.push_back((barrier.id, committing));
        }
        if self.finished {
            self.final_checkpoint.get_or_insert(barrier.id);
        }

        let stored = self
            .pending
            .iter()
            .map(|(checkpoint, txn)| StoredTransaction::Pending {
                checkpoint: *checkpoint,
                txn: txn.clone(),
            })
            .chain(self.current.clone().map(StoredTransaction::Current))
            .collect();
        let transactions = self.transactions.as_ref().expect("initialized before a checkpoint");
        transactions.update(&mut self.state, stored);
        Ok(OperatorSnapshot { lists: self.state.snapshot()?, ..Default::default() })
    }

    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> FnResult {
        while self.pending.front().is_some_and(|(pending, _)| *pending <= checkpoint) {
            let (_, txn) = self.pending.pop_front().expect("a pending transaction");
            self.sink.commit(txn)?;
        }
        if self.current.is_some() && self.final_checkpoint.is_some_and(|last| checkpoint >= last) {
            self.close()?;
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Collector<()>) -> FnResult {
        self.finished = true;
        if !self.checkpointing {
            let (sink, txn) = self.current();
            sink.pre_commit(txn)?;
            let txn = self.current.take().expect("a current transaction");
            self.sink.commit(txn)?;
            self.sink.close()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use weir_state::OperatorRestore;

    use super::*;

    /// What the fake sink was asked to do, by transaction id.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Call {
        Begin(u64),
        PreCommit(u64),
        Commit(u64),
        Abort(u64),
        Close,
    }

    /// The fake sink's world, shared by the instances before and after a restore.
    #[derive(Default)]
    struct World {
        next_id: u64,
        calls: Vec<Call>,
        committed: BTreeSet<u64>,
        /// What readers see: the values of committed transactions.
        visible: Vec<i32>,
        fail_pre_commit: bool,
    }

    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct FakeTxn {
        id: u64,
        values: Vec<i32>,
    }

    /// Keeps each transaction's values in the transaction itself; commit publishes them once.
    struct FakeSink(Arc<Mutex<World>>);

    impl FakeSink {
        fn log(&self, call: Call) {
            self.0.lock().unwrap().calls.push(call);
        }
    }

    impl TwoPhaseCommitSink<i32> for FakeSink {
        type Transaction = FakeTxn;

        fn begin_transaction(&mut self) -> FnResult<FakeTxn> {
            let id = {
                let mut world = self.0.lock().unwrap();
                world.next_id += 1;
                world.next_id
            };
            self.log(Call::Begin(id));
            Ok(FakeTxn { id, values: Vec::new() })
        }

        fn write(&mut self, txn: &mut FakeTxn, value: i32, _: Option<Timestamp>) -> FnResult {
            txn.values.push(value);
            Ok(())
        }

        fn pre_commit(&mut self, txn: &mut FakeTxn) -> FnResult {
            if self.0.lock().unwrap().fail_pre_commit {
                return Err("pre-commit failed".into());
            }
            self.log(Call::PreCommit(txn.id));
            Ok(())
        }

        fn commit(&mut self, txn: FakeTxn) -> FnResult {
            self.log(Call::Commit(txn.id));
            let mut world = self.0.lock().unwrap();
            if world.committed.insert(txn.id) {
                world.visible.extend(txn.values);
            }
            Ok(())
        }

        fn abort(&mut self, txn: FakeTxn) -> FnResult {
            self.log(Call::Abort(txn.id));
            Ok(())
        }

        fn close(&mut self) -> FnResult {
            self.log(Call::Close);
            Ok(())
        }
    }

    type Operator = TwoPhaseCommitSinkOperator<i32, FakeSink>;

    fn info(checkpointing: bool) -> SubtaskInfo {
        let checkpoint_interval = checkpointing.then(|| std::time::Duration::from_secs(1));
        SubtaskInfo { checkpoint_interval, ..SubtaskInfo::new("sink", 0, 1, 128) }
    }

    /// A started operator over `world`, restored from `restore`.
    fn start(world: &Arc<Mutex<World>>, checkpointing: bool, restore: StateRestore) -> Operator {
        let mut operator = TwoPhaseCommitSinkOperator::new(FakeSink(world.clone()));
        let info = info(checkpointing);
        operator.initialize_state(&info, restore).unwrap();
        operator.open(&info).unwrap();
        operator
    }

    /// The restore of `snapshot`'s list elements (`range` of them), as the runtime builds it.
    fn restore(snapshot: &OperatorSnapshot, range: std::ops::Range<usize>) -> StateRestore {
        let mut operator = OperatorRestore::default();
        operator.mark_restored();
        for list in &snapshot.lists {
            operator.add(&list.name, list.elements[range.clone()].to_vec());
        }
        StateRestore { operator, ..Default::default() }
    }

    fn restore_all(snapshot: &OperatorSnapshot) -> StateRestore {
        restore(snapshot, 0..snapshot.lists[0].elements.len())
    }

    fn push(operator: &mut Operator, values: &[i32]) {
        let mut batch = values.iter().map(|&v| Record::new(v)).collect();
        operator.process_batch(&mut batch, &mut Collector::default()).unwrap();
        assert!(batch.is_empty());
    }

    /// Takes the calls logged so far.
    fn calls(world: &Arc<Mutex<World>>) -> Vec<Call> {
        std::mem::take(&mut world.lock().unwrap().calls)
    }

    fn visible(world: &Arc<Mutex<World>>) -> Vec<i32> {
        world.lock().unwrap().visible.clone()
    }

    #[test]
    fn commits_only_when_the_checkpoint_completes() {
        let world = Arc::default();
        let mut operator = start(&world, true, StateRestore::default());
        push(&mut operator, &[1, 2]);
        operator.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap();
        push(&mut operator, &[3]);
        assert!(visible(&world).is_empty(), "pre-committed is not visible");
        assert_eq!(calls(&world), [Call::Begin(1), Call::PreCommit(1), Call::Begin(2)]);

        operator.notify_checkpoint_aborted(1).unwrap();
        assert!(visible(&world).is_empty(), "an aborted checkpoint commits nothing");
        operator.notify_checkpoint_complete(1).unwrap();
        assert_eq!(visible(&world), [1, 2], "records after the barrier wait");
        operator.snapshot_state(CheckpointBarrier::checkpoint(2, 0)).unwrap();
        operator.notify_checkpoint_complete(2).unwrap();
        assert_eq!(visible(&world), [1, 2, 3]);
    }

    #[test]
    fn completion_commits_every_earlier_pending_transaction_in_order() {
        let world = Arc::default();
        let mut operator = start(&world, true, StateRestore::default());
        for checkpoint in 1..=3 {
            push(&mut operator, &[checkpoint as i32]);
            operator.snapshot_state(CheckpointBarrier::checkpoint(checkpoint, 0)).unwrap();
        }
        calls(&world);
        operator.notify_checkpoint_aborted(1).unwrap();
        operator.notify_checkpoint_complete(2).unwrap();
        assert_eq!(calls(&world), [Call::Commit(1), Call::Commit(2)]);
        operator.notify_checkpoint_complete(2).unwrap();
        assert!(calls(&world).is_empty(), "each transaction is committed once");
        operator.notify_checkpoint_complete(3).unwrap();
        assert_eq!(calls(&world), [Call::Commit(3)]);
        assert_eq!(visible(&world), [1, 2, 3]);
    }

    #[test]
    fn restore_commits_pending_and_aborts_current() {
        let world = Arc::default();
        let mut operator = start(&world, true, StateRestore::default());
        push(&mut operator, &[1, 2]);
        let snapshot = operator.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap();
        push(&mut operator, &[3]);
        // The job fails before checkpoint 1's completion reaches the sink.
        drop(operator);
        calls(&world);

        let mut operator = start(&world, true, restore_all(&snapshot));
        assert_eq!(calls(&world), [Call::Commit(1), Call::Abort(2), Call::Begin(3)]);
        assert_eq!(visible(&world), [1, 2]);
        push(&mut operator, &[3]);
        operator.snapshot_state(CheckpointBarrier::checkpoint(2, 0)).unwrap();
        operator.notify_checkpoint_complete(2).unwrap();
        assert_eq!(visible(&world), [1, 2, 3], "replayed records are written once");
    }

    #[test]
    fn recommit_after_restore_is_idempotent() {
        let world = Arc::default();
        let mut operator = start(&world, true, StateRestore::default());
        push(&mut operator, &[1]);
        let snapshot = operator.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap();
        operator.notify_checkpoint_complete(1).unwrap();
        assert_eq!(visible(&world), [1]);
        calls(&world);

        // Restored twice from checkpoint 1: its transaction is committed again each time.
        for _ in 0..2 {
            let mut operator = start(&world, true, restore_all(&snapshot));
            assert_eq!(calls(&world)[..2], [Call::Commit(1), Call::Abort(2)]);
            let next = operator.snapshot_state(CheckpointBarrier::checkpoint(2, 0)).unwrap();
            let stored = &next.lists[0].elements;
            assert_eq!(stored.len(), 2, "restored transactions are not stored again: {stored:?}");
            calls(&world);
        }
        assert_eq!(visible(&world), [1]);
    }

    #[test]
    fn rescaled_restore_finishes_every_share() {
        let world = Arc::default();
        let mut operator = start(&world, true, StateRestore::default());
        for checkpoint in 1..=2 {
            push(&mut operator, &[checkpoint as i32]);
            operator.snapshot_state(CheckpointBarrier::checkpoint(checkpoint, 0)).unwrap();
        }
        // Pending for 1, 2 and 3 (empty), and the current one, dealt out to two new subtasks.
        let snapshot = operator.snapshot_state(CheckpointBarrier::checkpoint(3, 0)).unwrap();
        assert_eq!(snapshot.lists[0].elements.len(), 4);
        calls(&world);
        start(&world, true, restore(&snapshot, 0..2));
        start(&world, true, restore(&snapshot, 2..4));
        let calls = calls(&world);
        for call in [Call::Commit(1), Call::Commit(2), Call::Commit(3), Call::Abort(4)] {
            assert!(calls.contains(&call), "{call:?} missing from {calls:?}");
        }
        assert_eq!(visible(&world), [1, 2]);
    }

    #[test]
    fn finish_without_checkpointing_commits() {
        let world = Arc::default();
        let mut operator = start(&world, false, StateRestore::default());
        push(&mut operator, &[1, 2]);
        operator.finish(&mut Collector::default()).unwrap();
        assert_eq!(
            calls(&world),
            [Call::Begin(1), Call::PreCommit(1), Call::Commit(1), Call::Close]
        );
        assert_eq!(visible(&world), [1, 2]);
    }

    #[test]
    fn finish_with_checkpointing_leaves_the_commit_to_the_final_checkpoint_then_closes() {
        let world = Arc::default();
        let mut operator = start(&world, true, StateRestore::default());
        push(&mut operator, &[1]);
        operator.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap();
        push(&mut operator, &[2]);
        operator.finish(&mut Collector::default()).unwrap();
        operator.notify_checkpoint_complete(1).unwrap();
        assert_eq!(visible(&world), [1], "checkpoint 1 was taken before the end");
        operator.snapshot_state(CheckpointBarrier::checkpoint(2, 0)).unwrap();
        calls(&world);
        operator.notify_checkpoint_complete(2).unwrap();
        assert_eq!(visible(&world), [1, 2]);
        assert_eq!(
            calls(&world),
            [Call::Commit(2), Call::Abort(3), Call::Close],
            "the final checkpoint commits, then the empty transaction is aborted and the sink closed"
        );

        // A checkpoint after the sink closed (another source ended later) stores nothing.
        let snapshot = operator.snapshot_state(CheckpointBarrier::checkpoint(3, 0)).unwrap();
        assert!(snapshot.lists.iter().all(|list| list.elements.is_empty()), "{snapshot:?}");
        operator.notify_checkpoint_complete(3).unwrap();
        assert!(calls(&world).is_empty(), "nothing is called after close");
    }

    #[test]
    fn sink_errors_are_returned() {
        let world: Arc<Mutex<World>> = Arc::default();
        let mut operator = start(&world, true, StateRestore::default());
        push(&mut operator, &[1]);
        world.lock().unwrap().fail_pre_commit = true;
        let error = operator.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap_err();
        assert_eq!(error.to_string(), "pre-commit failed");
    }
}
