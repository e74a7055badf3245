//! Fixes for an error: changes to the configuration, their values found by searching the
//! model for the boundary where the error goes away.

use crate::config::MIN_TASK_MEMORY;
use crate::derive::derive;
use crate::error::Need;
use crate::fix::Target;
use crate::setting::{CountSetting, FractionSetting, Setting, SizeSetting};
use crate::{ByteSize, Fix, MemoryConfig, MemoryError, Rule};

/// The largest size searched, in MiB: 16 EiB.
const MAX_MIB: u64 = u64::MAX >> 20;

/// `error` with its fixes: those of its candidates that make `config` valid, or all of them
/// when none does on its own.
pub(crate) fn fixes(error: MemoryError, config: &MemoryConfig) -> MemoryError {
    let candidates = candidates(&error, config);
    let valid: Vec<Fix> =
        candidates.iter().copied().filter(|fix| derive(&fix.apply(config)).is_ok()).collect();
    error.with_fixes(if valid.is_empty() { candidates } else { valid })
}

/// The changes that address the rule `error` is about.
fn candidates(error: &MemoryError, config: &MemoryConfig) -> Vec<Fix> {
    use MemoryError as E;
    use SizeSetting::{ManagedSize, NetworkMax, NetworkSize, OverheadMax, ProcessSize, TaskSize};

    let Some(need) = error.need() else { return input_fixes(error) };
    let search = Search { config, need };
    let fixes = match (error, need) {
        (E::FractionsLeaveNoTask { .. }, _) => {
            vec![
                search.lower_fraction(FractionSetting::Managed),
                search.lower_fraction(FractionSetting::Network),
            ]
        }
        (E::ProcessTooSmall { .. }, _) => vec![search.raise(ProcessSize)],
        (E::ExplicitSizesExceedProcess { .. }, _) => vec![
            search.raise(ProcessSize),
            search.lower(TaskSize),
            search.lower(ManagedSize),
            search.lower(NetworkSize),
        ],
        (E::TaskBelowMinimum { derived, .. }, _) if derived.task.rule == Rule::Explicit => vec![
            Some(Fix::Raise(Target::Size(TaskSize, MIN_TASK_MEMORY))),
            Some(Fix::Remove(Setting::Size(TaskSize))),
        ],
        (E::TaskBelowMinimum { .. }, _) => vec![search.raise(ProcessSize), search.lower_managed()],
        (E::NetworkOutOfRange { .. } | E::OverheadOutOfRange { .. }, Need::More) => {
            vec![search.lower(TaskSize), search.raise(ProcessSize), search.lower_managed()]
        }
        (E::NetworkOutOfRange { derived, .. }, Need::Less) => vec![
            search.raise(TaskSize),
            Some(Fix::Raise(Target::Size(NetworkMax, whole_mib_above(derived.network.size)))),
            Some(Fix::Remove(Setting::Size(TaskSize))),
        ],
        (E::OverheadOutOfRange { derived, .. }, Need::Less) => vec![
            search.raise(TaskSize),
            search.lower(ProcessSize),
            Some(Fix::Raise(Target::Size(
                OverheadMax,
                whole_mib_above(derived.runtime_overhead.size),
            ))),
        ],
        (E::NetworkBelowBuffers { derived, needed, .. }, _) => {
            let network = match config.network.size {
                Some(_) => NetworkSize,
                None => SizeSetting::NetworkMin,
            };
            let total = ByteSize(needed.0.saturating_mul(u64::from(derived.slots)));
            let slots = u32::try_from(derived.network.size.0 / needed.0).unwrap_or(u32::MAX);
            vec![
                Some(Fix::Raise(Target::Size(network, whole_mib_above(total)))),
                (slots > 0).then_some(Fix::Lower(Target::Count(CountSetting::Slots, slots))),
                search.raise(ProcessSize),
            ]
        }
        // Errors in the inputs alone have no need and were answered above.
        (_, _) => vec![],
    };
    fixes.into_iter().flatten().collect()
}

/// Fixes for errors in the inputs alone, which no amount of memory resolves.
fn input_fixes(error: &MemoryError) -> Vec<Fix> {
    match *error {
        MemoryError::InvalidFraction { setting, .. } => {
            vec![Fix::Set(Target::Fraction(setting, setting.default()))]
        }
        MemoryError::Zero { setting, .. } => vec![Fix::Set(default_target(setting))],
        MemoryError::Conflict { size, other, .. } => {
            vec![Fix::Remove(other), Fix::Remove(Setting::Size(size))]
        }
        MemoryError::MinAboveMax { min_setting, min, max_setting, max, .. } => vec![
            Fix::Lower(Target::Size(min_setting, max)),
            Fix::Raise(Target::Size(max_setting, min)),
        ],
        _ => vec![],
    }
}

/// A setting at its default value (one of the settings that may not be zero).
fn default_target(setting: Setting) -> Target {
    match setting {
        Setting::Size(size) => Target::Size(size, size.default().unwrap_or_default()),
        Setting::Fraction(fraction) => Target::Fraction(fraction, fraction.default()),
        Setting::Count(count) => Target::Count(count, count.default()),
    }
}

/// `size` rounded up to a whole MiB.
fn whole_mib_above(size: ByteSize) -> ByteSize {
    ByteSize::mib(size.mib_ceil())
}

/// Searches one setting at a time for the value where an error of direction `need` goes away.
struct Search<'a> {
    config: &'a MemoryConfig,
    need: Need,
}

impl Search<'_> {
    /// Whether `config` is free of errors in this direction. Monotone in each setting searched
    /// (over the ranges searched), so a binary search finds the boundary.
    fn resolved(&self, config: &MemoryConfig) -> bool {
        derive(config).err().and_then(|error| error.need()) != Some(self.need)
    }

    /// Whether the error goes away with `setting` at `mib` MiB.
    fn resolved_at(&self, setting: SizeSetting, mib: u64) -> bool {
        let mut config = self.config.clone();
        setting.set(&mut config, ByteSize::mib(mib));
        self.resolved(&config)
    }

    /// Raise a size to the smallest whole MiB that resolves the error.
    fn raise(&self, setting: SizeSetting) -> Option<Fix> {
        let from = setting.get(self.config)?.mib_ceil();
        let mib = smallest(from, MAX_MIB, |mib| self.resolved_at(setting, mib))?;
        Some(Fix::Raise(Target::Size(setting, ByteSize::mib(mib))))
    }

    /// Lower a size to the largest whole MiB that resolves the error, and no lower than the
    /// floor under which it would break another rule.
    fn lower(&self, setting: SizeSetting) -> Option<Fix> {
        let current = setting.get(self.config)?.whole_mib();
        let floor = match setting {
            SizeSetting::TaskSize => MIN_TASK_MEMORY,
            SizeSetting::NetworkSize => network_for_buffers(self.config),
            _ => ByteSize(0),
        };
        let mib = largest(floor.mib_ceil(), current, |mib| self.resolved_at(setting, mib))?;
        Some(Fix::Lower(Target::Size(setting, ByteSize::mib(mib))))
    }

    /// Lower a fraction to the largest hundredth that resolves the error.
    fn lower_fraction(&self, setting: FractionSetting) -> Option<Fix> {
        let hundredths = |value: u64| value as f64 / 100.0;
        // Rounded down, but not below a hundredth the value is already at (0.29 × 100 < 29).
        let current = ((setting.get(self.config) * 100.0 + 1e-9) as u64).min(99);
        let value = largest(0, current, |value| {
            let mut config = self.config.clone();
            setting.set(&mut config, hundredths(value));
            self.resolved(&config)
        })?;
        Some(Fix::Lower(Target::Fraction(setting, hundredths(value))))
    }

    /// Lower managed memory, by its size when it is set, else by its fraction.
    fn lower_managed(&self) -> Option<Fix> {
        match self.config.managed.size {
            Some(_) => self.lower(SizeSetting::ManagedSize),
            None => self.lower_fraction(FractionSetting::Managed),
        }
    }
}

/// The network memory the slots need for one buffer per channel each.
fn network_for_buffers(config: &MemoryConfig) -> ByteSize {
    let buffer = SizeSetting::BufferSize.get(config).unwrap_or_default().0;
    let buffers = u64::from(CountSetting::Slots.get(config))
        .saturating_mul(u64::from(CountSetting::ChannelsPerSlot.get(config)));
    ByteSize(buffer.saturating_mul(buffers))
}

/// The smallest `x` in `lo..=hi` with `ok(x)`, where `ok` is false up to a point, then true.
fn smallest(mut lo: u64, mut hi: u64, ok: impl Fn(u64) -> bool) -> Option<u64> {
    if lo > hi || !ok(hi) {
        return None;
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) { hi = mid } else { lo = mid + 1 }
    }
    Some(lo)
}

/// The largest `x` in `lo..=hi` with `ok(x)`, where `ok` is true up to a point, then false.
fn largest(mut lo: u64, mut hi: u64, ok: impl Fn(u64) -> bool) -> Option<u64> {
    if lo > hi || !ok(lo) {
        return None;
    }
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ok(mid) { lo = mid } else { hi = mid - 1 }
    }
    Some(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_find_the_boundary() {
        assert_eq!(smallest(0, 100, |x| x >= 37), Some(37));
        assert_eq!(smallest(40, 100, |x| x >= 37), Some(40));
        assert_eq!(smallest(0, 100, |x| x >= 137), None);
        assert_eq!(largest(0, 100, |x| x <= 37), Some(37));
        assert_eq!(largest(0, 30, |x| x <= 37), Some(30));
        assert_eq!(largest(40, 100, |x| x <= 37), None);
        assert_eq!(smallest(0, u64::MAX, |x| x >= u64::MAX - 1), Some(u64::MAX - 1));
    }
}
