//! The error type of this crate: one variant per rule, each naming the inputs, the derived
//! values and the fixes.

use std::fmt;

use crate::setting::{FractionSetting, Setting, SizeSetting};
use crate::{ByteSize, Fix, Fixes, MemoryBreakdown};

/// Sizes added up in a message, each with what it is: `task.size 1 GiB + managed.size 1 GiB`.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms(pub Vec<(String, ByteSize)>);

impl Terms {
    /// Their sum, saturating at `u64::MAX` bytes.
    pub fn sum(&self) -> ByteSize {
        self.0.iter().fold(ByteSize(0), |sum, (_, size)| sum.saturating_add(*size))
    }
}

impl fmt::Display for Terms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, size)) in self.0.iter().enumerate() {
            let plus = if i == 0 { "" } else { " + " };
            write!(f, "{plus}{name} {size:#}")?;
        }
        Ok(())
    }
}

/// A memory configuration that breaks a rule of the model. The message names the inputs
/// involved, the values derived from them, the rule, and (after `; fix: `) changes that
/// make the configuration valid, with computed values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MemoryError {
    /// A fraction outside [0, 1).
    #[error(
        "{setting} is {value}, outside [0, 1): a fraction of 1 or more leaves nothing for the \
         other components{fixes}"
    )]
    InvalidFraction {
        /// The setting.
        setting: FractionSetting,
        /// Its value.
        value: f64,
        /// How to fix it.
        fixes: Fixes,
    },
    /// A count or buffer size of zero.
    #[error("{setting} is 0: it must be at least 1{fixes}")]
    Zero {
        /// The setting.
        setting: Setting,
        /// How to fix it.
        fixes: Fixes,
    },
    /// An explicit size set together with the fraction or bounds it replaces.
    #[error(
        "{size} and {other} are both set: an explicit size replaces the fraction and its \
         bounds{fixes}"
    )]
    Conflict {
        /// The explicit size.
        size: SizeSetting,
        /// The fraction or bound also set.
        other: Setting,
        /// How to fix it.
        fixes: Fixes,
    },
    /// A minimum above its maximum (after defaults).
    #[error("{min_setting} {min:#} is above {max_setting} {max:#}: the range is empty{fixes}")]
    MinAboveMax {
        /// The minimum's setting.
        min_setting: SizeSetting,
        /// The minimum in effect.
        min: ByteSize,
        /// The maximum's setting.
        max_setting: SizeSetting,
        /// The maximum in effect.
        max: ByteSize,
        /// How to fix it.
        fixes: Fixes,
    },
    /// Managed and network fractions that together take all of process − overhead.
    #[error(
        "managed.fraction {managed:.2} + network.fraction {network:.2} = {:.2} leave nothing \
         of process - overhead for task memory: their sum must stay below 1{fixes}",
        managed + network
    )]
    FractionsLeaveNoTask {
        /// The managed fraction in effect.
        managed: f64,
        /// The network fraction in effect.
        network: f64,
        /// How to fix it.
        fixes: Fixes,
    },
    /// Explicit sizes (with the runtime overhead derived before them) above the process size.
    #[error(
        "{terms} = {:#} exceed process_size {process:#}: explicit sizes must fit in the process \
         size{fixes}",
        terms.sum()
    )]
    ExplicitSizesExceedProcess {
        /// The process size.
        process: ByteSize,
        /// The explicit sizes, and the runtime overhead when it was derived first.
        terms: Terms,
        /// How to fix it.
        fixes: Fixes,
    },
    /// A process size below the floors of the components sized from it.
    #[error(
        "process_size {process:#} is below the smallest workable size: {floors} = {:#} do not \
         fit in it{fixes}",
        floors.sum()
    )]
    ProcessTooSmall {
        /// The process size.
        process: ByteSize,
        /// The minimums and explicit sizes that must fit.
        floors: Terms,
        /// How to fix it.
        fixes: Fixes,
    },
    /// Task memory (derived or `task.size`) below the minimum.
    #[error(
        "task memory {:#} is below its minimum {minimum}: {}{fixes}",
        derived.task.size,
        derived.summary()
    )]
    TaskBelowMinimum {
        /// The derived values.
        derived: Box<MemoryBreakdown>,
        /// The minimum.
        minimum: ByteSize,
        /// How to fix it.
        fixes: Fixes,
    },
    /// Network memory, derived as the rest because `task.size` is set, outside its bounds.
    #[error(
        "network memory {:#} is outside [network.min {min}, network.max {max}]: with task.size \
         set, network memory is the rest: {}{fixes}",
        derived.network.size,
        derived.summary()
    )]
    NetworkOutOfRange {
        /// The derived values.
        derived: Box<MemoryBreakdown>,
        /// `network.min` in effect.
        min: ByteSize,
        /// `network.max` in effect.
        max: ByteSize,
        /// How to fix it.
        fixes: Fixes,
    },
    /// Runtime overhead, derived as the rest because `task.size` and `network.size` are set,
    /// outside its bounds.
    #[error(
        "runtime overhead {:#} is outside [runtime_overhead.min {min}, runtime_overhead.max \
         {max}]: with task.size and network.size set, runtime overhead is the rest: {}{fixes}",
        derived.runtime_overhead.size,
        derived.summary()
    )]
    OverheadOutOfRange {
        /// The derived values.
        derived: Box<MemoryBreakdown>,
        /// `runtime_overhead.min` in effect.
        min: ByteSize,
        /// `runtime_overhead.max` in effect.
        max: ByteSize,
        /// How to fix it.
        fixes: Fixes,
    },
    /// Network memory per slot without one buffer for each of the slot's channels.
    #[error(
        "network memory {:#} gives each of {} slots {:#}, less than {channels} channels × \
         network.buffer_size {} = {needed:#} (one buffer per channel): {}{fixes}",
        derived.network.size,
        derived.slots,
        derived.network_per_slot,
        derived.buffer_size,
        derived.summary()
    )]
    NetworkBelowBuffers {
        /// The derived values.
        derived: Box<MemoryBreakdown>,
        /// `network.channels_per_slot` in effect.
        channels: u32,
        /// The network memory each slot needs.
        needed: ByteSize,
        /// How to fix it.
        fixes: Fixes,
    },
}

/// What an error needs to go away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// More memory for the components: a larger process or smaller components.
    More,
    /// Less left over for a component that is the rest: a smaller process or larger sizes.
    Less,
}

/// The `fixes` field of any variant, by reference or mutable reference.
macro_rules! fixes_of {
    ($error:expr) => {
        match $error {
            MemoryError::InvalidFraction { fixes, .. }
            | MemoryError::Zero { fixes, .. }
            | MemoryError::Conflict { fixes, .. }
            | MemoryError::MinAboveMax { fixes, .. }
            | MemoryError::FractionsLeaveNoTask { fixes, .. }
            | MemoryError::ExplicitSizesExceedProcess { fixes, .. }
            | MemoryError::ProcessTooSmall { fixes, .. }
            | MemoryError::TaskBelowMinimum { fixes, .. }
            | MemoryError::NetworkOutOfRange { fixes, .. }
            | MemoryError::OverheadOutOfRange { fixes, .. }
            | MemoryError::NetworkBelowBuffers { fixes, .. } => fixes,
        }
    };
}

impl MemoryError {
    /// The fixes the error suggests.
    pub fn fixes(&self) -> &Fixes {
        fixes_of!(self)
    }

    /// The error with these fixes.
    pub(crate) fn with_fixes(mut self, fixes: Vec<Fix>) -> Self {
        fixes_of!(&mut self).0 = fixes;
        self
    }

    /// Whether more memory or less would resolve it; `None` for errors in the inputs alone.
    pub(crate) fn need(&self) -> Option<Need> {
        match self {
            Self::InvalidFraction { .. }
            | Self::Zero { .. }
            | Self::Conflict { .. }
            | Self::MinAboveMax { .. } => None,
            Self::FractionsLeaveNoTask { .. }
            | Self::ExplicitSizesExceedProcess { .. }
            | Self::ProcessTooSmall { .. }
            | Self::TaskBelowMinimum { .. }
            | Self::NetworkBelowBuffers { .. } => Some(Need::More),
            Self::NetworkOutOfRange { derived, min, .. } => {
                Some(if derived.network.size < *min { Need::More } else { Need::Less })
            }
            Self::OverheadOutOfRange { derived, min, .. } => {
                Some(if derived.runtime_overhead.size < *min { Need::More } else { Need::Less })
            }
        }
    }
}

/// Result with this crate's [`MemoryError`].
pub type Result<T, E = MemoryError> = std::result::Result<T, E>;
