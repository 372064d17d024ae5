//! Docker through bollard: the real [`super::ContainerRuntime`].
//!
//! The trait methods are thin; each concern lives in its own file: containers
//! (`run`, `inspect`, `list`, `stop`, `remove`), images (pull, load, tag), logs
//! (frames to lines), networks, and the mapping of bollard's errors to
//! [`RuntimeError`].

mod archive;
mod container;
mod error;
mod exec;
mod image;
mod logs;
mod network;
mod volume;

use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use haloy_api::spec::RegistryAuth;
use tokio::sync::Mutex;

use super::{
    ArchiveStream, ContainerAddress, ContainerInfo, ContainerRuntime, ContainerSpec, ExecCommand,
    ExecSession, ExecState, LogLine, RuntimeError,
};

/// A connection to one Docker Engine.
///
/// Cheap to share behind an `Arc`; bollard multiplexes requests over its own pool.
pub struct Docker {
    client: bollard::Docker,
    /// Serialises this process's `ensure_network` calls: Docker 20.10 happily creates
    /// two networks with the same name (see `network.rs`).
    network_lock: Mutex<()>,
}

impl Docker {
    /// Connects to the local daemon (`DOCKER_HOST` when it is a `unix://` socket,
    /// else `/var/run/docker.sock`) and negotiates the API version with it.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let client = bollard::Docker::connect_with_local_defaults().map_err(error::connect)?;
        Self::negotiate(client).await
    }

    /// Connects to the daemon listening on the unix socket at `socket`, e.g.
    /// `/var/run/docker.sock`, and negotiates the API version with it.
    pub async fn connect_with_socket(socket: &str) -> Result<Self, RuntimeError> {
        let client = bollard::Docker::connect_with_unix(
            socket,
            TIMEOUT.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(error::connect)?;
        Self::negotiate(client).await
    }

    async fn negotiate(client: bollard::Docker) -> Result<Self, RuntimeError> {
        let client = client.negotiate_version().await.map_err(error::connect)?;
        tracing::debug!(api = %client.client_version(), "connected to docker");
        Ok(Self {
            client,
            network_lock: Mutex::new(()),
        })
    }

    /// The client with a longer wait for the response head, for calls whose
    /// response only starts once slow work is done (stop, load).
    fn patient(&self, timeout: Duration) -> bollard::Docker {
        self.client.clone().with_timeout(timeout.max(TIMEOUT))
    }
}

/// bollard's default wait for a response head.
const TIMEOUT: Duration = Duration::from_secs(120);

#[async_trait]
impl ContainerRuntime for Docker {
    async fn version(&self) -> Result<String, RuntimeError> {
        let version = self.client.version().await.map_err(error::daemon)?;
        Ok(version.version.unwrap_or_default())
    }

    async fn engine_id(&self) -> Result<String, RuntimeError> {
        let info = self.client.info().await.map_err(error::daemon)?;
        // Daemons on one host can share an ID (it comes from /etc/docker/key.json);
        // with the data root the pair names one engine.
        Ok(haloy_docker::engine_identity(
            &info.id.unwrap_or_default(),
            &info.docker_root_dir.unwrap_or_default(),
        ))
    }

    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError> {
        let _serialised = self.network_lock.lock().await;
        network::ensure(&self.client, name).await
    }

    async fn image_exists(&self, reference: &str) -> Result<bool, RuntimeError> {
        image::exists(&self.client, reference).await
    }

    async fn layer_chains(&self) -> Result<Vec<Vec<String>>, RuntimeError> {
        image::layer_chains(&self.client).await
    }

    async fn pull_image(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        image::pull(&self.client, reference, auth).await
    }

    async fn load_image(&self, archive: ArchiveStream) -> Result<Vec<String>, RuntimeError> {
        // Docker answers only once the whole archive is in and unpacked.
        image::load(&self.patient(Duration::from_secs(3600)), archive).await
    }

    async fn tag_image(
        &self,
        source: &str,
        repository: &str,
        tag: &str,
    ) -> Result<(), RuntimeError> {
        image::tag(&self.client, source, repository, tag).await
    }

    async fn image_id(&self, reference: &str) -> Result<Option<String>, RuntimeError> {
        image::id(&self.client, reference).await
    }

    async fn untag_image(&self, reference: &str) -> Result<(), RuntimeError> {
        image::untag(&self.client, reference).await
    }

    async fn images_in_use(&self) -> Result<Vec<String>, RuntimeError> {
        container::images_in_use(&self.client).await
    }

    async fn run(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError> {
        container::run(&self.client, spec).await
    }

    async fn start(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        container::start(&self.client, id).await
    }

    async fn inspect(&self, id_or_name: &str) -> Result<ContainerInfo, RuntimeError> {
        container::inspect(&self.client, id_or_name).await
    }

    async fn list(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>, RuntimeError> {
        container::list(&self.client, labels).await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        // Docker answers once the container is down, up to `grace` later.
        let client = self.patient(grace + Duration::from_secs(30));
        container::stop(&client, id, grace).await
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        container::remove(&self.client, id).await
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
        let options = bollard::query_parameters::RenameContainerOptionsBuilder::new()
            .name(name)
            .build();
        self.client
            .rename_container(id, options)
            .await
            .map_err(|err| error::container(id, err))
    }

    async fn logs(
        &self,
        id: &str,
        tail: usize,
        follow: bool,
    ) -> Result<BoxStream<'static, Result<LogLine, RuntimeError>>, RuntimeError> {
        logs::stream(&self.client, id, tail, follow).await
    }

    async fn exec(&self, id: &str, command: &ExecCommand) -> Result<ExecSession, RuntimeError> {
        exec::start(&self.client, id, command).await
    }

    async fn resize_exec(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), RuntimeError> {
        exec::resize(&self.client, exec_id, rows, cols).await
    }

    async fn inspect_exec(&self, exec_id: &str) -> Result<ExecState, RuntimeError> {
        exec::inspect(&self.client, exec_id).await
    }

    async fn address(&self, id: &str) -> Result<ContainerAddress, RuntimeError> {
        exec::address(&self.client, id).await
    }

    async fn kill_exec(&self, exec_id: &str, container_id: &str) -> Result<(), RuntimeError> {
        exec::kill(&self.client, exec_id, container_id).await
    }
}
