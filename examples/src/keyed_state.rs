//! The keyed-state job of the state-cost benchmarks (`checkpoint-bench`, `recovery-bench`):
//! a source emits keys `0..N` once, then again round-robin; each key's `ValueState<Vec<u8>>`
//! is created with pseudo-random bytes on its first event and its counter bumped on later ones.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::info;
use weir::prelude::*;

/// The name of the keyed operator in [`keyed_state_job`].
pub const KEYED_STATE: &str = "Keyed State";

/// Builds the keyed-state job on `env`: `keys` keys of `value_bytes` each, updated for
/// `update_for` after the first pass (then the source finishes; `Duration::MAX` never), the
/// source's time from first poll to end stored in `active`.
pub fn keyed_state_job(
    env: &mut StreamExecutionEnvironment,
    keys: u64,
    value_bytes: usize,
    update_for: Duration,
    active: Arc<Mutex<Duration>>,
) {
    env.add_source("Keys", true, move |_| KeySource::new(keys, update_for, Arc::clone(&active)))
        .key_by(|key: &u64| *key)
        .process(GrowAndUpdate { value_bytes, state: None, started: false })
        .name(KEYED_STATE)
        .discard();
}

/// Emits keys `0..keys` once, then again round-robin until `update_for` has passed; stores
/// the time from its first poll to its end in `active`.
struct KeySource {
    keys: u64,
    update_for: Duration,
    next: u64,
    started: Option<Instant>,
    updating_since: Option<Instant>,
    active: Arc<Mutex<Duration>>,
}

impl KeySource {
    fn new(keys: u64, update_for: Duration, active: Arc<Mutex<Duration>>) -> Self {
        KeySource { keys, update_for, next: 0, started: None, updating_since: None, active }
    }
}

impl SourceFunction<u64> for KeySource {
    fn poll(&mut self, out: &mut Vec<Record<u64>>, max: usize) -> FnResult<SourcePoll> {
        let started = *self.started.get_or_insert_with(Instant::now);
        if self.updating_since.is_some_and(|since| since.elapsed() >= self.update_for) {
            *self.active.lock().map_err(|_| "poisoned")? = started.elapsed();
            return Ok(SourcePoll::Finished);
        }
        out.extend((self.next..self.next + max as u64).map(|i| Record::new(i % self.keys)));
        self.next += max as u64;
        if self.updating_since.is_none() && self.next >= self.keys {
            self.updating_since = Some(Instant::now());
        }
        Ok(SourcePoll::Ready)
    }
}

/// Creates each key's value of `value_bytes` pseudo-random bytes on its first event; bumps
/// the counter in its first 8 bytes on every later one. Logs `processing records` at its
/// first record (the recovery benchmark waits for that line).
#[derive(Clone)]
struct GrowAndUpdate {
    value_bytes: usize,
    state: Option<ValueState<Vec<u8>>>,
    started: bool,
}

impl KeyedProcessFunction<u64, u64, ()> for GrowAndUpdate {
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, u64>) -> FnResult {
        self.state = Some(ctx.value_state(&ValueStateDescriptor::new("value"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        key: u64,
        ctx: &mut KeyedContext<'_, u64>,
        _out: &mut Collector<()>,
    ) -> FnResult {
        if !self.started {
            self.started = true;
            info!("{KEYED_STATE}: processing records");
        }
        let state = self.state.as_ref().ok_or("state not registered")?;
        let value = match state.value(ctx)? {
            Some(mut value) => {
                let (counter, _) = value.split_first_chunk_mut::<8>().ok_or("short value")?;
                *counter = (u64::from_le_bytes(*counter) + 1).to_le_bytes();
                value
            }
            None => random_bytes(key, self.value_bytes),
        };
        state.update(ctx, value)?;
        Ok(())
    }
}

/// `len` bytes from a SplitMix64 stream seeded with `seed` (incompressible, reproducible).
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}
