//! `MemoryBreakdown`: the sizes the model derives, the rule behind each, and their table.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ByteSize;

/// What a fraction is taken of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Base {
    /// The process size.
    Process,
    /// The process size less the runtime overhead.
    Usable,
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Process => "process",
            Self::Usable => "process - overhead",
        })
    }
}

/// A bound that replaced a fraction's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Clamp {
    /// The fraction gave less than the minimum.
    RaisedToMin(ByteSize),
    /// The fraction gave more than the maximum.
    LoweredToMax(ByteSize),
}

/// The rule that set a component's size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Rule {
    /// A fraction of a base, possibly clamped to a bound.
    Fraction {
        /// The fraction.
        fraction: f64,
        /// What it is a fraction of.
        of: Base,
        /// The bound that applied, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clamp: Option<Clamp>,
    },
    /// An explicit size.
    Explicit,
    /// What remains of a base after the other components.
    Rest {
        /// What it is the rest of.
        of: Base,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fraction { fraction, of, clamp } => {
                write!(f, "fraction {fraction:.2} of {of}")?;
                match clamp {
                    Some(Clamp::RaisedToMin(min)) => write!(f, ", raised to min {min}"),
                    Some(Clamp::LoweredToMax(max)) => write!(f, ", lowered to max {max}"),
                    None => Ok(()),
                }
            }
            Self::Explicit => f.write_str("explicit size"),
            Self::Rest { of } => write!(f, "the rest of {of}"),
        }
    }
}

/// One component of the process's memory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// Its size.
    pub size: ByteSize,
    /// The rule that set it.
    pub rule: Rule,
}

/// How a process's memory is divided. The four components add up to the process size
/// exactly; managed and network memory are also given per slot, network memory as a count
/// of buffers too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryBreakdown {
    /// The process size.
    pub process: ByteSize,
    /// Memory the runtime itself uses outside the pools below.
    pub runtime_overhead: Component,
    /// Buffers of the exchanges between tasks.
    pub network: Component,
    /// RocksDB block cache and write buffers.
    pub managed: Component,
    /// User code and heap state.
    pub task: Component,
    /// Slots in the process.
    pub slots: u32,
    /// Managed memory per slot: the RocksDB cache of each subtask's share.
    pub managed_per_slot: ByteSize,
    /// Network memory per slot.
    pub network_per_slot: ByteSize,
    /// The size of one network buffer.
    pub buffer_size: ByteSize,
    /// Network buffers per slot.
    pub buffers_per_slot: u64,
}

impl MemoryBreakdown {
    /// A breakdown of these components, with the per-slot shares computed.
    pub(crate) fn new(
        process: ByteSize,
        [runtime_overhead, network, managed, task]: [Component; 4],
        slots: u32,
        buffer_size: ByteSize,
    ) -> Self {
        let network_per_slot = ByteSize(network.size.0 / u64::from(slots));
        Self {
            process,
            runtime_overhead,
            network,
            managed,
            task,
            slots,
            managed_per_slot: ByteSize(managed.size.0 / u64::from(slots)),
            network_per_slot,
            buffer_size,
            buffers_per_slot: network_per_slot.0 / buffer_size.0,
        }
    }

    /// The components with their names, in the order they are derived.
    pub fn components(&self) -> [(&'static str, &Component); 4] {
        [
            ("runtime overhead", &self.runtime_overhead),
            ("network", &self.network),
            ("managed", &self.managed),
            ("task", &self.task),
        ]
    }

    /// The breakdown on one line, for error messages: each component's size and rule.
    pub fn summary(&self) -> impl fmt::Display + '_ {
        Summary(self)
    }

    fn share(&self, size: ByteSize) -> f64 {
        if self.process.0 == 0 { 0.0 } else { size.0 as f64 * 100.0 / self.process.0 as f64 }
    }
}

/// The table: one row per component with its size, share of the process and rule, then the
/// per-slot shares.
impl fmt::Display for MemoryBreakdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<18}{:>11}{:>8}  rule", "component", "size", "share")?;
        for (name, component) in self.components() {
            let (size, share) = (component.size.to_string(), self.share(component.size));
            writeln!(f, "{name:<18}{size:>11}{share:>7.1}%  {}", component.rule)?;
        }
        let process = self.process.to_string();
        writeln!(f, "{:<18}{process:>11}{:>7.1}%  given", "process", 100.0)?;
        let slots =
            if self.slots == 1 { "1 slot".to_string() } else { format!("{} slots", self.slots) };
        write!(
            f,
            "per slot ({slots}): managed {}, network {} = {} buffers of {}",
            self.managed_per_slot, self.network_per_slot, self.buffers_per_slot, self.buffer_size
        )
    }
}

struct Summary<'a>(&'a MemoryBreakdown);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "process {} gives", self.0.process)?;
        for (i, (name, component)) in self.0.components().into_iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            write!(f, "{comma} {name} {} ({})", component.size, component.rule)?;
        }
        Ok(())
    }
}
