//! Query 8, monitor new users: the people who open an auction within the 10 s tumbling
//! window they registered in.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::connectors::nexmark::Event;
use weir::prelude::*;
use weir::{DataStream, JoinInput};

use super::{auctions, persons};

/// Length of the windows.
pub const WINDOW: Duration = Duration::from_secs(10);

/// A person who sold in the window they registered in (the query's result row).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NewUser {
    /// Person id.
    pub id: u64,
    /// Their name.
    pub name: String,
    /// Start of the window, milliseconds since the epoch.
    pub window_start: Timestamp,
}

/// For every tumbling window of [`WINDOW`], each person registered in it who is the seller of
/// at least one auction opened in it: a window join of people and auctions on id = seller,
/// done incrementally (each window keeps the person's name and whether an auction came).
pub fn q8(events: &DataStream<Event>) -> DataStream<NewUser> {
    type Input = JoinInput<(u64, String), u64>;
    let people = persons(events).map(|p| Input::Left((p.id, p.name))).name("q8: People");
    let sellers = auctions(events).map(|a| Input::Right(a.seller)).name("q8: Sellers");
    people
        .union(&[sellers])
        .key_by(|input: &Input| match input {
            JoinInput::Left((id, _)) => *id,
            JoinInput::Right(seller) => *seller,
        })
        .window(TumblingEventTimeWindows::of(WINDOW))
        .aggregate_with_process(PersonAndAuction, EmitNewUser)
        .name("q8: Join")
}

/// What a window saw of one person id: their name, and whether they opened an auction.
type Seen = (Option<String>, bool);

/// Folds a window's people and auctions of one id into [`Seen`]; the result is the person's
/// name when both came.
struct PersonAndAuction;

impl AggregateFunction<JoinInput<(u64, String), u64>, Seen, Option<String>> for PersonAndAuction {
    fn create_accumulator(&self) -> Seen {
        (None, false)
    }

    fn add(&self, input: JoinInput<(u64, String), u64>, seen: &mut Seen) {
        match input {
            JoinInput::Left((_, name)) => seen.0 = Some(name),
            JoinInput::Right(_) => seen.1 = true,
        }
    }

    fn get_result(&self, (name, auctioned): &Seen) -> Option<String> {
        name.clone().filter(|_| *auctioned)
    }

    fn merge(&self, a: Seen, b: Seen) -> Seen {
        (a.0.or(b.0), a.1 || b.1)
    }
}

/// Emits the person of a window where they also opened an auction.
#[derive(Clone)]
struct EmitNewUser;

impl ProcessWindowFunction<Option<String>, NewUser, u64, TimeWindow> for EmitNewUser {
    fn process(
        &mut self,
        id: &u64,
        ctx: &WindowContext<'_, TimeWindow>,
        names: Vec<Option<String>>,
        out: &mut Collector<NewUser>,
    ) -> FnResult {
        for name in names.into_iter().flatten() {
            out.collect(NewUser { id: *id, name, window_start: ctx.window().start });
        }
        Ok(())
    }
}
