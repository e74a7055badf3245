//! A node for the end-to-end test: a kubelet that runs the pods of the emulated cluster as
//! local processes of the real job binaries, on 127.0.0.1.
//!
//! It watches the namespace's pods, schedules each new one to itself (`spec.nodeName`; the
//! emulator has no binding subresource), starts its container ([`container`]), reports the
//! pod `Running`, then `Succeeded` or `Failed` with the exit code (128 + signal when killed);
//! a container of a pod with `restartPolicy: Always` is restarted after it exits. Deleting a
//! pod kills its process, and the kubelet then finishes the delete (grace period 0).

pub mod container;
pub mod network;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use network::Network;

/// The node's name.
const NODE: &str = "test-node";

/// What the test does to a pod's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGKILL, as a crash or the OOM killer would.
    Kill,
    /// The pod is deleted: kill the process and finish the delete.
    Stop,
}

/// A running node; its processes are killed when it is dropped.
pub struct Node {
    /// The network its pods use.
    pub network: Arc<Network>,
    /// Where each pod's directory (mounted files, `log`) is.
    pub dir: tempfile::TempDir,
    signals: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Signal>>>>,
    kubelet: JoinHandle<()>,
}

impl Node {
    /// Runs the pods of `namespace` with the job binaries in `binaries`.
    pub fn start(client: Client, namespace: &str, binaries: PathBuf) -> Node {
        let dir = tempfile::tempdir().expect("a node directory");
        let kubelet = Kubelet {
            client,
            namespace: namespace.to_string(),
            binaries,
            dir: dir.path().to_path_buf(),
            network: Arc::default(),
            signals: Arc::default(),
        };
        let (network, signals) = (kubelet.network.clone(), kubelet.signals.clone());
        Node { network, dir, signals, kubelet: tokio::spawn(kubelet.run()) }
    }

    /// Kills the process of `pod` with SIGKILL.
    pub fn kill(&self, pod: &str) {
        let signals = self.signals.lock().unwrap();
        signals[pod].send(Signal::Kill).expect("the pod's process is supervised");
    }

    /// The output of `pod`'s container.
    pub fn log(&self, pod: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(pod).join("log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kubelet.abort();
        // Each supervisor holds its process with kill_on_drop; closing the channels ends them.
        self.signals.lock().unwrap().clear();
    }
}

/// The kubelet's loop and what it shares with the pods' supervisors.
#[derive(Clone)]
struct Kubelet {
    client: Client,
    namespace: String,
    binaries: PathBuf,
    dir: PathBuf,
    network: Arc<Network>,
    signals: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Signal>>>>,
}

impl Kubelet {
    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn run(self) {
        let stream = watcher(self.pods(), watcher::Config::default()).applied_objects();
        futures::pin_mut!(stream);
        while let Some(pod) = stream.try_next().await.expect("the kubelet's watch") {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if pod.metadata.deletion_timestamp.is_some() {
                let supervised = self.signals.lock().unwrap().remove(&name);
                if supervised.is_none_or(|s| s.send(Signal::Stop).is_err()) {
                    self.finish_delete(&name).await;
                }
            } else if pod.status.as_ref().and_then(|s| s.phase.as_ref()).is_none()
                && !self.signals.lock().unwrap().contains_key(&name)
            {
                self.start(&pod, &name).await;
            }
        }
    }

    /// Schedules `pod` here and starts its container.
    async fn start(&self, pod: &Pod, name: &str) {
        let node = json!({ "spec": { "nodeName": NODE } });
        if self.pods().patch(name, &PatchParams::default(), &Patch::Merge(node)).await.is_err() {
            return; // deleted meanwhile
        }
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).expect("a pod directory");
        let apis = (
            Api::namespaced(self.client.clone(), &self.namespace),
            Api::namespaced(self.client.clone(), &self.namespace),
            Api::namespaced(self.client.clone(), &self.namespace),
        );
        let cluster = container::Cluster { apis, network: &self.network, binaries: &self.binaries };
        let command = match container::command(pod, &dir, &cluster).await {
            Ok(command) => command,
            Err(error) => {
                warn!(pod = name, %error, "cannot start the container");
                self.report(name, "Failed", json!({ "waiting": { "reason": "CreateContainerError", "message": error.to_string() } }), 0).await;
                return;
            }
        };
        let always = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("Always");
        let (sender, signals) = mpsc::unbounded_channel();
        self.signals.lock().unwrap().insert(name.to_string(), sender);
        tokio::spawn(self.clone().supervise(name.to_string(), command, always, signals));
    }

    /// Runs the container until the pod is deleted (restarting it if `always`), reporting
    /// each start and exit.
    async fn supervise(
        self,
        name: String,
        mut command: Command,
        always: bool,
        mut signals: mpsc::UnboundedReceiver<Signal>,
    ) {
        let mut restarts = 0;
        loop {
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(error) => {
                    let state = json!({ "waiting": { "reason": "RunContainerError", "message": error.to_string() } });
                    return self.report(&name, "Failed", state, restarts).await;
                }
            };
            info!(pod = name, pid = child.id(), "container started");
            self.report(&name, "Running", json!({ "running": { "startedAt": now() } }), restarts)
                .await;
            let status = tokio::select! {
                status = child.wait() => status.expect("the container's exit status"),
                signal = signals.recv() => {
                    // Killed for the test, or deleted (also when the node goes).
                    child.kill().await.expect("kill the container");
                    if signal != Some(Signal::Kill) {
                        return self.finish_delete(&name).await;
                    }
                    child.wait().await.expect("the container's exit status")
                }
            };
            let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            let log = std::fs::read_to_string(self.dir.join(&name).join("log")).unwrap_or_default();
            let last: Vec<&str> = log.lines().rev().take(5).collect();
            info!(pod = name, code, last_lines = ?last, "container exited");
            let phase = match (always, code) {
                (true, _) => "Running",
                (false, 0) => "Succeeded",
                (false, _) => "Failed",
            };
            let state = json!({ "terminated": { "exitCode": code, "finishedAt": now() } });
            self.report(&name, phase, state, restarts).await;
            if !always {
                // Wait for the delete.
                while let Some(signal) = signals.recv().await {
                    if signal == Signal::Stop {
                        return self.finish_delete(&name).await;
                    }
                }
                return;
            }
            restarts += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Writes the pod's phase and its container's state.
    async fn report(&self, name: &str, phase: &str, state: Value, restarts: i32) {
        let running = state.get("running").is_some();
        let status = json!({ "status": {
            "phase": phase,
            "podIP": "127.0.0.1",
            "conditions": [{ "type": "Ready", "status": if running { "True" } else { "False" } }],
            "containerStatuses": [{
                "name": "weir", "image": "local", "imageID": "", "ready": running,
                "restartCount": restarts, "started": running, "state": state,
            }],
        }});
        if let Err(error) =
            self.pods().patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await
        {
            warn!(pod = name, %error, "cannot report the pod's status");
        }
    }

    /// Removes a deleted pod whose container is gone.
    async fn finish_delete(&self, name: &str) {
        match self
            .pods()
            .delete(
                name,
                &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() },
            )
            .await
        {
            Ok(_) => info!(pod = name, "pod removed"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => warn!(pod = name, %error, "cannot remove the pod"),
        }
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
