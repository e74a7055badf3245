//! Schemas of spec fields whose types have no `JsonSchema` of their own: the memory model's
//! settings (`weir-memory` knows nothing of Kubernetes) and the free-form pod template.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

/// A size: bytes, or a string with a unit such as `2g` or `512 MiB`.
fn size(description: &str) -> Value {
    json!({ "x-kubernetes-int-or-string": true, "description": description })
}

/// A fraction in [0, 1).
fn fraction(description: &str) -> Value {
    json!({
        "type": "number", "minimum": 0, "maximum": 1, "exclusiveMaximum": true,
        "description": description,
    })
}

/// A closed object of these properties.
fn object(description: &str, properties: Value) -> Value {
    json!({ "type": "object", "description": description, "properties": properties })
}

/// The schema of `weir_memory::MemoryConfig` as the CRD shows it: camelCase fields, sizes as
/// numbers of bytes or strings with units, fractions in [0, 1).
pub fn memory_config(_: &mut SchemaGenerator) -> Schema {
    let overhead = object(
        "Memory the runtime itself uses: a fraction of the process clamped to [min, max]",
        json!({
            "fraction": fraction("Fraction of the process size (default 0.1)"),
            "min": size("Lower bound (default 64 MiB)"),
            "max": size("Upper bound (default 1 GiB)"),
        }),
    );
    let network = object(
        "Exchange buffers: a fraction of process - overhead clamped to [min, max], or a size",
        json!({
            "fraction": fraction("Fraction of process - overhead (default 0.1)"),
            "min": size("Lower bound (default 32 MiB)"),
            "max": size("Upper bound (default 1 GiB)"),
            "size": size("Explicit size, instead of fraction, min and max"),
            "bufferSize": size("Size of one buffer (default 32 KiB)"),
            "channelsPerSlot": {
                "type": "integer", "minimum": 1,
                "description": "Channels each slot needs a buffer for (default 1)",
            },
        }),
    );
    let managed = object(
        "RocksDB block cache and write buffers: a fraction of process - overhead, or a size",
        json!({
            "fraction": fraction("Fraction of process - overhead (default 0.4)"),
            "size": size("Explicit size, instead of the fraction (0 without RocksDB)"),
        }),
    );
    let task = object(
        "User code and heap state: the rest, or a size",
        json!({ "size": size("Explicit size (at least 64 MiB)") }),
    );
    json_schema!({
        "type": "object",
        "description": "The memory model's settings (see docs/memory.md); the operator sets \
                        slots itself",
        "required": ["processSize"],
        "properties": {
            "processSize": size("The pod's memory request and limit, e.g. 2g"),
            "runtimeOverhead": overhead,
            "network": network,
            "managed": managed,
            "task": task,
        },
    })
}

/// An object of any fields, kept as written (checked by the controller, not the API server).
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}
