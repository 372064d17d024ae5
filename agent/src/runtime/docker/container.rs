//! App containers: create and start from a [`ContainerSpec`], inspect, list by
//! label, stop and remove.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, EndpointSettings,
    HealthStatusEnum, HostConfig, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};

use super::{error, volume};
use crate::runtime::{ContainerInfo, ContainerSpec, ContainerState, RuntimeError, labels};

/// Apps are published on loopback only: HAProxy and health checks reach them there,
/// and nothing else should.
const HOST_IP: &str = "127.0.0.1";

pub(super) async fn run(
    client: &bollard::Docker,
    spec: &ContainerSpec,
) -> Result<ContainerInfo, RuntimeError> {
    let body = create_body(spec)?;
    // Never log the body: its environment holds the app's resolved secrets.
    tracing::debug!(name = %spec.name, image = %spec.image, network = %spec.network, port = spec.port, "creating container");
    let options = CreateContainerOptionsBuilder::new()
        .name(&spec.name)
        .build();
    let created = client
        .create_container(Some(options), body)
        .await
        .map_err(|err| create_error(spec, err))?;
    for warning in &created.warnings {
        tracing::warn!(name = %spec.name, %warning, "docker warned while creating the container");
    }
    let mut guard = Created {
        client: client.clone(),
        id: Some(created.id.clone()),
    };
    let started = async {
        client
            .start_container(&created.id, None)
            .await
            .map_err(|err| error::doing(&format!("cannot start container {}", spec.name), err))?;
        inspect(client, &created.id).await
    }
    .await;
    match started {
        Ok(info) => {
            guard.id = None;
            tracing::debug!(name = %spec.name, id = %info.id, host_port = ?info.host_port, "container started");
            Ok(info)
        }
        Err(err) => {
            if let Some(id) = guard.id.take() {
                discard(client, &id).await;
            }
            Err(err)
        }
    }
}

/// A container created by `run` that is not known to be started yet. If `run` is
/// cancelled in between, dropping this removes the container in the background so
/// nothing is left behind.
struct Created {
    client: bollard::Docker,
    id: Option<String>,
}

impl Drop for Created {
    fn drop(&mut self) {
        let (Some(id), Ok(runtime)) = (self.id.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let client = self.client.clone();
        runtime.spawn(async move { discard(&client, &id).await });
    }
}

async fn discard(client: &bollard::Docker, id: &str) {
    if let Err(err) = remove(client, id).await {
        tracing::warn!(%id, error = %err, "could not remove a container that failed to start");
    }
}

fn create_error(spec: &ContainerSpec, err: bollard::errors::Error) -> RuntimeError {
    let message = error::message(&err);
    match error::status(&err) {
        Some(404) if message.to_lowercase().contains("no such image") => {
            RuntimeError::ImageNotFound {
                reference: spec.image.clone(),
                local: true,
            }
        }
        Some(409) => RuntimeError::Other(format!(
            "a container named {} already exists; remove it or use another deployment id",
            spec.name
        )),
        _ => error::doing(&format!("cannot create container {}", spec.name), err),
    }
}

/// The request body for `spec`: init as PID 1 (so SIGTERM reaches the app),
/// restarted by Docker unless stopped, the app port published on loopback at a
/// port Docker picks.
pub(super) fn create_body(spec: &ContainerSpec) -> Result<ContainerCreateBody, RuntimeError> {
    let port = format!("{}/tcp", spec.port);
    let binding = PortBinding {
        host_ip: Some(HOST_IP.to_string()),
        // Empty: Docker chooses a free port.
        host_port: Some(String::new()),
    };
    let volumes = volume::mounts(&spec.volumes)?;
    let network = (!spec.network.is_empty()).then(|| spec.network.clone());
    let host_config = HostConfig {
        init: Some(true),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        port_bindings: Some(HashMap::from([(port.clone(), Some(vec![binding]))])),
        network_mode: network.clone(),
        mounts: (!volumes.mounts.is_empty()).then_some(volumes.mounts),
        binds: (!volumes.binds.is_empty()).then_some(volumes.binds),
        memory: spec
            .resources
            .memory_bytes
            .map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
        nano_cpus: spec
            .resources
            .nano_cpus
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        ..Default::default()
    };
    let endpoint = EndpointSettings {
        aliases: spec.alias.clone().map(|alias| vec![alias]),
        ..Default::default()
    };
    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(spec.labels.clone().into_iter().collect()),
        exposed_ports: Some(vec![port]),
        host_config: Some(host_config),
        networking_config: network.map(|network| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network, endpoint)])),
        }),
        ..Default::default()
    })
}

/// Starts a stopped container again; Docker may publish its port elsewhere.
pub(super) async fn start(
    client: &bollard::Docker,
    id: &str,
) -> Result<ContainerInfo, RuntimeError> {
    client
        .start_container(id, None)
        .await
        .map_err(|err| error::container(id, err))?;
    inspect(client, id).await
}

pub(super) async fn inspect(
    client: &bollard::Docker,
    id_or_name: &str,
) -> Result<ContainerInfo, RuntimeError> {
    let response = client
        .inspect_container(id_or_name, None)
        .await
        .map_err(|err| error::container(id_or_name, err))?;
    Ok(info(response))
}

pub(super) async fn list(
    client: &bollard::Docker,
    wanted: &[(&str, &str)],
) -> Result<Vec<ContainerInfo>, RuntimeError> {
    let filter: Vec<String> = wanted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut options = ListContainersOptionsBuilder::new().all(true);
    if !filter.is_empty() {
        options = options.filters(&HashMap::from([("label", filter)]));
    }
    let summaries = client
        .list_containers(Some(options.build()))
        .await
        .map_err(error::daemon)?;
    // The summary lacks exit codes and port details; inspect each for the full
    // picture. One may vanish in between: then it is simply not listed.
    let mut found = Vec::with_capacity(summaries.len());
    for id in summaries.into_iter().filter_map(|s| s.id) {
        match inspect(client, &id).await {
            Ok(info) => found.push(info),
            Err(RuntimeError::NoSuchContainer(_)) => {}
            Err(err) => return Err(err),
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

pub(super) async fn images_in_use(client: &bollard::Docker) -> Result<Vec<String>, RuntimeError> {
    let options = ListContainersOptionsBuilder::new().all(true).build();
    let summaries = client
        .list_containers(Some(options))
        .await
        .map_err(error::daemon)?;
    let mut ids: Vec<String> = summaries.into_iter().filter_map(|s| s.image_id).collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

pub(super) async fn stop(
    client: &bollard::Docker,
    id: &str,
    grace: Duration,
) -> Result<(), RuntimeError> {
    // Docker counts whole seconds; round up so the app gets at least `grace`.
    let seconds = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
    let options = StopContainerOptionsBuilder::new()
        .t(i32::try_from(seconds).unwrap_or(i32::MAX))
        .build();
    tracing::debug!(%id, seconds, "stopping container");
    // An already stopped container answers 304, which bollard counts as success.
    match client.stop_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(err) if error::status(&err) == Some(404) => {
            tracing::debug!(%id, "container to stop is already gone");
            Ok(())
        }
        Err(err) => Err(error::container(id, err)),
    }
}

pub(super) async fn remove(client: &bollard::Docker, id: &str) -> Result<(), RuntimeError> {
    // `v` also removes the container's anonymous volumes, which would otherwise
    // pile up with every deploy; named volumes are never removed this way.
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    tracing::debug!(%id, "removing container");
    match client.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(err) if error::status(&err) == Some(404) => Ok(()),
        // Someone else is already removing it: the outcome is the same.
        Err(err)
            if error::status(&err) == Some(409) && error::message(&err).contains("in progress") =>
        {
            Ok(())
        }
        Err(err) => Err(error::container(id, err)),
    }
}

/// What Haloy wants to know from Docker's inspect answer.
pub(super) fn info(response: ContainerInspectResponse) -> ContainerInfo {
    let config = response.config.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
    let state = response.state.unwrap_or_default();
    let oom_killed = state.oom_killed.unwrap_or(false);
    let restart_count = u64::try_from(response.restart_count.unwrap_or(0)).unwrap_or(0);
    let last_exit = (state.status == Some(ContainerStateStatusEnum::RESTARTING))
        .then(|| state.exit_code.unwrap_or_default());
    let docker_health = state
        .health
        .as_ref()
        .and_then(|h| h.status)
        .filter(|s| *s != HealthStatusEnum::EMPTY && *s != HealthStatusEnum::NONE)
        .map(|s| s.to_string());
    let state = match state.status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
        Some(ContainerStateStatusEnum::RUNNING) => ContainerState::Running,
        Some(ContainerStateStatusEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerStateStatusEnum::EXITED) => {
            ContainerState::Exited(state.exit_code.unwrap_or_default())
        }
        Some(other) if other != ContainerStateStatusEnum::EMPTY => {
            ContainerState::Other(other.to_string())
        }
        _ => ContainerState::Other("unknown".into()),
    };
    let published = response
        .network_settings
        .and_then(|settings| settings.ports)
        .unwrap_or_default();
    let host_port = host_port(&published, labels.get(labels::PORT));
    ContainerInfo {
        id: response.id.unwrap_or_default(),
        name: response
            .name
            .map(|name| name.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        image: config.image.unwrap_or_default(),
        labels,
        state,
        host_port,
        oom_killed,
        restart_count,
        last_exit,
        docker_health,
    }
}

/// The loopback port the app port is published on: the port named by Haloy's
/// port label, or else the only published port.
fn host_port(
    published: &HashMap<String, Option<Vec<PortBinding>>>,
    port_label: Option<&String>,
) -> Option<u16> {
    let bound = |key: &str| {
        published
            .get(key)?
            .as_ref()?
            .iter()
            .filter_map(|binding| binding.host_port.as_deref()?.parse::<u16>().ok())
            .find(|port| *port != 0)
    };
    if let Some(port) = port_label {
        return bound(&format!("{port}/tcp"));
    }
    let mut ports = published.keys().filter_map(|key| bound(key));
    match (ports.next(), ports.next()) {
        (Some(port), None) => Some(port),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
