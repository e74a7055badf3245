//! Key-group blocks written as pieces of files, for incremental checkpoints of heap state: a
//! kept encoding (a namespace's entries, or one key group's part of a time's timers, see
//! [`Frozen::encoding`](crate::Frozen::encoding)) is written once, into the file of the
//! checkpoint that first holds it, and later checkpoints that find it unchanged refer to that
//! file instead of writing it again.
//!
//! A block stays the same bytes (the canonical format): only where they are changes. It is a
//! list of [`Piece`]s, byte ranges of the file being written or of earlier ones, which joined
//! in order give the block. [`Stored`] remembers where each kept encoding was written; a
//! checkpoint refers to it only when the caller says that file may be referred to (it belongs
//! to the latest complete checkpoint), and writes it again otherwise.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use weir_types::KeyGroup;

/// Where the parts of a kept encoding were last written: one file, an offset per part.
#[derive(Debug, Default)]
pub struct Stored(Mutex<Option<StoredAt>>);

#[derive(Debug)]
struct StoredAt {
    file: Arc<str>,
    /// The offset of part 0, then of parts 1.. ([`UNWRITTEN`] for parts not written there).
    first: u64,
    rest: Vec<u64>,
}

const UNWRITTEN: u64 = u64::MAX;

impl Stored {
    fn lock(&self) -> MutexGuard<'_, Option<StoredAt>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The file and offset where `part` was last written.
    fn location(&self, part: usize) -> Option<(Arc<str>, u64)> {
        let stored = self.lock();
        let at = stored.as_ref()?;
        let offset = if part == 0 { at.first } else { *at.rest.get(part - 1)? };
        (offset != UNWRITTEN).then(|| (Arc::clone(&at.file), offset))
    }

    /// `part` was written into `file` at `offset`; parts written into another file before
    /// are forgotten (a value is referred to in one file only).
    fn record(&self, file: &Arc<str>, part: usize, offset: u64) {
        let mut stored = self.lock();
        let at = match &mut *stored {
            Some(at) if Arc::ptr_eq(&at.file, file) => at,
            other => other.insert(StoredAt {
                file: Arc::clone(file),
                first: UNWRITTEN,
                rest: Vec::new(),
            }),
        };
        if part == 0 {
            at.first = offset;
        } else {
            if at.rest.len() < part {
                at.rest.resize(part, UNWRITTEN);
            }
            at.rest[part - 1] = offset;
        }
    }

    /// A key ordering values by where they were written (by file, then offset; values never
    /// written last): laid out in that order, the values still found where they were form
    /// runs of adjacent bytes, so a block refers to them in few pieces.
    pub(crate) fn order(&self) -> (bool, usize, u64) {
        match &*self.lock() {
            Some(at) => (false, Arc::as_ptr(&at.file).cast::<u8>() as usize, at.first),
            None => (true, 0, 0),
        }
    }
}

/// A byte range of a file: `file` indexes the files of the snapshot that wrote it (0: the
/// file it wrote itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Which file.
    pub file: usize,
    /// Offset in it.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// A key group's block: its pieces, which joined in order give its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedBlock {
    /// The key group.
    pub group: KeyGroup,
    /// Its pieces.
    pub pieces: Vec<Piece>,
}

impl PlacedBlock {
    /// The block's length in bytes.
    pub fn len(&self) -> u64 {
        self.pieces.iter().map(|piece| piece.len).sum()
    }

    /// Whether the block holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One table's entries of one key group as encoded: bytes, and between them kept encodings,
/// which the [`BlockWriter`] writes or refers to.
#[derive(Default)]
pub struct GroupEntries<'a> {
    bytes: Vec<u8>,
    kept: Vec<Kept<'a>>,
    kept_len: usize,
}

/// A kept encoding in [`GroupEntries`], placed before `bytes[at..]`.
struct Kept<'a> {
    at: usize,
    bytes: &'a [u8],
    stored: &'a Stored,
    part: usize,
}

impl<'a> GroupEntries<'a> {
    /// The bytes, to append to.
    pub fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Appends part `part` of a kept encoding whose places `stored` remembers.
    pub fn kept(&mut self, bytes: &'a [u8], stored: &'a Stored, part: usize) {
        self.kept_len += bytes.len();
        self.kept.push(Kept { at: self.bytes.len(), bytes, stored, part });
    }

    /// The length of all it holds.
    pub fn len(&self) -> usize {
        self.bytes.len() + self.kept_len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties it for the next key group.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.kept.clear();
        self.kept_len = 0;
    }
}

/// Writes key-group blocks into one file: whole (a full snapshot), or referring to kept
/// encodings already in files that may be referred to (an incremental checkpoint).
pub struct BlockWriter<'r> {
    out: Vec<u8>,
    /// Set for an incremental checkpoint.
    incremental: Option<Incremental<'r>>,
    pieces: Vec<Piece>,
}

/// What an incremental [`BlockWriter`] refers to.
struct Incremental<'r> {
    /// The files pieces refer to, the one being written first.
    files: Vec<Arc<str>>,
    /// Which earlier files may be referred to.
    reusable: &'r dyn Fn(&str) -> bool,
    /// The earlier files asked about, each with its index in `files` if it may be referred to.
    asked: Vec<(Arc<str>, Option<usize>)>,
}

impl Incremental<'_> {
    /// The index in `files` of `file`, when it may be referred to.
    fn index_of(&mut self, file: Arc<str>) -> Option<usize> {
        if let Some((_, index)) = self.asked.iter().find(|(asked, _)| Arc::ptr_eq(asked, &file)) {
            return *index;
        }
        let index = (!Arc::ptr_eq(&file, &self.files[0]) && (self.reusable)(&file)).then(|| {
            self.files.push(Arc::clone(&file));
            self.files.len() - 1
        });
        self.asked.push((file, index));
        index
    }
}

impl<'r> BlockWriter<'r> {
    /// Writes every block whole into the file.
    pub fn full() -> Self {
        BlockWriter { out: Vec::new(), incremental: None, pieces: Vec::new() }
    }

    /// Writes into the file `file` what no file that `reusable` accepts holds already, and
    /// refers to those files for the rest.
    pub fn incremental(file: &str, reusable: &'r dyn Fn(&str) -> bool) -> Self {
        let incremental = Incremental { files: vec![Arc::from(file)], reusable, asked: Vec::new() };
        BlockWriter { out: Vec::new(), incremental: Some(incremental), pieces: Vec::new() }
    }

    /// Appends `bytes` to the current block.
    pub(crate) fn inline(&mut self, bytes: &[u8]) {
        let offset = self.out.len() as u64;
        self.out.extend_from_slice(bytes);
        self.piece(Piece { file: 0, offset, len: bytes.len() as u64 });
    }

    /// Appends `entries` to the current block.
    pub(crate) fn entries(&mut self, entries: &GroupEntries<'_>) {
        let mut from = 0;
        for kept in &entries.kept {
            self.inline(&entries.bytes[from..kept.at]);
            self.kept(kept);
            from = kept.at;
        }
        self.inline(&entries.bytes[from..]);
    }

    fn kept(&mut self, kept: &Kept<'_>) {
        if let Some(incremental) = &mut self.incremental {
            let found = kept.stored.location(kept.part).and_then(|(file, offset)| {
                Some(Piece {
                    file: incremental.index_of(file)?,
                    offset,
                    len: kept.bytes.len() as u64,
                })
            });
            match found {
                Some(piece) => return self.piece(piece),
                None => kept.stored.record(&incremental.files[0], kept.part, self.out.len() as u64),
            }
        }
        self.inline(kept.bytes);
    }

    fn piece(&mut self, piece: Piece) {
        if piece.len == 0 {
            return;
        }
        match self.pieces.last_mut() {
            Some(last) if last.file == piece.file && last.offset + last.len == piece.offset => {
                last.len += piece.len;
            }
            _ => self.pieces.push(piece),
        }
    }

    /// Ends the current block, that of `group`.
    pub(crate) fn finish_block(&mut self, group: KeyGroup) -> PlacedBlock {
        PlacedBlock { group, pieces: std::mem::take(&mut self.pieces) }
    }

    /// The file's bytes, and the files pieces refer to (the file itself first; empty for a
    /// full snapshot).
    pub fn finish(self) -> (Vec<u8>, Vec<String>) {
        let files = (self.incremental)
            .map(|incremental| incremental.files.iter().map(|f| f.to_string()).collect());
        (self.out, files.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(blocks: &[PlacedBlock], files: &[&[u8]]) -> Vec<Vec<u8>> {
        let piece =
            |p: &Piece| files[p.file][p.offset as usize..(p.offset + p.len) as usize].to_vec();
        blocks.iter().map(|block| block.pieces.iter().flat_map(piece).collect()).collect()
    }

    #[test]
    fn kept_encodings_are_written_once_and_referred_to_while_their_file_may_be() {
        let (a, b) = (Stored::default(), Stored::default());
        let encode = |writer: &mut BlockWriter<'_>, middle: &[u8]| {
            let mut entries = GroupEntries::default();
            entries.bytes().extend_from_slice(b"<");
            entries.kept(b"aaaa", &a, 0);
            entries.bytes().extend_from_slice(middle);
            entries.kept(b"bb", &b, 3);
            assert_eq!(entries.len(), 7 + middle.len());
            writer.entries(&entries);
            writer.finish_block(5)
        };
        let never = |_: &str| false;
        let mut first = BlockWriter::incremental("one", &never);
        let block = encode(&mut first, b"|");
        let (one, files) = first.finish();
        assert_eq!(files, ["one"]);
        assert_eq!(one, b"<aaaa|bb");
        assert_eq!(block.pieces, [Piece { file: 0, offset: 0, len: 8 }], "adjacent: one piece");

        let confirmed = |file: &str| file == "one";
        let mut second = BlockWriter::incremental("two", &confirmed);
        let block = encode(&mut second, b"");
        let (two, files) = second.finish();
        assert_eq!(files, ["two", "one"]);
        assert_eq!(two, b"<", "only what no earlier file holds");
        assert_eq!(
            block.pieces,
            [
                Piece { file: 0, offset: 0, len: 1 },
                Piece { file: 1, offset: 1, len: 4 },
                Piece { file: 1, offset: 6, len: 2 }
            ]
        );
        assert_eq!(joined(&[block], &[&two, &one]), [b"<aaaabb".to_vec()]);

        // "one" no longer confirmed: written again, and remembered in the new file.
        let mut third = BlockWriter::incremental("three", &never);
        let block = encode(&mut third, b"-");
        let (three, _) = third.finish();
        assert_eq!(three, b"<aaaa-bb");
        assert_eq!(block.pieces.len(), 1);
        assert_eq!(a.location(0).map(|(f, o)| (f.to_string(), o)), Some(("three".into(), 1)));
        assert_eq!(b.location(3).map(|(f, o)| (f.to_string(), o)), Some(("three".into(), 6)));
        assert_eq!(b.location(0), None, "part 0 of b was never written");
    }

    #[test]
    fn a_full_writer_writes_everything_and_remembers_nothing() {
        let stored = Stored::default();
        let mut writer = BlockWriter::full();
        let mut entries = GroupEntries::default();
        entries.kept(b"xyz", &stored, 0);
        writer.inline(b"#");
        writer.entries(&entries);
        let block = writer.finish_block(1);
        let (bytes, files) = writer.finish();
        assert_eq!((bytes.as_slice(), files.len()), (&b"#xyz"[..], 0));
        assert_eq!(block.pieces, [Piece { file: 0, offset: 0, len: 4 }]);
        assert_eq!(stored.location(0), None);
    }
}
