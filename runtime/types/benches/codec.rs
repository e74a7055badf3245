//! How fast and how compact record batches cross the network in each candidate format:
//! postcard (the data plane's and the state's format), bincode, bitcode, and JSON as a
//! baseline. `cargo bench -p weir-types --bench codec` prints one row per format and record
//! shape: nanoseconds per record to encode and to decode a batch of 1024, and bytes per
//! record.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_types::{Record, StreamMessage};

const BATCH: usize = 1024;
/// How long each measurement runs.
const MEASURE: Duration = Duration::from_millis(600);

/// A candidate wire format.
#[derive(Clone, Copy, Debug)]
enum Format {
    Postcard,
    Bincode,
    Bitcode,
    Json,
}

impl Format {
    const ALL: [Format; 4] = [Format::Postcard, Format::Bincode, Format::Bitcode, Format::Json];

    fn encode<T: Serialize>(self, message: &StreamMessage<T>) -> Vec<u8> {
        match self {
            Format::Postcard => postcard::to_allocvec(message).unwrap(),
            Format::Bincode => {
                bincode::serde::encode_to_vec(message, bincode::config::standard()).unwrap()
            }
            Format::Bitcode => bitcode::serialize(message).unwrap(),
            Format::Json => serde_json::to_vec(message).unwrap(),
        }
    }

    fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> StreamMessage<T> {
        match self {
            Format::Postcard => postcard::from_bytes(bytes).unwrap(),
            Format::Bincode => {
                bincode::serde::decode_from_slice(bytes, bincode::config::standard()).unwrap().0
            }
            Format::Bitcode => bitcode::deserialize(bytes).unwrap(),
            Format::Json => serde_json::from_slice(bytes).unwrap(),
        }
    }
}

/// Nanoseconds per call of `f`, run repeatedly for [`MEASURE`].
fn time_per_call(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < MEASURE {
        f();
        calls += 1;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

fn measure<T: Serialize + DeserializeOwned>(shape: &str, batch: StreamMessage<T>) {
    let reference = Format::Postcard.encode(&batch);
    for format in Format::ALL {
        let bytes = format.encode(&batch);
        let decoded = format.decode::<T>(&bytes);
        assert_eq!(Format::Postcard.encode(&decoded), reference, "{format:?} round-trips");
        let encode = time_per_call(|| drop(black_box(format.encode(black_box(&batch)))));
        let decode = time_per_call(|| drop(black_box(format.decode::<T>(black_box(&bytes)))));
        println!(
            "{shape:<22} {:<9} {:>10.1} {:>10.1} {:>10.1}",
            format!("{format:?}").to_lowercase(),
            encode / BATCH as f64,
            decode / BATCH as f64,
            bytes.len() as f64 / BATCH as f64
        );
    }
}

fn batch<T>(value: impl Fn(u64) -> T) -> StreamMessage<T> {
    StreamMessage::Records(
        (0..BATCH as u64)
            .map(|i| Record { value: value(i), timestamp: Some(1_704_067_200_000 + i as i64 * 5) })
            .collect(),
    )
}

fn main() {
    println!(
        "{:<22} {:<9} {:>10} {:>10} {:>10}",
        "records", "format", "encode_ns", "decode_ns", "bytes"
    );
    // window-count's (key, window, count)
    measure("(u64, i64, u64)", batch(|i| (i % 1000, (i / 10_000) as i64, 1u64)));
    // word count's (word, count)
    let words = ["stream", "of", "records", "watermark", "a", "checkpoint", "barrier"];
    measure("(String, u64)", batch(|i| (words[i as usize % words.len()].to_string(), i)));
    // a Nexmark bid: auction, bidder, price, channel, url, time, extra
    measure(
        "bid (3 u64, 3 String)",
        batch(|i| {
            (
                1000 + i % 100,
                2000 + i % 1000,
                i * 37 % 100_000,
                "channel-2".to_string(),
                format!("https://www.nexmark.com/item.htm?query=1&channel_id={i}"),
                1_704_067_200_000 + i as i64,
                "x".repeat(20),
            )
        }),
    );
}
