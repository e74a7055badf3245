//! The parts of the event stream that queries read: bids, people, auctions.

use weir::DataStream;
use weir::Timestamp;
use weir::connectors::nexmark::{Auction, Bid, Event, Person};
use weir::prelude::OperatorSettings;

/// The bids among `events`.
pub fn bids(events: &DataStream<Event>) -> DataStream<Bid> {
    events
        .flat_map(|event| match event {
            Event::Bid(bid) => Some(bid),
            _ => None,
        })
        .name("Bids")
}

/// The people among `events`.
pub fn persons(events: &DataStream<Event>) -> DataStream<Person> {
    events
        .flat_map(|event| match event {
            Event::Person(person) => Some(person),
            _ => None,
        })
        .name("Persons")
}

/// The auctions among `events`.
pub fn auctions(events: &DataStream<Event>) -> DataStream<Auction> {
    events
        .flat_map(|event| match event {
            Event::Auction(auction) => Some(auction),
            _ => None,
        })
        .name("Auctions")
}

/// Start of the window of `size` ms (aligned to the epoch, as Flink's windows) holding `time`.
pub fn window_start(time: Timestamp, size: i64) -> Timestamp {
    time - time.rem_euclid(size)
}
