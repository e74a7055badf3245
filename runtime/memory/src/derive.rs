//! The derivation: from a `MemoryConfig` to a `MemoryBreakdown`, by Flink's rules.

use crate::breakdown::{Base, Clamp, Component, Rule};
use crate::config::MIN_TASK_MEMORY;
use crate::error::Terms;
use crate::setting::{CountSetting, FractionSetting, Setting, SizeSetting};
use crate::{ByteSize, Fixes, MemoryBreakdown, MemoryConfig, MemoryError, Result, suggest};

/// Divides a process's memory into runtime overhead, network, managed and task memory.
///
/// Pure and deterministic. The rules, after Flink's TaskManager model without the JVM:
///
/// 1. Runtime overhead is `runtime_overhead.fraction` of the process size, clamped to
///    `[runtime_overhead.min, runtime_overhead.max]`.
/// 2. Network memory is `network.fraction` of process − overhead clamped to
///    `[network.min, network.max]`, or `network.size`.
/// 3. Managed memory is `managed.fraction` of process − overhead, or `managed.size`.
/// 4. Task memory is the rest, at least [`MIN_TASK_MEMORY`].
///
/// With `task.size` set, network memory is the rest instead and must lie in
/// `[network.min, network.max]`; with `task.size` and `network.size` set, runtime overhead is
/// the rest and must lie in its bounds. Either way the four components add up to the process
/// size exactly. Each slot's network share must hold one `network.buffer_size` buffer for
/// each of its `network.channels_per_slot` channels.
///
/// A configuration that breaks a rule returns the [`MemoryError`] of that rule, with fixes
/// whose values are computed from the model.
pub fn breakdown(config: &MemoryConfig) -> Result<MemoryBreakdown> {
    derive(config).map_err(|error| suggest::fixes(error, config))
}

/// [`breakdown`] without fixes in its errors: the rules alone, which the fixes search.
pub(crate) fn derive(config: &MemoryConfig) -> Result<MemoryBreakdown> {
    validate(config)?;
    let input = Input::read(config);
    let breakdown = match (input.task, input.network_size) {
        (None, _) => task_is_rest(&input)?,
        (Some(task), None) => network_is_rest(&input, task)?,
        (Some(task), Some(network)) => overhead_is_rest(&input, task, network)?,
    };
    check_buffers(&input, breakdown)
}

/// The rules on the inputs alone.
fn validate(config: &MemoryConfig) -> Result<()> {
    let fixes = Fixes::default();
    for setting in FractionSetting::ALL {
        let value = setting.get(config);
        if !(0.0..1.0).contains(&value) {
            return Err(MemoryError::InvalidFraction { setting, value, fixes });
        }
    }
    let zero = [
        (Setting::Count(CountSetting::Slots), CountSetting::Slots.get(config) == 0),
        (
            Setting::Count(CountSetting::ChannelsPerSlot),
            CountSetting::ChannelsPerSlot.get(config) == 0,
        ),
        (Setting::Size(SizeSetting::BufferSize), size(config, SizeSetting::BufferSize).0 == 0),
    ];
    if let Some((setting, _)) = zero.into_iter().find(|(_, zero)| *zero) {
        return Err(MemoryError::Zero { setting, fixes });
    }
    let conflicts = [
        (SizeSetting::NetworkSize, Setting::Fraction(FractionSetting::Network)),
        (SizeSetting::NetworkSize, Setting::Size(SizeSetting::NetworkMin)),
        (SizeSetting::NetworkSize, Setting::Size(SizeSetting::NetworkMax)),
        (SizeSetting::ManagedSize, Setting::Fraction(FractionSetting::Managed)),
    ];
    for (size, other) in conflicts {
        if size.get(config).is_some() && other.is_set(config) {
            return Err(MemoryError::Conflict { size, other, fixes });
        }
    }
    let ranges = [
        (SizeSetting::OverheadMin, SizeSetting::OverheadMax),
        (SizeSetting::NetworkMin, SizeSetting::NetworkMax),
    ];
    for (min_setting, max_setting) in ranges {
        let (min, max) = (size(config, min_setting), size(config, max_setting));
        if min > max {
            return Err(MemoryError::MinAboveMax { min_setting, min, max_setting, max, fixes });
        }
    }
    let (managed, network) =
        (FractionSetting::Managed.get(config), FractionSetting::Network.get(config));
    let all_fractions = [config.task.size, config.network.size, config.managed.size] == [None; 3];
    if all_fractions && managed + network >= 1.0 {
        return Err(MemoryError::FractionsLeaveNoTask { managed, network, fixes });
    }
    Ok(())
}

/// The value in effect of a setting that has a default.
fn size(config: &MemoryConfig, setting: SizeSetting) -> ByteSize {
    setting.get(config).unwrap_or_default()
}

/// A fraction with its bounds.
struct Bounded {
    fraction: f64,
    min: ByteSize,
    max: ByteSize,
}

impl Bounded {
    /// `fraction` of `base`, clamped to `[min, max]`.
    fn of(&self, base: ByteSize, of: Base) -> Component {
        let raw = base.times(self.fraction);
        let (size, clamp) = if raw < self.min {
            (self.min, Some(Clamp::RaisedToMin(self.min)))
        } else if raw > self.max {
            (self.max, Some(Clamp::LoweredToMax(self.max)))
        } else {
            (raw, None)
        };
        Component { size, rule: Rule::Fraction { fraction: self.fraction, of, clamp } }
    }
}

/// The inputs in effect, defaults applied.
struct Input {
    process: ByteSize,
    overhead: Bounded,
    network: Bounded,
    network_size: Option<ByteSize>,
    managed_fraction: f64,
    managed_size: Option<ByteSize>,
    task: Option<ByteSize>,
    slots: u32,
    buffer_size: ByteSize,
    channels: u32,
}

impl Input {
    fn read(config: &MemoryConfig) -> Self {
        let size = |setting| size(config, setting);
        Self {
            process: config.process_size,
            overhead: Bounded {
                fraction: FractionSetting::Overhead.get(config),
                min: size(SizeSetting::OverheadMin),
                max: size(SizeSetting::OverheadMax),
            },
            network: Bounded {
                fraction: FractionSetting::Network.get(config),
                min: size(SizeSetting::NetworkMin),
                max: size(SizeSetting::NetworkMax),
            },
            network_size: config.network.size,
            managed_fraction: FractionSetting::Managed.get(config),
            managed_size: config.managed.size,
            task: config.task.size,
            slots: CountSetting::Slots.get(config),
            buffer_size: size(SizeSetting::BufferSize),
            channels: CountSetting::ChannelsPerSlot.get(config),
        }
    }

    /// The explicit sizes, after the runtime overhead when it is derived first.
    fn explicit_terms(&self, overhead: Option<&Component>) -> Terms {
        let overhead = overhead.map(|o| (format!("runtime overhead ({})", o.rule), o.size));
        let explicit = [
            (SizeSetting::TaskSize, self.task),
            (SizeSetting::NetworkSize, self.network_size),
            (SizeSetting::ManagedSize, self.managed_size),
        ];
        let explicit =
            explicit.into_iter().filter_map(|(s, size)| Some((s.name().to_string(), size?)));
        Terms(overhead.into_iter().chain(explicit).collect())
    }

    /// Fails when the explicit sizes (after a derived overhead) exceed the process size.
    fn check_fit(&self, overhead: Option<&Component>) -> Result<()> {
        let terms = self.explicit_terms(overhead);
        let any_explicit = terms.0.len() > usize::from(overhead.is_some());
        if any_explicit && terms.sum() > self.process {
            let (process, fixes) = (self.process, Fixes::default());
            return Err(MemoryError::ExplicitSizesExceedProcess { process, terms, fixes });
        }
        Ok(())
    }

    /// Managed memory: explicit, or its fraction of `usable`.
    fn managed(&self, usable: ByteSize) -> Component {
        self.managed_size.map_or_else(
            || Component {
                size: usable.times(self.managed_fraction),
                rule: fraction_rule(self.managed_fraction),
            },
            explicit,
        )
    }

    fn finish(&self, components: [Component; 4]) -> MemoryBreakdown {
        MemoryBreakdown::new(self.process, components, self.slots, self.buffer_size)
    }
}

/// An explicit size.
fn explicit(size: ByteSize) -> Component {
    Component { size, rule: Rule::Explicit }
}

/// An unclamped fraction of process − overhead.
fn fraction_rule(fraction: f64) -> Rule {
    Rule::Fraction { fraction, of: Base::Usable, clamp: None }
}

/// What remains of `base` after `others` (zero when they take more).
fn rest(base: ByteSize, others: &[&Component], of: Base) -> Component {
    let size = others.iter().fold(base, |left, other| left.saturating_sub(other.size));
    Component { size, rule: Rule::Rest { of } }
}

/// Rules 1–4: task memory is the rest.
fn task_is_rest(input: &Input) -> Result<MemoryBreakdown> {
    let overhead = input.overhead.of(input.process, Base::Process);
    input.check_fit(Some(&overhead))?;
    let network_floor = match input.network_size {
        Some(size) => ("network.size", size),
        None => ("network.min", input.network.min),
    };
    let floors = [("runtime_overhead.min", input.overhead.min), network_floor]
        .into_iter()
        .chain(input.managed_size.map(|size| ("managed.size", size)))
        .chain([("task minimum", MIN_TASK_MEMORY)]);
    let floors = Terms(floors.map(|(name, size)| (name.to_string(), size)).collect());
    if floors.sum() > input.process {
        let (process, fixes) = (input.process, Fixes::default());
        return Err(MemoryError::ProcessTooSmall { process, floors, fixes });
    }
    let usable = input.process.saturating_sub(overhead.size);
    let network =
        input.network_size.map_or_else(|| input.network.of(usable, Base::Usable), explicit);
    let managed = input.managed(usable);
    let task = rest(usable, &[&network, &managed], Base::Usable);
    check_task(input.finish([overhead, network, managed, task]))
}

/// `task.size` set: network memory is the rest, within its bounds.
fn network_is_rest(input: &Input, task: ByteSize) -> Result<MemoryBreakdown> {
    let overhead = input.overhead.of(input.process, Base::Process);
    input.check_fit(Some(&overhead))?;
    let usable = input.process.saturating_sub(overhead.size);
    let managed = input.managed(usable);
    let task = explicit(task);
    let network = rest(usable, &[&managed, &task], Base::Usable);
    let breakdown = check_task(input.finish([overhead, network, managed, task]))?;
    let (min, max) = (input.network.min, input.network.max);
    if !(min..=max).contains(&breakdown.network.size) {
        let (derived, fixes) = (Box::new(breakdown), Fixes::default());
        return Err(MemoryError::NetworkOutOfRange { derived, min, max, fixes });
    }
    Ok(breakdown)
}

/// `task.size` and `network.size` set: runtime overhead is the rest, within its bounds.
fn overhead_is_rest(input: &Input, task: ByteSize, network: ByteSize) -> Result<MemoryBreakdown> {
    input.check_fit(None)?;
    let (task, network) = (explicit(task), explicit(network));
    // Managed memory is its fraction of process − overhead = task + network + managed.
    let fraction = input.managed_fraction;
    let managed = input.managed_size.map_or_else(
        || Component {
            size: task.size.saturating_add(network.size).times(fraction / (1.0 - fraction)),
            rule: fraction_rule(fraction),
        },
        explicit,
    );
    let overhead = rest(input.process, &[&task, &network, &managed], Base::Process);
    let breakdown = check_task(input.finish([overhead, network, managed, task]))?;
    let (min, max) = (input.overhead.min, input.overhead.max);
    if !(min..=max).contains(&breakdown.runtime_overhead.size) {
        let (derived, fixes) = (Box::new(breakdown), Fixes::default());
        return Err(MemoryError::OverheadOutOfRange { derived, min, max, fixes });
    }
    Ok(breakdown)
}

/// Fails when task memory is below its minimum.
fn check_task(breakdown: MemoryBreakdown) -> Result<MemoryBreakdown> {
    if breakdown.task.size < MIN_TASK_MEMORY {
        let (derived, fixes) = (Box::new(breakdown), Fixes::default());
        return Err(MemoryError::TaskBelowMinimum { derived, minimum: MIN_TASK_MEMORY, fixes });
    }
    Ok(breakdown)
}

/// Fails when a slot's network share holds fewer buffers than it has channels.
fn check_buffers(input: &Input, breakdown: MemoryBreakdown) -> Result<MemoryBreakdown> {
    let needed = ByteSize(input.buffer_size.0.saturating_mul(u64::from(input.channels)));
    if breakdown.network_per_slot < needed {
        let (derived, fixes) = (Box::new(breakdown), Fixes::default());
        return Err(MemoryError::NetworkBelowBuffers {
            derived,
            channels: input.channels,
            needed,
            fixes,
        });
    }
    Ok(breakdown)
}
