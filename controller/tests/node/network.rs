//! The cluster network on one machine: each Service port is a port of 127.0.0.1, so a pod
//! binding `0.0.0.0:PORT` binds the host port of the Service that selects it, and a client
//! of `SERVICE:PORT` (or `http://SERVICE.NAMESPACE.svc:PORT`) reaches that host port.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Service;

/// Host ports of Service ports, allocated on first use and kept, as a Service's address is.
#[derive(Default)]
pub struct Network {
    ports: Mutex<HashMap<(String, i32), u16>>,
}

impl Network {
    /// The host port of `service`'s `port`.
    pub fn host_port(&self, service: &str, port: i32) -> u16 {
        let mut ports = self.ports.lock().unwrap();
        *ports
            .entry((service.to_string(), port))
            .or_insert_with(|| weir_tests::services::free_port().expect("a free port"))
    }

    /// `address` as a pod means it: `0.0.0.0:PORT` binds the host port of the first of
    /// `selecting` (the Services that select the pod), `SERVICE[.…]:PORT` of one of
    /// `services` is that Service's host port; other addresses stay.
    pub fn resolve(&self, address: &str, selecting: &[String], services: &[String]) -> String {
        let Some((host, port)) = address.rsplit_once(':') else { return address.to_string() };
        let Ok(port) = port.parse::<i32>() else { return address.to_string() };
        let name = host.split('.').next().unwrap_or(host);
        let service = match host {
            "0.0.0.0" => selecting.first(),
            _ => services.iter().find(|s| *s == name),
        };
        match service {
            Some(service) => format!("127.0.0.1:{}", self.host_port(service, port)),
            None => address.to_string(),
        }
    }

    /// `http://SERVICE.NAMESPACE.svc:PORT` as the URL of the Service's host port.
    pub fn resolve_url(&self, url: &str) -> String {
        let (scheme, address) = url.split_once("://").unwrap_or(("http", url));
        let service = address.split(['.', ':']).next().unwrap_or_default().to_string();
        format!("{scheme}://{}", self.resolve(address, &[], &[service]))
    }
}

/// The names of `services` whose selector matches `labels`.
pub fn selecting(services: &[Service], labels: &BTreeMap<String, String>) -> Vec<String> {
    services
        .iter()
        .filter(|s| {
            let selector = s.spec.as_ref().and_then(|spec| spec.selector.as_ref());
            selector.is_some_and(|sel| {
                !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
        })
        .filter_map(|s| s.metadata.name.clone())
        .collect()
}
