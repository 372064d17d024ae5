//! haloyd and HAProxy as Docker containers: what `haloyadm start|stop|restart|
//! upgrade|status` create, find (by label, never by name alone), replace and remove.
//!
//! Both use the host's network (HAProxy binds 80/443 on the host and reaches apps
//! published on 127.0.0.1; haloyd's API stays on the host's loopback), restart
//! `unless-stopped` (Docker brings them back after a crash and a reboot, but not
//! after `haloyadm stop`), and see haloyd's config and data directories at the same
//! paths as the host, so the files and unix sockets they share (HAProxy's
//! configuration, maps, certificates, master socket, the ACME socket) keep one name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerSummary, HostConfig, HostConfigLogConfig, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use haloyd::config::{HaloydConfig, Layout};

/// Which part of an install a container or image is.
pub const ROLE_LABEL: &str = "dev.haloy.role";
/// The install (haloyd.yaml's `instance`) a container belongs to.
pub const SERVER_LABEL: &str = "dev.haloy.server";
/// The version a container runs, for `haloyadm status`.
pub const VERSION_LABEL: &str = "dev.haloy.version";

/// Where the host's root file system is mounted, read-only, in haloyd's container:
/// only to follow links in app bind-mount sources, which are host paths.
pub const HOST_ROOT: &str = "/host";

/// How long Docker gives a stopping container before SIGKILL: haloyd drains its
/// API calls, HAProxy (stop signal SIGUSR1 in its image) finishes its connections.
const STOP_TIMEOUT_SECS: i32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Haloyd,
    Haproxy,
    HaloydImage,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Haloyd => "haloyd",
            Role::Haproxy => "haproxy",
            Role::HaloydImage => "haloyd-image",
        }
    }
}

/// The Docker Engine haloyadm and haloyd talk to: `DOCKER_HOST` when it is a unix
/// socket, else /var/run/docker.sock.
pub struct Engine {
    pub docker: Docker,
    /// The socket's path on the host, mounted at the same path into haloyd.
    pub socket: PathBuf,
}

impl Engine {
    pub async fn connect() -> anyhow::Result<Self> {
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.is_empty() => match host.strip_prefix("unix://") {
                Some(path) => PathBuf::from(path),
                None => bail!(
                    "DOCKER_HOST={host} is not a unix socket; haloyd's container needs the engine's socket, so run haloyadm on the server with DOCKER_HOST unset or unix://"
                ),
            },
            _ => PathBuf::from("/var/run/docker.sock"),
        };
        let docker = Docker::connect_with_unix(
            &socket.display().to_string(),
            120,
            bollard::API_DEFAULT_VERSION,
        )
        .with_context(|| format!("cannot use Docker's socket {}", socket.display()))?
        .negotiate_version()
        .await
        .with_context(|| {
            format!(
                "Docker does not answer on {}; is the Docker Engine running (systemctl start docker)?",
                socket.display()
            )
        })?;
        Ok(Self { docker, socket })
    }

    /// The install's containers in `role`, running or not, newest first.
    pub async fn find(
        &self,
        config: &HaloydConfig,
        role: Role,
    ) -> anyhow::Result<Vec<ContainerSummary>> {
        let role_filter = format!("{ROLE_LABEL}={}", role.as_str());
        let server_filter = format!("{SERVER_LABEL}={}", config.instance);
        let filters: HashMap<&str, Vec<&str>> =
            HashMap::from([("label", vec![role_filter.as_str(), server_filter.as_str()])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let mut found = self
            .docker
            .list_containers(Some(options))
            .await
            .context("cannot list Docker's containers")?;
        found.sort_by_key(|c| std::cmp::Reverse(c.created.unwrap_or_default()));
        Ok(found)
    }

    /// Creates and starts a container; returns its id.
    pub async fn run(&self, name: &str, body: ContainerCreateBody) -> anyhow::Result<String> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .with_context(|| format!("cannot create container {name}"))?;
        self.docker
            .start_container(&created.id, None)
            .await
            .with_context(|| format!("cannot start container {name}"))?;
        Ok(created.id)
    }

    /// Stops (Docker's stop signal, then SIGKILL after the grace period) and removes.
    pub async fn remove(&self, id: &str) -> anyhow::Result<()> {
        let stop = StopContainerOptionsBuilder::new()
            .t(STOP_TIMEOUT_SECS)
            .build();
        // A container that is not running (or is already gone) needs no stop.
        let _ = self.docker.stop_container(id, Some(stop)).await;
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if haloy_docker::status(&e) == Some(404) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove container {id}")),
        }
    }
}

/// The common part of both containers' settings.
fn host_config(binds: Vec<String>) -> HostConfig {
    HostConfig {
        network_mode: Some("host".into()),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        binds: Some(binds),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([
                ("max-size".to_string(), "10m".to_string()),
                ("max-file".to_string(), "3".to_string()),
            ])),
        }),
        ..HostConfig::default()
    }
}

fn labels(config: &HaloydConfig, role: Role, version: &str) -> HashMap<String, String> {
    HashMap::from([
        (ROLE_LABEL.to_string(), role.as_str().to_string()),
        (SERVER_LABEL.to_string(), config.instance.clone()),
        (VERSION_LABEL.to_string(), version.to_string()),
    ])
}

fn same_path(path: &Path, options: &str) -> String {
    format!("{0}:{0}{options}", path.display())
}

/// haloyd's container: the image built from its binary, the Docker socket, the
/// config and data directories at their host paths, the host's root read-only at
/// [`HOST_ROOT`].
pub fn haloyd_container(
    layout: &Layout,
    config: &HaloydConfig,
    image: &str,
    socket: &Path,
    debug: bool,
) -> ContainerCreateBody {
    let mut binds = vec![
        same_path(socket, ""),
        same_path(&layout.config_dir, ""),
        same_path(&layout.data_dir, ""),
        // Private propagation (the default): `rslave` needs / to be a shared mount, which
        // it is not everywhere; since Linux 3.18 a copied mount pins nothing.
        format!("/:{HOST_ROOT}:ro"),
    ];
    // A CA certificate for the ACME directory may live anywhere on the host.
    if let Some(ca) = &config.acme_ca_cert
        && !ca.starts_with(&layout.config_dir)
        && !ca.starts_with(&layout.data_dir)
    {
        binds.push(same_path(ca, ":ro"));
    }
    let mut cmd = vec![
        "--config".to_string(),
        layout.config_file().display().to_string(),
        "--host-root".to_string(),
        HOST_ROOT.to_string(),
    ];
    if debug {
        cmd.push("--debug".into());
    }
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(cmd),
        env: Some(vec![format!("DOCKER_HOST=unix://{}", socket.display())]),
        labels: Some(labels(config, Role::Haloyd, env!("CARGO_PKG_VERSION"))),
        host_config: Some(host_config(binds)),
        ..ContainerCreateBody::default()
    }
}

/// HAProxy's container: `haproxy_image` run as root (it binds 80 and 443; the
/// official image's default user could not), master-worker with the master socket
/// and configuration in the data directory.
pub fn haproxy_container(
    layout: &Layout,
    config: &HaloydConfig,
    command: Vec<String>,
) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(config.haproxy_image.clone()),
        user: Some("0".into()),
        cmd: Some(command),
        labels: Some(labels(config, Role::Haproxy, &config.haproxy_image)),
        host_config: Some(host_config(vec![same_path(&layout.data_dir, "")])),
        ..ContainerCreateBody::default()
    }
}

/// A container name for `role` of this install; `generation` tells side-by-side
/// HAProxy containers apart during an upgrade.
pub fn name(config: &HaloydConfig, role: Role, generation: u64) -> String {
    let base = match role {
        Role::Haloyd => "haloyd",
        Role::Haproxy | Role::HaloydImage => "haloy-haproxy",
    };
    format!("{base}-{}-{generation}", config.instance)
}
