//! Slot scheduling: which worker holds each slot of an attempt. Slot `i` runs subtask `i` of
//! every operator (Flink's slot sharing), so a job needs as many slots as its widest chain.
//! Slots are spread evenly over the workers, one per worker in turn.

/// The workers offering slots, as (worker id, free slots), in registration order.
pub(crate) type Offers = [(u32, usize)];

/// The worker of each slot `0..needed`, or `None` when the offers are too few.
pub(crate) fn assign_slots(needed: usize, offers: &Offers) -> Option<Vec<u32>> {
    if offers.iter().map(|(_, slots)| slots).sum::<usize>() < needed {
        return None;
    }
    let mut left: Vec<usize> = offers.iter().map(|(_, slots)| *slots).collect();
    let mut assigned = Vec::with_capacity(needed);
    while assigned.len() < needed {
        for (index, (worker, _)) in offers.iter().enumerate() {
            if assigned.len() < needed && left[index] > 0 {
                left[index] -= 1;
                assigned.push(*worker);
            }
        }
    }
    Some(assigned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_slots_evenly_over_workers() {
        assert_eq!(assign_slots(4, &[(1, 2), (2, 2)]), Some(vec![1, 2, 1, 2]));
        assert_eq!(assign_slots(3, &[(1, 4), (2, 4)]), Some(vec![1, 2, 1]));
    }

    #[test]
    fn fills_the_larger_worker_when_the_other_is_full() {
        assert_eq!(assign_slots(4, &[(7, 1), (9, 3)]), Some(vec![7, 9, 9, 9]));
    }

    #[test]
    fn too_few_slots_is_none() {
        assert_eq!(assign_slots(5, &[(1, 2), (2, 2)]), None);
        assert_eq!(assign_slots(1, &[]), None);
    }
}
