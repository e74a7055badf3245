//! The owned ConfigMap: the engine's settings as a TOML file (`weir.toml`), which every pod
//! mounts and passes to the job binary with `--config`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use toml::{Table, Value};

use crate::crd::{CheckpointMode, RestartKind, StateBackend, StreamJob};
use crate::render::names;
use crate::{Error, Result};

/// The file name inside the ConfigMap.
pub const CONFIG_FILE: &str = "weir.toml";
/// Where pods mount the ConfigMap.
pub const CONFIG_DIR: &str = "/etc/weir";

/// The ConfigMap of `job`.
pub fn config_map(job: &StreamJob) -> Result<ConfigMap> {
    let toml = toml::to_string(&settings(job))
        .map_err(|e| Error::Serialize { what: "the engine settings", message: e.to_string() })?;
    Ok(ConfigMap {
        metadata: names::owned_meta(job, names::config_map_name(job), None),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), toml)])),
        ..ConfigMap::default()
    })
}

/// The engine settings: the spec's free-form `config` under the operator's own settings.
fn settings(job: &StreamJob) -> Table {
    let spec = &job.spec;
    let mut table = Table::new();
    for (key, value) in &spec.config {
        set(&mut table, key, literal(value));
    }
    set(&mut table, "parallelism", Value::from(spec.parallelism));
    if let Some(max) = spec.max_parallelism {
        set(&mut table, "max_parallelism", Value::from(max));
    }
    if let Some(backend) = spec.state_backend {
        let name = match backend {
            StateBackend::Heap => "heap",
            StateBackend::Rocksdb => "rocksdb",
        };
        set(&mut table, "state_backend", Value::from(name));
    }
    if let Some(checkpointing) = &spec.checkpointing {
        let mode = match checkpointing.mode {
            CheckpointMode::ExactlyOnce => "exactly-once",
            CheckpointMode::AtLeastOnce => "at-least-once",
        };
        let interval = i64::try_from(checkpointing.interval_ms).unwrap_or(i64::MAX);
        set(&mut table, "checkpointing.interval_ms", Value::from(interval));
        set(&mut table, "checkpointing.mode", Value::from(mode));
        set(&mut table, "checkpointing.dir", Value::from(checkpointing.storage.as_str()));
        set(&mut table, "checkpointing.retained", Value::from(checkpointing.retained));
        if let Some(dir) = job.savepoint_storage() {
            set(&mut table, "checkpointing.savepoint_dir", Value::from(dir));
        }
    }
    if let Some(restart) = &spec.restart_strategy {
        let kind = match restart.strategy {
            RestartKind::None => "none",
            RestartKind::FixedDelay => "fixed-delay",
            RestartKind::FailureRate => "failure-rate",
            RestartKind::ExponentialDelay => "exponential-delay",
        };
        set(&mut table, "restart.strategy", Value::from(kind));
        let numbers = [
            ("restart.attempts", restart.attempts.map(u64::from)),
            ("restart.delay_ms", restart.delay_ms),
            ("restart.max_failures", restart.max_failures.map(u64::from)),
            ("restart.interval_ms", restart.interval_ms),
        ];
        for (key, number) in numbers {
            if let Some(n) = number {
                set(&mut table, key, Value::from(i64::try_from(n).unwrap_or(i64::MAX)));
            }
        }
    }
    table
}

/// A `config` value as TOML reads it (`1000`, `true`, `[1, 2]`), else as a string.
fn literal(value: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::from(value))
}

/// Sets a dotted key (`checkpointing.interval_ms`) in nested tables, replacing what is there.
fn set(table: &mut Table, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = table.entry(head.to_string()).or_insert_with(|| Table::new().into());
            if !entry.is_table() {
                *entry = Table::new().into();
            }
            if let Value::Table(inner) = entry {
                set(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::stream_job;

    #[test]
    fn operator_settings_win_over_free_form_ones_and_literals_keep_their_type() {
        let mut job = stream_job();
        job.spec.config = BTreeMap::from([
            ("parallelism".to_string(), "9".to_string()),
            ("checkpointing.timeout_ms".to_string(), "60000".to_string()),
            ("restart.strategy".to_string(), "none".to_string()),
        ]);
        job.spec.checkpointing = serde_json::from_value(serde_json::json!({
            "intervalMs": 1000, "storage": "s3://b/chk/", "retained": 2,
        }))
        .unwrap();
        let map = config_map(&job).unwrap();
        let text = &map.data.unwrap()[CONFIG_FILE];
        let parsed: Table = toml::from_str(text).unwrap();
        assert_eq!(parsed["parallelism"].as_integer(), Some(2));
        assert_eq!(parsed["restart"]["strategy"].as_str(), Some("none"));
        let checkpointing = &parsed["checkpointing"];
        assert_eq!(checkpointing["timeout_ms"].as_integer(), Some(60000));
        assert_eq!(checkpointing["interval_ms"].as_integer(), Some(1000));
        assert_eq!(checkpointing["dir"].as_str(), Some("s3://b/chk/"));
        assert_eq!(checkpointing["savepoint_dir"].as_str(), Some("s3://b/chk/savepoints"));
        assert_eq!(map.metadata.name.as_deref(), Some("wc-config"));
    }
}
