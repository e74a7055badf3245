//! S3: a moto server (PyPI `moto[server]`, in a venv under the cache folder) with one bucket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tempfile::NamedTempFile;
use weir_checkpoint::StorageOptions;

use super::free_port;
use super::venv::pip_venv;

const BUCKET: &str = "weir-test";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A running moto S3 server on 127.0.0.1 holding the bucket [`S3Server::bucket`]; killed
/// when dropped. Its data lives in memory only.
pub struct S3Server {
    process: Child,
    port: u16,
    output: NamedTempFile,
}

impl S3Server {
    /// Installs moto if needed, starts it on a free port, waits until it answers and creates
    /// the bucket.
    pub fn start() -> anyhow::Result<Self> {
        let moto_server = install_moto()?;
        let port = free_port()?;
        let output = NamedTempFile::new().context("creating the moto output file")?;
        let process = Command::new(&moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(output.reopen()?)
            .stderr(output.reopen()?)
            .spawn()
            .with_context(|| format!("starting {}", moto_server.display()))?;
        let mut server = Self { process, port, output };
        let started = server.wait_ready().and_then(|()| server.create_bucket());
        started.with_context(|| format!("moto on port {port}; its output:\n{}", server.log()))?;
        Ok(server)
    }

    /// The endpoint URL, `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// `s3://{bucket}/{prefix}`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// Options reaching this server, set explicitly (nothing is read from this process's
    /// environment): its endpoint over plain HTTP, region `us-east-1` and the static
    /// credentials `test`/`test`.
    pub fn options(&self) -> StorageOptions {
        StorageOptions {
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            access_key_id: Some("test".into()),
            secret_access_key: Some("test".into()),
            allow_http: true,
        }
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.process.try_wait()? {
                bail!("moto exited with {status}");
            }
            if let Ok((200, _)) = request(self.port, "GET", "/") {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "no answer after {READY_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn create_bucket(&self) -> anyhow::Result<()> {
        let (status, body) = request(self.port, "PUT", &format!("/{BUCKET}"))
            .with_context(|| format!("creating bucket {BUCKET}"))?;
        ensure!(status == 200, "creating bucket {BUCKET}: HTTP {status}: {body}");
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.output.path()).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // Errors mean the process is already gone.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The `moto_server` executable, installed into `{cache}/moto` unless already there.
fn install_moto() -> anyhow::Result<PathBuf> {
    Ok(pip_venv("moto", "moto[server]", "about 100 s")?.join("bin/moto_server"))
}

/// Sends an empty HTTP/1.1 request to 127.0.0.1:`port`; returns the status and the body.
fn request(port: u16, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let status = response.split(' ').nth(1).and_then(|status| status.parse().ok());
    let status = status.with_context(|| format!("malformed HTTP response: {response}"))?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_owned()))
}
