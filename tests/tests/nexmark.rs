//! The Nexmark source in a job: event-time windows over its bids, at several parallelisms.

use std::collections::BTreeMap;
use std::time::Duration;

use weir::connectors::nexmark::{Event, NexmarkConfig};
use weir::prelude::*;
use weir_tests::{config, sorted};

/// Bids per one-second window and channel kind (`hot` or `other`), as `(kind, second, count)`.
fn bids_per_second(parallelism: usize, config_: NexmarkConfig) -> Vec<(String, i64, u64)> {
    let mut env = StreamExecutionEnvironment::new(config(parallelism));
    let counts = env
        .nexmark(config_)
        .unwrap()
        .flat_map(|event: Event| match event {
            Event::Bid(bid) => {
                let kind = if bid.channel.starts_with("channel-") { "other" } else { "hot" };
                Some((kind.to_string(), bid.date_time / 1000, 1))
            }
            _ => None,
        })
        .key_by(|(kind, _, _): &(String, i64, u64)| kind.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .reduce(|a, b| (a.0, a.1, a.2 + b.2))
        .collect();
    env.execute().unwrap();
    sorted(counts.take())
}

#[test]
fn nexmark_bids_fill_event_time_windows_alike_at_any_parallelism() {
    // 10 s of event time at 1000 events/s, from second 0.
    let nexmark = NexmarkConfig {
        max_events: Some(10_000),
        events_per_second: 1000,
        base_time: 0,
        seed: 11,
        ..Default::default()
    };
    let single = bids_per_second(1, nexmark.clone());
    let mut per_second = BTreeMap::new();
    for (_, second, count) in &single {
        *per_second.entry(*second).or_insert(0) += count;
    }
    // Each second holds 20 epochs of 50 events, 46 of them bids.
    assert_eq!(per_second, (0..10).map(|s| (s, 920)).collect::<BTreeMap<_, _>>());
    assert_eq!(bids_per_second(3, nexmark), single, "same events at parallelism 3");
}

#[test]
fn nexmark_rejects_a_bad_configuration() {
    let mut env = StreamExecutionEnvironment::new(config(1));
    let error = env.nexmark(NexmarkConfig { auction_proportion: 0, ..Default::default() });
    let error = error.err().unwrap().to_string();
    assert!(error.contains("proportions must all be at least 1"), "{error}");
}
