//! The crash-test job: events `i = 0..N` from a replayable generator (`key = i % K`,
//! `value = i`, at most R per second), a keyed function keeping count and sum per key, and
//! the exactly-once file sink writing one line `key,count,sum` per event into DIR.
//!
//! The generator runs as one subtask, so each key sees its events in order and the lines are
//! the same in every run; `--parallelism` applies to the keyed function and the sink.
//!
//! ```text
//! exactly-once run --parallelism 2 --events 100000 --keys 10 --rate 20000 --output out \
//!     --checkpoint-dir file:///tmp/chk --checkpoint-interval-ms 200 [--state-backend rocksdb] \
//!     [--restore latest] [--fail-at 1000,5000]
//! ```
//!
//! Kill it at any point and run it again with `--restore latest`: the committed files in DIR
//! (those not starting with `.` or `_`) end up holding exactly the lines of a run without
//! failures. `--fail-at` makes the keyed function panic once, in this process, when it sees
//! those events, to exercise restarts inside the process.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use weir::prelude::*;

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

fn main() -> ExitCode {
    weir::main(|env| {
        let params = env.parameters();
        let events: u64 = params.parse_or("events", 100_000)?;
        let keys: u64 = params.parse_or("keys", 10)?;
        let output = params.required("output")?.to_string();
        let fail_at: BTreeSet<u64> = match params.get("fail-at") {
            Some(list) => list.split(',').map(str::parse).collect::<Result<_, _>>()?,
            None => BTreeSet::new(),
        };
        let mut generator = GeneratorConfig::bounded(events);
        if let Some(rate) = params.get("rate") {
            generator = generator.with_rate(rate.parse()?);
        }
        if keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        env.set_job_name("exactly-once");
        let function = CountAndSum { totals: None, fail_at: Arc::new(Mutex::new(fail_at)) };
        env.from_generator(generator, move |i| (i % keys, i))
            .uid("events")
            .set_parallelism(1)
            .key_by(|(key, _): &(u64, u64)| *key)
            .process(function)
            .uid("count-and-sum")
            .sink_to_files(output)
            .uid("committed-lines");
        Ok(())
    })
}
