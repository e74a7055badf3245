//! Key-group blocks written as pieces of files, for incremental checkpoints of heap state: a
//! value's encoding (a namespace's entries, or one key group's part of a time's timers) is
//! written once, into the file of the checkpoint that first holds it, and later checkpoints
//! that find the value unchanged refer to that file instead of encoding and writing it again.
//!
//! A block stays the same bytes (the canonical format): only where they are changes. It is a
//! list of [`Piece`]s, byte ranges of the file being written or of earlier ones, which joined
//! in order give the block. [`Stored`] remembers where each value's encoding was written; a
//! checkpoint refers to it only when the caller says that file may be referred to (it belongs
//! to the latest complete checkpoint), and encodes it again otherwise.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use weir_types::KeyGroup;

use crate::Result;

/// Where the parts of a value's encoding were last written: one file, a span per part.
#[derive(Debug, Default)]
pub struct Stored(Mutex<Option<StoredAt>>);

#[derive(Debug)]
struct StoredAt {
    file: Arc<str>,
    /// The span of each part ([`UNWRITTEN`] for parts not written there).
    spans: Vec<Span>,
}

/// Where a part is in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    offset: u64,
    len: u64,
}

const UNWRITTEN: Span = Span { offset: u64::MAX, len: 0 };

/// Where a part was written: its file, by the address of the name [`Stored`] holds (the
/// same while any value is remembered in that file), and its span there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spot {
    file: usize,
    span: Span,
}

impl Spot {
    /// This spot and `next` as one, if `next` starts where this one ends, in the same file.
    pub(crate) fn joined(self, next: Spot) -> Option<Spot> {
        let end = self.span.offset + self.span.len;
        (next.file == self.file && next.span.offset == end).then(|| Spot {
            file: self.file,
            span: Span { len: self.span.len + next.span.len, ..self.span },
        })
    }
}

fn address(file: &Arc<str>) -> usize {
    Arc::as_ptr(file).cast::<u8>() as usize
}

impl Stored {
    fn lock(&self) -> MutexGuard<'_, Option<StoredAt>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where `part` was last written.
    #[cfg(test)]
    pub(crate) fn spot(&self, part: usize) -> Option<Spot> {
        let stored = self.lock();
        let at = stored.as_ref()?;
        let span = *at.spans.get(part)?;
        (span != UNWRITTEN).then(|| Spot { file: address(&at.file), span })
    }

    /// Calls `visit` with each part written and where (one lookup for all of them).
    pub fn each_spot(&self, mut visit: impl FnMut(usize, Spot)) {
        let stored = self.lock();
        let Some(at) = stored.as_ref() else { return };
        let file = address(&at.file);
        for (part, span) in at.spans.iter().enumerate().filter(|(_, span)| **span != UNWRITTEN) {
            visit(part, Spot { file, span: *span });
        }
    }

    /// The file its parts were last written into.
    fn file(&self) -> Option<Arc<str>> {
        self.lock().as_ref().map(|at| Arc::clone(&at.file))
    }

    /// `part` was written into `file` at `span`; parts written into another file before are
    /// forgotten (a value is referred to in one file only).
    fn record(&self, file: &Arc<str>, part: usize, span: Span) {
        let mut stored = self.lock();
        let at = match &mut *stored {
            Some(at) if Arc::ptr_eq(&at.file, file) => at,
            other => other.insert(StoredAt { file: Arc::clone(file), spans: Vec::new() }),
        };
        if at.spans.len() <= part {
            at.spans.resize(part + 1, UNWRITTEN);
        }
        at.spans[part] = span;
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

/// One table's entries of one key group as encoded: bytes, and between them encodings of
/// values whose places [`Stored`] remembers, each referred to where an earlier file that may
/// be referred to holds it, else written (and then remembered) by the [`BlockWriter`].
#[derive(Default)]
pub struct GroupEntries<'a> {
    bytes: Vec<u8>,
    marks: Vec<Mark>,
    /// The places that record marks remember parts in, each once in a row.
    held: Vec<Arc<Stored>>,
    /// The length of what the marks refer to or write beside `bytes`.
    marked_len: usize,
    /// Set for an incremental checkpoint.
    earlier: Option<EarlierFiles<'a>>,
}

/// Which earlier files an incremental checkpoint may refer to, and those already asked about.
struct EarlierFiles<'a> {
    reusable: &'a dyn Fn(&str) -> bool,
    /// Held, so that no other file takes the address of one of them meanwhile.
    asked: Vec<(Arc<str>, bool)>,
}

impl EarlierFiles<'_> {
    /// The index in `asked` of the file of `spot`, a spot of `stored`, with its span there,
    /// if that file may be referred to.
    fn find(&mut self, spot: Spot, stored: &Stored) -> Option<(usize, Span)> {
        let index = match self.asked.iter().rposition(|(file, _)| address(file) == spot.file) {
            Some(index) => index,
            None => {
                // Only the writer records places, so the file is still that of the spot.
                let file = stored.file().filter(|file| address(file) == spot.file)?;
                let reusable = (self.reusable)(&file);
                self.asked.push((file, reusable));
                self.asked.len() - 1
            }
        };
        self.asked[index].1.then_some((index, spot.span))
    }
}

/// What comes before `bytes[at..]` in [`GroupEntries`].
enum Mark {
    /// Bytes of an earlier file, the `file`th of those asked about.
    Refer { at: usize, file: usize, span: Span },
    /// `bytes[at..end]` are part `part` of a value: remembered where written, in `held[held]`.
    Record { at: usize, end: usize, held: usize, part: usize },
    /// `encoded`, held elsewhere and copied once, into the file, is part `part` of a value:
    /// remembered where written, in `held[held]` (`None` for a full snapshot).
    Shared { at: usize, encoded: Bytes, record: Option<(usize, usize)> },
}

impl<'a> GroupEntries<'a> {
    /// The bytes, to append to.
    pub fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Appends part `part` of a value whose places `stored` remembers, encoded by `encode`,
    /// and remembers where it was written (not for a full snapshot).
    pub(crate) fn stored(
        &mut self,
        stored: &Arc<Stored>,
        part: usize,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let at = self.bytes.len();
        encode(&mut self.bytes)?;
        if self.earlier.is_some() {
            let held = self.hold(stored);
            self.marks.push(Mark::Record { at, end: self.bytes.len(), held, part });
        }
        Ok(())
    }

    /// Appends part `part` of a value whose places `stored` remembers, encoded already as
    /// `encoded`, which the writer copies into the file (not into these entries first), and
    /// remembers where it was written (not for a full snapshot).
    pub(crate) fn stored_encoded(&mut self, stored: &Arc<Stored>, part: usize, encoded: Bytes) {
        let record = self.earlier.is_some().then(|| (self.hold(stored), part));
        self.marked_len += encoded.len();
        self.marks.push(Mark::Shared { at: self.bytes.len(), encoded, record });
    }

    /// The index of `stored` in `held`, added if it is not the last one.
    fn hold(&mut self, stored: &Arc<Stored>) -> usize {
        if !self.held.last().is_some_and(|last| Arc::ptr_eq(last, stored)) {
            self.held.push(Arc::clone(stored));
        }
        self.held.len() - 1
    }

    /// Whether it refers to earlier files where they hold what it would encode (an
    /// incremental checkpoint).
    pub(crate) fn is_incremental(&self) -> bool {
        self.earlier.is_some()
    }

    /// Whether the bytes at `spot`, a spot of `stored`, are in a file that may be referred to.
    pub(crate) fn may_refer(&mut self, spot: Spot, stored: &Stored) -> bool {
        self.earlier.as_mut().is_some_and(|earlier| earlier.find(spot, stored).is_some())
    }

    /// Refers to the bytes at `spot`, a spot of `stored`, if their file may be referred to;
    /// returns whether it did.
    pub(crate) fn refer_to(&mut self, spot: Spot, stored: &Stored) -> bool {
        let Some(earlier) = &mut self.earlier else { return false };
        let Some((file, span)) = earlier.find(spot, stored) else { return false };
        self.marked_len += span.len as usize;
        self.marks.push(Mark::Refer { at: self.bytes.len(), file, span });
        true
    }

    /// The length of all it holds.
    pub fn len(&self) -> usize {
        self.bytes.len() + self.marked_len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties it for the next key group.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.marks.clear();
        self.held.clear();
        self.marked_len = 0;
    }
}

/// How many bytes the chunks of [`FileBytes`] hold: as many as came before, from the first
/// to the last of these sizes (a small file takes a small allocation).
const CHUNKS: std::ops::RangeInclusive<usize> = 4 << 10..=1 << 20;

/// The bytes of a file being written, in chunks: growing it never copies what it holds, and
/// the file is written from the chunks as they are.
#[derive(Debug, Default)]
pub struct FileBytes {
    full: Vec<Bytes>,
    current: Vec<u8>,
    len: usize,
}

impl FileBytes {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn extend(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.current.len() == self.current.capacity() {
                let size = self.len.clamp(*CHUNKS.start(), *CHUNKS.end());
                let current = std::mem::replace(&mut self.current, Vec::with_capacity(size));
                if !current.is_empty() {
                    self.full.push(Bytes::from(current));
                }
            }
            let room = self.current.capacity() - self.current.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.current.extend_from_slice(now);
            self.len += now.len();
            bytes = rest;
        }
    }

    /// Its chunks, in order, none empty.
    pub fn into_chunks(mut self) -> Vec<Bytes> {
        if !self.current.is_empty() {
            self.full.push(Bytes::from(self.current));
        }
        self.full
    }

    /// Its bytes in one piece.
    pub fn into_vec(self) -> Vec<u8> {
        if self.full.is_empty() {
            return self.current;
        }
        self.into_chunks().concat()
    }
}

/// Writes key-group blocks into one file: whole (a full snapshot), or referring to encodings
/// already in files that may be referred to (an incremental checkpoint).
pub struct BlockWriter<'r> {
    out: FileBytes,
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
}

impl Incremental<'_> {
    /// The index in `files` of `file`, added if new.
    fn index_of(&mut self, file: &Arc<str>) -> usize {
        match self.files.iter().rposition(|known| Arc::ptr_eq(known, file)) {
            Some(index) => index,
            None => {
                self.files.push(Arc::clone(file));
                self.files.len() - 1
            }
        }
    }
}

impl<'r> BlockWriter<'r> {
    /// Writes every block whole into the file.
    pub fn full() -> Self {
        BlockWriter { out: FileBytes::default(), incremental: None, pieces: Vec::new() }
    }

    /// Writes into the file `file` what no file that `reusable` accepts holds already, and
    /// refers to those files for the rest.
    pub fn incremental(file: &str, reusable: &'r dyn Fn(&str) -> bool) -> Self {
        let incremental = Incremental { files: vec![Arc::from(file)], reusable };
        BlockWriter {
            out: FileBytes::default(),
            incremental: Some(incremental),
            pieces: Vec::new(),
        }
    }

    /// An empty buffer for one table's entries of one key group, referring to the files this
    /// writer may refer to.
    pub fn group_entries<'a>(&self) -> GroupEntries<'a>
    where
        'r: 'a,
    {
        let earlier = (self.incremental.as_ref())
            .map(|incremental| EarlierFiles { reusable: incremental.reusable, asked: Vec::new() });
        GroupEntries {
            bytes: Vec::new(),
            marks: Vec::new(),
            held: Vec::new(),
            marked_len: 0,
            earlier,
        }
    }

    /// Appends `bytes` to the current block.
    pub(crate) fn inline(&mut self, bytes: &[u8]) {
        let offset = self.out.len() as u64;
        self.out.extend(bytes);
        self.piece(Piece { file: 0, offset, len: bytes.len() as u64 });
    }

    /// Appends `entries` to the current block.
    pub(crate) fn entries(&mut self, entries: &GroupEntries<'_>) {
        let bytes = &entries.bytes;
        let mut from = 0;
        for mark in &entries.marks {
            match mark {
                Mark::Refer { at, file, span } => {
                    self.inline(&bytes[from..*at]);
                    from = *at;
                    let incremental = self.incremental.as_mut().expect("refers when incremental");
                    let earlier = entries.earlier.as_ref().expect("refers when incremental");
                    let file = incremental.index_of(&earlier.asked[*file].0);
                    self.piece(Piece { file, offset: span.offset, len: span.len });
                }
                Mark::Record { at, end, held, part } => {
                    self.inline(&bytes[from..*at]);
                    from = *end;
                    self.written(&bytes[*at..*end], &entries.held[*held], *part);
                }
                Mark::Shared { at, encoded, record } => {
                    self.inline(&bytes[from..*at]);
                    from = *at;
                    match record {
                        Some((held, part)) => self.written(encoded, &entries.held[*held], *part),
                        None => self.inline(encoded),
                    }
                }
            }
        }
        self.inline(&bytes[from..]);
    }

    /// Writes part `part` of a value, remembered in `stored` when incremental.
    fn written(&mut self, bytes: &[u8], stored: &Stored, part: usize) {
        if let Some(incremental) = &self.incremental {
            let span = Span { offset: self.out.len() as u64, len: bytes.len() as u64 };
            stored.record(&incremental.files[0], part, span);
        }
        self.inline(bytes);
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
    pub fn finish(self) -> (FileBytes, Vec<String>) {
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

    fn location(stored: &Stored, part: usize) -> Option<(String, u64, u64)> {
        let spot = stored.spot(part)?;
        let file = stored.file().filter(|file| address(file) == spot.file)?;
        Some((file.to_string(), spot.span.offset, spot.span.len))
    }

    /// Refers to part `part` of `stored` where a file that may be referred to holds it, else
    /// writes `bytes` and remembers where.
    fn put(entries: &mut GroupEntries<'_>, stored: &Arc<Stored>, part: usize, bytes: &[u8]) {
        match stored.spot(part) {
            Some(spot) if entries.may_refer(spot, stored) => {
                assert!(entries.refer_to(spot, stored))
            }
            _ => entries.stored_encoded(stored, part, Bytes::copy_from_slice(bytes)),
        }
    }

    #[test]
    fn parts_are_written_once_and_referred_to_while_their_file_may_be() {
        let (a, b) = (Arc::new(Stored::default()), Arc::new(Stored::default()));
        let encode = |writer: &mut BlockWriter<'_>, middle: &[u8]| {
            let mut entries = writer.group_entries();
            entries.bytes().extend_from_slice(b"<");
            put(&mut entries, &a, 0, b"aaaa");
            entries.bytes().extend_from_slice(middle);
            put(&mut entries, &b, 3, b"bb");
            assert_eq!(entries.len(), 7 + middle.len());
            writer.entries(&entries);
            writer.finish_block(5)
        };
        let never = |_: &str| false;
        let mut first = BlockWriter::incremental("one", &never);
        let block = encode(&mut first, b"|");
        let (one, files) = first.finish();
        let one = one.into_vec();
        assert_eq!(files, ["one"]);
        assert_eq!(one, b"<aaaa|bb");
        assert_eq!(block.pieces, [Piece { file: 0, offset: 0, len: 8 }], "adjacent: one piece");

        let confirmed = |file: &str| file == "one";
        let mut second = BlockWriter::incremental("two", &confirmed);
        let block = encode(&mut second, b"");
        let (two, files) = second.finish();
        let two = two.into_vec();
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
        let three = three.into_vec();
        assert_eq!(three, b"<aaaa-bb");
        assert_eq!(block.pieces.len(), 1);
        assert_eq!(location(&a, 0), Some(("three".into(), 1, 4)));
        assert_eq!(location(&b, 3), Some(("three".into(), 6, 2)));
        assert_eq!(location(&b, 0), None, "part 0 of b was never written");
    }

    #[test]
    fn stored_parts_are_remembered_where_written_and_referred_to_as_one_run() {
        let stored = Arc::new(Stored::default());
        let encode = |writer: &mut BlockWriter<'_>| {
            let mut entries = writer.group_entries();
            entries.bytes().push(b'#');
            let spots = [stored.spot(0), stored.spot(1)];
            let run = spots[0].zip(spots[1]).and_then(|(first, second)| first.joined(second));
            match run {
                Some(run) if entries.may_refer(run, &stored) => {
                    assert!(entries.refer_to(run, &stored));
                }
                _ => {
                    for (part, value) in [&b"xyz"[..], &b"0123456"[..]].into_iter().enumerate() {
                        entries.stored_encoded(&stored, part, Bytes::from_static(value));
                    }
                }
            }
            assert_eq!(entries.len(), 11);
            writer.entries(&entries);
            writer.finish_block(2)
        };
        let never = |_: &str| false;
        let mut first = BlockWriter::incremental("one", &never);
        let block = encode(&mut first);
        let (one, _) = first.finish();
        let one = one.into_vec();
        assert_eq!((one.as_slice(), block.pieces.len()), (&b"#xyz0123456"[..], 1));
        assert_eq!(location(&stored, 1), Some(("one".into(), 4, 7)));

        let confirmed = |file: &str| file == "one";
        let mut second = BlockWriter::incremental("two", &confirmed);
        let block = encode(&mut second);
        let (two, files) = second.finish();
        let two = two.into_vec();
        assert_eq!((two.as_slice(), files.len()), (&b"#"[..], 2), "both parts referred to");
        assert_eq!(block.pieces[1], Piece { file: 1, offset: 1, len: 10 }, "as one run");
        assert_eq!(joined(&[block], &[&two, &one]), [b"#xyz0123456".to_vec()]);

        let mut full = BlockWriter::full();
        let block = encode(&mut full);
        let (whole, files) = full.finish();
        let whole = whole.into_vec();
        assert_eq!((whole.as_slice(), files.len()), (&b"#xyz0123456"[..], 0));
        assert_eq!(block.pieces.len(), 1);
        assert_eq!(
            location(&stored, 0),
            Some(("one".into(), 1, 3)),
            "a full writer records nothing"
        );
    }

    #[test]
    fn file_bytes_grow_in_chunks_that_join_into_what_was_appended() {
        let file = FileBytes::default();
        assert!(file.is_empty() && file.into_chunks().is_empty());
        let mut file = FileBytes::default();
        let mut expected = Vec::new();
        for step in 0..3000u32 {
            let piece: Vec<u8> = (0..step % 1500).map(|i| (i ^ step) as u8).collect();
            file.extend(&piece);
            expected.extend_from_slice(&piece);
        }
        assert_eq!(file.len(), expected.len());
        let chunks = file.into_chunks();
        assert!(chunks.len() > 2, "{} chunks for {} bytes", chunks.len(), expected.len());
        assert!(chunks.iter().all(|chunk| !chunk.is_empty() && chunk.len() <= *CHUNKS.end()));
        assert_eq!(chunks.concat(), expected);
        let mut small = FileBytes::default();
        small.extend(b"ab");
        small.extend(b"c");
        assert_eq!(small.into_vec(), b"abc");
    }

    #[test]
    fn a_full_writer_writes_everything_and_remembers_nothing() {
        let stored = Arc::new(Stored::default());
        let mut writer = BlockWriter::full();
        let mut entries = writer.group_entries();
        put(&mut entries, &stored, 0, b"xyz");
        writer.inline(b"#");
        writer.entries(&entries);
        let block = writer.finish_block(1);
        let (bytes, files) = writer.finish();
        let bytes = bytes.into_vec();
        assert_eq!((bytes.as_slice(), files.len()), (&b"#xyz"[..], 0));
        assert_eq!(block.pieces, [Piece { file: 0, offset: 0, len: 4 }]);
        assert_eq!(stored.spot(0), None);
    }
}
