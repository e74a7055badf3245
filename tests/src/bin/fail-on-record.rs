//! Test fixture: a job whose map panics on one record (`--panic-at N`) or returns an error
//! (`--error-at N`), to check that the job stops with a message naming the operator.

use std::process::ExitCode;

use weir::prelude::*;

fn main() -> ExitCode {
    weir::main(|env| {
        let params = env.parameters();
        let panic_at: u64 = params.parse_or("panic-at", u64::MAX)?;
        let error_at: u64 = params.parse_or("error-at", u64::MAX)?;
        env.from_generator(GeneratorConfig::bounded(1_000_000), |i| i)
            .map(move |i| {
                assert!(i != panic_at, "record {i} is poison");
                i
            })
            .name("Poison Check")
            .try_map(
                move |i| {
                    if i == error_at { Err(format!("cannot handle record {i}")) } else { Ok(i) }
                },
            )
            .name("Validate")
            .rebalance()
            .discard();
        Ok(())
    })
}
