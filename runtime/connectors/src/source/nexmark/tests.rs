//! Tests of the Nexmark generator and source.

use weir_operators::{SourceFunction, SourcePoll, SourceWatermark};
use weir_types::Watermark;

use super::*;
use crate::test_util::{info, open_source};

fn generator(seed: u64) -> NexmarkGenerator {
    NexmarkGenerator::new(NexmarkConfig { seed, ..NexmarkConfig::default() }).unwrap()
}

#[test]
fn kinds_come_in_the_standard_proportions() {
    let generator = generator(1);
    let (mut people, mut auctions, mut bids) = (0, 0, 0);
    for n in 0..50_000 {
        match generator.event(n) {
            Event::Person(_) => people += 1,
            Event::Auction(_) => auctions += 1,
            Event::Bid(_) => bids += 1,
        }
    }
    assert_eq!((people, auctions, bids), (1_000, 3_000, 46_000));
}

#[test]
fn ids_are_consecutive_and_references_stay_near_existing_ones() {
    let generator = generator(7);
    let (mut next_person, mut next_auction) = (1000, 1000);
    let (mut bids, mut bids_on_existing) = (0, 0);
    for n in 0..100_000 {
        match generator.event(n) {
            Event::Person(person) => {
                assert_eq!(person.id, next_person, "event {n}");
                next_person += 1;
            }
            Event::Auction(auction) => {
                assert_eq!(auction.id, next_auction, "event {n}");
                next_auction += 1;
                assert!((1000..next_person + 10).contains(&auction.seller), "{auction:?}");
                assert!((10..15).contains(&auction.category));
                assert!(auction.reserve > auction.initial_bid && auction.initial_bid >= 100);
                assert!(auction.expires > auction.date_time);
            }
            Event::Bid(bid) => {
                // Nexmark lets a random reference reach up to 10 ids past the newest.
                assert!((1000..next_auction + 10).contains(&bid.auction), "{bid:?}");
                assert!((1000..next_person + 10).contains(&bid.bidder), "{bid:?}");
                assert!((100..=100_000_000).contains(&bid.price));
                bids += 1;
                bids_on_existing += u64::from(bid.auction < next_auction);
            }
        }
    }
    assert!(bids_on_existing * 100 > bids * 95, "{bids_on_existing} of {bids}");
}

#[test]
fn fields_look_like_nexmark() {
    let generator = generator(3);
    let events: Vec<Event> = (0..5_000).map(|n| generator.event(n)).collect();
    let people =
        events.iter().filter_map(|e| if let Event::Person(p) = e { Some(p) } else { None });
    for person in people {
        assert_eq!(person.name.split(' ').count(), 2, "{person:?}");
        assert!(person.email_address.ends_with(".com") && person.email_address.contains('@'));
        assert_eq!(person.credit_card.len(), 19, "{person:?}");
        assert_eq!(person.state.len(), 2);
        assert!(!person.city.is_empty());
    }
    let bids: Vec<&Bid> =
        events.iter().filter_map(|e| if let Event::Bid(b) = e { Some(b) } else { None }).collect();
    let hot = bids.iter().filter(|b| !b.channel.starts_with("channel-")).count();
    // Half the bids come through the four hot channels.
    assert!((bids.len() * 2 / 5..bids.len() * 3 / 5).contains(&hot), "{hot} of {}", bids.len());
    assert!(bids.iter().all(|b| b.url.starts_with("https://www.nexmark.com/")));
    // `extra` pads a bid (32 bytes of numbers) to 100 bytes on average.
    let average = bids.iter().map(|b| b.extra.len()).sum::<usize>() / bids.len();
    assert!((60..=76).contains(&average), "average bid extra {average}");
}

#[test]
fn generation_is_deterministic_for_a_seed() {
    let (a, b, other) = (generator(42), generator(42), generator(43));
    let numbers = [0, 1, 4, 49, 50, 12_345, 1 << 40];
    for n in numbers {
        assert_eq!(a.event(n), b.event(n));
    }
    assert!(numbers.iter().any(|&n| a.event(n) != other.event(n)));
}

#[test]
fn event_time_advances_at_the_configured_rate() {
    let config = NexmarkConfig { events_per_second: 4, base_time: 1000, ..Default::default() };
    let generator = NexmarkGenerator::new(config).unwrap();
    let times: Vec<_> = (0..6).map(|n| generator.event(n).date_time()).collect();
    assert_eq!(times, [1000, 1250, 1500, 1750, 2000, 2250]);
}

#[test]
fn bad_configurations_get_a_clear_error() {
    for config in [
        NexmarkConfig { bid_proportion: 0, ..Default::default() },
        NexmarkConfig { events_per_second: 0, ..Default::default() },
        NexmarkConfig { hot_channels_ratio: 0, ..Default::default() },
        NexmarkConfig { max_rate: Some(-1.0), ..Default::default() },
    ] {
        let error = source(config).unwrap_err().to_string();
        assert!(error.starts_with("invalid Nexmark configuration: "), "{error}");
    }
}

#[test]
fn subtasks_split_the_event_numbers_and_stamp_event_time() {
    let config = NexmarkConfig { max_events: Some(500), seed: 5, ..Default::default() };
    let generator = NexmarkGenerator::new(config.clone()).unwrap();
    let mut all = Vec::new();
    for index in 0..3 {
        let mut source = source(config.clone()).unwrap();
        open_source(&mut source, &info(index, 3)).unwrap();
        let mut out = Vec::new();
        let mut previous = None;
        loop {
            let poll = source.poll(&mut out, 7).unwrap();
            let Some(SourceWatermark::Watermark(Watermark(watermark))) = source.watermark() else {
                assert_eq!(poll, SourcePoll::Finished);
                break;
            };
            let last = out.last().unwrap();
            assert!(last.timestamp.unwrap() <= watermark + 1, "the next event is not late");
            assert!(previous.is_none_or(|previous| previous <= watermark));
            previous = Some(watermark);
        }
        for (i, record) in out.into_iter().enumerate() {
            let number = index as u64 + 3 * i as u64;
            assert_eq!(record.timestamp, Some(generator.timestamp(number)));
            assert_eq!(record.value, generator.event(number), "subtask {index}, event {number}");
            all.push(number);
        }
    }
    all.sort();
    assert_eq!(all, (0..500).collect::<Vec<_>>());
}

/// Generation speed on one core: `cargo test --release -p weir-connectors nexmark_generator_
/// throughput -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, run in release mode"]
fn nexmark_generator_throughput() {
    let generator = generator(0);
    let started = std::time::Instant::now();
    let events = 5_000_000;
    let bytes: usize = (0..events)
        .map(|n| match generator.event(n) {
            Event::Person(p) => p.extra.len(),
            Event::Auction(a) => a.extra.len(),
            Event::Bid(b) => b.extra.len(),
        })
        .sum();
    let seconds = started.elapsed().as_secs_f64();
    println!("{:.0} events/s ({bytes} bytes of extra)", events as f64 / seconds);
}
