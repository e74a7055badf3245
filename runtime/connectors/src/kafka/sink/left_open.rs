//! Producers that dropped exactly-once sink instances (failed tasks) left behind, for the
//! instance restored next in the same process: it commits or aborts their transactions
//! and takes them into its pool.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::pool::Pooled;

/// A producer a dropped sink instance left, with the number of the transaction it holds.
pub(super) struct Left {
    pub pooled: Pooled,
    /// The transaction it began and did not finish, if any.
    pub number: Option<u64>,
}

/// Where the producer of a restored transaction is.
pub(super) enum Held {
    /// Here, holding the transaction.
    Here(Pooled),
    /// Left behind, but it moved on to a later transaction: the one asked for was finished.
    Finished,
    /// Not in this process: the process that began the transaction died.
    Gone,
}

/// Where a left producer is filed: the brokers it talks to (`bootstrap.servers`) and its
/// transactional id. A transactional id names a producer only within one cluster: two jobs
/// in one process writing to different brokers under the same prefix (say two tests) must
/// not take each other's producers, which would write to the other job's brokers.
type Key = (String, String);

/// The producers left in this process.
static LEFT_OPEN: Mutex<Option<HashMap<Key, Left>>> = Mutex::new(None);

fn left_open() -> MutexGuard<'static, Option<HashMap<Key, Left>>> {
    LEFT_OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Leaves `producers`, talking to `brokers`, to the instance restored next.
pub(super) fn leave(brokers: &str, producers: impl IntoIterator<Item = Left>) {
    let mut left = left_open();
    let left = left.get_or_insert_with(HashMap::new);
    let keyed =
        producers.into_iter().map(|left| ((brokers.to_string(), left.pooled.id.clone()), left));
    left.extend(keyed);
}

/// Takes the producer left for `transactional_id` on `brokers` if it holds transaction
/// `number`.
pub(super) fn take(brokers: &str, transactional_id: &str, number: u64) -> Held {
    let mut left = left_open();
    let Some(left) = left.as_mut() else { return Held::Gone };
    let key = (brokers.to_string(), transactional_id.to_string());
    match left.get(&key) {
        None => Held::Gone,
        Some(producer) if producer.number != Some(number) => Held::Finished,
        Some(_) => Held::Here(left.remove(&key).expect("just seen").pooled),
    }
}

/// Takes every producer left on `brokers` whose transactional id `is_ours`.
pub(super) fn take_all(brokers: &str, is_ours: impl Fn(&Pooled) -> bool) -> Vec<Left> {
    let mut left = left_open();
    let Some(left) = left.as_mut() else { return Vec::new() };
    let keys: Vec<Key> = left
        .iter()
        .filter(|((on, _), producer)| on == brokers && is_ours(&producer.pooled))
        .map(|(key, _)| key.clone())
        .collect();
    keys.into_iter().filter_map(|key| left.remove(&key)).collect()
}

/// How many producers dropped exactly-once sink instances on `brokers` (`bootstrap.servers`)
/// left in this process for the instances restored after them. Each holds connections to
/// the brokers; none is left once every job writing there ended (sinks that end normally
/// close their producers).
pub fn producers_left_behind(brokers: &str) -> usize {
    left_open().as_ref().map_or(0, |left| left.keys().filter(|(on, _)| on == brokers).count())
}
