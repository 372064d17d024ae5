//! The container runtime seam. The engine only talks to Docker through
//! [`ContainerRuntime`]; `docker.rs` is the real implementation (bollard), and the
//! engine's unit tests use a recording fake that can fail on demand.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use haloy_api::spec::{RegistryAuth, VolumeMount};

pub mod docker;
mod exec;

pub use exec::{ContainerAddress, ExecChunk, ExecCommand, ExecSession, ExecState};

/// A `docker save` archive arriving in pieces.
pub type ArchiveStream = BoxStream<'static, Result<bytes::Bytes, std::io::Error>>;

/// Labels Haloy puts on everything it creates; Docker is the source of truth for
/// what runs, and these labels say what each container is.
pub mod labels {
    /// The haloyd instance that owns the container (several can share one Docker).
    pub const INSTANCE: &str = "dev.haloy.instance";
    pub const APP: &str = "dev.haloy.app";
    pub const DEPLOYMENT: &str = "dev.haloy.deployment";
    /// Always `app` for app containers.
    pub const ROLE: &str = "dev.haloy.role";
    /// 1-based replica number within its deployment.
    pub const REPLICA: &str = "dev.haloy.replica";
    /// The port the app listens on inside the container.
    pub const PORT: &str = "dev.haloy.port";
}

/// A container to create and start.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// Container name, `<app>-<deployment id>-<n>`.
    pub name: String,
    /// Image reference or id.
    pub image: String,
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    /// Docker network to attach to (created beforehand with `ensure_network`).
    pub network: String,
    pub volumes: Vec<VolumeMount>,
    /// Memory limit in bytes and CPU limit in billionths of a CPU.
    pub resources: haloy_api::spec::Resources,
    /// Another name the container answers to on its network (accessories).
    pub alias: Option<String>,
    /// The port the app listens on; published on 127.0.0.1 at a free host port so
    /// HAProxy and health checks reach the app over loopback.
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Restarting,
    /// Exited with this code.
    Exited(i64),
    Other(String),
}

impl ContainerState {
    pub fn as_str(&self) -> String {
        match self {
            Self::Created => "created".into(),
            Self::Running => "running".into(),
            Self::Restarting => "restarting".into(),
            Self::Exited(code) => format!("exited ({code})"),
            Self::Other(s) => s.clone(),
        }
    }
}

/// What Docker says about one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    /// Without Docker's leading '/'.
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    /// The 127.0.0.1 port the container's app port is published on, when running.
    pub host_port: Option<u16>,
    /// Whether the kernel killed it for exceeding its memory limit (when it
    /// exited, or is about to be restarted by Docker).
    pub oom_killed: bool,
    /// How often Docker restarted it after it exited (its restart policy), and the
    /// exit code of the run that ended, while Docker restarts it.
    pub restart_count: u64,
    pub last_exit: Option<i64>,
    /// The status of the image's own `HEALTHCHECK` ("starting", "healthy",
    /// "unhealthy"); `None` when the image has none.
    pub docker_health: Option<String>,
}

/// One line of container output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stderr: bool,
    pub text: String,
    /// RFC 3339 timestamp as Docker gives it, when asked for.
    pub timestamp: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "cannot reach Docker: {0}; is the Docker daemon running and is this user allowed to use it?"
    )]
    Unavailable(String),
    #[error("image {reference} was not found{}", if *local { " on this server; load it first or use image.source: registry" } else { " in its registry; check image.repository and image.tag" })]
    ImageNotFound { reference: String, local: bool },
    #[error(
        "registry {server} refused the credentials; check image.registry.username and password"
    )]
    RegistryAuth { server: String },
    #[error("container {0} does not exist")]
    NoSuchContainer(String),
    #[error("docker: {0}")]
    Other(String),
}

#[async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Docker Engine's version, e.g. "20.10.24".
    async fn version(&self) -> Result<String, RuntimeError>;
    /// The engine's ID, the same for every client of one Docker daemon.
    async fn engine_id(&self) -> Result<String, RuntimeError>;
    /// Creates a bridge network with Haloy's labels unless it exists.
    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError>;
    /// Whether an image exists locally, by reference or by id (`sha256:…`).
    async fn image_exists(&self, reference: &str) -> Result<bool, RuntimeError>;
    /// The layers (RootFS diff ids, bottom first) of every local image, one list per
    /// image. Docker has a chain of layers exactly when some image starts with it,
    /// which is what loading an archive without those layers' files needs.
    async fn layer_chains(&self) -> Result<Vec<Vec<String>>, RuntimeError>;
    /// Pulls `reference` (repository:tag), with credentials when given.
    async fn pull_image(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError>;
    /// Loads a `docker save` archive while it arrives; an error in the stream aborts
    /// the load and nothing is loaded. Returns the image references it contained.
    async fn load_image(&self, archive: ArchiveStream) -> Result<Vec<String>, RuntimeError>;
    /// Tags `source` (reference or id) as `repository:tag`.
    async fn tag_image(
        &self,
        source: &str,
        repository: &str,
        tag: &str,
    ) -> Result<(), RuntimeError>;
    /// The id (`sha256:…`) of a local image, or `None` when it is not here.
    async fn image_id(&self, reference: &str) -> Result<Option<String>, RuntimeError>;
    /// Removes the name `reference`; Docker deletes the image with its last name
    /// unless a container uses it. Never forced; a missing name is fine.
    async fn untag_image(&self, reference: &str) -> Result<(), RuntimeError>;
    /// Ids of the images every container on this Docker (any instance, running or
    /// not) was created from: these must never be removed.
    async fn images_in_use(&self) -> Result<Vec<String>, RuntimeError>;
    /// Creates and starts a container; on failure nothing is left behind.
    async fn run(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError>;
    /// Starts a stopped container again; its published port may change.
    async fn start(&self, id: &str) -> Result<ContainerInfo, RuntimeError>;
    async fn inspect(&self, id_or_name: &str) -> Result<ContainerInfo, RuntimeError>;
    /// Containers (running or not) carrying every given label.
    async fn list(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>, RuntimeError>;
    /// SIGTERM, then SIGKILL after `grace`. Stopping a stopped container is fine.
    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError>;
    /// Removes a container, stopping it first if needed. Removing a missing one is fine.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;
    /// Gives a container another name (accessories move the previous one aside).
    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError>;
    /// The last `tail` lines, then (with `follow`) new lines until the stream is dropped.
    async fn logs(
        &self,
        id: &str,
        tail: usize,
        follow: bool,
    ) -> Result<BoxStream<'static, Result<LogLine, RuntimeError>>, RuntimeError>;
    /// Starts `command` in the running container `id`, attached.
    async fn exec(&self, id: &str, command: &ExecCommand) -> Result<ExecSession, RuntimeError> {
        let _ = (id, command);
        Err(RuntimeError::Other(
            "this runtime cannot run commands in containers".into(),
        ))
    }
    /// Changes the size of an exec's pseudo-terminal.
    async fn resize_exec(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), RuntimeError> {
        let _ = (exec_id, rows, cols);
        Ok(())
    }
    /// Whether an exec still runs, and its exit code once it ended.
    async fn inspect_exec(&self, exec_id: &str) -> Result<ExecState, RuntimeError> {
        let _ = exec_id;
        Err(RuntimeError::Other(
            "this runtime cannot run commands in containers".into(),
        ))
    }
    /// The container's address on its network.
    async fn address(&self, id: &str) -> Result<ContainerAddress, RuntimeError> {
        let _ = id;
        Ok(ContainerAddress { ip: None })
    }
    /// Kills an exec's process if it still runs (its session ended early).
    async fn kill_exec(&self, exec_id: &str, container_id: &str) -> Result<(), RuntimeError> {
        let _ = (exec_id, container_id);
        Ok(())
    }
}
