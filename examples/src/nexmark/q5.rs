//! Query 5, hot items: every 2 s, the auctions with the most bids over the last 10 s.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::DataStream;
use weir::connectors::nexmark::Event;
use weir::prelude::*;

use super::{Maxima, bids};

/// Length of the windows bids are counted over.
pub const WINDOW: Duration = Duration::from_secs(10);
/// How often a window starts.
pub const SLIDE: Duration = Duration::from_secs(2);

/// An auction's bids in a window (the query's result row, for the auctions with most bids).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HotItem {
    /// End of the window (exclusive), milliseconds since the epoch.
    pub window_end: Timestamp,
    /// Auction id.
    pub auction: u64,
    /// Bids on the auction in the window.
    pub bids: u64,
}

/// For every sliding window of [`WINDOW`] every [`SLIDE`], the auctions with the most bids in
/// it (all of them on a tie): counted per auction, then the maxima per window.
pub fn q5(events: &DataStream<Event>) -> DataStream<HotItem> {
    bids(events)
        .map(|bid| bid.auction)
        .name("q5: Auctions")
        .key_by(|auction: &u64| *auction)
        .window(SlidingEventTimeWindows::of(WINDOW, SLIDE))
        .aggregate_with_process(Count, CountInWindow)
        .name("q5: Bids per Auction")
        .key_by(|item: &HotItem| item.window_end)
        // A window's counts carry the time `window_end - 1`, so the slide-long window that
        // ends where they do collects exactly them.
        .window(TumblingEventTimeWindows::of(SLIDE))
        .aggregate(Maxima::by(|item: &HotItem| item.bids))
        .name("q5: Most Bids per Window")
        .flat_map(|hottest| hottest)
        .name("q5: Hot Items")
}

/// Counts the inputs.
struct Count;

impl<T> AggregateFunction<T, u64, u64> for Count {
    fn create_accumulator(&self) -> u64 {
        0
    }

    fn add(&self, _: T, count: &mut u64) {
        *count += 1;
    }

    fn get_result(&self, count: &u64) -> u64 {
        *count
    }

    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// Labels an auction's count with its window's end.
#[derive(Clone)]
struct CountInWindow;

impl ProcessWindowFunction<u64, HotItem, u64, TimeWindow> for CountInWindow {
    fn process(
        &mut self,
        auction: &u64,
        ctx: &WindowContext<'_, TimeWindow>,
        counts: Vec<u64>,
        out: &mut Collector<HotItem>,
    ) -> FnResult {
        for bids in counts {
            out.collect(HotItem { window_end: ctx.window().end, auction: *auction, bids });
        }
        Ok(())
    }
}
