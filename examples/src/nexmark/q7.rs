//! Query 7, highest bid: the bids at the highest price of every 10 s tumbling window.

use std::time::Duration;

use weir::DataStream;
use weir::connectors::nexmark::{Bid, Event};
use weir::prelude::*;

use super::{Maxima, bids, window_start};

/// Length of the windows.
pub const WINDOW: Duration = Duration::from_secs(10);

/// For every tumbling window of [`WINDOW`], the bids in it at its highest price. Nexmark joins
/// the window's maximum back to the bids at that price; here the bids at the maximum are
/// kept while it is computed: per auction first, then per window over those candidates.
pub fn q7(events: &DataStream<Event>) -> DataStream<Bid> {
    let highest_per_auction = bids(events)
        .key_by(|bid: &Bid| bid.auction)
        .window(TumblingEventTimeWindows::of(WINDOW))
        .aggregate(Maxima::by(|bid: &Bid| bid.price))
        .name("q7: Highest Bids per Auction")
        .flat_map(|highest| highest)
        .name("q7: Candidates");
    let size = WINDOW.as_millis() as i64;
    highest_per_auction
        .key_by(move |bid: &Bid| window_start(bid.date_time, size))
        .window(TumblingEventTimeWindows::of(WINDOW))
        .aggregate(Maxima::by(|bid: &Bid| bid.price))
        .name("q7: Highest Bids per Window")
        .flat_map(|highest| highest)
        .name("q7: Highest Bids")
}
