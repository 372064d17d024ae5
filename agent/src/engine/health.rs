//! The HTTP health check a new container must pass before it gets traffic, behind
//! the [`HealthProbe`] seam (the engine's tests answer it without sockets), and the
//! waits built on it: a container healthy, HAProxy routing the new servers.

use std::time::Duration;

use async_trait::async_trait;
use haloy_api::spec::AppSpec;
use tokio::time::Instant;

use super::Engine;
use super::events::{Abort, Cancel, check_cancel};
use crate::runtime::{ContainerInfo, ContainerState};

/// Asks an app whether it is healthy.
#[async_trait]
pub trait HealthProbe: Send + Sync + 'static {
    /// One `GET path` to `127.0.0.1:port` with `Host: host`; `Ok(status)` for any
    /// HTTP answer, `Err(what went wrong)` otherwise.
    async fn probe(
        &self,
        port: u16,
        host: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<u16, String>;
}

/// 2xx and 3xx count as healthy.
pub fn is_healthy(status: u16) -> bool {
    (200..400).contains(&status)
}

/// What a replica is asked: `GET path` with `Host: host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Check {
    pub path: String,
    pub host: String,
}

impl Check {
    /// The app's health check path, asked for its first canonical domain (apps that
    /// route by Host answer only that), `localhost` without domains.
    pub fn of(spec: &AppSpec) -> Self {
        Self {
            path: spec.health_check_path.clone(),
            host: spec
                .domains
                .first()
                .map_or_else(|| "localhost".to_string(), |d| d.canonical.clone()),
        }
    }
}

/// How long HAProxy may take to report new servers up.
const ROUTED_TIMEOUT: Duration = Duration::from_secs(15);

impl Engine {
    /// Waits until `container` answers its health check; fails at once when it
    /// exits, and after `health_timeout` otherwise.
    pub(super) async fn wait_healthy(
        &self,
        container: &ContainerInfo,
        check: &Check,
        cancel: &mut Cancel,
    ) -> Result<ContainerInfo, Abort> {
        let deadline = Instant::now() + self.settings.health_timeout;
        let mut last: String;
        // Most apps answer within moments of starting: ask again soon at first, then
        // every health_interval.
        let mut pause = Duration::from_millis(25);
        loop {
            check_cancel(cancel)?;
            let info = self.runtime.inspect(&container.id).await?;
            match (&info.state, info.host_port) {
                (ContainerState::Exited(code), _) => {
                    return Err(Abort::Failed(format!(
                        "the container exited with code {code}"
                    )));
                }
                (ContainerState::Running, Some(port)) => {
                    let per_try = self.settings.health_interval.max(Duration::from_secs(2));
                    match self
                        .probe
                        .probe(port, &check.host, &check.path, per_try)
                        .await
                    {
                        Ok(status) if is_healthy(status) => return Ok(info),
                        Ok(status) => last = format!("GET {} answered {status}", check.path),
                        Err(e) => last = e,
                    }
                }
                (state, _) => last = format!("the container is {}", state.as_str()),
            }
            if Instant::now() >= deadline {
                return Err(Abort::Failed(format!(
                    "not healthy within {} s (last: {last})",
                    self.settings.health_timeout.as_secs()
                )));
            }
            pause = (pause * 2).min(self.settings.health_interval);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = cancel.changed() => {}
            }
        }
    }

    /// Waits until HAProxy reports every server in `names` up, so the old ones are
    /// only drained once traffic has somewhere to go.
    pub(super) async fn wait_routed(&self, app: &str, names: &[String]) -> Result<(), Abort> {
        let deadline = Instant::now() + ROUTED_TIMEOUT;
        let mut pause = Duration::from_millis(10);
        loop {
            let servers = self.proxy.servers(app).await?;
            let up = names.iter().all(|n| {
                servers
                    .iter()
                    .any(|s| &s.name == n && s.state.eq_ignore_ascii_case("up"))
            });
            if up {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let states: Vec<String> = servers
                    .iter()
                    .map(|s| format!("{} {}", s.name, s.state))
                    .collect();
                return Err(Abort::Failed(format!(
                    "HAProxy did not mark the new replicas up within {} s ({})",
                    ROUTED_TIMEOUT.as_secs(),
                    states.join(", ")
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}
