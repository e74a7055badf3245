//! Query 1, currency conversion: every bid with its price from dollars into euros.

use weir::DataStream;
use weir::connectors::nexmark::{Bid, Event};
use weir::prelude::OperatorSettings;

use super::bids;

/// Every bid with its price in euro cents.
pub fn q1(events: &DataStream<Event>) -> DataStream<Bid> {
    bids(events)
        .map(|bid| Bid { price: to_euro_cents(bid.price), ..bid })
        .name("q1: Currency Conversion")
}

/// `dollar_cents` in euro cents at Nexmark's rate of 0.908, rounded down.
fn to_euro_cents(dollar_cents: u64) -> u64 {
    dollar_cents * 908 / 1000
}
