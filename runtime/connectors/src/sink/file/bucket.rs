//! Which bucket (sub-directory) a record's part file is in: by the time, as Flink's
//! `DateTimeBucketAssigner`, or by a key function.

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use weir_types::Timestamp;

use crate::{Error, Result};

/// Which time a [`BucketAssigner::date_time`] bucket is named after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketClock {
    /// The wall clock when the record is written (Flink's `DateTimeBucketAssigner`).
    ProcessingTime,
    /// The record's event-time timestamp; a record without one fails the sink.
    EventTime,
}

/// One piece of a date format.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Literal(String),
}

/// Assigns each record the bucket its part file is written in: a relative directory of the
/// sink's location, `""` for the location itself.
pub enum BucketAssigner<T> {
    /// Every record in the location itself (Flink's `BasePathBucketAssigner`).
    Base,
    /// Buckets named after the time, in UTC.
    DateTime {
        /// The name's pieces.
        format: Vec<DateField>,
        /// Which time.
        clock: BucketClock,
    },
    /// Buckets named by a function of the record; `/` separates directory levels.
    Key(Arc<dyn Fn(&T) -> String + Send + Sync>),
}

/// A piece of a [`BucketAssigner::DateTime`] name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateField(Field);

impl<T> BucketAssigner<T> {
    /// Hourly buckets `yyyy-MM-dd--HH` of processing time, as Flink's default
    /// `DateTimeBucketAssigner` (in UTC here).
    pub fn date_time() -> Self {
        Self::date_time_with("yyyy-MM-dd--HH", BucketClock::ProcessingTime)
            .expect("the default format is valid")
    }

    /// Buckets named by `format` (`yyyy`, `MM`, `dd`, `HH`, `mm` and `ss` stand for the UTC
    /// year, month, day, hour, minute and second; other characters are kept) of `clock`.
    /// Fails on other letters, which Flink's formats would give a meaning.
    pub fn date_time_with(format: &str, clock: BucketClock) -> Result<Self> {
        let mut fields = Vec::new();
        let mut rest = format;
        while let Some(c) = rest.chars().next() {
            let token = [
                ("yyyy", Field::Year),
                ("MM", Field::Month),
                ("dd", Field::Day),
                ("HH", Field::Hour),
                ("mm", Field::Minute),
                ("ss", Field::Second),
            ]
            .into_iter()
            .find(|(token, _)| rest.starts_with(token));
            if let Some((token, field)) = token {
                fields.push(DateField(field));
                rest = &rest[token.len()..];
            } else if c.is_ascii_alphabetic() {
                return Err(Error::FileSinkConfig(format!(
                    "bucket date format '{format}': '{c}' is not one of yyyy, MM, dd, HH, mm, ss \
                     (quote-free literals must not be letters)"
                )));
            } else {
                match fields.last_mut() {
                    Some(DateField(Field::Literal(literal))) => literal.push(c),
                    _ => fields.push(DateField(Field::Literal(c.to_string()))),
                }
                rest = &rest[c.len_utf8()..];
            }
        }
        Ok(BucketAssigner::DateTime { format: fields, clock })
    }

    /// Buckets named by `key` of each record.
    pub fn by_key(key: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        BucketAssigner::Key(Arc::new(key))
    }

    /// The bucket of `value`, with event `timestamp`; fails on a name that is not a clean
    /// relative path or would hide the files in it.
    pub(super) fn bucket(&self, value: &T, timestamp: Option<Timestamp>) -> Result<String> {
        let bucket = match self {
            BucketAssigner::Base => return Ok(String::new()),
            BucketAssigner::DateTime { format, clock } => {
                let millis = match clock {
                    BucketClock::ProcessingTime => now_millis(),
                    BucketClock::EventTime => timestamp.ok_or_else(|| Error::InvalidBucket {
                        bucket: String::new(),
                        reason: "the record has no event-time timestamp to bucket by",
                    })?,
                };
                format_date(format, millis)
            }
            BucketAssigner::Key(key) => key(value),
        };
        check_bucket(&bucket)?;
        Ok(bucket)
    }
}

fn now_millis() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Timestamp)
}

/// Fails unless `bucket` is `/`-separated names, none empty, `.` or `..`, none starting with
/// `.` or `_` (readers skip those, so the files would never be seen).
fn check_bucket(bucket: &str) -> Result<()> {
    let invalid = |reason| Err(Error::InvalidBucket { bucket: bucket.to_string(), reason });
    if bucket.is_empty() {
        return invalid("a bucket name must not be empty");
    }
    for segment in bucket.split('/') {
        if segment.is_empty() || segment.starts_with('.') || segment.starts_with('_') {
            return invalid(
                "each '/'-separated part must be non-empty and not start with '.' or '_'",
            );
        }
        if segment.contains(['\\', '\0']) {
            return invalid("a bucket name must not contain '\\' or NUL");
        }
    }
    Ok(())
}

/// `millis` since the epoch formatted by `format`, in UTC.
fn format_date(format: &[DateField], millis: Timestamp) -> String {
    let seconds = millis.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let mut name = String::with_capacity(16);
    for DateField(field) in format {
        let number = match field {
            Field::Literal(literal) => {
                name.push_str(literal);
                continue;
            }
            Field::Year => {
                write!(name, "{year:04}").expect("writes to a String");
                continue;
            }
            Field::Month => month,
            Field::Day => day,
            Field::Hour => second_of_day / 3600,
            Field::Minute => second_of_day / 60 % 60,
            Field::Second => second_of_day % 60,
        };
        write!(name, "{number:02}").expect("writes to a String");
    }
    name
}

/// The proleptic Gregorian `(year, month, day)` of `days` since 1970-01-01, counting in
/// 400-year eras of 146 097 days that start on March 1st.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days from 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl<T> Clone for BucketAssigner<T> {
    fn clone(&self) -> Self {
        match self {
            BucketAssigner::Base => BucketAssigner::Base,
            BucketAssigner::DateTime { format, clock } => {
                BucketAssigner::DateTime { format: format.clone(), clock: *clock }
            }
            BucketAssigner::Key(key) => BucketAssigner::Key(Arc::clone(key)),
        }
    }
}

impl<T> fmt::Debug for BucketAssigner<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BucketAssigner::Base => f.write_str("Base"),
            BucketAssigner::DateTime { format, clock } => {
                f.debug_struct("DateTime").field("format", format).field("clock", clock).finish()
            }
            BucketAssigner::Key(_) => f.write_str("Key(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(format: &str, millis: Timestamp) -> String {
        let assigner =
            BucketAssigner::<()>::date_time_with(format, BucketClock::EventTime).unwrap();
        assigner.bucket(&(), Some(millis)).unwrap()
    }

    #[test]
    fn dates_are_formatted_in_utc() {
        assert_eq!(at("yyyy-MM-dd--HH", 0), "1970-01-01--00");
        // 2024-02-29T13:45:07.999Z, a leap day.
        assert_eq!(at("yyyy-MM-dd--HH", 1_709_214_307_999), "2024-02-29--13");
        assert_eq!(at("yyyy/MM/dd/HH-mm-ss", 1_709_214_307_999), "2024/02/29/13-45-07");
        assert_eq!(at("yyyy-MM-dd", 951_782_400_000), "2000-02-29");
        assert_eq!(at("yyyy-MM-dd--HH", -1), "1969-12-31--23");
        assert_eq!(at("yyyy-MM-dd", 4_102_444_800_000), "2100-01-01");
    }

    #[test]
    fn bad_formats_and_buckets_are_refused() {
        let error = BucketAssigner::<()>::date_time_with("yyyy-MM-ddTHH", BucketClock::EventTime)
            .unwrap_err()
            .to_string();
        assert!(error.contains("'T'"), "{error}");
        let no_time = BucketAssigner::<()>::date_time_with("HH", BucketClock::EventTime).unwrap();
        assert!(no_time.bucket(&(), None).unwrap_err().to_string().contains("timestamp"));
        for bad in ["", "a//b", "../x", "a/.hidden", "_tmp", "a\\b"] {
            let assigner = BucketAssigner::by_key(move |_: &()| bad.to_string());
            let error = assigner.bucket(&(), None).unwrap_err().to_string();
            assert!(error.contains(&format!("'{bad}'")), "{error}");
        }
        let good = BucketAssigner::by_key(|v: &u32| format!("k={}/v", v % 2));
        assert_eq!(good.bucket(&3, None).unwrap(), "k=1/v");
        assert_eq!(BucketAssigner::Base.bucket(&3, None).unwrap(), "");
    }
}
