//! The crash-test job of `exactly-once`: events `i = 0..N` from a replayable generator
//! (`key = i % K`, `value = i`), a keyed function keeping count and sum per key, and the
//! exactly-once file sink writing one line `key,count,sum` per event.
//!
//! The generator runs as one subtask, so each key sees its events in order and the lines are
//! the same in every run; the job's parallelism applies to the keyed function and the sink.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use weir::functions::{
    Collector, FnResult, KeyedContext, KeyedProcessFunction, KeyedRuntimeContext,
};
use weir::prelude::{GeneratorConfig, OperatorSettings, StreamExecutionEnvironment};
use weir::state::{ValueState, ValueStateDescriptor};

/// What the job does.
#[derive(Clone, Debug)]
pub struct ExactlyOnceJob {
    /// Events `0..events`.
    pub events: u64,
    /// Keys `i % keys`.
    pub keys: u64,
    /// At most this many events per second.
    pub rate: Option<f64>,
    /// Where committed part files go.
    pub output: PathBuf,
    /// Events at which the keyed function panics, once per process.
    pub fail_at: BTreeSet<u64>,
}

impl ExactlyOnceJob {
    /// Adds the job to `env`.
    pub fn build(&self, env: &mut StreamExecutionEnvironment) -> FnResult {
        if self.keys == 0 {
            return Err("keys must be at least 1".into());
        }
        let mut generator = GeneratorConfig::bounded(self.events);
        if let Some(rate) = self.rate {
            generator = generator.with_rate(rate);
        }
        env.set_job_name("exactly-once");
        let keys = self.keys;
        let function =
            CountAndSum { totals: None, fail_at: Arc::new(Mutex::new(self.fail_at.clone())) };
        env.from_generator(generator, move |i| (i % keys, i))
            .uid("events")
            .set_parallelism(1)
            .key_by(|(key, _): &(u64, u64)| *key)
            .process(function)
            .uid("count-and-sum")
            .sink_to_files(self.output.clone())
            .uid("committed-lines");
        Ok(())
    }

    /// The lines a run without failures commits, sorted.
    pub fn expected_lines(&self) -> Vec<String> {
        let mut totals = BTreeMap::<u64, (u64, u64)>::new();
        let mut lines: Vec<String> = (0..self.events)
            .map(|i| {
                let (count, sum) = totals.entry(i % self.keys).or_default();
                *count += 1;
                *sum += i;
                format!("{},{count},{sum}", i % self.keys)
            })
            .collect();
        lines.sort();
        lines
    }
}

/// The lines of the committed (visible) files in `dir`, sorted; in-progress and pending
/// files (names starting with `.` or `_`) are not read.
pub fn committed_lines(dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && !name.starts_with('_') {
            let text = std::fs::read_to_string(dir.join(&name))?;
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines.sort();
    Ok(lines)
}

/// Says briefly what differs between the committed lines `got` and the expected `want`
/// (both sorted): a few missing, duplicated and unexpected lines.
pub fn difference(got: &[String], want: &[String]) -> String {
    let (got, want) = (counts(got), counts(want));
    let missing: Vec<_> = want.keys().filter(|line| !got.contains_key(*line)).take(3).collect();
    let duplicated: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(3).collect();
    let unexpected: Vec<_> = got.keys().filter(|line| !want.contains_key(*line)).take(3).collect();
    format!(
        "missing e.g. {missing:?}, duplicated e.g. {duplicated:?}, unexpected e.g. {unexpected:?}"
    )
}

/// How often each line occurs.
fn counts(lines: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    lines.iter().for_each(|line| *counts.entry(line.as_str()).or_default() += 1);
    counts
}

/// Count and sum of one key's values so far.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Totals {
    count: u64,
    sum: u64,
}

/// Keeps [`Totals`] per key and emits `key,count,sum` for every event; panics once at each
/// event of `fail_at` (the set is shared by every subtask and attempt of this process).
#[derive(Clone, Default)]
struct CountAndSum {
    totals: Option<ValueState<Totals>>,
    fail_at: Arc<Mutex<BTreeSet<u64>>>,
}

impl KeyedProcessFunction<u64, (u64, u64), String> for CountAndSum {
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
        let state = self.totals.as_ref().ok_or("state not registered")?;
        let mut totals = state.value(ctx)?.unwrap_or_default();
        totals.count += 1;
        totals.sum += value;
        state.update(ctx, totals)?;
        out.collect(format!("{key},{},{}", totals.count, totals.sum));
        Ok(())
    }
}
