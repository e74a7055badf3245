//! Watching a directory for new files: which files a subtask has taken, which new ones it
//! owns, and when to look again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir_state::OperatorStateStore;

use crate::Result;

/// The union list state of the files taken so far, each stored by the subtask that owns it.
const SEEN_STATE: &str = "text-file-seen";

/// A subtask's view of a watched directory: a new file belongs to the subtask
/// `hash(path) % parallelism` (a hash that is the same in every process), which reads it
/// whole. The files taken are kept in the union list state `text-file-seen`, so that after a
/// restore, at any parallelism, no subtask takes a file again.
#[derive(Debug)]
pub(super) struct FileMonitor {
    interval: Duration,
    index: u64,
    parallelism: u64,
    /// Every file taken by any subtask (as restored) or by this one.
    seen: BTreeSet<PathBuf>,
    next_scan: Instant,
}

/// FNV-1a of the path's bytes: stable across processes and runs, unlike `std`'s hasher.
fn owner_hash(path: &Path) -> u64 {
    path.as_os_str().as_encoded_bytes().iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    })
}

impl FileMonitor {
    /// The monitor of subtask `index` of `parallelism`, scanning every `interval`, with the
    /// files taken before a restore read from `state`.
    pub(super) fn open(
        interval: Duration,
        index: usize,
        parallelism: usize,
        state: &mut OperatorStateStore,
    ) -> Result<Self, weir_state::Error> {
        let stored = state.union_list_state::<PathBuf>(SEEN_STATE)?;
        let seen = stored.get(state).iter().cloned().collect();
        Ok(FileMonitor {
            interval,
            index: index as u64,
            parallelism: parallelism.max(1) as u64,
            seen,
            next_scan: Instant::now(),
        })
    }

    fn owns(&self, path: &Path) -> bool {
        owner_hash(path) % self.parallelism == self.index
    }

    /// How long until the next scan is due (zero when it is).
    pub(super) fn wait(&self, now: Instant) -> Duration {
        self.next_scan.saturating_duration_since(now)
    }

    /// Of `files` (listed now), those this subtask owns and has not taken, now taken; the
    /// next scan is due an interval from `now`.
    pub(super) fn take_new(&mut self, files: Vec<PathBuf>, now: Instant) -> Vec<PathBuf> {
        self.next_scan = now + self.interval;
        let new: Vec<PathBuf> =
            files.into_iter().filter(|path| self.owns(path) && !self.seen.contains(path)).collect();
        self.seen.extend(new.iter().cloned());
        if !new.is_empty() {
            tracing::debug!(files = new.len(), "new files to read");
        }
        new
    }

    /// Stores the files taken that this subtask owns (each taken file is stored by exactly
    /// one subtask).
    pub(super) fn snapshot(&self, state: &mut OperatorStateStore) -> Result<(), weir_state::Error> {
        let owned = self.seen.iter().filter(|path| self.owns(path)).cloned().collect();
        state.union_list_state::<PathBuf>(SEEN_STATE)?.update(state, owned);
        Ok(())
    }
}
