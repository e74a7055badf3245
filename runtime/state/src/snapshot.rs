//! The snapshot format of state, independent of the backend: keyed state as one block per
//! key group (so that a restore at another parallelism reads only the groups it now owns),
//! operator state as lists of serialized elements (so that they can be dealt out again).
//!
//! Within a key group, each named state's section holds its entries `(K, N, V)` in one of two
//! layouts, told apart by the first byte; [`decode_entries`] reads both, so a savepoint
//! restores on any backend whichever wrote it:
//! - **listed**: the number of entries (a varint, never 0: an empty section is left out), then
//!   each entry's key, namespace and value, i.e. a postcard `Vec<(K, N, V)>`. A backend that
//!   stores each entry's bytes (RocksDB) copies them into this layout without decoding them,
//!   and it is all that versions before the runs wrote.
//! - **in runs** ([`append_runs_header`], [`append_run`]): a 0 byte, the number of entries,
//!   then runs of entries that share a namespace, each the namespace, the number of its
//!   entries (at least one) and each entry's key and value. The heap backend and the timers
//!   write it: a window's entries share the window, which is then encoded once per key group
//!   instead of once per entry (a third of the bytes, for small keys and values).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_types::{KeyGroup, KeyGroupRange};

use crate::{
    BlockWriter, Completion, Error, GroupEntries, NativeRestore, Piece, PlacedBlock, Result, codec,
};

/// The keyed state of one operator subtask, per key group and state name: entries encoded
/// when the snapshot was taken, and copies of heap tables that are encoded only when the
/// blocks are asked for, off the task's thread (an asynchronous snapshot: the task pays for
/// the copy, not for the encoding).
#[derive(Debug, Default)]
pub struct KeyedSnapshot {
    groups: BTreeMap<KeyGroup, Vec<(String, Vec<u8>)>>,
    deferred: Vec<DeferredTable>,
}

/// A copy of a registered table, taken at the snapshot, whose key groups are encoded later.
struct DeferredTable {
    name: String,
    range: KeyGroupRange,
    table: Box<dyn FrozenTable>,
}

impl std::fmt::Debug for DeferredTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeferredTable")
            .field("name", &self.name)
            .field("range", &self.range)
            .finish()
    }
}

/// What a table shares with a snapshot taken of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// What changed since the checkpoint before, and what of that ended or changed since
    /// (a checkpoint: see [`crate::cohorts`]).
    Changes,
    /// Everything (a savepoint).
    Everything,
}

impl Sharing {
    /// What a snapshot of `kind` shares.
    pub fn of(kind: weir_types::SnapshotType) -> Self {
        match kind {
            weir_types::SnapshotType::Checkpoint => Sharing::Changes,
            weir_types::SnapshotType::Savepoint(_) => Sharing::Everything,
        }
    }
}

/// A table as it was at a snapshot, shared with whatever encodes it.
pub trait FrozenTable: Send {
    /// Appends the entries of `group` in the canonical encoding, referring to earlier files
    /// for what they hold where `out` may; returns whether it had any.
    fn encode_group<'a>(&'a self, group: KeyGroup, out: &mut GroupEntries<'a>) -> Result<bool>;
    /// Whether it holds no entry.
    fn is_empty(&self) -> bool;
    /// What to tell when the checkpoint it was taken for completes, if it keeps anything
    /// until then.
    fn completion(&self) -> Option<Box<dyn Completion>> {
        None
    }
}

impl KeyedSnapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the entries of state `name` in `group` (in the canonical encoding).
    pub fn add(&mut self, group: KeyGroup, name: &str, entries: Vec<u8>) {
        self.groups.entry(group).or_default().push((name.to_string(), entries));
    }

    /// Adds state `name`, a copy of a table owning `range`, to encode when the blocks are
    /// asked for.
    pub fn defer(&mut self, name: &str, range: KeyGroupRange, table: Box<dyn FrozenTable>) {
        if !table.is_empty() {
            self.deferred.push(DeferredTable { name: name.to_string(), range, table });
        }
    }

    /// Whether no group holds anything.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.deferred.is_empty()
    }

    /// What to tell when the checkpoint it was taken for completes: it may let go of what
    /// its tables keep until then (see [`crate::cohorts`]).
    pub fn completions(&self) -> Vec<Box<dyn Completion>> {
        self.deferred.iter().filter_map(|deferred| deferred.table.completion()).collect()
    }

    /// Each key group with state, encoded as one block, in group order. Encodes the tables
    /// copied at the snapshot, which fails if a value does not serialize.
    pub fn encode_groups(&self) -> Result<KeyGroupBlocks> {
        let mut writer = BlockWriter::full();
        let placed = self.encode_groups_into(&mut writer, &|| false)?.expect("never abandoned");
        let out = writer.finish().0.into_vec();
        let bytes =
            |piece: &Piece| &out[piece.offset as usize..(piece.offset + piece.len) as usize];
        Ok(placed
            .into_iter()
            .map(|block| (block.group, block.pieces.iter().flat_map(bytes).copied().collect()))
            .collect())
    }

    /// [`Self::encode_groups`] through `writer`, which appends each block to its file (no
    /// block is copied on its own first) or refers to earlier files for what they hold,
    /// and returns where each block is; given up (`None`) as soon as `abandoned` says so
    /// between two key groups: the checkpoint was aborted or the run cancelled.
    pub fn encode_groups_into(
        &self,
        writer: &mut BlockWriter<'_>,
        abandoned: &dyn Fn() -> bool,
    ) -> Result<Option<Vec<PlacedBlock>>> {
        let mut groups: BTreeSet<KeyGroup> = self.groups.keys().copied().collect();
        groups.extend(self.deferred.iter().flat_map(|deferred| deferred.range.iter()));
        // One buffer per deferred table, reused from group to group.
        let mut scratch: Vec<GroupEntries<'_>> =
            self.deferred.iter().map(|_| writer.group_entries()).collect();
        let mut placed = Vec::new();
        for group in groups {
            if abandoned() {
                return Ok(None);
            }
            let mut sections: Vec<(&str, Section<'_, '_>)> = Vec::new();
            if let Some(eager) = self.groups.get(&group) {
                sections.extend(
                    eager.iter().map(|(name, entries)| (name.as_str(), Section::Bytes(entries))),
                );
            }
            let mut any = Vec::with_capacity(self.deferred.len());
            for (deferred, entries) in self.deferred.iter().zip(&mut scratch) {
                entries.clear();
                let mut encode = || deferred.table.encode_group(group, entries);
                let written = deferred.range.contains(group)
                    && encode().map_err(|error| error.in_state(&deferred.name))?;
                any.push(written);
            }
            for ((deferred, entries), any) in self.deferred.iter().zip(&scratch).zip(any) {
                if any {
                    sections.push((&deferred.name, Section::Entries(entries)));
                }
            }
            if !sections.is_empty() {
                append_sections(&sections, writer)?;
                placed.push(writer.finish_block(group));
            }
        }
        Ok(Some(placed))
    }
}

/// One state's entries in a key group's block.
enum Section<'s, 'a> {
    /// Encoded when the snapshot was taken.
    Bytes(&'s [u8]),
    /// Encoded from a frozen table.
    Entries(&'s GroupEntries<'a>),
}

impl Section<'_, '_> {
    fn len(&self) -> usize {
        match self {
            Section::Bytes(bytes) => bytes.len(),
            Section::Entries(entries) => entries.len(),
        }
    }
}

/// Appends a key group's block: the postcard encoding of its `Vec<(String, Vec<u8>)>` of
/// named sections, written as whole slices (serde would hand every byte of the entries to
/// the serializer one at a time, a second time after the backend encoded them).
fn append_sections(
    sections: &[(&str, Section<'_, '_>)],
    writer: &mut BlockWriter<'_>,
) -> Result<()> {
    let mut header = Vec::new();
    append_count(&mut header, sections.len())?;
    for (name, entries) in sections {
        append_count(&mut header, name.len())?;
        header.extend_from_slice(name.as_bytes());
        append_count(&mut header, entries.len())?;
        writer.inline(&header);
        header.clear();
        match entries {
            Section::Bytes(bytes) => writer.inline(bytes),
            Section::Entries(entries) => writer.entries(entries),
        }
    }
    Ok(())
}

/// Keyed state read back for one subtask: what each named state held, per key group.
/// States take their part when registered; the rest is kept and snapshotted again, so state
/// a new version of a job does not register is not lost.
#[derive(Debug, Default)]
pub struct KeyedRestore {
    sections: StateBlocks,
    natives: Vec<NativeRestore>,
}

impl KeyedRestore {
    /// Decodes key-group blocks written by [`KeyedSnapshot::encode_groups`]; each state's
    /// part of a block stays a slice of it, not a copy.
    pub fn decode(blocks: impl IntoIterator<Item = (KeyGroup, Bytes)>) -> Result<Self> {
        let mut sections: StateBlocks = HashMap::new();
        for (group, block) in blocks {
            // Borrowed: the same bytes as a `Vec<(String, Vec<u8>)>`, read as slices.
            let decoded: Vec<(&str, &[u8])> = postcard::from_bytes(&block).map_err(|source| {
                Error::Snapshot { state: format!("key group {group}"), message: source.to_string() }
            })?;
            for (name, entries) in decoded {
                let entries = block.slice_ref(entries);
                sections.entry(name.to_string()).or_default().push((group, entries));
            }
        }
        Ok(KeyedRestore { sections, natives: Vec::new() })
    }

    /// Takes the blocks of state `name`.
    pub fn take(&mut self, name: &str) -> Vec<(KeyGroup, Bytes)> {
        self.sections.remove(name).unwrap_or_default()
    }

    /// Adds a native checkpoint to restore (before the canonical blocks).
    pub fn add_native(&mut self, native: NativeRestore) {
        self.natives.push(native);
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty() && self.natives.is_empty()
    }

    pub(crate) fn into_parts(self) -> (Vec<NativeRestore>, StateBlocks) {
        (self.natives, self.sections)
    }
}

/// Key groups, each with its encoded block.
pub type KeyGroupBlocks = Vec<(KeyGroup, Vec<u8>)>;

/// Encoded key-group blocks of each state, by state name.
pub(crate) type StateBlocks = HashMap<String, Vec<(KeyGroup, Bytes)>>;

/// The first byte of a section in runs (see the module's documentation): a listed section
/// starts with its entry count, which is never 0.
const RUNS: u8 = 0;

/// Starts a section of `count` entries in runs; the runs ([`append_run`]) follow.
pub fn append_runs_header(out: &mut Vec<u8>, count: usize) -> Result<()> {
    out.push(RUNS);
    append_count(out, count)
}

/// Appends a run: `namespace`, then the number of `entries` and each one's key and value;
/// returns how many there were (none writes nothing: a run is never empty).
pub fn append_run<'k, 'v, K, N, V>(
    namespace: &N,
    entries: impl ExactSizeIterator<Item = (&'k K, &'v V)>,
    out: &mut Vec<u8>,
) -> Result<usize>
where
    K: Serialize + 'static,
    N: Serialize + 'static,
    V: Serialize + 'static,
{
    let count = entries.len();
    if count == 0 {
        return Ok(0);
    }
    append(out, namespace)?;
    append_count(out, count)?;
    for (key, value) in entries {
        append(out, key)?;
        append(out, value)?;
    }
    Ok(count)
}

/// Decodes a section written in either layout, calling `visit` with each entry.
pub fn decode_entries<K, N, V>(bytes: &[u8], mut visit: impl FnMut(K, N, V)) -> Result<()>
where
    K: DeserializeOwned + 'static,
    N: DeserializeOwned + Clone + 'static,
    V: DeserializeOwned + 'static,
{
    let corrupt = |message: String| Error::Snapshot { state: "entries".to_string(), message };
    let postcard = |source: postcard::Error| corrupt(source.to_string());
    let (in_runs, bytes) = match bytes.split_first() {
        Some((&RUNS, rest)) => (true, rest),
        _ => (false, bytes),
    };
    let (count, mut rest): (usize, &[u8]) = postcard::take_from_bytes(bytes).map_err(postcard)?;
    if !in_runs {
        for _ in 0..count {
            let (key, remaining) = codec::take::<K>(rest).map_err(postcard)?;
            let (namespace, remaining) = codec::take::<N>(remaining).map_err(postcard)?;
            let (value, remaining) = codec::take::<V>(remaining).map_err(postcard)?;
            visit(key, namespace, value);
            rest = remaining;
        }
        return Ok(());
    }
    let mut left = count;
    while left > 0 {
        let (namespace, remaining) = codec::take::<N>(rest).map_err(postcard)?;
        let (run, remaining): (usize, &[u8]) =
            postcard::take_from_bytes(remaining).map_err(postcard)?;
        if run == 0 || run > left {
            return Err(corrupt(format!(
                "a run of {run} entries where {left} of {count} are left"
            )));
        }
        rest = remaining;
        for _ in 0..run {
            let (key, remaining) = codec::take::<K>(rest).map_err(postcard)?;
            let (value, remaining) = codec::take::<V>(remaining).map_err(postcard)?;
            visit(key, namespace.clone(), value);
            rest = remaining;
        }
        left -= run;
    }
    Ok(())
}

/// Appends a length as postcard encodes it (a varint): the entry count that starts an encoded
/// block, for backends that then append each entry's bytes themselves, or a length before
/// bytes appended as a whole slice.
pub fn append_count(out: &mut Vec<u8>, count: usize) -> Result<()> {
    append(out, &count)
}

/// Appends the postcard encoding of `value` to `out`.
fn append<T: Serialize + 'static>(out: &mut Vec<u8>, value: &T) -> Result<()> {
    codec::append(out, value).map_err(|source| Error::Snapshot {
        state: std::any::type_name::<T>().to_string(),
        message: source.to_string(),
    })
}

/// How an operator list state is spread over subtasks when a job is restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListMode {
    /// Elements of all subtasks are dealt out round-robin.
    Split,
    /// Every subtask gets every element.
    Union,
}

/// One operator list state of one subtask: its elements, each serialized.
#[derive(Clone, Debug, PartialEq)]
pub struct ListSnapshot {
    /// The state's name.
    pub name: String,
    /// How it is redistributed.
    pub mode: ListMode,
    /// The elements, postcard-encoded one by one.
    pub elements: Vec<Vec<u8>>,
}

/// Operator list states read back for one subtask, after redistribution.
#[derive(Debug, Default)]
pub struct OperatorRestore {
    lists: HashMap<String, Vec<Vec<u8>>>,
    restored: bool,
}

impl OperatorRestore {
    /// Marks the state as coming from a snapshot, even when it holds no list: the job is
    /// being restored, so an operator must not act as on a fresh start (a source with no
    /// position left must not start over).
    pub fn mark_restored(&mut self) {
        self.restored = true;
    }

    /// Whether the job is being restored from a snapshot.
    pub fn is_restored(&self) -> bool {
        self.restored
    }

    /// Restores `elements` of list `name`.
    pub fn add(&mut self, name: &str, elements: Vec<Vec<u8>>) {
        self.lists.entry(name.to_string()).or_default().extend(elements);
        self.restored = true;
    }

    /// Whether there is nothing to restore.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    pub(crate) fn into_lists(self) -> (HashMap<String, Vec<Vec<u8>>>, bool) {
        (self.lists, self.restored)
    }
}

/// Serializes one value with postcard.
pub(crate) fn encode_value<T: Serialize + 'static>(state: &str, value: &T) -> Result<Vec<u8>> {
    codec::to_vec(value)
        .map_err(|source| Error::Snapshot { state: state.to_string(), message: source.to_string() })
}

/// Deserializes one value written by [`encode_value`].
pub(crate) fn decode_value<T: DeserializeOwned + 'static>(state: &str, bytes: &[u8]) -> Result<T> {
    codec::from_bytes(bytes)
        .map_err(|source| Error::Snapshot { state: state.to_string(), message: source.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_encode_each_namespace_once_and_read_back_entry_by_entry() {
        let window = (17i64, "window".to_string());
        let entries = [(1u64, vec![1u8, 2]), (300, vec![]), (u64::MAX, vec![9; 40])];
        let mut runs = Vec::new();
        append_runs_header(&mut runs, 4).unwrap();
        let pairs = entries.iter().map(|(key, value)| (key, value));
        assert_eq!(append_run(&window, pairs, &mut runs).unwrap(), 3);
        let other = (18i64, String::new());
        assert_eq!(append_run(&other, [(&5u64, &vec![7u8])].into_iter(), &mut runs).unwrap(), 1);
        let no_entries = std::iter::empty::<(&u64, &Vec<u8>)>();
        assert_eq!(append_run(&window, no_entries, &mut runs).unwrap(), 0, "nothing written");
        let mut expected = vec![RUNS, 4];
        expected.extend(postcard::to_allocvec(&(&window, 3u8)).unwrap());
        for (key, value) in &entries {
            expected.extend(postcard::to_allocvec(&(key, value)).unwrap());
        }
        expected.extend(postcard::to_allocvec(&(&other, 1u8, 5u64, vec![7u8])).unwrap());
        assert_eq!(runs, expected, "the namespace once per run");
        let mut decoded = Vec::new();
        decode_entries(&runs, |k: u64, n: (i64, String), v: Vec<u8>| decoded.push((k, n, v)))
            .unwrap();
        let mut listed: Vec<_> =
            entries.iter().map(|(k, v)| (*k, window.clone(), v.clone())).collect();
        listed.push((5, other, vec![7]));
        assert_eq!(decoded, listed);
    }

    #[test]
    fn listed_entries_as_rocksdb_and_earlier_versions_write_them_read_back() {
        // Namespaces and values repeated from the entry before, and not.
        let entries = vec![
            ("a".to_string(), 1u32, 10u64),
            ("b".to_string(), 2, 20),
            ("c".to_string(), 2, 20),
            ("e".to_string(), 1, 300),
        ];
        let listed = postcard::to_allocvec(&entries).unwrap();
        let mut back = Vec::new();
        decode_entries::<String, u32, u64>(&listed, |k, n, v| back.push((k, n, v))).unwrap();
        assert_eq!(back, entries);
        // Timers wrote (key, namespace, time) entries, read now as a key, a namespace with
        // its time, and no value: the same bytes.
        let mut timers = Vec::new();
        decode_entries(&listed, |k: String, (n, t): (u32, u64), (): ()| timers.push((k, n, t)))
            .unwrap();
        assert_eq!(timers, entries);
    }

    #[test]
    fn runs_that_do_not_add_up_are_an_error() {
        let decode = |bytes: &[u8]| decode_entries(bytes, |_: u8, _: u8, _: u8| ());
        assert!(decode(&[RUNS, 2, 9, 2, 1, 1, 2, 2]).is_ok(), "one run of two");
        for (bytes, what) in [
            (&[RUNS, 2, 9, 3, 1, 1, 2, 2, 3, 3][..], "a run longer than the entries left"),
            (&[RUNS, 2, 9, 0, 9, 2, 1, 1, 2, 2][..], "an empty run"),
            (&[RUNS, 2, 9, 2, 1, 1][..], "entries missing"),
        ] {
            assert!(decode(bytes).is_err(), "{what}");
        }
    }

    #[test]
    fn groups_round_trip_by_state_name() {
        let mut snapshot = KeyedSnapshot::new();
        snapshot.add(3, "count", vec![1, 2]);
        snapshot.add(3, "sum", vec![3]);
        snapshot.add(9, "count", vec![4]);
        let long = vec![7u8; 300]; // lengths of more than one varint byte
        snapshot.add(9, &"s".repeat(200), long.clone());
        let blocks = snapshot.encode_groups().unwrap();
        assert_eq!(blocks.iter().map(|(g, _)| *g).collect::<Vec<_>>(), vec![3, 9]);
        for ((group, block), expected) in blocks.iter().zip(snapshot.groups.values()) {
            let serde = postcard::to_allocvec(expected).unwrap();
            assert_eq!(block, &serde, "group {group}: the bytes serde writes");
        }
        let mut restore =
            KeyedRestore::decode(blocks.into_iter().map(|(g, b)| (g, b.into()))).unwrap();
        let mut take = |name: &str| -> Vec<(KeyGroup, Vec<u8>)> {
            restore.take(name).into_iter().map(|(g, b)| (g, b.to_vec())).collect()
        };
        assert_eq!(take("count"), vec![(3, vec![1, 2]), (9, vec![4])]);
        assert_eq!(take("sum"), vec![(3, vec![3])]);
        assert_eq!(take(&"s".repeat(200)), vec![(9, long)]);
        assert!(restore.is_empty());
    }

    #[test]
    fn corrupt_blocks_are_an_error_not_a_panic() {
        assert!(KeyedRestore::decode([(0, Bytes::from_static(&[0xff, 0xff, 0xff]))]).is_err());
        assert!(decode_entries::<String, (), u8>(&[5, 1], |_, _, _| {}).is_err());
    }
}
