//! The user's `podTemplate` under a generated pod: what the operator sets wins, the rest of
//! the template stays (sidecars, volumes, node selectors, tolerations, annotations, …).

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use crate::crd::StreamJob;
use crate::{Error, Result};

/// `pod` laid over the job's pod template, if it has one.
pub fn apply(job: &StreamJob, pod: Pod) -> Result<Pod> {
    let Some(template) = &job.spec.pod_template else {
        return Ok(pod);
    };
    let ours = serde_json::to_value(&pod)
        .map_err(|e| Error::Serialize { what: "a pod", message: e.to_string() })?;
    let mut merged = template.clone();
    overlay(&mut merged, ours);
    serde_json::from_value(merged)
        .map_err(|e| Error::InvalidSpec(format!("podTemplate does not make a valid pod: {e}")))
}

/// Lays `top` over `base`: objects merge field by field, lists of named objects (containers,
/// volumes, env, ports) merge by name, anything else in `top` replaces `base`.
fn overlay(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(base), Value::Object(top)) => {
            for (key, value) in top {
                overlay(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (Value::Array(base), Value::Array(top)) if top.iter().all(|v| v.get("name").is_some()) => {
            for item in top {
                match base.iter_mut().find(|b| b.get("name") == item.get("name")) {
                    Some(existing) => overlay(existing, item),
                    None => base.push(item),
                }
            }
        }
        (base, top) => *base = top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_operator_wins_and_the_template_keeps_the_rest() {
        let mut base = json!({
            "metadata": { "annotations": { "team": "a" } },
            "spec": {
                "nodeSelector": { "pool": "jobs" },
                "containers": [
                    { "name": "weir", "image": "ignored", "env": [{ "name": "RUST_LOG", "value": "debug" }] },
                    { "name": "sidecar", "image": "envoy" },
                ],
            },
        });
        let top = json!({
            "metadata": { "name": "p" },
            "spec": { "containers": [{ "name": "weir", "image": "weir:1", "env": [{ "name": "A", "value": "1" }] }] },
        });
        overlay(&mut base, top);
        assert_eq!(base["metadata"], json!({ "annotations": { "team": "a" }, "name": "p" }));
        assert_eq!(base["spec"]["nodeSelector"]["pool"], "jobs");
        let containers = base["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["image"], "weir:1");
        assert_eq!(containers[0]["env"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_template_that_is_no_pod_is_an_invalid_spec() {
        let mut job = crate::testing::stream_job();
        job.spec.pod_template = Some(json!({ "spec": { "containers": "not a list" } }));
        let error = apply(&job, Pod::default()).unwrap_err();
        assert!(error.to_string().starts_with("invalid spec: podTemplate"), "{error}");
    }
}
