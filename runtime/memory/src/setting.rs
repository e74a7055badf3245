//! The settings of a `MemoryConfig` by name: their values in effect, defaults, and changes.

use std::fmt;

use crate::config::{
    DEFAULT_BUFFER_SIZE, DEFAULT_CHANNELS_PER_SLOT, DEFAULT_MANAGED_FRACTION,
    DEFAULT_NETWORK_FRACTION, DEFAULT_NETWORK_MAX, DEFAULT_NETWORK_MIN, DEFAULT_OVERHEAD_FRACTION,
    DEFAULT_OVERHEAD_MAX, DEFAULT_OVERHEAD_MIN, DEFAULT_SLOTS,
};
use crate::{ByteSize, MemoryConfig};

/// A setting whose value is a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSetting {
    /// `process_size`.
    ProcessSize,
    /// `runtime_overhead.min`.
    OverheadMin,
    /// `runtime_overhead.max`.
    OverheadMax,
    /// `network.min`.
    NetworkMin,
    /// `network.max`.
    NetworkMax,
    /// `network.size`.
    NetworkSize,
    /// `network.buffer_size`.
    BufferSize,
    /// `managed.size`.
    ManagedSize,
    /// `task.size`.
    TaskSize,
}

impl SizeSetting {
    /// The value in effect: the one set, else the default; `None` for an unset explicit size.
    pub fn get(self, config: &MemoryConfig) -> Option<ByteSize> {
        let set = match self {
            Self::ProcessSize => Some(config.process_size),
            Self::OverheadMin => config.runtime_overhead.min,
            Self::OverheadMax => config.runtime_overhead.max,
            Self::NetworkMin => config.network.min,
            Self::NetworkMax => config.network.max,
            Self::NetworkSize => config.network.size,
            Self::BufferSize => config.network.buffer_size,
            Self::ManagedSize => config.managed.size,
            Self::TaskSize => config.task.size,
        };
        set.or(self.default())
    }

    /// The value used when the setting is unset, if it has one.
    pub fn default(self) -> Option<ByteSize> {
        match self {
            Self::OverheadMin => Some(DEFAULT_OVERHEAD_MIN),
            Self::OverheadMax => Some(DEFAULT_OVERHEAD_MAX),
            Self::NetworkMin => Some(DEFAULT_NETWORK_MIN),
            Self::NetworkMax => Some(DEFAULT_NETWORK_MAX),
            Self::BufferSize => Some(DEFAULT_BUFFER_SIZE),
            Self::ProcessSize | Self::NetworkSize | Self::ManagedSize | Self::TaskSize => None,
        }
    }

    /// Where the setting is stored; `None` for the process size, which is always set.
    fn slot(self, config: &mut MemoryConfig) -> Option<&mut Option<ByteSize>> {
        match self {
            Self::ProcessSize => None,
            Self::OverheadMin => Some(&mut config.runtime_overhead.min),
            Self::OverheadMax => Some(&mut config.runtime_overhead.max),
            Self::NetworkMin => Some(&mut config.network.min),
            Self::NetworkMax => Some(&mut config.network.max),
            Self::NetworkSize => Some(&mut config.network.size),
            Self::BufferSize => Some(&mut config.network.buffer_size),
            Self::ManagedSize => Some(&mut config.managed.size),
            Self::TaskSize => Some(&mut config.task.size),
        }
    }

    /// Sets the value.
    pub fn set(self, config: &mut MemoryConfig, value: ByteSize) {
        match self.slot(config) {
            Some(slot) => *slot = Some(value),
            None => config.process_size = value,
        }
    }

    /// The name in messages and documentation.
    pub fn name(self) -> &'static str {
        match self {
            Self::ProcessSize => "process_size",
            Self::OverheadMin => "runtime_overhead.min",
            Self::OverheadMax => "runtime_overhead.max",
            Self::NetworkMin => "network.min",
            Self::NetworkMax => "network.max",
            Self::NetworkSize => "network.size",
            Self::BufferSize => "network.buffer_size",
            Self::ManagedSize => "managed.size",
            Self::TaskSize => "task.size",
        }
    }
}

/// A setting whose value is a fraction in [0, 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FractionSetting {
    /// `runtime_overhead.fraction`.
    Overhead,
    /// `network.fraction`.
    Network,
    /// `managed.fraction`.
    Managed,
}

impl FractionSetting {
    /// Every fraction setting.
    pub const ALL: [Self; 3] = [Self::Overhead, Self::Network, Self::Managed];

    /// The value in effect: the one set, else the default.
    pub fn get(self, config: &MemoryConfig) -> f64 {
        let set = match self {
            Self::Overhead => config.runtime_overhead.fraction,
            Self::Network => config.network.fraction,
            Self::Managed => config.managed.fraction,
        };
        set.unwrap_or(self.default())
    }

    /// The value used when the setting is unset.
    pub fn default(self) -> f64 {
        match self {
            Self::Overhead => DEFAULT_OVERHEAD_FRACTION,
            Self::Network => DEFAULT_NETWORK_FRACTION,
            Self::Managed => DEFAULT_MANAGED_FRACTION,
        }
    }

    fn slot(self, config: &mut MemoryConfig) -> &mut Option<f64> {
        match self {
            Self::Overhead => &mut config.runtime_overhead.fraction,
            Self::Network => &mut config.network.fraction,
            Self::Managed => &mut config.managed.fraction,
        }
    }

    /// Sets the value.
    pub fn set(self, config: &mut MemoryConfig, value: f64) {
        *self.slot(config) = Some(value);
    }

    /// The name in messages and documentation.
    pub fn name(self) -> &'static str {
        match self {
            Self::Overhead => "runtime_overhead.fraction",
            Self::Network => "network.fraction",
            Self::Managed => "managed.fraction",
        }
    }
}

/// A setting whose value is a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountSetting {
    /// `slots`.
    Slots,
    /// `network.channels_per_slot`.
    ChannelsPerSlot,
}

impl CountSetting {
    /// The value in effect: the one set, else the default.
    pub fn get(self, config: &MemoryConfig) -> u32 {
        let set = match self {
            Self::Slots => config.slots,
            Self::ChannelsPerSlot => config.network.channels_per_slot,
        };
        set.unwrap_or(self.default())
    }

    /// The value used when the setting is unset.
    pub fn default(self) -> u32 {
        match self {
            Self::Slots => DEFAULT_SLOTS,
            Self::ChannelsPerSlot => DEFAULT_CHANNELS_PER_SLOT,
        }
    }

    fn slot(self, config: &mut MemoryConfig) -> &mut Option<u32> {
        match self {
            Self::Slots => &mut config.slots,
            Self::ChannelsPerSlot => &mut config.network.channels_per_slot,
        }
    }

    /// Sets the value.
    pub fn set(self, config: &mut MemoryConfig, value: u32) {
        *self.slot(config) = Some(value);
    }

    /// The name in messages and documentation.
    pub fn name(self) -> &'static str {
        match self {
            Self::Slots => "slots",
            Self::ChannelsPerSlot => "network.channels_per_slot",
        }
    }
}

/// Any setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// A size.
    Size(SizeSetting),
    /// A fraction.
    Fraction(FractionSetting),
    /// A count.
    Count(CountSetting),
}

impl Setting {
    /// Whether the configuration sets it (rather than leaving it to its default).
    pub fn is_set(self, config: &MemoryConfig) -> bool {
        let mut config = config.clone();
        self.unset(&mut config)
    }

    /// Unsets it, so that its default applies; returns whether it was set. The process size
    /// cannot be unset.
    pub fn unset(self, config: &mut MemoryConfig) -> bool {
        match self {
            Self::Size(setting) => setting.slot(config).and_then(Option::take).is_some(),
            Self::Fraction(setting) => setting.slot(config).take().is_some(),
            Self::Count(setting) => setting.slot(config).take().is_some(),
        }
    }
}

macro_rules! display_name {
    ($($type:ty),*) => {$(
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}
display_name!(SizeSetting, FractionSetting, CountSetting);

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Size(setting) => setting.fmt(f),
            Self::Fraction(setting) => setting.fmt(f),
            Self::Count(setting) => setting.fmt(f),
        }
    }
}
