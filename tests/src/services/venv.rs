//! Python tools installed with pip into venvs under the cache folder, once per machine.
//!
//! An install holds a file lock, so that tests starting in parallel wait for one install
//! instead of racing; a marker file written after the install tells later runs that it is
//! complete.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, ensure};

use super::cache_dir;

/// The venv `{cache}/{name}` with `requirement` installed (installing it unless already
/// there); `about` says how long the first install takes, for the message.
pub(crate) fn pip_venv(name: &str, requirement: &str, about: &str) -> anyhow::Result<PathBuf> {
    let cache = cache_dir()?;
    let venv = cache.join(name);
    let installed = venv.join(".weir-installed");
    if installed.exists() {
        return Ok(venv);
    }
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let lock_path = cache.join(format!("{name}.lock"));
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    if !installed.exists() {
        eprintln!("installing {requirement} into {} ({about}, once)", venv.display());
        if venv.exists() {
            // Left by an interrupted install.
            std::fs::remove_dir_all(&venv)
                .with_context(|| format!("removing {}", venv.display()))?;
        }
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip")).args(["install", "-q", requirement]))?;
        File::create(&installed).with_context(|| format!("creating {}", installed.display()))?;
    }
    Ok(venv)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
