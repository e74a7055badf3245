//! Runtime edge cases: latency of slow streams, side outputs feeding chains, errors outside
//! user functions, invalid settings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use weir::prelude::*;
use weir_tests::config;

/// Emits one record every 20 ms, 100 in all, and stops early once `seen` is set.
struct Trickle {
    next: u64,
    seen: Arc<AtomicBool>,
}

impl SourceFunction<u64> for Trickle {
    fn poll(&mut self, out: &mut Vec<Record<u64>>, _max: usize) -> FnResult<SourcePoll> {
        if self.next == 100 || self.seen.load(Ordering::Relaxed) {
            return Ok(SourcePoll::Finished);
        }
        std::thread::sleep(Duration::from_millis(20));
        out.push(Record::new(self.next));
        self.next += 1;
        Ok(SourcePoll::Ready)
    }
}

/// Notes the time the first record arrives, then tells the source to stop.
#[derive(Clone)]
struct FirstArrival {
    seen: Arc<AtomicBool>,
    started: Instant,
    latency: Arc<std::sync::Mutex<Option<Duration>>>,
}

impl ProcessFunction<u64, u64> for FirstArrival {
    fn process_element(
        &mut self,
        value: u64,
        _: &mut ProcessContext<'_>,
        _: &mut Collector<u64>,
    ) -> FnResult {
        let mut latency = self.latency.lock().unwrap();
        if latency.is_none() {
            *latency = Some(self.started.elapsed());
            assert_eq!(value, 0);
        }
        self.seen.store(true, Ordering::Relaxed);
        Ok(())
    }
}

#[test]
fn a_source_that_is_never_idle_still_delivers_within_the_buffer_timeout() {
    let seen = Arc::new(AtomicBool::new(false));
    let latency = Arc::new(std::sync::Mutex::new(None));
    let mut env =
        StreamExecutionEnvironment::new(ExecutionConfig { buffer_timeout_ms: 50, ..config(1) });
    let source_seen = seen.clone();
    env.add_source("trickle", true, move |_| Trickle { next: 0, seen: source_seen.clone() })
        .rebalance()
        .process(FirstArrival { seen, started: Instant::now(), latency: latency.clone() })
        .discard();
    env.execute().unwrap();
    let latency = latency.lock().unwrap().expect("a record arrived");
    // Batches of 16 would take 320 ms to fill; the buffer timeout sends after 50 ms.
    assert!(latency < Duration::from_millis(250), "first record after {latency:?}");
}

#[derive(Clone)]
struct Tagged;

fn tag_i64() -> OutputTag<i64> {
    OutputTag::new("side")
}

impl ProcessFunction<i64, i64> for Tagged {
    fn process_element(
        &mut self,
        value: i64,
        _: &mut ProcessContext<'_>,
        out: &mut Collector<i64>,
    ) -> FnResult {
        out.output(&tag_i64(), value * 100);
        out.collect(value);
        Ok(())
    }
}

/// Records whether `open` ran before the first record.
#[derive(Clone, Default)]
struct MustOpen {
    opened: bool,
}

impl ProcessFunction<i64, i64> for MustOpen {
    fn open(&mut self, _ctx: &mut RuntimeContext<'_>) -> FnResult {
        self.opened = true;
        Ok(())
    }

    fn process_element(
        &mut self,
        value: i64,
        _: &mut ProcessContext<'_>,
        out: &mut Collector<i64>,
    ) -> FnResult {
        if !self.opened {
            return Err("processed before open".into());
        }
        out.collect(value + 1);
        Ok(())
    }
}

#[test]
fn operators_chained_behind_a_side_output_are_opened() {
    let mut env = StreamExecutionEnvironment::new(config(1));
    let main = env.from_collection(vec![1i64, 2]).process(Tagged);
    let side = main.get_side_output(&tag_i64()).process(MustOpen::default()).collect();
    main.discard();
    assert!(
        env.execution_plan().unwrap().contains("Process -> Process"),
        "the side consumer is chained"
    );
    env.execute().unwrap();
    assert_eq!(weir_tests::sorted(side.take()), vec![101, 201]);
}

#[test]
fn side_output_read_with_another_type_fails_the_job() {
    let mut env = StreamExecutionEnvironment::new(config(1));
    let main = env.from_collection(vec![1i64]).process(Tagged);
    main.get_side_output(&OutputTag::<i32>::new("side")).discard();
    let error = env.execute().unwrap_err().to_string();
    assert!(error.contains("operator 'Process' (subtask 1/1)"), "{error}");
    assert!(error.contains("side output 'side' is emitted as i64 but read as i32"), "{error}");
}

#[test]
fn a_panicking_key_selector_is_reported_with_its_message() {
    let mut env = StreamExecutionEnvironment::new(config(2));
    env.from_sequence(0, 100)
        .key_by(|x| {
            assert!(*x != 5, "bad key {x}");
            *x
        })
        .reduce(|a, b| a + b)
        .discard();
    let error = env.execute().unwrap_err().to_string();
    assert!(
        error.contains("key selector of 'Keyed Reduce' failed: panicked: bad key 5"),
        "{error}"
    );
}

#[test]
fn zero_sized_settings_are_rejected() {
    for config in [
        ExecutionConfig { batch_size: 0, ..config(1) },
        ExecutionConfig { channel_capacity: 0, ..config(1) },
        ExecutionConfig { parallelism: 0, ..config(1) },
    ] {
        let mut env = StreamExecutionEnvironment::new(config);
        env.from_sequence(0, 10).discard();
        let error = env.execute().unwrap_err().to_string();
        assert!(error.contains("must be at least 1"), "{error}");
    }
}

/// Emits nothing, polling every 5 ms, until `stop` is set.
struct UntilStopped {
    stop: Arc<AtomicBool>,
}

impl SourceFunction<u64> for UntilStopped {
    fn poll(&mut self, _out: &mut Vec<Record<u64>>, _max: usize) -> FnResult<SourcePoll> {
        if self.stop.load(Ordering::Relaxed) {
            return Ok(SourcePoll::Finished);
        }
        std::thread::sleep(Duration::from_millis(5));
        Ok(SourcePoll::Ready)
    }
}

/// The ids of this process's threads named `name`.
#[cfg(target_os = "linux")]
fn threads_named(name: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|entry| entry.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|tid| {
            std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .collect()
}

/// CPU time (user + system, in clock ticks) thread `tid` has used, 0 once it has ended.
#[cfg(target_os = "linux")]
fn cpu_ticks(tid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return 0;
    };
    // Fields after the parenthesized name: state is the 3rd field, utime and stime the 14th and 15th.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_job_left_running_without_its_client_does_not_spin_its_driver() {
    let before = threads_named("job driver");
    let stop = Arc::new(AtomicBool::new(false));
    let mut env = StreamExecutionEnvironment::new(config(1));
    let source_stop = stop.clone();
    env.add_source("Until Stopped", true, move |_| UntilStopped { stop: source_stop.clone() })
        .discard();
    let client = env.execute_async().unwrap();
    let status = client.status();
    drop(client);
    std::thread::sleep(Duration::from_millis(200));
    let drivers: Vec<String> =
        threads_named("job driver").into_iter().filter(|tid| !before.contains(tid)).collect();
    assert!(!drivers.is_empty(), "the job's driver thread runs");
    let used = || drivers.iter().map(|tid| cpu_ticks(tid)).max().unwrap();
    let (at_start, started) = (used(), Instant::now());
    std::thread::sleep(Duration::from_millis(800));
    let (busy, elapsed) = (used() - at_start, started.elapsed());
    stop.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !status.snapshot().state.is_terminal() {
        assert!(Instant::now() < deadline, "the job ends once its source does");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(status.snapshot().state.name(), "finished");
    // Clock ticks are 10 ms: a spinning driver shows about 80 of them.
    assert!(busy <= 15, "the driver used {busy} ticks of CPU in {elapsed:?} with nothing to do");
}
