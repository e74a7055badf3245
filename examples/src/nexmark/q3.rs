//! Query 3, local item suggestion: who sells what in category 10 in Oregon, Idaho or
//! California, an incremental join of people and auctions on seller = id in keyed state.

use serde::{Deserialize, Serialize};
use weir::DataStream;
use weir::connectors::nexmark::{Event, Person};
use weir::prelude::*;

use super::{auctions, persons};

/// A category-10 auction with its seller's name and place (the query's result row).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LocalItem {
    /// Seller's name.
    pub name: String,
    /// Seller's city.
    pub city: String,
    /// Seller's state.
    pub state: String,
    /// Auction id.
    pub auction: u64,
}

/// A seller as the join keeps them: id, name, city, state.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Seller {
    id: u64,
    name: String,
    city: String,
    state: String,
}

/// For every auction in category 10 whose seller lives in OR, ID or CA, the seller's name,
/// city and state and the auction's id, whichever of seller and auction comes first.
pub fn q3(events: &DataStream<Event>) -> DataStream<LocalItem> {
    let sellers = persons(events)
        .flat_map(|Person { id, name, city, state, .. }| {
            is_local_seller(&state).then_some(Seller { id, name, city, state })
        })
        .name("q3: Local Sellers");
    let items = auctions(events)
        .flat_map(|auction| {
            is_suggested_category(auction.category).then_some((auction.seller, auction.id))
        })
        .name("q3: Category 10");
    sellers
        .key_by(|seller: &Seller| seller.id)
        .connect(&items.key_by(|(seller, _): &(u64, u64)| *seller))
        .process(JoinSellerItems::default())
        .name("q3: Join")
}

/// Whether q3 reports sellers living in `state`.
fn is_local_seller(state: &str) -> bool {
    matches!(state, "OR" | "ID" | "CA")
}

/// Whether q3 reports auctions in `category`.
fn is_suggested_category(category: u64) -> bool {
    category == 10
}

/// Keyed by seller id: remembers the seller, and the auctions that come before them.
#[derive(Clone, Default)]
struct JoinSellerItems {
    seller: Option<ValueState<Seller>>,
    waiting_items: Option<ListState<u64>>,
}

impl JoinSellerItems {
    fn states(&self) -> (&ValueState<Seller>, &ListState<u64>) {
        let opened = "states are registered in open";
        (self.seller.as_ref().expect(opened), self.waiting_items.as_ref().expect(opened))
    }
}

fn local_item(seller: &Seller, auction: u64) -> LocalItem {
    LocalItem {
        name: seller.name.clone(),
        city: seller.city.clone(),
        state: seller.state.clone(),
        auction,
    }
}

impl KeyedCoProcessFunction<u64, Seller, (u64, u64), LocalItem> for JoinSellerItems {
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, u64>) -> FnResult {
        self.seller = Some(ctx.value_state(&ValueStateDescriptor::new("seller"))?);
        self.waiting_items = Some(ctx.list_state(&ListStateDescriptor::new("waiting-items"))?);
        Ok(())
    }

    fn process_element1(
        &mut self,
        seller: Seller,
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut Collector<LocalItem>,
    ) -> FnResult {
        let (seller_state, waiting) = self.states();
        for auction in waiting.get(ctx)? {
            out.collect(local_item(&seller, auction));
        }
        waiting.clear(ctx)?;
        seller_state.update(ctx, seller)?;
        Ok(())
    }

    fn process_element2(
        &mut self,
        (_, auction): (u64, u64),
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut Collector<LocalItem>,
    ) -> FnResult {
        let (seller, waiting) = self.states();
        match seller.value(ctx)? {
            Some(seller) => out.collect(local_item(&seller, auction)),
            None => waiting.add(ctx, auction)?,
        }
        Ok(())
    }
}
