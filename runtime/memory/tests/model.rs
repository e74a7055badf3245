//! Table tests of the memory model: breakdowns of valid configurations, every error (among
//! them the configurations Flink refuses to start with), and properties of generated ones.

use weir_memory::{
    ByteSize, Clamp, Fix, MemoryBreakdown, MemoryConfig, MemoryError, Rule, breakdown,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A configuration of `process` bytes (Flink units), changed by `edit`.
fn config(process: &str, edit: impl FnOnce(&mut MemoryConfig)) -> MemoryConfig {
    let mut config = MemoryConfig { process_size: size(process), ..Default::default() };
    edit(&mut config);
    config
}

fn size(text: &str) -> ByteSize {
    text.parse().unwrap()
}

fn some(text: &str) -> Option<ByteSize> {
    Some(size(text))
}

fn sizes(memory: &MemoryBreakdown) -> [u64; 4] {
    [memory.runtime_overhead, memory.network, memory.managed, memory.task].map(|c| c.size.0)
}

#[test]
fn valid_configurations_divide_the_process_exactly() {
    // [runtime overhead, network, managed, task] in bytes.
    let cases: Vec<(&str, MemoryConfig, [u64; 4])> = vec![
        ("defaults at 256 MiB", config("256m", |_| {}), [64 * MIB, 32 * MIB, 80530636, 87241524]),
        ("smallest workable", config("224m", |_| {}), [64 * MIB, 32 * MIB, 64 * MIB, 64 * MIB]),
        ("defaults at 1 GiB", config("1g", |_| {}), [107374182, 96636764, 386547056, 483183822]),
        ("defaults at 2 GiB", config("2g", |_| {}), [214748364, 193273528, 773094113, 966367643]),
        ("defaults at 16 GiB", config("16g", |_| {}), [GIB, GIB, 6 * GIB, 8 * GIB]),
        ("defaults at 64 GiB", config("64g", |_| {}), [GIB, GIB, 27058293964, 39513699124]),
        (
            "no managed memory (heap state)",
            config("2g", |c| c.managed.size = some("0")),
            [214748364, 193273528, 0, 1739461756],
        ),
        (
            "managed fraction 0",
            config("256m", |c| c.managed.fraction = Some(0.0)),
            [64 * MIB, 32 * MIB, 0, 160 * MIB],
        ),
        (
            "explicit managed size",
            config("2g", |c| c.managed.size = some("512m")),
            [214748364, 193273528, 512 * MIB, 1202590844],
        ),
        (
            "explicit network size",
            config("2g", |c| c.network.size = some("256m")),
            [214748364, 256 * MIB, 773094113, 891205715],
        ),
        (
            "network fixed by min = max",
            config("1g", |c| (c.network.min, c.network.max) = (some("128m"), some("128m"))),
            [107374182, 128 * MIB, 386547056, 445602858],
        ),
        (
            "overhead fraction and bounds",
            config("2g", |c| {
                c.runtime_overhead.fraction = Some(0.2);
                (c.runtime_overhead.min, c.runtime_overhead.max) = (some("128m"), some("512m"));
            }),
            [429496729, 171798691, 687194767, 858993461],
        ),
        (
            "explicit task: network is the rest",
            config("2g", |c| c.task.size = some("512m")),
            [214748364, 622770259, 773094113, 512 * MIB],
        ),
        (
            "explicit task and network: overhead is the rest",
            config("2g", |c| (c.task.size, c.network.size) = (some("1g"), some("128m"))),
            [128 * MIB, 128 * MIB, 768 * MIB, GIB],
        ),
        (
            "every component explicit",
            config("2g", |c| {
                (c.task.size, c.network.size) = (some("1g"), some("128m"));
                c.managed.size = some("512m");
            }),
            [384 * MIB, 128 * MIB, 512 * MIB, GIB],
        ),
        ("sizes as bytes", config("268435456", |_| {}), [64 * MIB, 32 * MIB, 80530636, 87241524]),
    ];
    for (name, config, expected) in cases {
        let memory = breakdown(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sizes(&memory), expected, "{name}");
        assert_eq!(sizes(&memory).iter().sum::<u64>(), config.process_size.0, "{name}");
    }
}

#[test]
fn rules_say_which_bound_applied() {
    let small = breakdown(&config("256m", |_| {})).unwrap();
    let raised = |min| Rule::Fraction {
        fraction: 0.1,
        of: weir_memory::Base::Process,
        clamp: Some(Clamp::RaisedToMin(min)),
    };
    assert_eq!(small.runtime_overhead.rule, raised(ByteSize::mib(64)));
    assert_eq!(small.task.rule, Rule::Rest { of: weir_memory::Base::Usable });
    let large = breakdown(&config("16g", |_| {})).unwrap();
    assert_eq!(
        large.network.rule.to_string(),
        "fraction 0.10 of process - overhead, lowered to max 1 GiB"
    );
    let explicit = breakdown(&config("2g", |c| c.managed.size = some("1g"))).unwrap();
    assert_eq!(explicit.managed.rule, Rule::Explicit);
}

#[test]
fn per_slot_shares() {
    let memory = breakdown(&config("4g", |c| c.slots = Some(4))).unwrap();
    assert_eq!(memory.managed_per_slot.0, memory.managed.size.0 / 4);
    assert_eq!(memory.network_per_slot.0, memory.network.size.0 / 4);
    assert_eq!(memory.buffers_per_slot, memory.network_per_slot.0 / (32 * 1024));
    let one = breakdown(&config("2g", |_| {})).unwrap();
    assert_eq!((one.slots, one.buffers_per_slot), (1, 5898));
}

#[test]
fn the_table_at_256_mib_and_2_gib() {
    let table = breakdown(&config("256m", |_| {})).unwrap().to_string();
    assert_eq!(
        table,
        "\
component                size   share  rule
runtime overhead       64 MiB   25.0%  fraction 0.10 of process, raised to min 64 MiB
network                32 MiB   12.5%  fraction 0.10 of process - overhead, raised to min 32 MiB
managed              76.8 MiB   30.0%  fraction 0.40 of process - overhead
task                 83.2 MiB   32.5%  the rest of process - overhead
process               256 MiB  100.0%  given
per slot (1 slot): managed 76.8 MiB, network 32 MiB = 1024 buffers of 32 KiB"
    );
    let table = breakdown(&config("2g", |c| c.slots = Some(2))).unwrap().to_string();
    assert!(
        table.contains("task                921.6 MiB   45.0%  the rest of process - overhead")
    );
    assert!(table.ends_with(
        "per slot (2 slots): managed 368.6 MiB, network 92.2 MiB = 2949 buffers of 32 KiB"
    ));
}

/// The variant's name, for the table below.
fn variant(error: &MemoryError) -> &'static str {
    match error {
        MemoryError::InvalidFraction { .. } => "InvalidFraction",
        MemoryError::Zero { .. } => "Zero",
        MemoryError::Conflict { .. } => "Conflict",
        MemoryError::MinAboveMax { .. } => "MinAboveMax",
        MemoryError::FractionsLeaveNoTask { .. } => "FractionsLeaveNoTask",
        MemoryError::ExplicitSizesExceedProcess { .. } => "ExplicitSizesExceedProcess",
        MemoryError::ProcessTooSmall { .. } => "ProcessTooSmall",
        MemoryError::TaskBelowMinimum { .. } => "TaskBelowMinimum",
        MemoryError::NetworkOutOfRange { .. } => "NetworkOutOfRange",
        MemoryError::OverheadOutOfRange { .. } => "OverheadOutOfRange",
        MemoryError::NetworkBelowBuffers { .. } => "NetworkBelowBuffers",
    }
}

#[test]
fn invalid_configurations_name_the_rule_and_a_working_fix() {
    // (case, configuration, variant, text the message contains, the fixes)
    let cases: Vec<(&str, MemoryConfig, &str, &str, &str)> = vec![
        // The cases that make Flink refuse to start.
        (
            "explicit sizes sum over the process size",
            config("2g", |c| (c.task.size, c.managed.size) = (some("1g"), some("1g"))),
            "ExplicitSizesExceedProcess",
            "runtime overhead (fraction 0.10 of process) 204.8 MiB (214748364 B) + task.size 1 GiB \
             + managed.size 1 GiB = 2.2 GiB (2362232012 B) exceed process_size 2 GiB",
            "raise process_size to at least 2312 MiB, or lower task.size to at most 787 MiB, or \
             lower managed.size to at most 787 MiB",
        ),
        (
            "network min above max",
            config("2g", |c| (c.network.min, c.network.max) = (some("512m"), some("256m"))),
            "MinAboveMax",
            "network.min 512 MiB is above network.max 256 MiB: the range is empty",
            "lower network.min to at most 256 MiB, or raise network.max to at least 512 MiB",
        ),
        (
            "network min above the default max",
            config("2g", |c| c.network.min = some("2g")),
            "MinAboveMax",
            "network.min 2 GiB is above network.max 1 GiB",
            "lower network.min to at most 1 GiB",
        ),
        (
            "overhead min above max",
            config("2g", |c| c.runtime_overhead.min = some("2g")),
            "MinAboveMax",
            "runtime_overhead.min 2 GiB is above runtime_overhead.max 1 GiB",
            "lower runtime_overhead.min to at most 1 GiB",
        ),
        (
            "managed fraction of 1",
            config("2g", |c| c.managed.fraction = Some(1.0)),
            "InvalidFraction",
            "managed.fraction is 1, outside [0, 1)",
            "set managed.fraction to 0.40",
        ),
        (
            "network fraction above 1",
            config("2g", |c| c.network.fraction = Some(1.5)),
            "InvalidFraction",
            "network.fraction is 1.5, outside [0, 1)",
            "set network.fraction to 0.10",
        ),
        (
            "negative overhead fraction",
            config("2g", |c| c.runtime_overhead.fraction = Some(-0.1)),
            "InvalidFraction",
            "runtime_overhead.fraction is -0.1",
            "set runtime_overhead.fraction to 0.10",
        ),
        (
            "derived network above max when task and managed are explicit",
            config("4g", |c| (c.task.size, c.managed.size) = (some("512m"), some("512m"))),
            "NetworkOutOfRange",
            "network memory 2.6 GiB (2791728743 B) is outside [network.min 32 MiB, network.max 1 GiB]",
            "raise task.size to at least 2151 MiB, or raise network.max to at least 2663 MiB, or \
             remove task.size",
        ),
        (
            "derived network below min when task is explicit",
            config("1g", |c| c.task.size = some("550m")),
            "NetworkOutOfRange",
            "network memory 3.0 MiB (3103786 B) is outside [network.min 32 MiB, network.max 1 GiB]",
            "lower task.size to at most 520 MiB, or raise process_size to at least 1078 MiB, or \
             lower managed.fraction to at most 0.36",
        ),
        (
            "derived overhead above max when task and network are explicit",
            config("4g", |c| (c.task.size, c.network.size) = (some("512m"), some("128m"))),
            "OverheadOutOfRange",
            "runtime overhead 3.0 GiB (3176486230 B) is outside [runtime_overhead.min 64 MiB, \
             runtime_overhead.max 1 GiB]",
            "raise task.size to at least 1716 MiB, or lower process_size to at most 2090 MiB, or \
             raise runtime_overhead.max to at least 3030 MiB",
        ),
        (
            "derived overhead below min when task and network are explicit",
            config("2g", |c| {
                (c.task.size, c.network.size) = (some("1g"), some("256m"));
                c.managed.size = some("768m");
            }),
            "OverheadOutOfRange",
            "runtime overhead 0 B is outside [runtime_overhead.min 64 MiB",
            "lower task.size to at most 960 MiB, or raise process_size to at least 2112 MiB, or \
             lower managed.size to at most 704 MiB",
        ),
        // Weir's own rules.
        (
            "process below the floors",
            config("128m", |_| {}),
            "ProcessTooSmall",
            "process_size 128 MiB is below the smallest workable size: runtime_overhead.min 64 MiB \
             + network.min 32 MiB + task minimum 64 MiB = 160 MiB do not fit in it",
            "raise process_size to at least 224 MiB",
        ),
        (
            "process of 0 (the default)",
            MemoryConfig::default(),
            "ProcessTooSmall",
            "process_size 0 B is below",
            "raise process_size to at least 224 MiB",
        ),
        (
            "derived task below the minimum",
            config("256m", |c| c.managed.fraction = Some(0.6)),
            "TaskBelowMinimum",
            "task memory 44.8 MiB (46976205 B) is below its minimum 64 MiB: process 256 MiB gives \
             runtime overhead 64 MiB (fraction 0.10 of process, raised to min 64 MiB), network 32 \
             MiB (fraction 0.10 of process - overhead, raised to min 32 MiB), managed 115.2 MiB \
             (fraction 0.60 of process - overhead), task 44.8 MiB (the rest of process - overhead)",
            "raise process_size to at least 304 MiB, or lower managed.fraction to at most 0.50",
        ),
        (
            "explicit task below the minimum",
            config("2g", |c| c.task.size = some("32m")),
            "TaskBelowMinimum",
            "task memory 32 MiB is below its minimum 64 MiB",
            "remove task.size",
        ),
        (
            "explicit network size with a fraction",
            config("2g", |c| (c.network.size, c.network.fraction) = (some("64m"), Some(0.2))),
            "Conflict",
            "network.size and network.fraction are both set",
            "remove network.fraction, or remove network.size",
        ),
        (
            "explicit managed size with a fraction",
            config("2g", |c| (c.managed.size, c.managed.fraction) = (some("64m"), Some(0.2))),
            "Conflict",
            "managed.size and managed.fraction are both set",
            "remove managed.fraction, or remove managed.size",
        ),
        ("no slots", config("2g", |c| c.slots = Some(0)), "Zero", "slots is 0", "set slots to 1"),
        (
            "no buffer size",
            config("2g", |c| c.network.buffer_size = some("0")),
            "Zero",
            "network.buffer_size is 0",
            "set network.buffer_size to 32 KiB",
        ),
        (
            "no channels",
            config("2g", |c| c.network.channels_per_slot = Some(0)),
            "Zero",
            "network.channels_per_slot is 0",
            "set network.channels_per_slot to 1",
        ),
        (
            "fractions that leave no task memory",
            config("2g", |c| (c.managed.fraction, c.network.fraction) = (Some(0.7), Some(0.3))),
            "FractionsLeaveNoTask",
            "managed.fraction 0.70 + network.fraction 0.30 = 1.00 leave nothing",
            "lower managed.fraction to at most 0.66, or lower network.fraction to at most 0.26",
        ),
        (
            "too few buffers for the slots' channels",
            config("256m", |c| (c.slots, c.network.channels_per_slot) = (Some(64), Some(32))),
            "NetworkBelowBuffers",
            "network memory 32 MiB gives each of 64 slots 512 KiB, less than 32 channels × \
             network.buffer_size 32 KiB = 1 MiB (one buffer per channel)",
            "lower slots to at most 32, or raise process_size to at least 712 MiB",
        ),
        (
            "too few buffers in an explicit network size",
            config("2g", |c| (c.slots, c.network.size) = (Some(64), some("1m"))),
            "NetworkBelowBuffers",
            "network memory 1 MiB gives each of 64 slots 16 KiB",
            "raise network.size to at least 2 MiB, or lower slots to at most 32",
        ),
    ];
    for (name, config, expected_variant, text, fixes) in cases {
        let error = breakdown(&config).expect_err(name);
        let message = error.to_string();
        assert_eq!(variant(&error), expected_variant, "{name}: {message}");
        assert!(message.contains(text), "{name}: {message}\n does not contain\n{text}");
        assert!(message.ends_with(&format!("; fix: {fixes}")), "{name}: {message}");
        for fix in &error.fixes().0 {
            assert_fix_works(name, &config, fix);
        }
    }
}

/// Applying `fix` makes `config` valid.
fn assert_fix_works(name: &str, config: &MemoryConfig, fix: &Fix) {
    if let Err(error) = breakdown(&fix.apply(config)) {
        panic!("{name}: after '{fix}': {error}");
    }
}

#[test]
fn errors_are_deterministic_values() {
    let config = config("2g", |c| c.task.size = some("32m"));
    let error = breakdown(&config).unwrap_err();
    assert_eq!(breakdown(&config).unwrap_err(), error);
    let copy = error.clone();
    assert_eq!(copy.to_string(), error.to_string());
}

#[test]
fn config_reads_camel_case_with_units_and_rejects_unknown_fields() {
    let json = r#"{
        "processSize": "2g",
        "slots": 2,
        "runtimeOverhead": { "min": "128m" },
        "network": { "bufferSize": "64k", "channelsPerSlot": 4 },
        "managed": { "fraction": 0.3 },
        "task": { "size": 536870912 }
    }"#;
    let config: MemoryConfig = serde_json::from_str(json).unwrap();
    assert_eq!(config.process_size, ByteSize::gib(2));
    assert_eq!(config.runtime_overhead.min, Some(ByteSize::mib(128)));
    assert_eq!(config.network.buffer_size, Some(ByteSize::kib(64)));
    assert_eq!(config.network.channels_per_slot, Some(4));
    assert_eq!(config.task.size, Some(ByteSize::mib(512)));
    let written = serde_json::to_string(&config).unwrap();
    assert_eq!(serde_json::from_str::<MemoryConfig>(&written).unwrap(), config);

    let typo = r#"{ "processSize": "2g", "manged": { "fraction": 0.3 } }"#;
    assert!(serde_json::from_str::<MemoryConfig>(typo).unwrap_err().to_string().contains("manged"));
    assert!(serde_json::from_str::<MemoryConfig>("{}").is_err(), "processSize is required");
}

#[test]
fn breakdown_round_trips_through_json() {
    let memory = breakdown(&config("2g", |c| c.task.size = some("512m"))).unwrap();
    let json = serde_json::to_string(&memory).unwrap();
    assert!(json.contains(r#""runtimeOverhead":{"size":214748364,"rule":{"kind":"fraction""#));
    assert_eq!(serde_json::from_str::<MemoryBreakdown>(&json).unwrap(), memory);
}

/// A random size: often a round number of MiB, sometimes any number of bytes.
fn random_size(rng: &mut fastrand::Rng, max_mib: u64) -> ByteSize {
    let mib = ByteSize::mib(rng.u64(0..=max_mib));
    if rng.bool() { mib } else { ByteSize(mib.0 + rng.u64(0..MIB)) }
}

fn random_config(rng: &mut fastrand::Rng) -> MemoryConfig {
    let mut config =
        MemoryConfig { process_size: random_size(rng, 64 * 1024), ..Default::default() };
    let maybe = |rng: &mut fastrand::Rng, max_mib| rng.bool().then(|| random_size(rng, max_mib));
    let fraction = |rng: &mut fastrand::Rng| (rng.u8(0..4) == 0).then(|| rng.f64() * 0.8);
    config.slots = (rng.u8(0..3) == 0).then(|| rng.u32(1..=16));
    config.runtime_overhead.fraction = fraction(rng);
    config.runtime_overhead.min = maybe(rng, 512);
    config.runtime_overhead.max = maybe(rng, 4096);
    if rng.bool() {
        config.network.size = maybe(rng, 2048);
    } else {
        config.network.fraction = fraction(rng);
        config.network.min = maybe(rng, 256);
        config.network.max = maybe(rng, 4096);
    }
    if rng.bool() {
        config.managed.size = maybe(rng, 16 * 1024);
    } else {
        config.managed.fraction = fraction(rng);
    }
    config.task.size = maybe(rng, 16 * 1024);
    config
}

#[test]
fn generated_configs_sum_exactly_or_fail_with_fixes_that_address_the_rule() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let (mut valid, mut invalid, mut fixed) = (0, 0, 0);
    for _ in 0..3000 {
        let config = random_config(&mut rng);
        match breakdown(&config) {
            Ok(memory) => {
                valid += 1;
                assert_eq!(sizes(&memory).iter().sum::<u64>(), config.process_size.0, "{config:?}");
                assert!(memory.task.size >= weir_memory::MIN_TASK_MEMORY, "{config:?}");
                assert_eq!(breakdown(&config).unwrap(), memory, "deterministic");
            }
            Err(error) => {
                invalid += 1;
                assert!(!error.fixes().0.is_empty(), "no fix for {config:?}: {error}");
                for fix in &error.fixes().0 {
                    match breakdown(&fix.apply(&config)) {
                        Ok(_) => fixed += 1,
                        Err(after) => assert_ne!(
                            std::mem::discriminant(&after),
                            std::mem::discriminant(&error),
                            "'{fix}' leaves {error} as {after} for {config:?}"
                        ),
                    }
                }
            }
        }
    }
    assert!(valid > 500 && invalid > 500, "{valid} valid, {invalid} invalid");
    assert!(fixed > invalid, "{fixed} fixes made the configuration valid, of {invalid} errors");
}

#[test]
fn defaults_work_from_256_mib_upward() {
    for mib in (256..=8192).step_by(64).chain([12 * 1024, 100 * 1024, 1024 * 1024]) {
        let memory = breakdown(&config(&format!("{mib}m"), |_| {})).unwrap();
        assert!(memory.task.size >= weir_memory::MIN_TASK_MEMORY, "{mib} MiB");
        assert_eq!(sizes(&memory).iter().sum::<u64>(), mib * MIB);
    }
}
