//! Reading a snapshot back for a job about to start: each operator subtask gets the key
//! groups it now owns and its share of the operator list states (its own elements at the
//! same parallelism), whatever the parallelism was when the snapshot was taken; a task's records in flight (unaligned checkpoints) go
//! back to the same subtask, so they need the same parallelism.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use weir_checkpoint::{
    BlockPiece, CheckpointMetadata, KeyGroupBlock, NativeState, OperatorState, Redistribution,
    SnapshotDir, SubtaskState,
};
use weir_operators::StateRestore;
use weir_state::{
    KeyedRestore, LocalDir, NativeRestore, OperatorRestore, remove_dirs_of_dead_processes,
};
use weir_types::{CheckpointId, KeyGroup, KeyGroupRange};

use super::files::{decode_list, decode_pieces};
use crate::{Error, Result};

/// An operator of the job being started, as restore needs to know it.
#[derive(Debug, Clone)]
pub struct OperatorToRestore {
    /// Its state id.
    pub uid: String,
    /// Its name, for messages.
    pub name: String,
    /// Its parallelism now.
    pub parallelism: usize,
    /// Whether it heads a task reading other tasks' output, the only place where records in
    /// flight can be replayed.
    pub reads_inputs: bool,
    /// The subtasks whose keyed state is read: those running here (a worker reads only its
    /// own, not the whole job's).
    pub subtasks: Vec<usize>,
}

/// State read back for every operator subtask of a job.
#[derive(Debug, Default)]
pub struct RestoredState {
    states: HashMap<(String, usize), StateRestore>,
    /// Records in flight per chain head subtask, to replay before any new input.
    in_flight: HashMap<(String, usize), Bytes>,
    /// The checkpoint it came from.
    pub checkpoint_id: CheckpointId,
    /// Where it came from.
    pub url: String,
    /// Whether anything was restored (else every operator starts fresh).
    from_snapshot: bool,
    /// Shared files of the job's own storage that the restored checkpoint references: later
    /// checkpoints reuse them instead of writing them again.
    pub confirmed_shared: HashSet<String>,
}

impl RestoredState {
    /// The state of subtask `subtask` of operator `uid` (empty if it had none, but marked
    /// as restored when the job restores from a snapshot).
    pub fn take(&mut self, uid: &str, subtask: usize) -> StateRestore {
        let mut state = self.states.remove(&(uid.to_string(), subtask)).unwrap_or_default();
        if self.from_snapshot {
            state.operator.mark_restored();
        }
        state
    }

    /// The records in flight on the inputs of the task headed by subtask `subtask` of
    /// operator `uid`, if the snapshot holds some.
    pub fn take_in_flight(&mut self, uid: &str, subtask: usize) -> Option<Bytes> {
        self.in_flight.remove(&(uid.to_string(), subtask))
    }
}

/// Reads the snapshot in `dir` (described by `metadata`) for `operators`.
pub async fn load(
    dir: &SnapshotDir,
    metadata: &CheckpointMetadata,
    operators: &[OperatorToRestore],
    max_parallelism: usize,
    allow_non_restored_state: bool,
) -> Result<RestoredState> {
    let restore_error = |reason: String| Error::Restore { url: dir.url().to_string(), reason };
    if metadata.max_parallelism != max_parallelism {
        return Err(restore_error(format!(
            "it was taken with max_parallelism {} but the job now has {max_parallelism}; \
             key groups cannot be remapped, so set max_parallelism back to {}",
            metadata.max_parallelism, metadata.max_parallelism
        )));
    }
    let unmatched: Vec<String> = metadata
        .operators
        .iter()
        .filter(|stored| !operators.iter().any(|operator| operator.uid == stored.uid))
        .map(|stored| format!("'{}' (uid {})", stored.name, stored.uid))
        .collect();
    if !unmatched.is_empty() && !allow_non_restored_state {
        return Err(restore_error(format!(
            "it holds state of operators this job does not have: {}. Give operators the same \
             uid(...) as before, or set checkpointing.allow_non_restored_state = true to drop \
             that state",
            unmatched.join(", ")
        )));
    }
    let mut restored = RestoredState {
        states: HashMap::new(),
        in_flight: HashMap::new(),
        checkpoint_id: metadata.checkpoint_id,
        url: dir.url().to_string(),
        from_snapshot: true,
        confirmed_shared: HashSet::new(),
    };
    for operator in operators {
        let Some(stored) = metadata.operator(&operator.uid) else { continue };
        for (subtask, bytes) in read_in_flight(dir, metadata, stored, operator).await? {
            restored.in_flight.insert((operator.uid.clone(), subtask), bytes);
        }
        let range_of =
            |subtask| KeyGroupRange::for_subtask(max_parallelism, operator.parallelism, subtask);
        let ranges: Vec<_> = operator.subtasks.iter().map(|&subtask| range_of(subtask)).collect();
        let natives = download_natives(dir, stored, &ranges).await?;
        for (&subtask, range) in operator.subtasks.iter().zip(ranges) {
            let mut keyed = read_key_groups(dir, stored, range).await?;
            for native in
                natives.iter().filter(|native| native.key_group_range.overlap(&range).is_some())
            {
                keyed.add_native(native.clone());
            }
            let key = (operator.uid.clone(), subtask);
            restored
                .states
                .insert(key, StateRestore { keyed, operator: OperatorRestore::default() });
        }
        let rescaled = stored.parallelism != operator.parallelism;
        for (name, redistribution, by_subtask) in read_lists(dir, stored).await? {
            let all: Vec<Vec<u8>> =
                by_subtask.iter().flat_map(|(_, e)| e.iter().cloned()).collect();
            for subtask in 0..operator.parallelism {
                let share = match redistribution {
                    Redistribution::Union => all.clone(),
                    // As Flink: at the same parallelism each subtask gets its own elements back
                    // (sinks name transactions after their subtask, see TransactionalKafkaSink).
                    Redistribution::Split if !rescaled => (by_subtask.iter())
                        .filter(|(old, _)| *old == subtask)
                        .flat_map(|(_, elements)| elements.iter().cloned())
                        .collect(),
                    Redistribution::Split => {
                        let (n, p) = (all.len(), operator.parallelism);
                        all[subtask * n / p..(subtask + 1) * n / p].to_vec()
                    }
                };
                let key = (operator.uid.clone(), subtask);
                restored.states.entry(key).or_default().operator.add(&name, share);
            }
        }
    }
    Ok(restored)
}

/// The records in flight `stored` holds, per subtask; an error when they cannot go back to
/// the subtask that read them.
async fn read_in_flight(
    dir: &SnapshotDir,
    metadata: &CheckpointMetadata,
    stored: &OperatorState,
    operator: &OperatorToRestore,
) -> Result<Vec<(usize, Bytes)>> {
    let held: Vec<_> = stored
        .subtasks
        .iter()
        .filter_map(|subtask| Some((subtask.subtask, &subtask.file, subtask.in_flight?)))
        .collect();
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let refuse = |reason: String| {
        let (name, uid, id) = (&operator.name, &operator.uid, metadata.checkpoint_id);
        Err(Error::Restore {
            url: dir.url().to_string(),
            reason: format!(
                "operator '{name}' (uid {uid}) holds records in flight at unaligned checkpoint \
                 {id}, {reason}"
            ),
        })
    };
    if stored.parallelism != operator.parallelism {
        let (old, new) = (stored.parallelism, operator.parallelism);
        return refuse(format!(
            "taken at parallelism {old}: they can only be replayed at that parallelism, not at \
             {new}. Restore at parallelism {old}; to rescale, take a savepoint of that run \
             (savepoints are always aligned) and restore the savepoint at parallelism {new}"
        ));
    }
    if !operator.reads_inputs {
        return refuse(
            "but no longer heads a task that reads other tasks' output (its chaining changed); \
             restore with the chaining it had, or from a savepoint (always aligned)"
                .to_string(),
        );
    }
    let mut in_flight = Vec::with_capacity(held.len());
    for (subtask, file, block) in held {
        let mut bytes = dir.read_ranges(file, &[block.range()]).await?;
        in_flight.push((subtask, bytes.pop().unwrap_or_default()));
    }
    Ok(in_flight)
}

/// The blocks of the key groups in `range`, from every stored subtask that held some.
async fn read_key_groups(
    dir: &SnapshotDir,
    stored: &OperatorState,
    range: KeyGroupRange,
) -> Result<KeyedRestore> {
    let mut blocks = Vec::new();
    for subtask in &stored.subtasks {
        let wanted: Vec<_> =
            subtask.key_groups.iter().filter(|block| range.contains(block.group)).collect();
        let (pieced, whole): (Vec<_>, Vec<_>) =
            wanted.into_iter().partition(|block| block.pieces.is_some());
        if !whole.is_empty() {
            let ranges: Vec<_> = whole.iter().map(|block| block.block.range()).collect();
            let bytes = dir.read_ranges(&subtask.file, &ranges).await?;
            blocks.extend(whole.iter().map(|block| block.group).zip(bytes));
        }
        if !pieced.is_empty() {
            blocks.extend(read_pieced(dir, subtask, &pieced).await?);
        }
    }
    KeyedRestore::decode(blocks)
        .map_err(|source| Error::Restore { url: dir.url().to_string(), reason: source.to_string() })
}

/// The blocks of an incremental heap checkpoint: their lists of pieces read, each shared
/// file's pieces fetched together, then joined block by block.
async fn read_pieced(
    dir: &SnapshotDir,
    subtask: &SubtaskState,
    blocks: &[&KeyGroupBlock],
) -> Result<Vec<(KeyGroup, Bytes)>> {
    let corrupt = |reason: String| Error::Restore { url: dir.url().to_string(), reason };
    let lists: Vec<_> =
        blocks.iter().filter_map(|block| block.pieces.map(|list| list.range())).collect();
    let lists = dir.read_ranges(&subtask.file, &lists).await?;
    let lists = (lists.iter())
        .map(|list| decode_pieces(list))
        .collect::<Result<Vec<Vec<BlockPiece>>, _>>()
        .map_err(|error| corrupt(format!("subtask {}: {error}", subtask.subtask)))?;
    let mut by_file: BTreeMap<u32, Vec<Range<u64>>> = BTreeMap::new();
    for piece in lists.iter().flatten() {
        by_file.entry(piece.file).or_default().push(piece.offset..piece.offset + piece.len);
    }
    let mut fetched: BTreeMap<u32, std::vec::IntoIter<Bytes>> = BTreeMap::new();
    for (file, ranges) in by_file {
        let Some(name) = subtask.shared_files.get(file as usize) else {
            let index = subtask.subtask;
            return Err(corrupt(format!("subtask {index} refers to shared file {file} of none")));
        };
        fetched.insert(file, dir.read_shared_ranges(name, &ranges).await?.into_iter());
    }
    // Pieces come back in the order they were asked for, file by file.
    let mut next = |file: u32| {
        fetched.get_mut(&file).and_then(Iterator::next).expect("fetched above, one per piece")
    };
    let mut joined = Vec::with_capacity(blocks.len());
    for (block, pieces) in blocks.iter().zip(&lists) {
        let bytes = match &pieces[..] {
            [piece] => next(piece.file), // no copy
            pieces => {
                let mut bytes = Vec::with_capacity(block.block.len as usize);
                pieces.iter().for_each(|piece| bytes.extend_from_slice(&next(piece.file)));
                Bytes::from(bytes)
            }
        };
        joined.push((block.group, bytes));
    }
    Ok(joined)
}

/// Downloads the native checkpoints of the subtasks of `stored` whose key groups some subtask
/// now owning one of `ranges` needs, each once, into local directories (shared between the
/// new subtasks that need them, removed when the last one is done with it).
async fn download_natives(
    dir: &SnapshotDir,
    stored: &OperatorState,
    ranges: &[KeyGroupRange],
) -> Result<Vec<NativeRestore>> {
    let needed = stored.subtasks.iter().filter_map(|subtask| {
        let native = subtask.native.as_ref()?;
        let needed = ranges.iter().any(|range| range.overlap(&subtask.key_group_range).is_some());
        needed.then(|| download_native(dir, subtask, native))
    });
    futures::future::try_join_all(needed).await
}

/// Downloads the files of one subtask's native checkpoint, several at a time; on the local
/// filesystem they are hard links to the stored files (the download is only read: a restore
/// links or copies its files again into the instance's working directory).
async fn download_native(
    dir: &SnapshotDir,
    subtask: &SubtaskState,
    native: &NativeState,
) -> Result<NativeRestore> {
    let local = LocalDir::adopt(new_download_dir(dir)?);
    let mut downloads = tokio::task::JoinSet::new();
    for file in &native.files {
        let (dir, target) = (dir.clone(), local.path().join(&file.name));
        let private = format!("{}/{}", native.dir, file.name);
        let shared = file.shared.clone();
        downloads.spawn(async move {
            match shared {
                Some(id) => dir.get_shared_local(&id, &target).await,
                None => dir.link_local(&private, &target).await,
            }
        });
    }
    while let Some(done) = downloads.join_next().await {
        done.map_err(|error| Error::Restore {
            url: dir.url().to_string(),
            reason: format!("a download stopped: {error}"),
        })??;
    }
    let shared_ids = native
        .files
        .iter()
        .filter_map(|file| Some((file.name.clone(), file.shared.clone()?)))
        .collect();
    tracing::info!(
        url = dir.url(),
        subtask = subtask.subtask,
        files = native.files.len(),
        local = %local.path().display(),
        "downloaded native checkpoint"
    );
    Ok(NativeRestore { dir: local, key_group_range: subtask.key_group_range, shared_ids })
}

/// A new local directory for a download from `dir`.
fn new_download_dir(dir: &SnapshotDir) -> Result<PathBuf> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let root = std::env::temp_dir().join("weir-restore");
    remove_dirs_of_dead_processes(&root);
    let path = root.join(format!("{}-{sequence}", std::process::id()));
    std::fs::create_dir_all(&path).map_err(|source| Error::Restore {
        url: dir.url().to_string(),
        reason: format!("cannot create the download directory {}: {source}", path.display()),
    })?;
    Ok(path)
}

/// Every operator list state of `stored`: its elements over all stored subtasks, in order.
/// Elements of one operator list state, by the subtask that stored them.
type ListsBySubtask = Vec<(usize, Vec<Vec<u8>>)>;

async fn read_lists(
    dir: &SnapshotDir,
    stored: &OperatorState,
) -> Result<Vec<(String, Redistribution, ListsBySubtask)>> {
    let mut lists: Vec<(String, Redistribution, ListsBySubtask)> = Vec::new();
    for subtask in &stored.subtasks {
        if subtask.operator_lists.is_empty() {
            continue;
        }
        let ranges: Vec<_> = subtask.operator_lists.iter().map(|list| list.block.range()).collect();
        let bytes = dir.read_ranges(&subtask.file, &ranges).await?;
        for (list, bytes) in subtask.operator_lists.iter().zip(bytes) {
            let elements = decode_list(&bytes).map_err(|source| Error::Restore {
                url: dir.url().to_string(),
                reason: format!("operator list state '{}': {source}", list.name),
            })?;
            let elements = (subtask.subtask, elements);
            match lists.iter_mut().find(|(name, _, _)| *name == list.name) {
                Some((_, _, all)) => all.push(elements),
                None => lists.push((list.name.clone(), list.redistribution, vec![elements])),
            }
        }
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use weir_checkpoint::{
        Block, CheckpointStorage, FORMAT_VERSION, OperatorListBlock, SnapshotKind, StorageOptions,
        SubtaskState,
    };
    use weir_state::OperatorStateStore;

    use super::*;

    /// The directory of checkpoint 9 under `root`.
    fn checkpoint_dir(root: &std::path::Path) -> SnapshotDir {
        let storage =
            CheckpointStorage::new(&root.display().to_string(), "job", &StorageOptions::default())
                .unwrap();
        storage.checkpoint_dir(9)
    }

    /// Stores `bytes` as the file `count-{subtask}` of `dir`.
    fn put(dir: &SnapshotDir, subtask: usize, bytes: Vec<u8>) -> String {
        let file = format!("count-{subtask}");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(dir.put(&file, bytes.into())).unwrap();
        file
    }

    /// The state of subtask `subtask` of `count` (at parallelism 2), in `file`.
    fn subtask_state(subtask: usize, file: String) -> SubtaskState {
        SubtaskState {
            subtask,
            file,
            key_group_range: KeyGroupRange::for_subtask(128, 2, subtask),
            key_groups: Vec::new(),
            operator_lists: Vec::new(),
            in_flight: None,
            shared_files: Vec::new(),
            native: None,
        }
    }

    /// Checkpoint 9 with one operator `count` at parallelism 2 and `subtasks`.
    fn metadata(subtasks: Vec<SubtaskState>) -> CheckpointMetadata {
        CheckpointMetadata {
            format_version: FORMAT_VERSION,
            job_name: "job".into(),
            checkpoint_id: 9,
            kind: SnapshotKind::Checkpoint,
            timestamp_ms: 0,
            max_parallelism: 128,
            operators: vec![OperatorState {
                uid: "count".into(),
                name: "Count".into(),
                parallelism: 2,
                subtasks,
            }],
        }
    }

    /// Checkpoint 9 with one operator `count` at parallelism 2, whose subtask 1 holds
    /// `in_flight` (if any) in its file.
    fn checkpoint(
        root: &std::path::Path,
        in_flight: Option<&[u8]>,
    ) -> (SnapshotDir, CheckpointMetadata) {
        let dir = checkpoint_dir(root);
        let file = put(&dir, 1, in_flight.unwrap_or_default().to_vec());
        let block = in_flight.map(|records| Block { offset: 0, len: records.len() as u64 });
        let subtask = SubtaskState { in_flight: block, ..subtask_state(1, file) };
        (dir, metadata(vec![subtask]))
    }

    /// Checkpoint 9 whose two subtasks of `count` hold `lists` in the split list state `l`.
    fn checkpoint_with_lists(
        root: &std::path::Path,
        lists: [&[u32]; 2],
    ) -> (SnapshotDir, CheckpointMetadata) {
        let dir = checkpoint_dir(root);
        let subtasks: Vec<SubtaskState> = (lists.iter().enumerate())
            .map(|(subtask, values)| {
                let elements: Vec<Vec<u8>> =
                    values.iter().map(|v| postcard::to_allocvec(v).unwrap()).collect();
                let bytes = postcard::to_allocvec(&elements).unwrap();
                let block = Block { offset: 0, len: bytes.len() as u64 };
                let file = put(&dir, subtask, bytes);
                let list = OperatorListBlock {
                    name: "l".into(),
                    redistribution: Redistribution::Split,
                    block,
                };
                SubtaskState { operator_lists: vec![list], ..subtask_state(subtask, file) }
            })
            .collect();
        (dir, metadata(subtasks))
    }

    fn restore(
        dir: &SnapshotDir,
        metadata: &CheckpointMetadata,
        parallelism: usize,
    ) -> Result<RestoredState> {
        let operator = OperatorToRestore {
            uid: "count".into(),
            name: "Count".into(),
            parallelism,
            reads_inputs: true,
            subtasks: (0..parallelism).collect(),
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(load(dir, metadata, &[operator], 128, false))
    }

    #[test]
    fn records_in_flight_go_back_to_the_subtask_that_read_them() {
        let root = tempfile::tempdir().unwrap();
        let (dir, metadata) = checkpoint(root.path(), Some(b"records"));
        let mut restored = restore(&dir, &metadata, 2).unwrap();
        assert_eq!(restored.take_in_flight("count", 0), None);
        assert_eq!(restored.take_in_flight("count", 1).as_deref(), Some(&b"records"[..]));
    }

    #[test]
    fn records_in_flight_refuse_another_parallelism_and_name_the_fix() {
        let root = tempfile::tempdir().unwrap();
        let (dir, metadata) = checkpoint(root.path(), Some(b"records"));
        let error = restore(&dir, &metadata, 3).unwrap_err().to_string();
        for part in [
            "operator 'Count' (uid count)",
            "unaligned checkpoint 9",
            "taken at parallelism 2",
            "not at 3",
            "Restore at parallelism 2",
            "take a savepoint",
        ] {
            assert!(error.contains(part), "{part:?} missing in: {error}");
        }
        let (dir, metadata) = checkpoint(root.path(), None);
        assert!(restore(&dir, &metadata, 3).is_ok(), "without records in flight it rescales");
    }

    /// The values subtask `subtask` of `count` gets of the list state `l`.
    fn share(restored: &mut RestoredState, subtask: usize) -> Vec<u32> {
        let mut store = OperatorStateStore::new();
        store.restore(restored.take("count", subtask).operator);
        let list = store.list_state::<u32>("l").unwrap();
        list.get(&store).to_vec()
    }

    #[test]
    fn split_lists_go_back_to_their_subtask_at_the_same_parallelism_and_spread_otherwise() {
        let root = tempfile::tempdir().unwrap();
        let (dir, metadata) = checkpoint_with_lists(root.path(), [&[1, 2, 3], &[4]]);
        let mut restored = restore(&dir, &metadata, 2).unwrap();
        assert_eq!(share(&mut restored, 0), [1, 2, 3], "even if the shares are uneven");
        assert_eq!(share(&mut restored, 1), [4]);
        let mut restored = restore(&dir, &metadata, 4).unwrap();
        let shares: Vec<Vec<u32>> = (0..4).map(|s| share(&mut restored, s)).collect();
        assert_eq!(shares, [[1], [2], [3], [4]], "rescaled: spread evenly");
    }
}
