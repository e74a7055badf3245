//! A batch's records grouped by key and window, each group in arrival order, so that the
//! window operator reaches a window's contents, the key's group and the trigger once per
//! group instead of once per record, when its trigger allows it (see
//! [`Trigger::batches_elements`](super::Trigger::batches_elements)).

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use weir_types::Timestamp;

use super::windows::Window;

/// Marks the end of a group's chain of records.
const END: u32 = u32::MAX;

/// How many batches go ungrouped after groups were found not to pay.
const UNGROUPED_BATCHES: u32 = 64;

/// Fewer records than this say nothing about whether grouping pays.
const JUDGED_RECORDS: usize = 1024;

/// The records of one key in one window.
struct Group<K, W> {
    key: K,
    window: W,
    /// The first record's timestamp, for the trigger.
    timestamp: Timestamp,
    first: u32,
    last: u32,
}

/// Records grouped by key and window until drained; the buffers are kept between batches.
pub(super) struct WindowGroups<K, W, T> {
    hasher: DefaultHashBuilder,
    /// Group numbers, found by key and window.
    index: HashTable<u32>,
    /// Groups in the order of their first record.
    groups: Vec<Group<K, W>>,
    /// Records in arrival order; each group's are chained through `next`.
    values: Vec<Option<T>>,
    next: Vec<u32>,
    /// Batches still to go ungrouped.
    ungrouped: u32,
}

impl<K, W, T> Default for WindowGroups<K, W, T> {
    fn default() -> Self {
        WindowGroups {
            hasher: DefaultHashBuilder::default(),
            index: HashTable::new(),
            groups: Vec::new(),
            values: Vec::new(),
            next: Vec::new(),
            ungrouped: 0,
        }
    }
}

impl<K: Eq + std::hash::Hash, W: Window, T> WindowGroups<K, W, T> {
    /// Whether to group the next batch. Grouping costs a lookup per record and saves the
    /// window's work for all but a group's first, so it is left off for a while after
    /// groups that mostly held one record each (keys seldom repeating).
    pub(super) fn pays(&mut self) -> bool {
        if self.ungrouped > 0 {
            self.ungrouped -= 1;
            return false;
        }
        true
    }

    /// How many records wait.
    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    /// Adds `value` (with its `timestamp`) to the group of `key` and `window`.
    pub(super) fn push(&mut self, key: K, window: W, timestamp: Timestamp, value: T) {
        let at = u32::try_from(self.values.len()).expect("fewer than 2^32 records wait");
        self.values.push(Some(value));
        self.next.push(END);
        let hash = self.hasher.hash_one((&key, &window));
        let groups = &mut self.groups;
        let found = self.index.find(hash, |&g| {
            let group = &groups[g as usize];
            group.key == key && group.window == window
        });
        match found {
            Some(&g) => {
                let group = &mut groups[g as usize];
                self.next[group.last as usize] = at;
                group.last = at;
            }
            None => {
                let g = groups.len() as u32;
                groups.push(Group { key, window, timestamp, first: at, last: at });
                let hasher = &self.hasher;
                self.index.insert_unique(hash, g, |&g| {
                    let group = &groups[g as usize];
                    hasher.hash_one((&group.key, &group.window))
                });
            }
        }
    }

    /// Hands each group to `each` in the order of its first record, with its records in
    /// arrival order, and leaves none waiting; stops handing out at the first error.
    pub(super) fn drain<E>(
        &mut self,
        mut each: impl FnMut(K, W, Timestamp, &mut GroupRecords<'_, T>) -> Result<(), E>,
    ) -> Result<(), E> {
        let (records, groups) = (self.values.len(), self.groups.len());
        if records >= JUDGED_RECORDS && records < groups + groups / 4 {
            self.ungrouped = UNGROUPED_BATCHES;
        }
        self.index.clear();
        let mut result = Ok(());
        for group in self.groups.drain(..) {
            if result.is_ok() {
                let mut records =
                    GroupRecords { values: &mut self.values, next: &self.next, at: group.first };
                result = each(group.key, group.window, group.timestamp, &mut records);
            }
        }
        self.values.clear();
        self.next.clear();
        result
    }
}

/// One group's records, in arrival order.
pub(super) struct GroupRecords<'a, T> {
    values: &'a mut [Option<T>],
    next: &'a [u32],
    at: u32,
}

impl<T> Iterator for GroupRecords<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.at == END {
            return None;
        }
        let at = self.at as usize;
        self.at = self.next[at];
        self.values[at].take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::window::TimeWindow;

    #[test]
    fn groups_come_out_by_first_record_with_their_records_in_arrival_order() {
        let mut groups = WindowGroups::default();
        let (w1, w2) = (TimeWindow::new(0, 10), TimeWindow::new(10, 20));
        for (key, window, value) in
            [(1, w1, "a"), (2, w1, "b"), (1, w2, "c"), (1, w1, "d"), (2, w1, "e"), (1, w1, "f")]
        {
            groups.push(key, window, i64::from(value.as_bytes()[0]), value);
        }
        let mut seen = Vec::new();
        groups
            .drain(|key, window, timestamp, records| {
                seen.push((key, window, timestamp, records.collect::<Vec<_>>()));
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(
            seen,
            [
                (1, w1, i64::from(b'a'), vec!["a", "d", "f"]),
                (2, w1, i64::from(b'b'), vec!["b", "e"]),
                (1, w2, i64::from(b'c'), vec!["c"]),
            ]
        );
        assert_eq!(groups.len(), 0);
        groups.push(3, w2, 0, "g");
        let mut again = Vec::new();
        groups
            .drain(|key, _, _, records| {
                again.push((key, records.collect::<Vec<_>>()));
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(again, [(3, vec!["g"])]);
    }

    #[test]
    fn groups_of_one_record_leave_grouping_off_for_a_while() {
        let mut groups = WindowGroups::default();
        let window = TimeWindow::new(0, 10);
        let drain = |groups: &mut WindowGroups<usize, TimeWindow, ()>, records: usize, keys| {
            assert!(groups.pays());
            (0..records).for_each(|i| groups.push(i % keys, window, 0, ()));
            groups.drain(|_, _, _, _| Ok::<_, ()>(())).unwrap();
        };
        drain(&mut groups, 5000, 4000); // 1.25 records a group
        drain(&mut groups, 1000, 1000); // too few to judge
        drain(&mut groups, 5000, 4001);
        for _ in 0..UNGROUPED_BATCHES {
            assert!(!groups.pays());
        }
        drain(&mut groups, 2, 1);
    }

    #[test]
    fn an_error_stops_the_handing_out_and_still_empties_the_groups() {
        let mut groups = WindowGroups::default();
        for key in 0..3 {
            groups.push(key, TimeWindow::new(0, 10), 0, key);
        }
        let mut handed = 0;
        let result = groups.drain(|key, _, _, _| {
            handed += 1;
            if key == 1 { Err("stop") } else { Ok(()) }
        });
        assert_eq!((result, handed), (Err("stop"), 2));
        assert_eq!(groups.len(), 0);
    }
}
