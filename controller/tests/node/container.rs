//! A pod's container as a local process: the job binary named by the container's command,
//! its arguments with Service addresses and mounted paths made local, its environment with
//! Secret references resolved, and ConfigMap volumes written to the pod's directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::Api;
use kube::api::ListParams;
use tokio::process::Command;

use crate::node::network::{Network, selecting};

/// What a container needs from the cluster.
pub struct Cluster<'a> {
    /// ConfigMaps, Secrets and Services of the pod's namespace.
    pub apis: (Api<ConfigMap>, Api<Secret>, Api<Service>),
    /// The network.
    pub network: &'a Network,
    /// Where the job binaries are (the "image").
    pub binaries: &'a Path,
}

/// The command running `pod`'s first container in `dir`; its output goes to `dir/log`.
pub async fn command(pod: &Pod, dir: &Path, cluster: &Cluster<'_>) -> anyhow::Result<Command> {
    let (config_maps, secrets, services) = &cluster.apis;
    let spec = pod.spec.as_ref().context("a pod spec")?;
    let container = spec.containers.first().context("a container")?;
    let program = container.command.as_ref().and_then(|c| c.first()).context("a command")?;
    let binary = cluster.binaries.join(Path::new(program).file_name().context("a binary name")?);
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume =
            spec.volumes.iter().flatten().find(|v| v.name == mount.name).context("a volume")?;
        let source = volume.config_map.as_ref().context("only ConfigMap volumes")?;
        let local = dir.join(&mount.name);
        std::fs::create_dir_all(&local)?;
        for (file, text) in config_maps.get(&source.name).await?.data.unwrap_or_default() {
            std::fs::write(local.join(file), text)?;
        }
        mounts.push((mount.mount_path.clone(), local));
    }
    let all_services = services.list(&ListParams::default()).await?.items;
    let names: Vec<String> = all_services.iter().filter_map(|s| s.metadata.name.clone()).collect();
    let own = selecting(&all_services, pod.metadata.labels.as_ref().unwrap_or(&Default::default()));
    let args = container.args.iter().flatten().map(|arg| {
        match mounts.iter().find(|(path, _)| arg.starts_with(path.as_str())) {
            Some((path, local)) => format!("{}{}", local.display(), &arg[path.len()..]),
            None => cluster.network.resolve(arg, &own, &names),
        }
    });
    let mut command = Command::new(&binary);
    command.args(args).current_dir(dir).stdin(Stdio::null()).kill_on_drop(true);
    for var in container.env.iter().flatten() {
        let secret = var.value_from.as_ref().and_then(|from| from.secret_key_ref.as_ref());
        let value = match (&var.value, secret) {
            (Some(value), _) => value.clone(),
            (None, Some(key)) => {
                let data = secrets.get(&key.name).await?.data.unwrap_or_default();
                let bytes = data
                    .get(&key.key)
                    .with_context(|| format!("key {} of Secret {}", key.key, key.name))?;
                String::from_utf8(bytes.0.clone())?
            }
            (None, None) => String::new(),
        };
        command.env(&var.name, value);
    }
    let log = std::fs::File::create(dir.join("log"))?;
    command.stdout(log.try_clone()?).stderr(log);
    Ok(command)
}
