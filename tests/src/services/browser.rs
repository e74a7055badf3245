//! Headless Chromium driven over the W3C WebDriver protocol by Debian's `chromedriver`,
//! installed with apt-get when missing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use super::free_port;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key W3C WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless browser session; the session and chromedriver end when it is dropped.
pub struct Browser {
    driver: Child,
    http: Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    _profile: tempfile::TempDir,
}

/// Installs Debian's `chromium` and `chromium-driver` unless both are there.
fn install() -> anyhow::Result<()> {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output()?.stdout.starts_with(b"0");
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let mut command = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            command.arg("apt-get");
        }
        let status = command.args(args).env("DEBIAN_FRONTEND", "noninteractive").status()?;
        ensure!(status.success(), "apt-get {args:?} failed: {status}");
        Ok(())
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", "chromium", "chromium-driver"])
}

impl Browser {
    /// Starts chromedriver on 127.0.0.1 and a headless Chromium session with a fresh profile.
    pub fn start() -> anyhow::Result<Self> {
        install().context("installing chromium and chromium-driver")?;
        let port = free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let http = Client::builder().timeout(Duration::from_secs(60)).build()?;
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir()?;
        let mut browser = Browser { driver, http, session: String::new(), _profile: profile };
        let deadline = Instant::now() + Duration::from_secs(10);
        while browser.http.get(format!("{base}/status")).send().is_err() {
            ensure!(Instant::now() < deadline, "chromedriver did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1400,900",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", browser._profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let created = browser.call("POST", &format!("{base}/session"), Some(capabilities))?;
        let id = created["sessionId"].as_str().context("a session id")?;
        browser.session = format!("{base}/session/{id}");
        Ok(browser)
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: &str, url: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or(json!({}))),
        };
        let answer: Value = request.send()?.json()?;
        let value = answer["value"].clone();
        if value.get("error").is_some() {
            bail!("WebDriver {method} {url}: {value}");
        }
        Ok(value)
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.call(method, &format!("{}{path}", self.session), body)
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.command("POST", "/url", Some(json!({ "url": url }))).map(drop)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its result.
    pub fn eval(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.command("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// Clicks the first element matching the CSS `selector`, as a user would.
    pub fn click(&self, selector: &str) -> anyhow::Result<()> {
        let query = json!({ "using": "css selector", "value": selector });
        let element = self.command("POST", "/element", Some(query))?;
        let id = element[ELEMENT].as_str().with_context(|| format!("no element {selector}"))?;
        self.command("POST", &format!("/element/{id}/click"), None).map(drop)
    }

    /// Polls `script` until it returns something truthy (returned); fails after `limit`.
    pub fn wait_for(&self, what: &str, script: &str, limit: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.eval(script, json!([]))?;
            if !(value.is_null() || value == false || value == "") {
                return Ok(value);
            }
            ensure!(Instant::now() < deadline, "the page never showed {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the window to `path`.
    pub fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let png = self.command("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().context("a base64 screenshot")?)?;
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &self.session, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
