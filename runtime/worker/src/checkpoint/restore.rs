//! Reading a snapshot back for a job about to start: each operator subtask gets the key
//! groups it now owns and its share of the operator list states, whatever the parallelism
//! was when the snapshot was taken.

use std::collections::HashMap;

use weir_checkpoint::{CheckpointMetadata, OperatorState, Redistribution, SnapshotDir};
use weir_operators::StateRestore;
use weir_state::{KeyedRestore, OperatorRestore};
use weir_types::{CheckpointId, KeyGroupRange};

use super::files::decode_list;
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
}

/// State read back for every operator subtask of a job.
#[derive(Debug, Default)]
pub struct RestoredState {
    states: HashMap<(String, usize), StateRestore>,
    /// The checkpoint it came from.
    pub checkpoint_id: CheckpointId,
    /// Where it came from.
    pub url: String,
    /// Whether anything was restored (else every operator starts fresh).
    from_snapshot: bool,
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
        checkpoint_id: metadata.checkpoint_id,
        url: dir.url().to_string(),
        from_snapshot: true,
    };
    for operator in operators {
        let Some(stored) = metadata.operator(&operator.uid) else { continue };
        for subtask in 0..operator.parallelism {
            let range = KeyGroupRange::for_subtask(max_parallelism, operator.parallelism, subtask);
            let keyed = read_key_groups(dir, stored, range).await?;
            let key = (operator.uid.clone(), subtask);
            restored
                .states
                .insert(key, StateRestore { keyed, operator: OperatorRestore::default() });
        }
        for (name, redistribution, elements) in read_lists(dir, stored).await? {
            for subtask in 0..operator.parallelism {
                let share = match redistribution {
                    Redistribution::Union => elements.clone(),
                    Redistribution::Split => {
                        let n = elements.len();
                        let p = operator.parallelism;
                        elements[subtask * n / p..(subtask + 1) * n / p].to_vec()
                    }
                };
                let key = (operator.uid.clone(), subtask);
                restored.states.entry(key).or_default().operator.add(&name, share);
            }
        }
    }
    Ok(restored)
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
        if wanted.is_empty() {
            continue;
        }
        let ranges: Vec<_> = wanted
            .iter()
            .map(|block| block.block.offset..block.block.offset + block.block.len)
            .collect();
        let bytes = dir.read_ranges(&subtask.file, &ranges).await?;
        blocks.extend(wanted.iter().map(|block| block.group).zip(bytes));
    }
    KeyedRestore::decode(blocks.iter().map(|(group, bytes)| (*group, bytes.as_ref())))
        .map_err(|source| Error::Restore { url: dir.url().to_string(), reason: source.to_string() })
}

/// Every operator list state of `stored`: its elements over all stored subtasks, in order.
async fn read_lists(
    dir: &SnapshotDir,
    stored: &OperatorState,
) -> Result<Vec<(String, Redistribution, Vec<Vec<u8>>)>> {
    let mut lists: Vec<(String, Redistribution, Vec<Vec<u8>>)> = Vec::new();
    for subtask in &stored.subtasks {
        if subtask.operator_lists.is_empty() {
            continue;
        }
        let ranges: Vec<_> = subtask
            .operator_lists
            .iter()
            .map(|list| list.block.offset..list.block.offset + list.block.len)
            .collect();
        let bytes = dir.read_ranges(&subtask.file, &ranges).await?;
        for (list, bytes) in subtask.operator_lists.iter().zip(bytes) {
            let elements = decode_list(&bytes).map_err(|source| Error::Restore {
                url: dir.url().to_string(),
                reason: format!("operator list state '{}': {source}", list.name),
            })?;
            match lists.iter_mut().find(|(name, _, _)| *name == list.name) {
                Some((_, _, all)) => all.extend(elements),
                None => lists.push((list.name.clone(), list.redistribution, elements)),
            }
        }
    }
    Ok(lists)
}
