//! The generated CustomResourceDefinition: the committed YAML is current, and its schema and
//! CEL rules accept the examples and refuse what can be refused statically.

use kube::CustomResourceExt;
use kube::core::cel::Validator;
use serde_json::{Value, json};
use weir_operator::crd::{StreamJob, crd_yaml};

fn workspace_file(path: &str) -> String {
    let path = format!("{}/../{path}", weir_tests::manifest_dir());
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

#[test]
fn committed_crds_are_current() {
    let generated = crd_yaml().unwrap();
    for file in ["crds/streamjob.yaml", "charts/weir-operator/files/streamjob.yaml"] {
        assert!(
            workspace_file(file) == generated,
            "{file} is stale: run `cargo run -p weir-operator --bin crdgen > {file}`"
        );
    }
}

/// The rules of the CRD's schema, evaluated on `spec` the way the API server would.
fn validate(spec: Value) -> Result<(), String> {
    let crd = serde_json::to_value(StreamJob::crd()).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let object = json!({
        "apiVersion": "weir.dev/v1alpha1", "kind": "StreamJob",
        "metadata": { "name": "j", "namespace": "ns" }, "spec": spec,
    });
    Validator::new().validate(schema, &object, None).map_err(|e| format!("{e:?}"))
}

fn spec() -> Value {
    json!({
        "image": "weir:1", "parallelism": 2, "upgradeMode": "stateless",
        "coordinator": { "memory": { "processSize": "512m" } },
        "worker": { "memory": { "processSize": "1g" } },
    })
}

#[test]
fn every_example_manifest_passes_the_rules() {
    let dir = format!("{}/../examples", weir_tests::manifest_dir());
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let job: StreamJob = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let spec = serde_json::to_value(&job.spec).unwrap();
            validate(spec).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 2, "examples/*.yaml holds at least two StreamJobs");
}

#[test]
fn parallelism_above_max_parallelism_is_refused() {
    let mut bad = spec();
    bad["maxParallelism"] = json!(1);
    let error = validate(bad).unwrap_err();
    assert!(error.contains("parallelism must not exceed maxParallelism"), "{error}");
}

#[test]
fn stateful_upgrades_need_checkpointing() {
    let mut bad = spec();
    bad["upgradeMode"] = json!("savepoint");
    let error = validate(bad.clone()).unwrap_err();
    assert!(error.contains("need checkpointing"), "{error}");
    bad["checkpointing"] = json!({ "intervalMs": 1000, "storage": "s3://b/chk" });
    validate(bad).unwrap();
}

#[test]
fn restart_strategies_need_their_fields() {
    let mut bad = spec();
    bad["restartStrategy"] = json!({ "strategy": "fixed-delay", "attempts": 3 });
    let error = validate(bad).unwrap_err();
    assert!(error.contains("fixed-delay needs attempts and delayMs"), "{error}");
}

#[test]
fn the_spec_round_trips_through_json() {
    let job: weir_operator::crd::StreamJobSpec = serde_json::from_value(spec()).unwrap();
    assert_eq!(job.slots_per_worker, 1);
    assert_eq!(job.worker.memory.process_size, weir_memory::ByteSize::gib(1));
    assert_eq!(
        serde_json::from_value::<weir_operator::crd::StreamJobSpec>(
            serde_json::to_value(&job).unwrap()
        )
        .unwrap(),
        job
    );
}
