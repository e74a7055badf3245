//! Real services the end-to-end tests start on 127.0.0.1 and stop by process id when dropped,
//! installed on first use into a cache folder that later runs reuse.

mod browser;
mod kafka;
mod s3;
mod venv;

pub use browser::Browser;
pub use kafka::KafkaBroker;
pub use s3::S3Server;

use std::path::PathBuf;

use anyhow::Context;

/// The folder where services are installed: `$WEIR_CACHE`, else `$HOME/.cache/weir-ci`.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    match std::env::var_os("WEIR_CACHE").filter(|dir| !dir.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => {
            let home = std::env::var_os("HOME").context("neither WEIR_CACHE nor HOME is set")?;
            Ok(PathBuf::from(home).join(".cache/weir-ci"))
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}
