//! Fixtures of the unit tests: a StreamJob as the API server would hand it over.

use kube::api::ObjectMeta;

use crate::crd::{StreamJob, StreamJobSpec};

/// A job of parallelism 2 on workers of one slot, without checkpoints.
pub fn stream_job() -> StreamJob {
    let spec: StreamJobSpec = serde_json::from_value(serde_json::json!({
        "image": "weir:1", "parallelism": 2, "args": ["--events", "10"],
        "coordinator": { "memory": { "processSize": "512m" } },
        "worker": { "cpu": "1", "memory": { "processSize": "1g" } },
    }))
    .expect("a valid spec");
    let mut job = StreamJob::new("wc", spec);
    job.metadata = ObjectMeta {
        name: Some("wc".into()),
        namespace: Some("jobs".into()),
        uid: Some("uid-1".into()),
        generation: Some(1),
        ..ObjectMeta::default()
    };
    job
}
