//! CPU time of this process's threads by name, sampled from `/proc/self/task` while a job
//! runs (Linux), so that a benchmark can tell the threads that write checkpoints from those
//! that run tasks: a share of one run's CPU holds steady on a shared machine, where wall-clock
//! time and total CPU time move with the host's load.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the threads are read; a thread that exits loses at most this much.
const EVERY: Duration = Duration::from_millis(50);

/// Samples the CPU time of this process's threads until stopped.
pub struct ThreadCpu {
    stop: Arc<AtomicBool>,
    sampler: JoinHandle<ThreadTimes>,
}

/// Each thread's name and CPU time (clock ticks), by thread id, as last read.
#[derive(Debug, Default)]
pub struct ThreadTimes(HashMap<u64, (String, u64)>);

impl ThreadCpu {
    /// Starts sampling.
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let sampler = std::thread::spawn(move || {
            let mut times = ThreadTimes::default();
            while !stopped.load(Ordering::Relaxed) {
                times.read();
                std::thread::sleep(EVERY);
            }
            times.read();
            times
        });
        ThreadCpu { stop, sampler }
    }

    /// Stops sampling; returns what was read.
    pub fn stop(self) -> ThreadTimes {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap_or_default()
    }
}

impl ThreadTimes {
    /// Reads every thread's name and CPU time now (nothing where `/proc` is missing).
    fn read(&mut self) {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return };
        for task in tasks.flatten() {
            let Some(id) = task.file_name().to_str().and_then(|id| id.parse().ok()) else {
                continue;
            };
            if let Some(read) = std::fs::read_to_string(task.path().join("stat"))
                .ok()
                .and_then(|stat| parse_stat(&stat))
            {
                self.0.insert(id, read);
            }
        }
    }

    /// The share of the CPU time read (0 to 1) taken by threads whose name starts with
    /// `prefix`; `None` if nothing was read.
    pub fn share(&self, prefix: &str) -> Option<f64> {
        let total = self.ticks("");
        (total > 0).then(|| self.ticks(prefix) as f64 / total as f64)
    }

    /// The CPU time (clock ticks) read, summed by thread name (names that differ only in a
    /// number after a space, as pools name their threads, are summed together), largest first.
    pub fn by_name(&self) -> Vec<(String, u64)> {
        let mut sums: HashMap<&str, u64> = HashMap::new();
        for (name, ticks) in self.0.values() {
            let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == ' ');
            *sums.entry(name).or_default() += ticks;
        }
        let mut sums: Vec<(String, u64)> =
            sums.into_iter().map(|(name, ticks)| (name.to_string(), ticks)).collect();
        sums.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        sums
    }

    /// The CPU time (clock ticks) read of the threads whose name starts with `prefix` (all
    /// of them for `""`).
    pub fn ticks(&self, prefix: &str) -> u64 {
        self.0.values().filter(|(name, _)| name.starts_with(prefix)).map(|(_, t)| t).sum()
    }
}

/// A thread's name and user plus system time (clock ticks) from its `stat` line:
/// `id (name) state …`, utime and stime the 14th and 15th fields.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |at: usize| fields.get(at)?.parse::<u64>().ok();
    Some((name, ticks(11)? + ticks(12)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_the_name_and_user_plus_system_ticks() {
        let stat = "4242 (weir-storage (1)) S 1 2 3 4 5 6 7 8 9 10 250 40 0 0 20 0 1 0";
        assert_eq!(parse_stat(stat), Some(("weir-storage (1)".to_string(), 290)));
        assert_eq!(parse_stat("4242 (cut"), None);
    }

    #[test]
    fn a_busy_named_thread_shows_in_the_shares() {
        let cpu = ThreadCpu::start();
        let busy = std::thread::Builder::new()
            .name("busy-test".to_string())
            .spawn(|| {
                let start = std::time::Instant::now();
                let mut spin = 0u64;
                while start.elapsed() < Duration::from_millis(300) {
                    spin = std::hint::black_box(spin.wrapping_add(1));
                }
            })
            .unwrap();
        busy.join().unwrap();
        let times = cpu.stop();
        let share = times.share("busy-test").expect("threads were read");
        assert!(share > 0.5, "the spinning thread took {share} of the CPU read");
        assert_eq!(times.share("no-such-thread"), Some(0.0));
        assert!(times.ticks("busy-test") > 0 && times.ticks("") >= times.ticks("busy-test"));
    }
}
