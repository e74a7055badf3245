//! Native (incremental) checkpoints as the rest of the engine sees them: the files of a
//! backend's own checkpoint in a local directory, which of them are immutable and shared
//! between checkpoints under ids unique across instances and processes, and what a restore
//! hands back. Plain data, so that runtimes built without RocksDB still carry and refuse them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use weir_types::KeyGroupRange;

/// A native checkpoint of one subtask's keyed state (RocksDB: hard links to its SST files plus
/// its MANIFEST, CURRENT and OPTIONS files), in a local directory that is removed once the
/// checkpoint and every clone of it are dropped.
#[derive(Debug, Clone)]
pub struct NativeCheckpoint {
    /// The local directory holding the files.
    pub dir: LocalDir,
    /// Every file of the directory, by name.
    pub files: Vec<NativeFile>,
    /// The key groups the instance holds; a restore needs it back.
    pub key_group_range: KeyGroupRange,
}

impl NativeCheckpoint {
    /// The immutable files, to upload once and share between checkpoints.
    pub fn shared_files(&self) -> impl Iterator<Item = (&NativeFile, &str)> {
        self.files.iter().filter_map(|file| Some((file, file.shared_id.as_deref()?)))
    }

    /// The small files of this checkpoint only, uploaded every time.
    pub fn private_files(&self) -> impl Iterator<Item = &NativeFile> {
        self.files.iter().filter(|file| file.shared_id.is_none())
    }
}

/// One file of a native checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFile {
    /// File name inside the checkpoint directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// For an immutable file (an SST), an id that always names the same bytes, in any
    /// subtask, process or later run: store it once under this id and reference it from
    /// every checkpoint that has it. `None` for files of this checkpoint only.
    pub shared_id: Option<String>,
}

/// A native checkpoint downloaded for a restore; clones share the download.
#[derive(Debug, Clone)]
pub struct NativeRestore {
    /// The local directory holding its files under their original names.
    pub dir: LocalDir,
    /// The key groups the checkpointed instance held.
    pub key_group_range: KeyGroupRange,
    /// The shared id of each immutable file, by file name: an instance that continues from
    /// this checkpoint names the same files with the same ids, so they are not stored again.
    pub shared_ids: BTreeMap<String, String>,
}

/// A local directory owned by whoever holds a clone of this; the last one dropped removes it
/// with everything in it.
#[derive(Debug, Clone)]
pub struct LocalDir(Arc<OwnedDir>);

impl LocalDir {
    /// Takes ownership of the existing directory `path`.
    pub fn adopt(path: PathBuf) -> Self {
        LocalDir(Arc::new(OwnedDir(path)))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0.0
    }
}

/// A directory removed, with its content, on drop.
#[derive(Debug)]
pub(crate) struct OwnedDir(pub(crate) PathBuf);

impl Drop for OwnedDir {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.0) {
            Ok(()) => tracing::debug!(path = %self.0.display(), "removed local directory"),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(
                path = %self.0.display(),
                %error,
                "could not remove local directory"
            ),
        }
    }
}

/// Removes the directories under `root` named `{process id}-…` whose process is gone: a
/// process killed with SIGKILL cannot remove its working and download directories itself.
/// Runs once per root in a process; needs `/proc` (elsewhere it does nothing).
pub fn remove_dirs_of_dead_processes(root: &Path) {
    static SWEPT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let proc = Path::new("/proc");
    let first = SWEPT.lock().is_ok_and(|mut swept| swept.insert(root.to_path_buf()));
    let Ok(entries) = std::fs::read_dir(root) else { return };
    if !first || !proc.join("self").exists() {
        return;
    }
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.split('-').next()) else { continue };
        if pid.parse::<u32>().is_ok() && !proc.join(pid).exists() {
            drop(OwnedDir(entry.path()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_of_dead_processes_go_and_others_stay() {
        let root = tempfile::tempdir().unwrap();
        let dead = root.path().join("4999999-0-kg0-127"); // above Linux's highest process id
        let alive = root.path().join(format!("{}-0-kg0-127", std::process::id()));
        let other = root.path().join("not-a-process");
        for dir in [&dead, &alive, &other] {
            std::fs::create_dir_all(dir.join("inside")).unwrap();
        }
        remove_dirs_of_dead_processes(root.path());
        assert_eq!(dead.exists(), !Path::new("/proc/self").exists());
        assert!(alive.exists() && other.exists());
    }

    #[test]
    fn a_local_dir_goes_with_its_last_clone() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("checkpoint");
        std::fs::create_dir_all(path.join("sub")).unwrap();
        let dir = LocalDir::adopt(path.clone());
        let clone = dir.clone();
        drop(dir);
        assert!(clone.path().exists());
        drop(clone);
        assert!(!path.exists());
    }
}
