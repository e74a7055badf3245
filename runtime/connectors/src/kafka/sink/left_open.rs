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

/// The producers left in this process, by transactional id.
static LEFT_OPEN: Mutex<Option<HashMap<String, Left>>> = Mutex::new(None);

fn left_open() -> MutexGuard<'static, Option<HashMap<String, Left>>> {
    LEFT_OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Leaves `producers` to the instance restored next.
pub(super) fn leave(producers: impl IntoIterator<Item = Left>) {
    let mut left = left_open();
    let left = left.get_or_insert_with(HashMap::new);
    left.extend(producers.into_iter().map(|producer| (producer.pooled.id.clone(), producer)));
}

/// Takes the producer left for `transactional_id` if it holds transaction `number`.
pub(super) fn take(transactional_id: &str, number: u64) -> Held {
    let mut left = left_open();
    let Some(left) = left.as_mut() else { return Held::Gone };
    match left.get(transactional_id) {
        None => Held::Gone,
        Some(producer) if producer.number != Some(number) => Held::Finished,
        Some(_) => Held::Here(left.remove(transactional_id).expect("just seen").pooled),
    }
}

/// Takes every producer left whose transactional id `is_ours`.
pub(super) fn take_all(is_ours: impl Fn(&Pooled) -> bool) -> Vec<Left> {
    let mut left = left_open();
    let Some(left) = left.as_mut() else { return Vec::new() };
    let ids: Vec<String> = left
        .values()
        .filter(|producer| is_ours(&producer.pooled))
        .map(|p| p.pooled.id.clone())
        .collect();
    ids.into_iter().filter_map(|id| left.remove(&id)).collect()
}
