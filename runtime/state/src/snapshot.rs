//! The snapshot format of state, independent of the backend: keyed state as one block per
//! key group (so that a restore at another parallelism reads only the groups it now owns),
//! operator state as lists of serialized elements (so that they can be dealt out again).
//!
//! Within a key group, each named state's entries are a postcard-encoded `Vec<(K, N, V)>`.
//! The heap backend writes and reads that directly; a backend that stores bytes produces the
//! same bytes from its keys and values, so a savepoint restores on any backend.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

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
        let (out, _) = writer.finish();
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

/// Encodes `count` entries from `entries` as a postcard `Vec<(K, N, V)>`, appending to `out`.
pub fn encode_entries<'a, K, N, V>(
    count: usize,
    entries: impl Iterator<Item = (&'a K, &'a N, &'a V)>,
    out: &mut Vec<u8>,
) -> Result<()>
where
    K: Serialize + 'static,
    N: Serialize + PartialEq + 'static,
    V: Serialize + PartialEq + 'static,
{
    append_count(out, count)?;
    let written = append_entries(entries, out)?;
    debug_assert_eq!(written, count, "entry count announced before the entries");
    Ok(())
}

/// Appends the encoding of each of `entries`, without the count that starts a block (for
/// blocks put together from parts); returns how many there were. A namespace or value equal
/// to the previous entry's is copied from its bytes rather than encoded again (timers of
/// one time mostly share both).
pub fn append_entries<'a, K, N, V>(
    entries: impl Iterator<Item = (&'a K, &'a N, &'a V)>,
    out: &mut Vec<u8>,
) -> Result<usize>
where
    K: Serialize + 'static,
    N: Serialize + PartialEq + 'static,
    V: Serialize + PartialEq + 'static,
{
    let mut previous: Option<(&N, Range<usize>, &V, Range<usize>)> = None;
    let mut written = 0;
    for (key, namespace, value) in entries {
        append(out, key)?;
        let namespace_bytes = match &previous {
            Some((last, bytes, _, _)) if *last == namespace => copy_within(out, bytes.clone()),
            _ => append_ranged(out, namespace)?,
        };
        let value_bytes = match &previous {
            Some((_, _, last, bytes)) if *last == value => copy_within(out, bytes.clone()),
            _ => append_ranged(out, value)?,
        };
        previous = Some((namespace, namespace_bytes, value, value_bytes));
        written += 1;
    }
    Ok(written)
}

/// Appends `out[range]` to `out`; returns where the copy is.
fn copy_within(out: &mut Vec<u8>, range: Range<usize>) -> Range<usize> {
    let start = out.len();
    out.extend_from_within(range);
    start..out.len()
}

/// Appends the postcard encoding of `value` to `out`; returns where it is.
fn append_ranged<T: Serialize + 'static>(out: &mut Vec<u8>, value: &T) -> Result<Range<usize>> {
    let start = out.len();
    append(out, value)?;
    Ok(start..out.len())
}

/// Appends the entries of one namespace in the format of [`append_entries`], encoding the
/// namespace once (in the first entry) and copying those bytes into the others; returns how
/// many were written.
pub(crate) fn append_namespace_entries<'k, 'v, K, N, V>(
    namespace: &N,
    entries: impl Iterator<Item = (&'k K, &'v V)>,
    out: &mut Vec<u8>,
) -> Result<usize>
where
    K: Serialize + 'static,
    N: Serialize + 'static,
    V: Serialize + 'static,
{
    let mut encoded: Option<Range<usize>> = None;
    let mut written = 0;
    for (key, value) in entries {
        append(out, key)?;
        match &encoded {
            Some(range) => drop(copy_within(out, range.clone())),
            None => encoded = Some(append_ranged(out, namespace)?),
        }
        append(out, value)?;
        written += 1;
    }
    Ok(written)
}

/// Decodes entries written by [`encode_entries`], calling `visit` with each.
pub fn decode_entries<K, N, V>(bytes: &[u8], mut visit: impl FnMut(K, N, V)) -> Result<()>
where
    K: DeserializeOwned + 'static,
    N: DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
{
    let corrupt = |source: postcard::Error| Error::Snapshot {
        state: "entries".to_string(),
        message: source.to_string(),
    };
    let (count, mut rest): (usize, &[u8]) = postcard::take_from_bytes(bytes).map_err(corrupt)?;
    for _ in 0..count {
        let (key, remaining) = codec::take::<K>(rest).map_err(corrupt)?;
        let (namespace, remaining) = codec::take::<N>(remaining).map_err(corrupt)?;
        let (value, remaining) = codec::take::<V>(remaining).map_err(corrupt)?;
        visit(key, namespace, value);
        rest = remaining;
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
    fn a_namespace_encoded_once_gives_the_bytes_of_entries_encoded_one_by_one() {
        let namespace = (17i64, "window".to_string());
        let entries = [(1u64, vec![1u8, 2]), (300, vec![]), (u64::MAX, vec![9; 40])];
        let mut one_by_one = Vec::new();
        let triples = entries.iter().map(|(key, value)| (key, &namespace, value));
        assert_eq!(append_entries(triples, &mut one_by_one).unwrap(), 3);
        let mut once = Vec::new();
        let pairs = entries.iter().map(|(key, value)| (key, value));
        assert_eq!(append_namespace_entries(&namespace, pairs, &mut once).unwrap(), 3);
        assert_eq!(once, one_by_one);
        let mut decoded = Vec::new();
        let mut block = Vec::new();
        append_count(&mut block, 3).unwrap();
        block.extend_from_slice(&once);
        decode_entries(&block, |k: u64, n: (i64, String), v: Vec<u8>| decoded.push((k, n, v)))
            .unwrap();
        assert_eq!(decoded.len(), 3);
        assert!(decoded.iter().all(|(_, n, _)| *n == namespace));
    }

    #[test]
    fn entries_round_trip_and_match_a_postcard_vec() {
        // Namespaces and values repeated from the entry before, and not.
        let entries = [
            ("a".to_string(), 1u32, 10u64),
            ("b".to_string(), 2, 20),
            ("c".to_string(), 2, 20),
            ("d".to_string(), 2, 300),
            ("e".to_string(), 1, 300),
        ];
        let mut out = Vec::new();
        encode_entries(5, entries.iter().map(|(k, n, v)| (k, n, v)), &mut out).unwrap();
        assert_eq!(out, postcard::to_allocvec(&entries.to_vec()).unwrap());
        let mut back = Vec::new();
        decode_entries::<String, u32, u64>(&out, |k, n, v| back.push((k, n, v))).unwrap();
        assert_eq!(back, entries);
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
