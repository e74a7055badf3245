//! Which merged window stores the state of which window, for session windows (Flink's
//! `MergingWindowSet`): merging windows only re-points windows at one state window and merges
//! the others' contents into it.

use super::assigner::WindowAssigner;
use super::windows::Window;
use crate::function::FnResult;

/// The windows of one key and the state window each one's contents live in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MergingWindowSet<W> {
    mapping: Vec<(W, W)>,
}

impl<W> Default for MergingWindowSet<W> {
    fn default() -> Self {
        MergingWindowSet { mapping: Vec::new() }
    }
}

impl<W: Window> MergingWindowSet<W> {
    /// The set as stored for a key.
    pub(crate) fn from_mapping(mapping: Vec<(W, W)>) -> Self {
        MergingWindowSet { mapping }
    }

    /// What to store for the key.
    pub(crate) fn into_mapping(self) -> Vec<(W, W)> {
        self.mapping
    }

    /// The state window of `window`, if the window is in the set.
    pub(crate) fn state_window(&self, window: &W) -> Option<W> {
        self.mapping.iter().find(|(w, _)| w == window).map(|(_, state)| state.clone())
    }

    /// Forgets `window` (after it was purged for good).
    pub(crate) fn retire(&mut self, window: &W) {
        self.mapping.retain(|(w, _)| w != window);
    }

    fn take(&mut self, window: &W) -> Option<W> {
        let position = self.mapping.iter().position(|(w, _)| w == window)?;
        Some(self.mapping.remove(position).1)
    }

    /// Adds `new_window`, merging it with existing windows as the assigner says; `merge` is
    /// called as `merge(result, merged windows, state window of the result, state windows to
    /// merge into it)` for each merge. Returns the window `new_window` ended up in.
    pub(crate) fn add_window<T, A>(
        &mut self,
        new_window: W,
        assigner: &A,
        mut merge: impl FnMut(&W, &[W], &W, &[W]) -> FnResult,
    ) -> FnResult<W>
    where
        A: WindowAssigner<T, W = W>,
    {
        let mut windows: Vec<W> = self.mapping.iter().map(|(w, _)| w.clone()).collect();
        windows.push(new_window.clone());
        let merges = assigner.merge_windows(&windows);
        let mut result = new_window.clone();
        let mut merged_new_window = false;
        let merged_any = !merges.is_empty();
        for (merge_result, mut merged_windows) in merges {
            if let Some(position) = merged_windows.iter().position(|w| *w == new_window) {
                merged_windows.remove(position);
                merged_new_window = true;
                result = merge_result.clone();
            }
            let Some(first) = merged_windows.first() else { continue };
            let state_window = self.state_window(first).expect("merged windows are in the set");
            let mut merged_state_windows: Vec<W> =
                merged_windows.iter().filter_map(|w| self.take(w)).collect();
            self.mapping.push((merge_result.clone(), state_window.clone()));
            merged_state_windows.retain(|w| *w != state_window);
            // Merging one existing window into itself (the new window fell inside it) moves
            // no state.
            if !(merged_windows.len() == 1 && merged_windows[0] == merge_result) {
                merge(&merge_result, &merged_windows, &state_window, &merged_state_windows)?;
            }
        }
        if !merged_any || (result == new_window && !merged_new_window) {
            self.mapping.push((result.clone(), result.clone()));
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::builtin::window::{EventTimeSessionWindows, TimeWindow};

    fn add(
        set: &mut MergingWindowSet<TimeWindow>,
        start: i64,
        merges: &mut Vec<String>,
    ) -> TimeWindow {
        let sessions = EventTimeSessionWindows::with_gap(Duration::from_millis(10));
        set.add_window::<(), _>(
            TimeWindow::new(start, start + 10),
            &sessions,
            |result, merged, state, states| {
                merges.push(format!("{result:?} <- {merged:?} state {state:?} + {states:?}"));
                Ok(())
            },
        )
        .unwrap()
    }

    #[test]
    fn sessions_keep_one_state_window_while_they_grow() {
        let mut set = MergingWindowSet::default();
        let mut merges = Vec::new();
        assert_eq!(add(&mut set, 0, &mut merges), TimeWindow::new(0, 10));
        assert_eq!(add(&mut set, 30, &mut merges), TimeWindow::new(30, 40));
        assert!(merges.is_empty());
        // Extends [0,10) to [0,15): state stays in [0,10).
        assert_eq!(add(&mut set, 5, &mut merges), TimeWindow::new(0, 15));
        assert_eq!(set.state_window(&TimeWindow::new(0, 15)), Some(TimeWindow::new(0, 10)));
        // Bridges [0,15) and [30,40): one state window remains, the other is merged into it.
        assert_eq!(add(&mut set, 15, &mut merges), TimeWindow::new(0, 25));
        assert_eq!(add(&mut set, 22, &mut merges), TimeWindow::new(0, 40));
        assert_eq!(set.mapping.len(), 1);
        let last = merges.last().unwrap();
        assert!(
            last.contains(
                "state TimeWindow { start: 0, end: 10 } + [TimeWindow { start: 30, end: 40 }]"
            ),
            "{last}"
        );
    }

    #[test]
    fn a_window_inside_an_existing_one_moves_no_state() {
        let mut set = MergingWindowSet::default();
        let mut merges = Vec::new();
        let sessions = EventTimeSessionWindows::with_gap(Duration::from_millis(20));
        set.add_window::<(), _>(TimeWindow::new(0, 20), &sessions, |_, _, _, _| Ok(())).unwrap();
        let result = set
            .add_window::<(), _>(TimeWindow::new(5, 15), &sessions, |r, m, _, _| {
                merges.push(format!("{r:?}{m:?}"));
                Ok(())
            })
            .unwrap();
        assert_eq!(result, TimeWindow::new(0, 20));
        assert!(merges.is_empty(), "{merges:?}");
        set.retire(&TimeWindow::new(0, 20));
        assert_eq!(set.state_window(&TimeWindow::new(0, 20)), None);
    }
}
