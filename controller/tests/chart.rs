//! The Helm chart, rendered and linted by Helm's own engine (Helm v4 from PyPI's
//! `helm-python-sdk`, installed into a venv under `$WEIR_CACHE` on first use), and every
//! rendered object parsed as the Kubernetes type its `kind` names.

use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use weir_operator::crd::StreamJob;

/// Renders the chart with two sets of values and lints it, printing JSON.
const RENDER: &str = r#"
import json, sys
import helm_python as h
chart = sys.argv[1]
lint = h.lint(chart, strict=True)
loaded = h.Chart.load(chart)
renders = {
    "cluster": loaded.render({}, name="weir", namespace="ops", is_install=True),
    "namespaced": loaded.render({"watchNamespaces": ["jobs"], "metrics": {"enabled": False}},
                                name="weir", namespace="ops", is_install=False),
}
print(json.dumps({"lint": lint, "renders": renders}))
"#;

/// The venv's Python, created with helm-python-sdk when missing.
fn helm_python() -> PathBuf {
    let cache = std::env::var("WEIR_CACHE").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/weir-ci")
    });
    let venv = cache.join("helm");
    let python = venv.join("bin/python");
    let ready = Command::new(&python).args(["-c", "import helm_python"]).status();
    if !ready.is_ok_and(|s| s.success()) {
        std::fs::create_dir_all(&cache).unwrap();
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().unwrap();
        assert!(made.success(), "python3 -m venv {}", venv.display());
        let pip = venv.join("bin/pip");
        let installed = Command::new(pip).args(["install", "-q", "helm-python-sdk"]).status();
        assert!(installed.unwrap().success(), "pip install helm-python-sdk");
    }
    python
}

fn render() -> Value {
    let chart = format!("{}/../charts/weir-operator", weir_tests::manifest_dir());
    let output = Command::new(helm_python()).args(["-c", RENDER, &chart]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every object of a render, in file order.
fn objects(render: &Value) -> Vec<Value> {
    let mut objects = Vec::new();
    for text in render.as_object().unwrap().values() {
        for document in serde_yaml::Deserializer::from_str(text.as_str().unwrap()) {
            let value: Value = serde::Deserialize::deserialize(document).unwrap();
            if !value.is_null() {
                objects.push(value);
            }
        }
    }
    objects
}

fn parse<K: DeserializeOwned>(object: &Value) {
    if let Err(e) = serde_json::from_value::<K>(object.clone()) {
        panic!("{} {} does not parse: {e}", object["kind"], object["metadata"]["name"]);
    }
}

/// Parses each object as its kind's type; returns the kinds.
fn check_kinds(objects: &[Value]) -> Vec<String> {
    for object in objects {
        match object["kind"].as_str().unwrap() {
            "Deployment" => parse::<Deployment>(object),
            "Service" => parse::<Service>(object),
            "ServiceAccount" => parse::<ServiceAccount>(object),
            "Role" => parse::<Role>(object),
            "RoleBinding" => parse::<RoleBinding>(object),
            "ClusterRole" => parse::<ClusterRole>(object),
            "ClusterRoleBinding" => parse::<ClusterRoleBinding>(object),
            "CustomResourceDefinition" => parse::<CustomResourceDefinition>(object),
            other => panic!("unexpected kind {other}"),
        }
    }
    let mut kinds: Vec<String> =
        objects.iter().map(|o| o["kind"].as_str().unwrap().to_string()).collect();
    kinds.sort();
    kinds
}

#[test]
fn the_chart_lints_renders_and_parses_as_kubernetes_objects() {
    let rendered = render();
    assert_eq!(rendered["lint"]["errors"], serde_json::json!([]), "{}", rendered["lint"]);

    let cluster = objects(&rendered["renders"]["cluster"]);
    let kinds = check_kinds(&cluster);
    let expected = [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ];
    assert_eq!(kinds, expected);
    let crd = cluster.iter().find(|o| o["kind"] == "CustomResourceDefinition").unwrap();
    assert_eq!(crd, &serde_json::to_value(StreamJob::crd()).unwrap(), "the chart's CRD is current");

    let deployment = cluster.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "weir");
    let env = pod["containers"][0]["env"].as_array().unwrap();
    assert!(!env.iter().any(|e| e["name"] == "WATCH_NAMESPACE"), "cluster-wide by default");

    let namespaced = objects(&rendered["renders"]["namespaced"]);
    let kinds = check_kinds(&namespaced);
    assert!(!kinds.iter().any(|k| k.starts_with("Cluster")), "{kinds:?}");
    let role =
        namespaced.iter().find(|o| o["kind"] == "Role" && o["metadata"]["namespace"] == "jobs");
    let rules = &role.expect("a Role in the watched namespace")["rules"];
    let verbs = |resource: &str| -> Value {
        let rule = rules.as_array().unwrap().iter().find(|r| r["resources"][0] == resource);
        rule.unwrap()["verbs"].clone()
    };
    assert_eq!(verbs("streamjobs"), serde_json::json!(["get", "list", "watch", "patch"]));
    assert_eq!(verbs("streamjobs/status"), serde_json::json!(["get", "patch"]));
    let deployment = namespaced.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "WATCH_NAMESPACE" && e["value"] == "jobs"));
}
