//! The coordinator's Service: a stable name for workers (RPC) and the operator (REST).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::StreamJob;
use crate::render::names::{self, REST_PORT, RPC_PORT, Role};

/// The Service in front of the coordinator pod of whichever revision runs.
pub fn coordinator_service(job: &StreamJob) -> Service {
    let mut selector = names::labels(job, Some((Role::Coordinator, 0)));
    selector.remove(names::REVISION_LABEL);
    selector.remove("app.kubernetes.io/managed-by");
    let port = |name: &str, port: i32| ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::Int(port)),
        ..ServicePort::default()
    };
    Service {
        metadata: names::owned_meta(job, names::service_name(job), None),
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![port("rpc", RPC_PORT), port("rest", REST_PORT)]),
            // Workers register before the coordinator's REST API reports ready.
            publish_not_ready_addresses: Some(true),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
