//! The crash-test job (see [`weir_examples::exactly_once`]):
//!
//! ```text
//! exactly-once run --parallelism 2 --events 100000 --keys 10 --rate 20000 --output out \
//!     --checkpoint-dir file:///tmp/chk --checkpoint-interval-ms 200 [--state-backend rocksdb] \
//!     [--restore latest] [--fail-at 1000,5000]
//! ```
//!
//! Kill it at any point and run it again with `--restore latest`: the committed files in the
//! output directory (those not starting with `.` or `_`) end up holding exactly the lines of
//! a run without failures. `--fail-at` makes the keyed function panic once, in this process,
//! when it sees those events, to exercise restarts inside the process.

use std::collections::BTreeSet;
use std::process::ExitCode;

use weir_examples::exactly_once::ExactlyOnceJob;

fn main() -> ExitCode {
    weir::main(|env| {
        let params = env.parameters();
        let fail_at: BTreeSet<u64> = match params.get("fail-at") {
            Some(list) => list.split(',').map(str::parse).collect::<Result<_, _>>()?,
            None => BTreeSet::new(),
        };
        let rate = params.get("rate").map(str::parse).transpose()?;
        let job = ExactlyOnceJob {
            events: params.parse_or("events", 100_000)?,
            keys: params.parse_or("keys", 10)?,
            rate,
            output: params.required("output")?.into(),
            fail_at,
        };
        job.build(env)
    })
}
