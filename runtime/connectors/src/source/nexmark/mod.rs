//! The Nexmark benchmark's event source: people, auctions and bids generated in the
//! standard proportions (1 : 3 : 46) with event time advancing at a configured rate.

mod generator;
mod model;

use std::sync::Arc;

use weir_types::Timestamp;

pub use generator::NexmarkGenerator;
pub use model::{Auction, Bid, Event, Person};

use super::DataGeneratorSource;
use crate::Result;

/// How the Nexmark events are generated; the defaults are the benchmark's.
///
/// Event `n` depends only on `n` and this configuration, so a job generates the same events
/// at any parallelism and after any restore.
#[derive(Clone, Debug, PartialEq)]
pub struct NexmarkConfig {
    /// Seed of the random choices.
    pub seed: u64,
    /// Events per second of event time (over all subtasks): event `n` happens at
    /// `base_time + n * 1000 / events_per_second` ms. Default 10 000.
    pub events_per_second: u64,
    /// Event time of the first event, milliseconds since the epoch.
    pub base_time: Timestamp,
    /// How many events to generate; `None` (the default) for an endless stream.
    pub max_events: Option<u64>,
    /// A limit on events per second of wall-clock time over all subtasks; `None` (the
    /// default) generates as fast as the job consumes.
    pub max_rate: Option<f64>,
    /// Out of every `person + auction + bid` events, this many are people. Default 1.
    pub person_proportion: u64,
    /// … this many are auctions. Default 3.
    pub auction_proportion: u64,
    /// … and this many are bids. Default 46.
    pub bid_proportion: u64,
    /// Sellers and bidders are picked among the newest this many people. Default 1000.
    pub num_active_people: u64,
    /// Bids go to the newest this many auctions. Default 100.
    pub num_in_flight_auctions: u64,
    /// Average size of a person, in bytes, reached with `extra` padding. Default 200.
    pub avg_person_byte_size: usize,
    /// Average size of an auction, in bytes. Default 500.
    pub avg_auction_byte_size: usize,
    /// Average size of a bid, in bytes. Default 100.
    pub avg_bid_byte_size: usize,
    /// `1 - 1/ratio` of the bids go to a hot auction. Default 2.
    pub hot_auction_ratio: u32,
    /// `1 - 1/ratio` of the auctions are sold by a hot seller. Default 4.
    pub hot_sellers_ratio: u32,
    /// `1 - 1/ratio` of the bids come from a hot bidder. Default 4.
    pub hot_bidders_ratio: u32,
    /// `1 - 1/ratio` of the bids come through one of four hot channels. Default 2.
    pub hot_channels_ratio: u32,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        NexmarkConfig {
            seed: 0,
            events_per_second: 10_000,
            // 2024-01-01T00:00:00Z, so that runs are reproducible.
            base_time: 1_704_067_200_000,
            max_events: None,
            max_rate: None,
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            num_active_people: 1000,
            num_in_flight_auctions: 100,
            avg_person_byte_size: 200,
            avg_auction_byte_size: 500,
            avg_bid_byte_size: 100,
            hot_auction_ratio: 2,
            hot_sellers_ratio: 4,
            hot_bidders_ratio: 4,
            hot_channels_ratio: 2,
        }
    }
}

/// The Nexmark source for `config`: a parallel source where subtask `i` of `p` generates
/// the events numbered `i, i + p, …`, each with its event time as timestamp, and emits
/// watermarks just below the event time of its next event, so that no event is late.
/// Positions are kept in checkpoints as [`DataGeneratorSource`] keeps them.
///
/// Fails when `config` cannot generate events (a zero proportion, rate or ratio).
pub fn source(config: NexmarkConfig) -> Result<DataGeneratorSource<Event>> {
    let (count, max_rate) = (config.max_events, config.max_rate);
    let generator = Arc::new(NexmarkGenerator::new(config)?);
    let timestamps = Arc::clone(&generator);
    let source = DataGeneratorSource::new(count, Arc::new(move |n| generator.event(n)), max_rate)
        .interleaved()
        .with_event_time(Arc::new(move |n| timestamps.timestamp(n)));
    Ok(source)
}

#[cfg(test)]
mod tests;
