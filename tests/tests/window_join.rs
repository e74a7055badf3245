//! Window joins: tumbling, sliding and session windows pair equal keys within a window.

use std::time::Duration;

use weir::prelude::*;
use weir_tests::{EveryEvent, config, sorted};

type Event = (String, i64);

fn stream(env: &mut StreamExecutionEnvironment, events: &[(&str, i64)]) -> DataStream<Event> {
    let events: Vec<Event> = events.iter().map(|(k, t)| (k.to_string(), *t)).collect();
    env.from_collection(events).assign_timestamps_and_watermarks(
        WatermarkStrategy::for_generator(|| EveryEvent(i64::MIN))
            .with_timestamp_assigner(|(_, ts): &Event, _| *ts),
    )
}

fn join<W>(assigner: W, parallelism: usize) -> Vec<String>
where
    W: WindowAssigner<weir::JoinInput<Event, Event>>,
{
    let mut env = StreamExecutionEnvironment::new(config(parallelism));
    let left = stream(&mut env, &[("a", 1_000), ("b", 2_000), ("a", 6_000), ("a", 11_000)]);
    let right = stream(&mut env, &[("a", 1_500), ("a", 4_000), ("b", 12_000), ("a", 12_500)]);
    let out = left
        .join(&right)
        .where_key(|(key, _): &Event| key.clone())
        .equal_to(|(key, _): &Event| key.clone())
        .window(assigner)
        .apply(|(key, l): &Event, (_, r): &Event| format!("{key} {l}-{r}"))
        .collect();
    env.execute().unwrap();
    sorted(out.take())
}

#[test]
fn tumbling_window_join_pairs_within_each_window() {
    for parallelism in [1, 3] {
        let joined = join(TumblingEventTimeWindows::of(Duration::from_secs(5)), parallelism);
        // [0,5s): a1000 x (a1500, a4000); b2000 has no right. [5s,10s): a6000 alone.
        // [10s,15s): a11000 x a12500; b12000 has no left.
        assert_eq!(
            joined,
            vec!["a 1000-1500", "a 1000-4000", "a 11000-12500"],
            "parallelism {parallelism}"
        );
    }
}

#[test]
fn sliding_window_join_pairs_once_per_shared_window() {
    let joined =
        join(SlidingEventTimeWindows::of(Duration::from_secs(4), Duration::from_secs(2)), 2);
    // Windows are [start, start + 4 s) every 2 s. a1000 and a1500 share [-2s,2s) and [0,4s):
    // two pairs. a6000 (left) and a4000 (right) share [4s,8s). a11000 and a12500 share
    // [10s,14s). a1000 and a4000 share none.
    assert_eq!(joined, vec!["a 1000-1500", "a 1000-1500", "a 11000-12500", "a 6000-4000"]);
}

#[test]
fn session_window_join_pairs_within_merged_sessions() {
    let joined = join(EventTimeSessionWindows::with_gap(Duration::from_millis(2_500)), 1);
    // Key a: 1000,1500,4000,6000 chain into one session (gaps ≤ 2.5 s); 11000,12500 another.
    assert_eq!(
        joined,
        vec!["a 1000-1500", "a 1000-4000", "a 11000-12500", "a 6000-1500", "a 6000-4000"]
    );
}
