//! Query 2, selection: the `(auction, price)` of the bids on a sample of auctions.

use weir::DataStream;
use weir::connectors::nexmark::Event;
use weir::prelude::OperatorSettings;

use super::bids;

/// `(auction, price)` of every bid on an auction whose id is a multiple of 123.
pub fn q2(events: &DataStream<Event>) -> DataStream<(u64, u64)> {
    bids(events)
        .flat_map(|bid| is_sampled_auction(bid.auction).then_some((bid.auction, bid.price)))
        .name("q2: Selection")
}

/// Whether q2 reports the bids on `auction`.
fn is_sampled_auction(auction: u64) -> bool {
    auction.is_multiple_of(123)
}
