//! The Nexmark event generator: event number `n` alone determines event `n` (its kind, ids,
//! strings and time), so any subtask can generate any share of the numbers.

use std::fmt::Write as _;

use fastrand::Rng;
use weir_types::Timestamp;

use super::NexmarkConfig;
use super::model::{Auction, Bid, Event, Person};
use crate::{Error, Result};

/// The first person id, auction id and category id, as in Nexmark.
const FIRST_PERSON_ID: u64 = 1000;
const FIRST_AUCTION_ID: u64 = 1000;
const FIRST_CATEGORY_ID: u64 = 10;
const NUM_CATEGORIES: u64 = 5;
/// How far past the newest person or auction a random reference may reach (Nexmark lets
/// bids and auctions refer slightly ahead).
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;
/// Hot sellers, bidders and auctions are multiples of this among the recent ids.
const HOT_ID_GRANULE: u64 = 100;
/// Number of ordinary (not hot) bid channels.
const CHANNELS: u64 = 10_000;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] =
    ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];
/// Random strings are at least this long.
const MIN_STRING_LENGTH: usize = 3;
/// Serialized size counted for each number field of an event when sizing `extra`.
const NUMBER_BYTES: usize = 8;

/// Generates Nexmark events by number for a validated [`NexmarkConfig`].
#[derive(Clone, Debug)]
pub struct NexmarkGenerator {
    config: NexmarkConfig,
    /// Sum of the three proportions: events come in epochs of this many.
    epoch_len: u64,
}

impl NexmarkGenerator {
    /// A generator for `config`; fails when the configuration cannot generate events.
    pub fn new(config: NexmarkConfig) -> Result<Self> {
        let invalid = |reason: &str| Err(Error::NexmarkConfig(reason.to_string()));
        let c = &config;
        if c.person_proportion == 0 || c.auction_proportion == 0 || c.bid_proportion == 0 {
            return invalid("person, auction and bid proportions must all be at least 1");
        }
        if c.events_per_second == 0 {
            return invalid("events_per_second must be at least 1");
        }
        if c.num_active_people == 0 || c.num_in_flight_auctions == 0 {
            return invalid("num_active_people and num_in_flight_auctions must be at least 1");
        }
        if [c.hot_auction_ratio, c.hot_sellers_ratio, c.hot_bidders_ratio, c.hot_channels_ratio]
            .contains(&0)
        {
            return invalid("hot ratios must be at least 1");
        }
        if c.max_rate.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
            return invalid("max_rate must be a positive number of events per second");
        }
        let epoch_len = c.person_proportion + c.auction_proportion + c.bid_proportion;
        Ok(NexmarkGenerator { config, epoch_len })
    }

    /// The configuration.
    pub fn config(&self) -> &NexmarkConfig {
        &self.config
    }

    /// The event time of event `number`: `events_per_second` events per second of event
    /// time from `base_time` on.
    pub fn timestamp(&self, number: u64) -> Timestamp {
        let offset = u128::from(number) * 1000 / u128::from(self.config.events_per_second);
        self.config.base_time + offset as Timestamp
    }

    /// Event `number`.
    pub fn event(&self, number: u64) -> Event {
        let mut rng = Rng::with_seed(self.config.seed ^ number.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let offset = number % self.epoch_len;
        if offset < self.config.person_proportion {
            Event::Person(self.person(number, &mut rng))
        } else if offset < self.config.person_proportion + self.config.auction_proportion {
            Event::Auction(self.auction(number, &mut rng))
        } else {
            Event::Bid(self.bid(number, &mut rng))
        }
    }

    /// The base-0 id of the newest person at event `number`.
    pub(super) fn last_person(&self, number: u64) -> u64 {
        let people = self.config.person_proportion;
        let offset = (number % self.epoch_len).min(people - 1);
        number / self.epoch_len * people + offset
    }

    /// The base-0 id of the newest auction at event `number` (0 before the first).
    pub(super) fn last_auction(&self, number: u64) -> u64 {
        let (people, auctions) = (self.config.person_proportion, self.config.auction_proportion);
        let (epoch, offset) = (number / self.epoch_len, number % self.epoch_len);
        if offset < people {
            (epoch * auctions).saturating_sub(1)
        } else if offset >= people + auctions {
            epoch * auctions + auctions - 1
        } else {
            epoch * auctions + offset - people
        }
    }

    /// A random one of the active people (or a few not yet created), base 0.
    fn some_person(&self, number: u64, rng: &mut Rng) -> u64 {
        let people = self.last_person(number) + 1;
        let active = people.min(self.config.num_active_people);
        people - active + rng.u64(0..active + PERSON_ID_LEAD)
    }

    /// A random one of the auctions in flight (or a few not yet created), base 0.
    fn some_auction(&self, number: u64, rng: &mut Rng) -> u64 {
        let newest = self.last_auction(number);
        let oldest = newest.saturating_sub(self.config.num_in_flight_auctions);
        oldest + rng.u64(0..newest - oldest + 1 + AUCTION_ID_LEAD)
    }

    fn person(&self, number: u64, rng: &mut Rng) -> Person {
        let first = FIRST_NAMES[rng.usize(..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.usize(..LAST_NAMES.len())];
        let mut name = String::with_capacity(first.len() + 1 + last.len());
        name.extend([first, " ", last]);
        let mut email_address = String::with_capacity(7 + 1 + 5 + 4);
        push_random(rng, &mut email_address, 7);
        email_address.push('@');
        push_random(rng, &mut email_address, 5);
        email_address.push_str(".com");
        let mut credit_card = String::with_capacity(19);
        for group in 0..4 {
            let separator = if group == 0 { "" } else { " " };
            write!(credit_card, "{separator}{:04}", rng.u32(..10_000)).expect("writes to a String");
        }
        let city = US_CITIES[rng.usize(..US_CITIES.len())].to_string();
        let state = US_STATES[rng.usize(..US_STATES.len())].to_string();
        let size = NUMBER_BYTES
            + [&name, &email_address, &credit_card, &city, &state]
                .iter()
                .map(|s| s.len())
                .sum::<usize>();
        Person {
            id: FIRST_PERSON_ID + self.last_person(number),
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time: self.timestamp(number),
            extra: extra(rng, size, self.config.avg_person_byte_size),
        }
    }

    fn auction(&self, number: u64, rng: &mut Rng) -> Auction {
        let seller = if rng.u32(..self.config.hot_sellers_ratio) > 0 {
            self.last_person(number) / HOT_ID_GRANULE * HOT_ID_GRANULE
        } else {
            self.some_person(number, rng)
        };
        let initial_bid = price(rng);
        let date_time = self.timestamp(number);
        let item_name = random_string(rng, 20);
        let description = random_string(rng, 100);
        let size = item_name.len() + description.len() + 6 * NUMBER_BYTES;
        Auction {
            id: FIRST_AUCTION_ID + self.last_auction(number),
            item_name,
            description,
            initial_bid,
            reserve: initial_bid + price(rng),
            date_time,
            expires: date_time + self.auction_length(number, rng),
            seller: FIRST_PERSON_ID + seller,
            category: FIRST_CATEGORY_ID + rng.u64(..NUM_CATEGORIES),
            extra: extra(rng, size, self.config.avg_auction_byte_size),
        }
    }

    /// A random auction length, up to twice the event time it takes to open as many
    /// auctions as are in flight.
    fn auction_length(&self, number: u64, rng: &mut Rng) -> Timestamp {
        let c = &self.config;
        let events = c.num_in_flight_auctions * self.epoch_len / c.auction_proportion;
        let horizon = self.timestamp(number + events) - self.timestamp(number);
        1 + rng.i64(0..(horizon * 2).max(1))
    }

    fn bid(&self, number: u64, rng: &mut Rng) -> Bid {
        let auction = if rng.u32(..self.config.hot_auction_ratio) > 0 {
            self.last_auction(number) / HOT_ID_GRANULE * HOT_ID_GRANULE
        } else {
            self.some_auction(number, rng)
        };
        let bidder = if rng.u32(..self.config.hot_bidders_ratio) > 0 {
            self.last_person(number) / HOT_ID_GRANULE * HOT_ID_GRANULE + 1
        } else {
            self.some_person(number, rng)
        };
        let (channel, url) = if rng.u32(..self.config.hot_channels_ratio) > 0 {
            let channel = HOT_CHANNELS[rng.usize(..HOT_CHANNELS.len())];
            let url = format!("https://www.nexmark.com/{channel}/item.htm?query=1");
            (channel.to_string(), url)
        } else {
            let channel = rng.u64(..CHANNELS);
            let mut url = String::with_capacity(80);
            url.push_str("https://www.nexmark.com/");
            for _ in 0..3 {
                push_random(rng, &mut url, 5);
                url.push('/');
            }
            write!(url, "item.htm?query=1&channel_id={channel}").expect("writes to a String");
            (format!("channel-{channel}"), url)
        };
        Bid {
            auction: FIRST_AUCTION_ID + auction,
            bidder: FIRST_PERSON_ID + bidder,
            price: price(rng),
            channel,
            url,
            date_time: self.timestamp(number),
            extra: extra(rng, 4 * NUMBER_BYTES, self.config.avg_bid_byte_size),
        }
    }
}

/// A price in cents, log-uniform between $1 and $1,000,000.
fn price(rng: &mut Rng) -> u64 {
    (10f64.powf(rng.f64() * 6.0) * 100.0).round() as u64
}

/// A random string of 3 to `max_len - 1` lowercase letters with the odd inner space.
fn random_string(rng: &mut Rng, max_len: usize) -> String {
    let mut text = String::with_capacity(max_len);
    push_random(rng, &mut text, max_len);
    text
}

/// Appends a random string of 3 to `max_len - 1` lowercase letters with the odd inner space.
fn push_random(rng: &mut Rng, text: &mut String, max_len: usize) {
    let len = MIN_STRING_LENGTH + rng.usize(..max_len - MIN_STRING_LENGTH);
    for i in 0..len {
        let inner = i > 0 && i + 1 < len;
        text.push(if inner && rng.u8(..13) == 0 { ' ' } else { rng.lowercase() });
    }
}

/// Padding bringing an event of `size` bytes to `average` bytes on average: nothing when it
/// is already that large, otherwise letters within 20 % of the missing size.
fn extra(rng: &mut Rng, size: usize, average: usize) -> String {
    if size >= average {
        return String::new();
    }
    let missing = average - size;
    let delta = (missing as f64 * 0.2).round() as usize;
    let len = missing - delta + rng.usize(..=2 * delta);
    // Eight letters from each random word: a letter per call of the generator was the
    // largest single cost of generating events (perf, BENCHMARKS.md).
    let mut letters = Vec::with_capacity(len);
    while letters.len() < len {
        let bytes = rng.u64(..).to_le_bytes();
        let wanted = (len - letters.len()).min(bytes.len());
        letters.extend(bytes[..wanted].iter().map(|&b| b'a' + ((u16::from(b) * 26) >> 8) as u8));
    }
    String::from_utf8(letters).expect("lowercase ASCII letters")
}
