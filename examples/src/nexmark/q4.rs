//! Query 4, average price per category: the winning bid of every auction (its highest bid
//! within the auction's lifetime, known when the auction expires), averaged per category.

use serde::{Deserialize, Serialize};
use weir::DataStream;
use weir::connectors::nexmark::Event;
use weir::prelude::*;

use super::{auctions, bids};

/// The running average of winning prices in a category, as a total over a count so that it
/// is exact (the query's result row; one per closed auction).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CategoryAverage {
    /// Category id.
    pub category: u64,
    /// Auctions closed with a winning bid so far.
    pub auctions: u64,
    /// Sum of their winning prices, in cents.
    pub total: u64,
}

impl CategoryAverage {
    /// The average winning price, in cents.
    pub fn average(&self) -> f64 {
        self.total as f64 / self.auctions as f64
    }
}

/// An auction's category and lifetime, all the join keeps of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Lifetime {
    category: u64,
    opens: Timestamp,
    expires: Timestamp,
}

impl Lifetime {
    fn contains(&self, time: Timestamp) -> bool {
        (self.opens..=self.expires).contains(&time)
    }
}

/// A bid as the join keeps it: when, and how much.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PricedAt {
    time: Timestamp,
    price: u64,
}

/// For every category, an updated average after each of its auctions closes with at least
/// one bid between its opening and its expiry (both included); the highest such bid wins.
pub fn q4(events: &DataStream<Event>) -> DataStream<CategoryAverage> {
    let lifetimes = auctions(events)
        .map(|a| (a.id, Lifetime { category: a.category, opens: a.date_time, expires: a.expires }))
        .name("q4: Lifetimes");
    let prices = bids(events)
        .map(|bid| (bid.auction, PricedAt { time: bid.date_time, price: bid.price }))
        .name("q4: Prices");
    lifetimes
        .key_by(|(auction, _): &(u64, Lifetime)| *auction)
        .connect(&prices.key_by(|(auction, _): &(u64, PricedAt)| *auction))
        .process(WinningBids::default())
        .name("q4: Winning Bids")
        .key_by(|average: &CategoryAverage| average.category)
        .reduce(|a, b| CategoryAverage {
            category: a.category,
            auctions: a.auctions + b.auctions,
            total: a.total + b.total,
        })
        .name("q4: Average per Category")
}

/// Keyed by auction id: the auction's lifetime and highest bid so far, and the bids that
/// come before the auction; emits the winning price when the auction expires.
#[derive(Clone, Default)]
struct WinningBids {
    lifetime: Option<ValueState<Lifetime>>,
    highest: Option<ValueState<u64>>,
    early_bids: Option<ListState<PricedAt>>,
}

impl WinningBids {
    fn states(&self) -> (&ValueState<Lifetime>, &ValueState<u64>, &ListState<PricedAt>) {
        let opened = "states are registered in open";
        (
            self.lifetime.as_ref().expect(opened),
            self.highest.as_ref().expect(opened),
            self.early_bids.as_ref().expect(opened),
        )
    }

    /// Raises the auction's highest price to `price`.
    fn bid(&self, ctx: &mut KeyedContext<'_, u64>, price: u64) -> FnResult {
        let highest = self.states().1;
        if highest.value(ctx)?.is_none_or(|highest| price > highest) {
            highest.update(ctx, price)?;
        }
        Ok(())
    }
}

impl KeyedCoProcessFunction<u64, (u64, Lifetime), (u64, PricedAt), CategoryAverage>
    for WinningBids
{
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, u64>) -> FnResult {
        self.lifetime = Some(ctx.value_state(&ValueStateDescriptor::new("lifetime"))?);
        self.highest = Some(ctx.value_state(&ValueStateDescriptor::new("highest"))?);
        self.early_bids = Some(ctx.list_state(&ListStateDescriptor::new("early-bids"))?);
        Ok(())
    }

    fn process_element1(
        &mut self,
        (_, lifetime): (u64, Lifetime),
        ctx: &mut KeyedContext<'_, u64>,
        _: &mut Collector<CategoryAverage>,
    ) -> FnResult {
        let (lifetime_state, _, early_bids) = self.states();
        for bid in early_bids.get(ctx)? {
            if lifetime.contains(bid.time) {
                self.bid(ctx, bid.price)?;
            }
        }
        early_bids.clear(ctx)?;
        ctx.timer_service().register_event_time_timer(lifetime.expires);
        lifetime_state.update(ctx, lifetime)?;
        Ok(())
    }

    fn process_element2(
        &mut self,
        (_, bid): (u64, PricedAt),
        ctx: &mut KeyedContext<'_, u64>,
        _: &mut Collector<CategoryAverage>,
    ) -> FnResult {
        let (lifetime, _, early_bids) = self.states();
        match lifetime.value(ctx)? {
            Some(lifetime) if lifetime.contains(bid.time) => self.bid(ctx, bid.price)?,
            Some(_) => {}
            // The auction, if it opens by the bid's time, comes before the watermark passes
            // that time; the timer then drops the bid if it did not.
            None => {
                ctx.timer_service().register_event_time_timer(bid.time);
                early_bids.add(ctx, bid)?;
            }
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        time: Timestamp,
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut Collector<CategoryAverage>,
    ) -> FnResult {
        let (lifetime, highest, early_bids) = self.states();
        match lifetime.value(ctx)? {
            Some(closed) if closed.expires == time => {
                if let Some(price) = highest.value(ctx)? {
                    out.collect(CategoryAverage {
                        category: closed.category,
                        auctions: 1,
                        total: price,
                    });
                }
                lifetime.clear(ctx)?;
                highest.clear(ctx)?;
            }
            Some(_) => {}
            None => {
                let pending: Vec<PricedAt> =
                    early_bids.get(ctx)?.into_iter().filter(|bid| bid.time > time).collect();
                early_bids.update(ctx, pending)?;
            }
        }
        Ok(())
    }
}
