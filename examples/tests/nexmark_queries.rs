//! Each Nexmark query's output, at parallelism 1 and 2, against its answer computed directly
//! in plain Rust over the same generated events.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;

use weir::connectors::nexmark::{Auction, Bid, Event, NexmarkConfig, NexmarkGenerator, Person};
use weir::prelude::*;
use weir::{Data, DataStream, Timestamp};
use weir_examples::nexmark::*;
use weir_tests::config;

const EVENTS: u64 = 10_000;

/// 10 000 events over 50 s of event time: several windows of every query, and auctions that
/// open and close within the run.
fn nexmark() -> NexmarkConfig {
    NexmarkConfig {
        max_events: Some(EVENTS),
        events_per_second: 200,
        seed: 7,
        ..Default::default()
    }
}

/// The events the job's source generates, in order.
struct Generated {
    bids: Vec<Bid>,
    persons: Vec<Person>,
    auctions: Vec<Auction>,
}

fn generated() -> Generated {
    let generator = NexmarkGenerator::new(nexmark()).unwrap();
    let mut events = Generated { bids: Vec::new(), persons: Vec::new(), auctions: Vec::new() };
    for n in 0..EVENTS {
        match generator.event(n) {
            Event::Bid(bid) => events.bids.push(bid),
            Event::Person(person) => events.persons.push(person),
            Event::Auction(auction) => events.auctions.push(auction),
        }
    }
    events
}

/// Every result of `query` over the generated events, run with `parallelism`.
fn run<T: Data>(query: fn(&DataStream<Event>) -> DataStream<T>, parallelism: usize) -> Vec<T> {
    let mut env = StreamExecutionEnvironment::new(config(parallelism));
    let results = query(&env.nexmark(nexmark()).unwrap()).collect();
    env.execute().unwrap();
    results.take()
}

/// How many times each value occurs.
fn counted<T: Eq + Hash>(values: Vec<T>) -> HashMap<T, usize> {
    let mut counts = HashMap::new();
    for value in values {
        *counts.entry(value).or_insert(0) += 1;
    }
    counts
}

/// Checks that `query` at parallelism 1 and 2 emits `expected` (non-empty), in any order.
fn assert_emits<T>(query: fn(&DataStream<Event>) -> DataStream<T>, expected: Vec<T>)
where
    T: Data + Debug + Eq + Hash,
{
    assert!(!expected.is_empty(), "the events exercise the query");
    let expected = counted(expected);
    for parallelism in [1, 2] {
        let actual = counted(run(query, parallelism));
        let missing: Vec<_> = expected.iter().filter(|(v, n)| actual.get(*v) != Some(n)).collect();
        let extra: Vec<_> = actual.iter().filter(|(v, n)| expected.get(*v) != Some(n)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "at parallelism {parallelism}, expected but not emitted as often: {:?}; emitted \
             but not expected as often: {:?}",
            &missing[..missing.len().min(3)],
            &extra[..extra.len().min(3)],
        );
    }
}

#[test]
fn q0_passes_every_bid_through() {
    assert_emits(q0, generated().bids);
}

#[test]
fn q1_converts_every_price() {
    let expected = generated()
        .bids
        .into_iter()
        .map(|bid| Bid { price: bid.price * 908 / 1000, ..bid })
        .collect();
    assert_emits(q1, expected);
}

#[test]
fn q2_selects_the_bids_on_every_123rd_auction() {
    let expected = generated()
        .bids
        .into_iter()
        .filter(|bid| bid.auction.is_multiple_of(123))
        .map(|bid| (bid.auction, bid.price))
        .collect();
    assert_emits(q2, expected);
}

#[test]
fn q3_joins_local_sellers_with_their_category_10_auctions() {
    let events = generated();
    let sellers: HashMap<u64, &Person> = events
        .persons
        .iter()
        .filter(|p| ["OR", "ID", "CA"].contains(&p.state.as_str()))
        .map(|p| (p.id, p))
        .collect();
    let expected = events
        .auctions
        .iter()
        .filter(|a| a.category == 10)
        .filter_map(|a| {
            let seller = sellers.get(&a.seller)?;
            Some(LocalItem {
                name: seller.name.clone(),
                city: seller.city.clone(),
                state: seller.state.clone(),
                auction: a.id,
            })
        })
        .collect();
    assert_emits(q3, expected);
}

#[test]
fn q4_averages_winning_prices_per_category() {
    let events = generated();
    let mut winners: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for auction in &events.auctions {
        let winning = events
            .bids
            .iter()
            .filter(|b| b.auction == auction.id)
            .filter(|b| (auction.date_time..=auction.expires).contains(&b.date_time))
            .map(|b| b.price)
            .max();
        if let Some(price) = winning {
            let (auctions, total) = winners.entry(auction.category).or_default();
            *auctions += 1;
            *total += price;
        }
    }
    assert!(winners.values().map(|(auctions, _)| auctions).sum::<u64>() > 100);
    for parallelism in [1, 2] {
        let updates = run(q4, parallelism);
        let closed: u64 = winners.values().map(|(auctions, _)| auctions).sum();
        assert_eq!(updates.len() as u64, closed, "one update per closed auction");
        let mut finals: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for update in updates {
            let latest = finals.entry(update.category).or_default();
            if update.auctions > latest.0 {
                *latest = (update.auctions, update.total);
            }
        }
        assert_eq!(finals, winners, "final (auctions, total) per category");
    }
}

#[test]
fn q5_reports_the_auctions_with_most_bids_per_sliding_window() {
    assert_emits(q5, q5_expected());
}

fn q5_expected() -> Vec<HotItem> {
    const SIZE: i64 = 10_000;
    const SLIDE: i64 = 2_000;
    let mut counts: HashMap<(Timestamp, u64), u64> = HashMap::new();
    for bid in generated().bids {
        let last_start = window_start(bid.date_time, SLIDE);
        for start in (last_start - SIZE + SLIDE..=last_start).step_by(SLIDE as usize) {
            *counts.entry((start + SIZE, bid.auction)).or_default() += 1;
        }
    }
    let mut most: HashMap<Timestamp, u64> = HashMap::new();
    for (&(window_end, _), &bids) in &counts {
        let max = most.entry(window_end).or_default();
        *max = bids.max(*max);
    }
    let expected: Vec<HotItem> = counts
        .into_iter()
        .filter(|((window_end, _), bids)| most[window_end] == *bids)
        .map(|((window_end, auction), bids)| HotItem { window_end, auction, bids })
        .collect();
    assert!(expected.len() >= most.len() && most.len() > 20, "one or more per window");
    expected
}

#[test]
fn q7_reports_the_bids_at_the_highest_price_per_window() {
    assert_emits(q7, q7_expected());
}

fn q7_expected() -> Vec<Bid> {
    const SIZE: i64 = 10_000;
    let bids = generated().bids;
    let mut highest: HashMap<Timestamp, u64> = HashMap::new();
    for bid in &bids {
        let max = highest.entry(window_start(bid.date_time, SIZE)).or_default();
        *max = bid.price.max(*max);
    }
    let expected: Vec<Bid> = bids
        .into_iter()
        .filter(|bid| highest[&window_start(bid.date_time, SIZE)] == bid.price)
        .collect();
    assert!(highest.len() >= 5);
    expected
}

#[test]
fn q8_reports_people_who_sell_in_the_window_they_registered_in() {
    const SIZE: i64 = 10_000;
    let events = generated();
    let selling: HashSet<(u64, Timestamp)> =
        events.auctions.iter().map(|a| (a.seller, window_start(a.date_time, SIZE))).collect();
    let expected = events
        .persons
        .into_iter()
        .map(|p| NewUser { id: p.id, name: p.name, window_start: window_start(p.date_time, SIZE) })
        .filter(|user| selling.contains(&(user.id, user.window_start)))
        .collect();
    assert_emits(q8, expected);
}
