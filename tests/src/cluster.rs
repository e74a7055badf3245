//! A job binary run as one coordinator and worker processes on 127.0.0.1, for the tests of
//! the distributed runtime.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A coordinator process with its standard error collected line by line.
pub struct Coordinator {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    events: mpsc::Receiver<String>,
}

impl Coordinator {
    /// Starts `JOB coordinator --bind 127.0.0.1:0 ARGS…` and waits for its address.
    pub fn start(job: &Path, args: &[&str]) -> (Coordinator, String) {
        let mut child = Command::new(job)
            .args(["coordinator", "--bind", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the coordinator");
        let stderr = BufReader::new(child.stderr.take().expect("piped"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (sender, events) = mpsc::channel();
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                collected.lock().unwrap().push(line.clone());
                let _ = sender.send(line);
            }
        });
        let mut coordinator = Coordinator { child, lines, events };
        let line = coordinator.wait_for("coordinator: listening on ");
        let address = line.rsplit(' ').next().expect("an address").to_string();
        (coordinator, address)
    }

    /// Waits for a line of standard error containing `text` (or finds one already printed).
    pub fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.events.recv_timeout(left).is_err() {
                panic!("no '{text}' from the coordinator:\n{}", self.log());
            }
        }
    }

    /// Waits for the coordinator to exit.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // the last lines
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the coordinator did not end within {limit:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything it printed to standard error so far.
    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A worker process whose standard output (the job's printed records) goes to a file.
pub struct Worker {
    child: Child,
    output: PathBuf,
}

impl Worker {
    /// Starts `JOB worker --coordinator ADDR --slots N`, its output in `dir`.
    pub fn start(job: &Path, coordinator: &str, slots: u32, dir: &Path, index: usize) -> Worker {
        Worker::start_with(job, coordinator, slots, dir, index, &[])
    }

    /// Starts `JOB worker --coordinator ADDR --slots N EXTRA…`, its output in `dir`.
    pub fn start_with(
        job: &Path,
        coordinator: &str,
        slots: u32,
        dir: &Path,
        index: usize,
        extra: &[&str],
    ) -> Worker {
        let output = dir.join(format!("worker-{index}.out"));
        let child = Command::new(job)
            .args(["worker", "--coordinator", coordinator, "--slots", &slots.to_string()])
            .args(extra)
            .stdout(std::fs::File::create(&output).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("worker-{index}.err"))).unwrap())
            .spawn()
            .expect("start a worker");
        Worker { child, output }
    }

    /// The lines the job printed on this worker.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.output).unwrap().lines().map(str::to_string).collect()
    }

    /// Resident memory in bytes, from /proc.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// Kills the worker with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits for the worker to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
