//! Unaligned checkpoints end to end: a keyed count reads two generator subtasks, one fast and
//! held back by the slow keyed function (backpressured), one slow. With unaligned checkpoints
//! the job survives injected failures with exactly the output of a run without them, and its
//! checkpoints hold records in flight; the alignment timeout turns aligned checkpoints
//! unaligned; a checkpoint holding records in flight refuses another parallelism.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir::prelude::*;
use weir::{CheckpointConfig, ExecutionConfig, JobResult, RestartStrategy};
use weir_checkpoint::{CheckpointMetadata, CheckpointStorage, StorageOptions};
use weir_tests::config;

const JOB: &str = "unaligned";
const EVENTS: u64 = 12_000;
/// Keys per generator subtask; each subtask has keys of its own.
const KEYS: u64 = 8;

/// The key of event `i`. The generator gives its first subtask the first half of the events
/// and its second subtask the second half, each with keys of its own, so every key's events
/// arrive in order on one channel and a run's output lines do not depend on scheduling.
fn key(i: u64) -> u64 {
    if i < EVENTS / 2 { i % KEYS } else { KEYS + i % KEYS }
}

/// How the job is disturbed.
#[derive(Clone, Copy, Default)]
struct Faults<'a> {
    /// The keyed count panics once at each of these events.
    fail_at: &'a [u64],
    /// The slow generator subtask stops for a second before this event, sending nothing.
    stall_at: Option<u64>,
}

/// Generator subtask 0 runs as fast as the keyed count takes its events, subtask 1 sleeps
/// 1 ms every 10 events; the keyed count (parallelism 2, two input channels per subtask)
/// sleeps 1 ms every 4 events, so the fast input's channel stays full; the count and sum of
/// each key go to the exactly-once file sink as `key,count,sum` per event.
fn build(env: &mut StreamExecutionEnvironment, output: &Path, faults: Faults<'_>) {
    env.set_job_name(JOB);
    let fail_at = Arc::new(Mutex::new(faults.fail_at.iter().copied().collect::<BTreeSet<_>>()));
    let stall_at = faults.stall_at;
    env.from_generator(GeneratorConfig::bounded(EVENTS), move |i| {
        if stall_at == Some(i) {
            std::thread::sleep(Duration::from_secs(1));
        }
        if i >= EVENTS / 2 && i.is_multiple_of(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        (key(i), i)
    })
    .uid("events")
    .set_parallelism(2)
    .key_by(|(key, _): &(u64, u64)| *key)
    .process(SlowCountAndSum { totals: None, seen: 0, fail_at })
    .uid("count-and-sum")
    .sink_to_files(output.to_path_buf())
    .uid("committed-lines");
}

/// The lines a run without failures commits, sorted.
fn expected() -> Vec<String> {
    let mut totals = BTreeMap::<u64, (u64, u64)>::new();
    let mut lines: Vec<String> = (0..EVENTS)
        .map(|i| {
            let (count, sum) = totals.entry(key(i)).or_default();
            *count += 1;
            *sum += i;
            format!("{},{count},{sum}", key(i))
        })
        .collect();
    lines.sort();
    lines
}

/// The lines of the committed (visible) part files in `dir`, sorted.
fn committed(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && !name.starts_with('_') {
            let text = std::fs::read_to_string(dir.join(&name)).unwrap();
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines.sort();
    lines
}

/// Unaligned checkpoints every 30 ms into `checkpoints`, all retained, restarting up to 10
/// times after a failure; `alignment_timeout_ms` as given.
fn unaligned(parallelism: usize, checkpoints: &Path, alignment_timeout_ms: u64) -> ExecutionConfig {
    ExecutionConfig {
        checkpointing: CheckpointConfig {
            interval_ms: 30,
            dir: checkpoints.display().to_string(),
            retained: 1_000,
            unaligned: true,
            alignment_timeout_ms,
            ..Default::default()
        },
        restart: Some(RestartStrategy::FixedDelay { attempts: 10, delay_ms: 10 }),
        ..config(parallelism)
    }
}

/// Runs the job with `config` and `faults`; returns its result and its committed lines.
fn run(config: ExecutionConfig, work: &Path, faults: Faults<'_>) -> (JobResult, Vec<String>) {
    let mut env = StreamExecutionEnvironment::new(config);
    build(&mut env, &work.join("out"), faults);
    let result = env.execute().unwrap();
    (result, committed(&work.join("out")))
}

/// Every complete checkpoint under `checkpoints`, oldest first.
fn checkpoints(checkpoints: &Path) -> Vec<CheckpointMetadata> {
    let root = checkpoints.display().to_string();
    let storage = CheckpointStorage::new(&root, JOB, &StorageOptions::default()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut all = Vec::new();
        for id in storage.complete_checkpoints().await.unwrap() {
            all.push(storage.checkpoint_dir(id).read_metadata().await.unwrap());
        }
        all
    })
}

/// Bytes of records in flight `metadata` holds.
fn in_flight_bytes(metadata: &CheckpointMetadata) -> u64 {
    let subtasks = metadata.operators.iter().flat_map(|operator| &operator.subtasks);
    subtasks.filter_map(|subtask| subtask.in_flight).map(|block| block.len).sum()
}

#[test]
fn unaligned_checkpoints_store_records_in_flight_and_restore_them_exactly_once() {
    let work = tempfile::tempdir().unwrap();
    let chk = work.path().join("chk");
    let faults = Faults { fail_at: &[2_000, 5_000, 8_000, 11_000], ..Default::default() };
    let (result, got) = run(unaligned(2, &chk, 0), work.path(), faults);
    assert_eq!(result.restarts, 4, "every injected failure restarted the job");
    let want = expected();
    assert_eq!(got.len(), want.len(), "nothing lost, nothing duplicated");
    assert!(got == want, "the committed lines differ from a run without failures");

    let completed: Vec<_> = result.checkpoints.iter().filter(|c| c.failure.is_none()).collect();
    assert!(
        completed.iter().any(|c| c.unaligned && c.in_flight_size > 0),
        "some checkpoint went unaligned with records in flight: {completed:?}"
    );
    let stored = checkpoints(&chk);
    let with_records: Vec<_> = stored.iter().filter(|m| in_flight_bytes(m) > 0).collect();
    assert!(!with_records.is_empty(), "a completed _metadata has an in_flight block");
    let holder = &with_records[0];
    let keyed = holder.operator("count-and-sum").expect("the keyed count has state");
    assert!(keyed.subtasks.iter().any(|s| s.in_flight.is_some()), "the chain head holds them");
    let stats = result.checkpoints.iter().find(|c| c.id == holder.checkpoint_id).unwrap();
    assert_eq!(stats.in_flight_size, in_flight_bytes(holder));
    assert!(stats.state_size >= stats.in_flight_size, "records in flight count as state");

    // The same checkpoint at another parallelism of the keyed count: a clear refusal.
    let from = chk.join(JOB).join(format!("chk-{}", holder.checkpoint_id));
    let mut config = unaligned(3, &work.path().join("chk-3"), 0);
    config.checkpointing.restore = Some(from.display().to_string());
    let mut env = StreamExecutionEnvironment::new(config);
    build(&mut env, &work.path().join("out-3"), Faults::default());
    let error = env.execute().expect_err("records in flight cannot be rescaled").to_string();
    let id = holder.checkpoint_id;
    for part in [
        "operator 'KeyedProcess' (uid count-and-sum)".to_string(),
        format!("unaligned checkpoint {id}"),
        "taken at parallelism 2".to_string(),
        "not at 3".to_string(),
        "Restore at parallelism 2".to_string(),
        "take a savepoint".to_string(),
    ] {
        assert!(error.contains(&part), "{part:?} missing in: {error}");
    }
}

/// The slow input stalls for a second (its barrier with it) while the fast one is held back:
/// with a short timeout the checkpoint goes unaligned on time, though nothing arrives.
#[test]
fn the_alignment_timeout_turns_slow_alignments_unaligned_on_time() {
    let completed_with = |timeout_ms: u64| {
        let work = tempfile::tempdir().unwrap();
        let config = unaligned(2, &work.path().join("chk"), timeout_ms);
        let faults = Faults { stall_at: Some(EVENTS / 2 + 2_000), ..Default::default() };
        let (result, got) = run(config, work.path(), faults);
        assert!(got == expected(), "timeout {timeout_ms} ms: the output is exact");
        result.checkpoints.into_iter().filter(|c| c.failure.is_none()).collect::<Vec<_>>()
    };
    let patient = completed_with(60_000);
    assert!(patient.len() >= 3, "{patient:?}");
    assert!(patient.iter().all(|c| !c.unaligned), "a long timeout never switches: {patient:?}");
    assert!(
        patient.iter().any(|c| c.alignment >= Duration::from_millis(500)),
        "one checkpoint aligned through the stall: {patient:?}"
    );
    let hurried = completed_with(5);
    let switched: Vec<_> = hurried.iter().filter(|c| c.unaligned).collect();
    assert!(!switched.is_empty(), "alignments longer than 5 ms go unaligned: {hurried:?}");
    let waits: Vec<_> = switched.iter().map(|c| c.alignment).collect();
    let on_time = |wait: &Duration| (5..500).contains(&wait.as_millis());
    assert!(waits.iter().all(on_time), "they aligned for the timeout, not the stall: {waits:?}");
}

/// Count and sum per key, `key,count,sum` per event, slowly; panics once at each event of
/// `fail_at` (shared by every subtask and attempt).
#[derive(Clone)]
struct SlowCountAndSum {
    totals: Option<ValueState<(u64, u64)>>,
    seen: u64,
    fail_at: Arc<Mutex<BTreeSet<u64>>>,
}

impl KeyedProcessFunction<u64, (u64, u64), String> for SlowCountAndSum {
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, u64>) -> FnResult {
        self.totals = Some(ctx.value_state(&ValueStateDescriptor::new("totals"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        (key, value): (u64, u64),
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut Collector<String>,
    ) -> FnResult {
        if self.fail_at.lock().expect("not poisoned").remove(&value) {
            panic!("injected failure at event {value}");
        }
        self.seen += 1;
        if self.seen.is_multiple_of(4) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let state = self.totals.as_ref().ok_or("state not registered")?;
        let (count, sum) = state.value(ctx)?.unwrap_or_default();
        state.update(ctx, (count + 1, sum + value))?;
        out.collect(format!("{key},{},{}", count + 1, sum + value));
        Ok(())
    }
}
