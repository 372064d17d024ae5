//! `haloyadm start|stop|restart|upgrade` when haloyd.yaml says `run_as: docker`:
//! HAProxy and haloyd as containers that Docker supervises.
//!
//! HAProxy starts first, from the files in the data directory (written from no
//! routes on a fresh server), then haloyd, which syncs HAProxy with its state. A new
//! HAProxy container (an image upgrade, `restart --haproxy`) starts beside the old
//! one on the same ports (HAProxy sets SO_REUSEPORT) and takes over the master and
//! admin socket paths as it binds them (it binds a temporary name and renames it over
//! the old one), so haloyd reaches the new one by the same path from then on; the
//! old one then gets SIGUSR1, finishes its connections, exits and is removed.

use std::io::Write;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bollard::models::{ContainerUpdateBody, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{KillContainerOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt as _;
use haloy_api::spec::Secret;
use haloyd::config::{HaloydConfig, Layout};
use haloyd::proxy::haproxy::Haproxy;
use haloyd::setup::ready;

use crate::containers::{self, Engine, Role};
use crate::image;

/// How long haloyd and HAProxy get to answer after their container starts.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an old HAProxy gets to finish its connections after SIGUSR1 (its
/// configuration's `hard-stop-after` ends it before).
const SOFT_STOP_TIMEOUT: Duration = Duration::from_secs(330);

/// One install on one engine.
pub struct Install<'a> {
    pub layout: &'a Layout,
    pub config: &'a HaloydConfig,
    pub engine: &'a Engine,
}

impl Install<'_> {
    fn haproxy(&self) -> anyhow::Result<Haproxy> {
        Haproxy::new(haloyd::daemon::haproxy_settings(self.layout, self.config))
            .context("cannot set up HAProxy's files")
    }

    /// Starts HAProxy's container unless one runs; returns a line for the user.
    pub async fn start_haproxy(&self) -> anyhow::Result<String> {
        let haproxy = self.haproxy()?;
        let found = self.engine.find(self.config, Role::Haproxy).await?;
        if let Some(running) = found.iter().find(|c| is_running(c)) {
            return Ok(format!(
                "HAProxy is already running (container {})",
                container_name(running)
            ));
        }
        for stale in &found {
            self.engine
                .remove(stale.id.as_deref().unwrap_or_default())
                .await?;
        }
        haproxy.write_initial_files().await?;
        let name = containers::name(self.config, Role::Haproxy, generation());
        let body =
            containers::haproxy_container(self.layout, self.config, haproxy.container_command());
        let id = self.engine.run(&name, body).await.with_context(|| {
            format!(
                "is the image {} on this server? On a machine without a registry build one with scripts/haproxy-image and pass it to `haloyadm init --force --haproxy-image <image>`",
                self.config.haproxy_image
            )
        })?;
        self.wait_for_haproxy(&haproxy, &id, None).await?;
        Ok(format!(
            "HAProxy runs in container {name} ({})",
            self.config.haproxy_image
        ))
    }

    /// Waits until HAProxy's master answers on its socket, a new one when
    /// `replacing` holds the old socket's inode.
    async fn wait_for_haproxy(
        &self,
        haproxy: &Haproxy,
        id: &str,
        replacing: Option<u64>,
    ) -> anyhow::Result<()> {
        let socket = self.layout.haproxy_dir().join("master.sock");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let inode = std::fs::metadata(&socket).ok().map(|m| m.ino());
            let new = replacing.is_none_or(|old| inode.is_some_and(|i| i != old));
            if new && haproxy.is_running().await {
                return Ok(());
            }
            self.fail_if_down(id, "HAProxy").await?;
            if Instant::now() >= deadline {
                bail!(
                    "HAProxy's container did not answer on {} within {} s; its log:\n{}",
                    socket.display(),
                    START_TIMEOUT.as_secs(),
                    self.log_tail(id).await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An error with the container's log when it is not running.
    async fn fail_if_down(&self, id: &str, what: &str) -> anyhow::Result<()> {
        let inspected = self.engine.docker.inspect_container(id, None).await;
        let running = inspected
            .as_ref()
            .ok()
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.running)
            .unwrap_or(false);
        if running {
            return Ok(());
        }
        bail!(
            "{what}'s container stopped during start-up; its log:\n{}",
            self.log_tail(id).await
        )
    }

    async fn log_tail(&self, id: &str) -> String {
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail("30")
            .build();
        let mut logs = self.engine.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&chunk.to_string());
        }
        text
    }

    /// Starts haloyd's container from `binary`'s image unless one runs; returns
    /// what haloyd reports once it serves.
    pub async fn start_haloyd(
        &self,
        binary: &Path,
        token: &Secret,
        debug: bool,
        out: &mut dyn Write,
    ) -> anyhow::Result<ready::Serving> {
        let found = self.engine.find(self.config, Role::Haloyd).await?;
        let id = match found.iter().find(|c| is_running(c)) {
            Some(running) => {
                writeln!(
                    out,
                    "haloyd is already running (container {})",
                    container_name(running)
                )?;
                running.id.clone().unwrap_or_default()
            }
            None => {
                for stale in &found {
                    self.engine
                        .remove(stale.id.as_deref().unwrap_or_default())
                        .await?;
                }
                self.create_haloyd(binary, debug, out).await?
            }
        };
        self.wait_for_haloyd(&id, token).await
    }

    async fn create_haloyd(
        &self,
        binary: &Path,
        debug: bool,
        out: &mut dyn Write,
    ) -> anyhow::Result<String> {
        let reference = image::ensure(&self.engine.docker, binary).await?;
        let name = containers::name(self.config, Role::Haloyd, generation());
        let body = containers::haloyd_container(
            self.layout,
            self.config,
            &reference,
            &self.engine.socket,
            debug,
        );
        let id = self.engine.run(&name, body).await?;
        writeln!(out, "haloyd runs in container {name} ({reference})")?;
        Ok(id)
    }

    async fn wait_for_haloyd(&self, id: &str, token: &Secret) -> anyhow::Result<ready::Serving> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let last = match ready::ask_version(self.config.api_port, token).await {
                Ok(serving) if !serving.haproxy.is_empty() => return Ok(serving),
                Ok(_) => "HAProxy does not answer yet".to_string(),
                Err(e) => e.to_string(),
            };
            self.fail_if_down(id, "haloyd").await?;
            if Instant::now() >= deadline {
                bail!(
                    "haloyd did not answer within {} s ({last}); its log:\n{}",
                    START_TIMEOUT.as_secs(),
                    self.log_tail(id).await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Removes the install's containers in `role`; returns how many there were.
    pub async fn remove_all(&self, role: Role) -> anyhow::Result<usize> {
        let found = self.engine.find(self.config, role).await?;
        for container in &found {
            self.engine
                .remove(container.id.as_deref().unwrap_or_default())
                .await?;
        }
        Ok(found.len())
    }

    /// Replaces haloyd's container with one from `binary`'s image (always a new
    /// container, so a restart re-reads everything); HAProxy keeps serving.
    pub async fn replace_haloyd(
        &self,
        binary: &Path,
        token: &Secret,
        debug: bool,
        out: &mut dyn Write,
    ) -> anyhow::Result<ready::Serving> {
        // Built before the old one stops: the API's gap is a restart, not a build.
        image::ensure(&self.engine.docker, binary).await?;
        self.remove_all(Role::Haloyd).await?;
        let id = self.create_haloyd(binary, debug, out).await?;
        self.wait_for_haloyd(&id, token).await
    }

    /// Starts a HAProxy container from haloyd.yaml's image beside the running one,
    /// waits until it holds the sockets, then lets the old one finish its
    /// connections and removes it. No request is refused: both listen meanwhile.
    pub async fn replace_haproxy(&self, out: &mut dyn Write) -> anyhow::Result<()> {
        let haproxy = self.haproxy()?;
        let old = self.engine.find(self.config, Role::Haproxy).await?;
        haproxy.write_initial_files().await?;
        let socket = self.layout.haproxy_dir().join("master.sock");
        let old_inode = std::fs::metadata(&socket).ok().map(|m| m.ino());
        let name = containers::name(self.config, Role::Haproxy, generation());
        let body =
            containers::haproxy_container(self.layout, self.config, haproxy.container_command());
        let id = self.engine.run(&name, body).await?;
        if let Err(e) = self.wait_for_haproxy(&haproxy, &id, old_inode).await {
            // The old one keeps serving; the new one goes.
            let _ = self.engine.remove(&id).await;
            return Err(e.context("the new HAProxy did not start; the old one keeps serving"));
        }
        writeln!(
            out,
            "HAProxy {} runs in container {name} beside the old one",
            self.config.haproxy_image
        )?;
        for container in old {
            let old_id = container.id.clone().unwrap_or_default();
            self.soft_stop(&old_id).await?;
            writeln!(
                out,
                "the old HAProxy (container {}) finished its connections and was removed",
                container_name(&container)
            )?;
        }
        Ok(())
    }

    /// SIGUSR1 to an old HAProxy (after telling Docker not to start it again), wait
    /// for it to exit, remove it.
    async fn soft_stop(&self, id: &str) -> anyhow::Result<()> {
        let docker = &self.engine.docker;
        let never = ContainerUpdateBody {
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            ..ContainerUpdateBody::default()
        };
        docker
            .update_container(id, never)
            .await
            .with_context(|| format!("cannot change the restart policy of container {id}"))?;
        let signal = KillContainerOptionsBuilder::new().signal("SIGUSR1").build();
        // A container that already stopped needs no signal.
        let _ = docker.kill_container(id, Some(signal)).await;
        let deadline = Instant::now() + SOFT_STOP_TIMEOUT;
        loop {
            let running = docker
                .inspect_container(id, None)
                .await
                .ok()
                .and_then(|c| c.state)
                .and_then(|s| s.running)
                .unwrap_or(false);
            if !running || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.engine.remove(id).await
    }
}

fn is_running(container: &bollard::models::ContainerSummary) -> bool {
    container.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
}

pub fn container_name(container: &bollard::models::ContainerSummary) -> String {
    container
        .names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_else(|| container.id.clone().unwrap_or_default())
}

/// Tells containers of one install apart: milliseconds since the epoch.
fn generation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// The haloyd binary a container image is built from: `--haloyd-binary`, else the
/// one installed beside haloyadm, else the first on PATH.
pub fn haloyd_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        if !path.is_file() {
            bail!(
                "--haloyd-binary {}: no such file; give the path of a built haloyd",
                path.display()
            );
        }
        return std::path::absolute(path).context("cannot resolve --haloyd-binary");
    }
    let program = haloyd::process::haloyd_program();
    if program.is_absolute() {
        return Ok(program);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("haloyd"))
        .find(|p| p.is_file())
        .context("haloyd is not installed beside haloyadm or on PATH; install it (deploy/install-haloyadm.sh) or pass --haloyd-binary")
}
