//! An aggregate keeping every input that ties for the largest measure: the bids at a
//! window's highest price (q7), the auctions with a window's most bids (q5).

use std::sync::Arc;

use weir::prelude::AggregateFunction;

/// Keeps the inputs whose `measure` is the largest seen, all of them on a tie.
pub struct Maxima<T> {
    measure: Arc<dyn Fn(&T) -> u64 + Send + Sync>,
}

impl<T> Maxima<T> {
    /// Maxima of `measure`.
    pub fn by(measure: impl Fn(&T) -> u64 + Send + Sync + 'static) -> Self {
        Maxima { measure: Arc::new(measure) }
    }
}

impl<T: Clone> AggregateFunction<T, Vec<T>, Vec<T>> for Maxima<T> {
    fn create_accumulator(&self) -> Vec<T> {
        Vec::new()
    }

    fn add(&self, value: T, maxima: &mut Vec<T>) {
        let measure = &self.measure;
        match maxima.first().map(|max| measure(&value).cmp(&measure(max))) {
            Some(std::cmp::Ordering::Less) => {}
            Some(std::cmp::Ordering::Equal) => maxima.push(value),
            Some(std::cmp::Ordering::Greater) | None => {
                maxima.clear();
                maxima.push(value);
            }
        }
    }

    fn get_result(&self, maxima: &Vec<T>) -> Vec<T> {
        maxima.clone()
    }

    fn merge(&self, a: Vec<T>, b: Vec<T>) -> Vec<T> {
        let mut merged = a;
        for value in b {
            self.add(value, &mut merged);
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_input_tied_for_the_largest_measure() {
        let maxima = Maxima::by(|(_, price): &(char, u64)| *price);
        let mut acc = maxima.create_accumulator();
        for value in [('a', 3), ('b', 5), ('c', 1), ('d', 5)] {
            maxima.add(value, &mut acc);
        }
        assert_eq!(acc, [('b', 5), ('d', 5)]);
        assert_eq!(maxima.merge(vec![('e', 7)], acc.clone()), [('e', 7)]);
        assert_eq!(maxima.merge(acc, vec![('f', 5)]), [('b', 5), ('d', 5), ('f', 5)]);
    }
}
