//! Query 0, pass-through: every bid through one map, to measure the engine's own cost.

use weir::DataStream;
use weir::connectors::nexmark::{Bid, Event};
use weir::prelude::OperatorSettings;

use super::bids;

/// Every bid, unchanged.
pub fn q0(events: &DataStream<Event>) -> DataStream<Bid> {
    bids(events).map(|bid| bid).name("q0: Pass Through")
}
