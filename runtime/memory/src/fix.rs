//! `Fix`: one change to a configuration that an error suggests, as data and as a sentence.

use std::fmt;

use crate::setting::{CountSetting, FractionSetting, Setting, SizeSetting};
use crate::{ByteSize, MemoryConfig};

/// A setting and a value for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// A size setting and its new size.
    Size(SizeSetting, ByteSize),
    /// A fraction setting and its new fraction.
    Fraction(FractionSetting, f64),
    /// A count setting and its new count.
    Count(CountSetting, u32),
}

impl Target {
    /// Writes "setting to {bound}value".
    fn write(&self, f: &mut fmt::Formatter<'_>, bound: &str) -> fmt::Result {
        match self {
            Self::Size(setting, value) => write!(f, "{setting} to {bound}{value}"),
            Self::Fraction(setting, value) => write!(f, "{setting} to {bound}{value:.2}"),
            Self::Count(setting, value) => write!(f, "{setting} to {bound}{value}"),
        }
    }

    fn apply(self, config: &mut MemoryConfig) {
        match self {
            Self::Size(setting, value) => setting.set(config, value),
            Self::Fraction(setting, value) => setting.set(config, value),
            Self::Count(setting, value) => setting.set(config, value),
        }
    }
}

/// A change that makes a configuration valid. Each suggested fix is checked to make the
/// whole configuration valid on its own, unless no single change can (then each fixes the
/// rule the error is about).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fix {
    /// Raise a setting to at least a value.
    Raise(Target),
    /// Lower a setting to at most a value.
    Lower(Target),
    /// Set a setting to a value.
    Set(Target),
    /// Unset a setting.
    Remove(Setting),
}

impl Fix {
    /// The configuration with this change made.
    pub fn apply(&self, config: &MemoryConfig) -> MemoryConfig {
        let mut config = config.clone();
        match *self {
            Self::Raise(target) | Self::Lower(target) | Self::Set(target) => {
                target.apply(&mut config)
            }
            Self::Remove(setting) => {
                setting.unset(&mut config);
            }
        }
        config
    }
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Raise(target) => {
                f.write_str("raise ")?;
                target.write(f, "at least ")
            }
            Self::Lower(target) => {
                f.write_str("lower ")?;
                target.write(f, "at most ")
            }
            Self::Set(target) => {
                f.write_str("set ")?;
                target.write(f, "")
            }
            Self::Remove(setting) => write!(f, "remove {setting}"),
        }
    }
}

/// The fixes an error suggests; printed as `; fix: A, or B` (nothing when there are none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fixes(pub Vec<Fix>);

impl fmt::Display for Fixes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, fix) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { "; fix: " } else { ", or " })?;
            fix.fmt(f)?;
        }
        Ok(())
    }
}
