//! Turning an operator subtask's snapshot into one state file and its metadata entry, and
//! back: keyed state as one block per key group, operator lists as one block each. In an
//! incremental checkpoint the key groups' blocks are pieces of shared files instead: a new
//! one with what changed, earlier ones for the rest.

use bytes::Bytes;
use weir_checkpoint::{
    Block, BlockPiece, KeyGroupBlock, NativeFileRef, NativeState, OperatorListBlock, PutPayload,
    Redistribution, SubtaskState,
};
use weir_operators::SubtaskSnapshot;
use weir_state::{BlockWriter, FileBytes, ListMode, NativeCheckpoint, PlacedBlock};
use weir_types::CheckpointId;

/// A state file ready to upload and the metadata entry that describes it.
#[derive(Debug, Clone)]
pub struct StateFile {
    /// The operator's state id.
    pub operator_id: String,
    /// The operator's name.
    pub operator_name: String,
    /// The operator's parallelism.
    pub parallelism: usize,
    /// Its name inside the snapshot's directory.
    pub name: String,
    /// Its bytes.
    pub bytes: Bytes,
    /// What the metadata records about it.
    pub state: SubtaskState,
    /// The backend's own checkpoint, whose files are uploaded beside this one (those not
    /// shared yet) as `state.native` lists them.
    pub native: Option<NativeCheckpoint>,
    /// The new file of an incremental heap checkpoint for the job's `shared/` folder, as
    /// `state.shared_files` names it: the key groups' bytes that no earlier file holds, in
    /// the chunks they were written in.
    pub shared: Option<(String, PutPayload)>,
}

/// How keyed state that is not a backend's own checkpoint is written.
#[derive(Clone, Copy)]
pub enum KeyedLayout<'r> {
    /// Every key group's block whole, in the subtask's file (savepoints, full checkpoints).
    Full,
    /// Incremental, for checkpoint `checkpoint`: a new shared file holds what no shared file
    /// that `reusable` accepts holds already, and the blocks refer to those for the rest.
    Incremental { checkpoint: CheckpointId, reusable: &'r dyn Fn(&str) -> bool },
}

/// Lays out `snapshot` as one file, encoding the state it copied (which fails if a value
/// does not serialize).
pub fn encode(snapshot: &SubtaskSnapshot) -> Result<StateFile, weir_state::Error> {
    Ok(encode_unless(snapshot, KeyedLayout::Full, &|| false)?.expect("never abandoned"))
}

/// [`encode`] with `layout`, given up (`None`) as soon as `abandoned` says so between two key
/// groups.
pub fn encode_unless(
    snapshot: &SubtaskSnapshot,
    layout: KeyedLayout<'_>,
    abandoned: &dyn Fn() -> bool,
) -> Result<Option<StateFile>, weir_state::Error> {
    let info = &snapshot.info;
    let name = format!("{}-{}", file_stem(&info.operator_id), info.index);
    let mut writer = match layout {
        KeyedLayout::Full => BlockWriter::full(),
        KeyedLayout::Incremental { checkpoint, reusable } => {
            let id = format!("{name}-{checkpoint}-{:016x}.state", fastrand::u64(..));
            BlockWriter::incremental(&id, reusable)
        }
    };
    let Some(placed) = snapshot.state.keyed.encode_groups_into(&mut writer, abandoned)? else {
        return Ok(None);
    };
    let (keyed, files) = writer.finish();
    let (mut bytes, key_groups, mut shared_files, shared) = if files.is_empty() {
        let key_groups = placed.into_iter().map(whole_block).collect();
        (keyed.into_vec(), key_groups, Vec::new(), None)
    } else {
        let mut bytes = Vec::new();
        let (key_groups, files, shared) = shared_pieces(placed, files, keyed, &mut bytes);
        (bytes, key_groups, files, shared)
    };
    let mut block = |data: &[u8]| {
        let block = Block { offset: bytes.len() as u64, len: data.len() as u64 };
        bytes.extend_from_slice(data);
        block
    };
    let operator_lists = snapshot
        .state
        .lists
        .iter()
        .map(|list| OperatorListBlock {
            name: list.name.clone(),
            redistribution: match list.mode {
                ListMode::Split => Redistribution::Split,
                ListMode::Union => Redistribution::Union,
            },
            block: block(&postcard::to_allocvec(&list.elements).expect("byte vectors encode")),
        })
        .collect();
    let native = snapshot.state.native.as_ref().map(|native| NativeState {
        dir: format!("{name}.native"),
        files: native
            .files
            .iter()
            .map(|file| NativeFileRef {
                name: file.name.clone(),
                size: file.size,
                shared: file.shared_id.clone(),
            })
            .collect(),
    });
    shared_files.extend(native.iter().flat_map(|n| &n.files).filter_map(|f| f.shared.clone()));
    let state = SubtaskState {
        subtask: info.index,
        file: name.clone(),
        key_group_range: snapshot.key_group_range(),
        key_groups,
        operator_lists,
        in_flight: None,
        shared_files,
        native,
    };
    Ok(Some(StateFile {
        operator_id: info.operator_id.clone(),
        operator_name: info.operator_name.clone(),
        parallelism: info.parallelism,
        name,
        bytes: Bytes::from(bytes),
        state,
        native: snapshot.state.native.clone(),
        shared,
    }))
}

/// A block a full writer placed: one piece of the subtask's file.
fn whole_block(placed: PlacedBlock) -> KeyGroupBlock {
    let block = match placed.pieces[..] {
        [piece] => Block { offset: piece.offset, len: piece.len },
        _ => Block { offset: 0, len: placed.len() }, // empty
    };
    KeyGroupBlock { group: placed.group, block, pieces: None }
}

/// The blocks of an incremental checkpoint as pieces of shared files, each block's list of
/// pieces appended to `lists`: `files` (the new one, holding `written`, first), without the
/// new one when it holds nothing; also returns the shared files and the new file to write.
fn shared_pieces(
    placed: Vec<PlacedBlock>,
    mut files: Vec<String>,
    written: FileBytes,
    lists: &mut Vec<u8>,
) -> (Vec<KeyGroupBlock>, Vec<String>, Option<(String, PutPayload)>) {
    let (shift, shared) = if written.is_empty() {
        (1, None) // every piece is in an earlier file
    } else {
        (0, Some((files[0].clone(), written.into_chunks().into_iter().collect())))
    };
    files.drain(..shift);
    let key_groups = placed
        .into_iter()
        .map(|placed| {
            let pieces: Vec<BlockPiece> = (placed.pieces.iter())
                .map(|piece| BlockPiece {
                    file: u32::try_from(piece.file - shift).expect("fewer than 2^32 files"),
                    offset: piece.offset,
                    len: piece.len,
                })
                .collect();
            let start = lists.len();
            *lists = postcard::to_extend(&pieces, std::mem::take(lists)).expect("pieces encode");
            let list = Block { offset: start as u64, len: (lists.len() - start) as u64 };
            KeyGroupBlock {
                group: placed.group,
                block: Block { offset: 0, len: placed.len() },
                pieces: Some(list),
            }
        })
        .collect();
    (key_groups, files, shared)
}

/// Decodes a block's list of pieces.
pub fn decode_pieces(list: &[u8]) -> Result<Vec<BlockPiece>, postcard::Error> {
    postcard::from_bytes(list)
}

/// Decodes the elements of an operator list block.
pub fn decode_list(block: &[u8]) -> Result<Vec<Vec<u8>>, postcard::Error> {
    postcard::from_bytes(block)
}

/// A file-name-safe form of an operator id, with a hash that keeps distinct ids distinct.
fn file_stem(operator_id: &str) -> String {
    let readable: String = operator_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(48)
        .collect();
    let hash = mur3::murmurhash3_x86_32(operator_id.as_bytes(), 0);
    format!("{readable}-{hash:08x}")
}

#[cfg(test)]
mod tests {
    use weir_operators::{OperatorSnapshot, SubtaskInfo};
    use weir_state::{KeyedSnapshot, ListSnapshot};

    use super::*;

    #[test]
    fn blocks_cover_the_file_and_decode_back() {
        let mut keyed = KeyedSnapshot::new();
        keyed.add(3, "count", vec![1, 2, 3]);
        keyed.add(70, "count", vec![4]);
        let lists = vec![ListSnapshot {
            name: "offsets".into(),
            mode: ListMode::Union,
            elements: vec![vec![9], vec![8, 7]],
        }];
        let snapshot = SubtaskSnapshot {
            info: SubtaskInfo::new("Keyed Count / x", 1, 2, 128),
            state: OperatorSnapshot { keyed, lists, native: None },
        };
        let file = encode(&snapshot).unwrap();
        assert!(file.name.starts_with("Keyed_Count___x-") && file.name.ends_with("-1"));
        assert_eq!(file.state.key_groups.iter().map(|g| g.group).collect::<Vec<_>>(), [3, 70]);
        let list = &file.state.operator_lists[0];
        assert_eq!(list.redistribution, Redistribution::Union);
        let range = list.block.range();
        let range = range.start as usize..range.end as usize;
        assert_eq!(decode_list(&file.bytes[range]).unwrap(), vec![vec![9], vec![8, 7]]);
        assert_eq!(file.state.size(), file.bytes.len() as u64);
    }
}
