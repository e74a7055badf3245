//! The queries by name, for the runner's command line.

use std::fmt;
use std::str::FromStr;

use weir::DataStream;
use weir::connectors::nexmark::Event;

use super::{q0, q1, q2, q3, q4, q5, q7, q8};

/// One of the Nexmark queries Weir implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// Pass-through.
    Q0,
    /// Currency conversion.
    Q1,
    /// Selection.
    Q2,
    /// Local item suggestion.
    Q3,
    /// Average price per category.
    Q4,
    /// Hot items.
    Q5,
    /// Highest bid.
    Q7,
    /// Monitor new users.
    Q8,
}

impl Query {
    /// Every query, in order.
    pub const ALL: [Query; 8] =
        [Query::Q0, Query::Q1, Query::Q2, Query::Q3, Query::Q4, Query::Q5, Query::Q7, Query::Q8];

    /// The query's name: `q0`, `q1`, …
    pub fn name(self) -> &'static str {
        match self {
            Query::Q0 => "q0",
            Query::Q1 => "q1",
            Query::Q2 => "q2",
            Query::Q3 => "q3",
            Query::Q4 => "q4",
            Query::Q5 => "q5",
            Query::Q7 => "q7",
            Query::Q8 => "q8",
        }
    }

    /// Adds the query over `events` to their job, its results discarded.
    pub fn discarding_results(self, events: &DataStream<Event>) {
        match self {
            Query::Q0 => q0(events).discard(),
            Query::Q1 => q1(events).discard(),
            Query::Q2 => q2(events).discard(),
            Query::Q3 => q3(events).discard(),
            Query::Q4 => q4(events).discard(),
            Query::Q5 => q5(events).discard(),
            Query::Q7 => q7(events).discard(),
            Query::Q8 => q8(events).discard(),
        };
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Query {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Query::ALL.into_iter().find(|query| query.name() == name.trim()).ok_or_else(|| {
            let known: Vec<&str> = Query::ALL.iter().map(|query| query.name()).collect();
            format!("unknown query '{name}': expected one of {}", known.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_names_are_refused() {
        for query in Query::ALL {
            assert_eq!(query.name().parse::<Query>(), Ok(query));
        }
        let error = "q6".parse::<Query>().unwrap_err();
        assert_eq!(error, "unknown query 'q6': expected one of q0, q1, q2, q3, q4, q5, q7, q8");
    }
}
