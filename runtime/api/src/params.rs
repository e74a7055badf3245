//! Job parameters: the `--key value` arguments after the engine's own options (Flink's
//! `ParameterTool`).

use std::collections::HashMap;
use std::str::FromStr;

use crate::{Error, Result};

/// Named job arguments: `--input words.txt --verbose` gives `input = words.txt` and
/// `verbose = true`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parameters {
    values: HashMap<String, String>,
}

impl Parameters {
    /// Parses `--key value` and `--flag` arguments; anything else is an error.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Self> {
        let mut values = HashMap::new();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(Error::InvalidParameter {
                    name: arg.clone(),
                    value: arg,
                    reason: "job arguments are --key value pairs".into(),
                });
            };
            let value = match args.peek() {
                Some(next) if !next.starts_with("--") => args.next().unwrap_or_default(),
                _ => "true".to_string(),
            };
            values.insert(name.to_string(), value);
        }
        Ok(Parameters { values })
    }

    /// The raw value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `name`, or an error saying it is missing.
    pub fn required(&self, name: &str) -> Result<&str> {
        self.get(name).ok_or_else(|| Error::MissingParameter(name.to_string()))
    }

    /// The value of `name` parsed as `T`, or `default` when absent.
    pub fn parse_or<T: FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|e: T::Err| Error::InvalidParameter {
                name: name.to_string(),
                value: value.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// Whether `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(args: &[&str]) -> Result<Parameters> {
        Parameters::from_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn pairs_and_flags() {
        let p = params(&["--input", "a.txt", "--verbose", "--rate", "10"]).unwrap();
        assert_eq!(p.get("input"), Some("a.txt"));
        assert_eq!(p.get("verbose"), Some("true"));
        assert_eq!(p.parse_or("rate", 0u32).unwrap(), 10);
        assert_eq!(p.parse_or("missing", 7u32).unwrap(), 7);
        assert!(matches!(p.required("output"), Err(Error::MissingParameter(n)) if n == "output"));
        assert!(p.parse_or::<u32>("input", 0).is_err());
    }

    #[test]
    fn negative_numbers_are_values() {
        let p = params(&["--offset", "-5"]).unwrap();
        assert_eq!(p.parse_or("offset", 0i64).unwrap(), -5);
    }

    #[test]
    fn stray_values_are_rejected() {
        assert!(params(&["input.txt"]).is_err());
    }
}
