//! The Nexmark benchmark's queries q0–q8 (q6 left out) on Weir's DataStream API, as Flink's
//! nexmark suite defines them, and a runner that measures their throughput.
//!
//! Each query is a function from the stream of Nexmark events to its result stream, so that a
//! test can collect the result and a benchmark can discard it; [`Query`] names them.

mod events;
mod maxima;
mod q0;
mod q1;
mod q2;
mod q3;
mod q4;
mod q5;
mod q7;
mod q8;
mod query;
mod throughput;

pub use events::{auctions, bids, persons, window_start};
pub use maxima::Maxima;
pub use q0::q0;
pub use q1::q1;
pub use q2::q2;
pub use q3::{LocalItem, q3};
pub use q4::{CategoryAverage, q4};
pub use q5::{HotItem, q5};
pub use q7::q7;
pub use q8::{NewUser, q8};
pub use query::Query;
pub use throughput::{Throughput, measure};
