//! The Nexmark events: people, the auctions they open and the bids they place.

use serde::{Deserialize, Serialize};
use weir_types::Timestamp;

/// A person registering with the auction site.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Person {
    /// Person id, from 1000 on.
    pub id: u64,
    /// First and last name.
    pub name: String,
    /// Email address.
    pub email_address: String,
    /// Credit card number, four groups of four digits.
    pub credit_card: String,
    /// A US city.
    pub city: String,
    /// A US state, two letters.
    pub state: String,
    /// Event time, milliseconds since the epoch.
    pub date_time: Timestamp,
    /// Padding bringing the event to its configured average size.
    pub extra: String,
}

/// An item put up for auction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Auction {
    /// Auction id, from 1000 on.
    pub id: u64,
    /// Name of the item.
    pub item_name: String,
    /// Description of the item.
    pub description: String,
    /// Starting price, in cents.
    pub initial_bid: u64,
    /// Lowest price the seller accepts, in cents; above `initial_bid`.
    pub reserve: u64,
    /// Event time, milliseconds since the epoch.
    pub date_time: Timestamp,
    /// When the auction closes (event time, milliseconds since the epoch).
    pub expires: Timestamp,
    /// Id of the person selling.
    pub seller: u64,
    /// Category id, 10 to 14.
    pub category: u64,
    /// Padding bringing the event to its configured average size.
    pub extra: String,
}

/// A bid on an auction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bid {
    /// Id of the auction bid on.
    pub auction: u64,
    /// Id of the person bidding.
    pub bidder: u64,
    /// Price, in cents.
    pub price: u64,
    /// Where the bid came from: `Google`, `Facebook`, `Baidu`, `Apple` or `channel-N`.
    pub channel: String,
    /// URL the bid was placed from.
    pub url: String,
    /// Event time, milliseconds since the epoch.
    pub date_time: Timestamp,
    /// Padding bringing the event to its configured average size.
    pub extra: String,
}

/// One Nexmark event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A new bid.
    Bid(Bid),
}

impl Event {
    /// The event time.
    pub fn date_time(&self) -> Timestamp {
        match self {
            Event::Person(person) => person.date_time,
            Event::Auction(auction) => auction.date_time,
            Event::Bid(bid) => bid.date_time,
        }
    }
}
