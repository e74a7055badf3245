//! The coordinator and worker pods: the job binary in its role, the engine settings mounted
//! from the ConfigMap, memory from the plan, S3 access from the spec, and the user's pod
//! template laid under all of it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Pod,
    PodSpec, Probe, ResourceRequirements, SecretKeySelector, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use weir_memory::MemoryConfig;

use crate::crd::{ProcessSpec, StreamJob};
use crate::render::config::{CONFIG_DIR, CONFIG_FILE};
use crate::render::names::{self, REST_PORT, RPC_PORT, Role};
use crate::render::template;
use crate::{Error, Plan, Result};

/// Annotation: the spec hash a pod was made from.
pub const SPEC_HASH_ANNOTATION: &str = "weir.dev/spec-hash";
/// The name of the job's container.
pub const CONTAINER: &str = "weir";

/// The coordinator pod of `revision`, starting from `restore` if given.
pub fn coordinator(
    job: &StreamJob,
    plan: &Plan,
    revision: u32,
    restore: Option<&str>,
) -> Result<Pod> {
    let mut args = vec![
        "coordinator".to_string(),
        "--bind".to_string(),
        format!("0.0.0.0:{RPC_PORT}"),
        "--rest-bind".to_string(),
        format!("0.0.0.0:{REST_PORT}"),
    ];
    if let Some(path) = restore {
        args.extend(["--restore".to_string(), path.to_string()]);
    }
    let name = names::pod_name(job, revision, Role::Coordinator, None);
    let mut pod = pod(job, plan, (Role::Coordinator, revision), name, args)?;
    let container = &mut pod.spec.as_mut().expect("built with a spec").containers[0];
    container.readiness_probe = Some(Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/health".into()),
            port: IntOrString::Int(REST_PORT),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(5),
        ..Probe::default()
    });
    template::apply(job, pod)
}

/// Worker `index` of `revision`.
pub fn worker(job: &StreamJob, plan: &Plan, revision: u32, index: u32) -> Result<Pod> {
    let args = vec![
        "worker".to_string(),
        "--coordinator".to_string(),
        format!("{}:{RPC_PORT}", names::service_name(job)),
        "--slots".to_string(),
        job.spec.slots_per_worker.to_string(),
    ];
    let name = names::pod_name(job, revision, Role::Worker, Some(index));
    template::apply(job, pod(job, plan, (Role::Worker, revision), name, args)?)
}

/// A pod of `role` running the job binary with `role_args`, then the engine's settings and
/// the job's own arguments.
fn pod(
    job: &StreamJob,
    plan: &Plan,
    (role, revision): (Role, u32),
    name: String,
    mut args: Vec<String>,
) -> Result<Pod> {
    let (process, slots) = match role {
        Role::Coordinator => (&job.spec.coordinator, 1),
        Role::Worker => (&job.spec.worker, job.spec.slots_per_worker),
    };
    args.extend(["--config".to_string(), format!("{CONFIG_DIR}/{CONFIG_FILE}")]);
    for setting in memory_settings(&process.memory, slots)? {
        args.extend(["--set".to_string(), setting]);
    }
    if role == Role::Coordinator {
        // Workers get the job's arguments from the coordinator.
        args.extend(job.spec.args.iter().cloned());
    }
    let mut metadata = names::owned_meta(job, name, Some((role, revision)));
    metadata.annotations =
        Some(BTreeMap::from([(SPEC_HASH_ANNOTATION.to_string(), plan.spec_hash.clone())]));
    let container = Container {
        name: CONTAINER.to_string(),
        image: Some(job.spec.image.clone()),
        image_pull_policy: job.spec.image_pull_policy.map(|p| format!("{p:?}")),
        command: Some(vec![job.spec.command.clone()]),
        args: Some(args),
        env: Some(s3_env(job)),
        ports: Some(vec![port("rpc", RPC_PORT), port("rest", REST_PORT)]),
        resources: Some(resources(process)),
        volume_mounts: Some(vec![VolumeMount {
            name: "config".into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let spec = PodSpec {
        containers: vec![container],
        // The operator replaces failed pods itself, choosing where the job restores from.
        restart_policy: Some(match role {
            Role::Coordinator => "Never".into(),
            Role::Worker => "Always".into(),
        }),
        service_account_name: job.spec.service_account.clone(),
        volumes: Some(vec![Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names::config_map_name(job),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    };
    Ok(Pod { metadata, spec: Some(spec), status: None })
}

/// The memory model's settings as the job's `--set memory.…=…` options, with the slots.
fn memory_settings(memory: &MemoryConfig, slots: u32) -> Result<Vec<String>> {
    let config = MemoryConfig { slots: Some(slots), ..memory.clone() };
    let json = serde_json::to_value(&config)
        .map_err(|e| Error::Serialize { what: "memory settings", message: e.to_string() })?;
    let mut settings = Vec::new();
    flatten("memory", &json, &mut settings);
    Ok(settings)
}

/// `prefix.key=value` for every leaf of `value`.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                flatten(&format!("{prefix}.{key}"), value, out);
            }
        }
        Value::Null => {}
        leaf => out.push(format!("{prefix}={leaf}")),
    }
}

/// Memory request = limit = the process size; CPU request = limit when given.
fn resources(process: &ProcessSpec) -> ResourceRequirements {
    let mut amounts = BTreeMap::from([(
        "memory".to_string(),
        Quantity(process.memory.process_size.0.to_string()),
    )]);
    if let Some(cpu) = &process.cpu {
        amounts.insert("cpu".to_string(), Quantity(cpu.clone()));
    }
    ResourceRequirements {
        limits: Some(amounts.clone()),
        requests: Some(amounts),
        ..ResourceRequirements::default()
    }
}

/// The engine's S3 environment (`AWS_*`), credentials from the named Secret.
fn s3_env(job: &StreamJob) -> Vec<EnvVar> {
    let Some(s3) = job.spec.checkpointing.as_ref().and_then(|c| c.s3.as_ref()) else {
        return Vec::new();
    };
    let value = |name: &str, value: String| EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    };
    let mut env = Vec::new();
    env.extend(s3.endpoint.clone().map(|v| value("AWS_ENDPOINT", v)));
    env.extend(s3.region.clone().map(|v| value("AWS_REGION", v)));
    if s3.allow_http {
        env.push(value("AWS_ALLOW_HTTP", "true".into()));
    }
    if let Some(secret) = &s3.credentials_secret {
        for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            env.push(EnvVar {
                name: key.into(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: secret.clone(),
                        key: key.into(),
                        optional: None,
                    }),
                    ..EnvVarSource::default()
                }),
            });
        }
    }
    env
}

fn port(name: &str, port: i32) -> ContainerPort {
    ContainerPort { name: Some(name.into()), container_port: port, ..ContainerPort::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::stream_job;

    #[test]
    fn the_coordinator_restores_and_gets_its_memory_settings() {
        let job = stream_job();
        let plan = Plan::of(&job).unwrap();
        let pod = coordinator(&job, &plan, 3, Some("s3://b/sp-1")).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("wc-r3-coordinator"));
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let args = container.args.clone().unwrap();
        let expected_start =
            ["coordinator", "--bind", "0.0.0.0:6123", "--rest-bind", "0.0.0.0:8081"];
        assert_eq!(args[..5], expected_start);
        assert!(args.windows(2).any(|w| w == ["--restore", "s3://b/sp-1"]), "{args:?}");
        assert!(args.contains(&"memory.processSize=536870912".to_string()), "{args:?}");
        assert!(args.contains(&"memory.slots=1".to_string()), "{args:?}");
        assert_eq!(args[args.len() - 2..], ["--events", "10"]);
        let limits = container.resources.as_ref().unwrap().limits.clone().unwrap();
        assert_eq!(limits["memory"], Quantity("536870912".into()));
        assert!(!limits.contains_key("cpu"));
    }

    #[test]
    fn workers_reach_the_coordinator_service_with_their_slots() {
        let mut job = stream_job();
        job.spec.slots_per_worker = 2;
        let plan = Plan::of(&job).unwrap();
        let pod = worker(&job, &plan, 1, 0).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("wc-r1-worker-0"));
        let spec = pod.spec.unwrap();
        let args = spec.containers[0].args.clone().unwrap();
        assert_eq!(args[..5], ["worker", "--coordinator", "wc-coordinator:6123", "--slots", "2"]);
        assert!(args.contains(&"memory.slots=2".to_string()), "{args:?}");
        assert!(!args.contains(&"--events".to_string()), "job args come from the coordinator");
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels["weir.dev/role"], "worker");
        assert_eq!(labels["weir.dev/revision"], "1");
        assert_eq!(pod.metadata.owner_references.unwrap()[0].uid, "uid-1");
    }

    #[test]
    fn s3_settings_become_the_engine_environment() {
        let mut job = stream_job();
        job.spec.checkpointing = serde_json::from_value(serde_json::json!({
            "intervalMs": 1000, "storage": "s3://b/c",
            "s3": { "endpoint": "http://s3:9000", "allowHttp": true, "credentialsSecret": "k" },
        }))
        .unwrap();
        let env = s3_env(&job);
        let names: Vec<_> = env.iter().map(|e| e.name.as_str()).collect();
        let expected =
            ["AWS_ENDPOINT", "AWS_ALLOW_HTTP", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];
        assert_eq!(names, expected);
        let secret = env[2].value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
        assert_eq!((secret.name.as_str(), secret.key.as_str()), ("k", "AWS_ACCESS_KEY_ID"));
    }
}
