//! Reading an app's state (status, logs) and stopping it.

use futures_util::stream::{self, BoxStream, StreamExt};

use super::Engine;
use super::container::PRESET_LABEL;
use super::events::EngineError;
use super::owner::{Snapshot, StopOptions, Stopped};
use crate::certs::CertificateStatus;
use crate::runtime::{ContainerState, LogLine, RuntimeError, labels};
use crate::store::maintenance::Maintenance;
use crate::store::{DeploymentRecord, Status};

/// One container of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub name: String,
    pub container_id: String,
    pub deployment_id: String,
    pub state: String,
    /// HAProxy's view, or "unrouted".
    pub health: String,
    /// The watchdog's restarts of it and its last failure.
    pub restarts: u32,
    pub last_failure: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppStatus {
    pub app: String,
    /// The newest successful deployment.
    pub current: Option<DeploymentRecord>,
    /// The newest deployment of any outcome, when it is not `current`.
    pub latest: Option<DeploymentRecord>,
    pub replicas: Vec<ReplicaStatus>,
    /// Certificates for the app's domains, with the last error of each.
    pub certificates: Vec<CertificateStatus>,
    /// What runs for the app now, and a problem haloyd could not resolve.
    pub snapshot: Snapshot,
    /// Set while the app is in maintenance mode.
    pub maintenance: Option<Maintenance>,
    /// Its requests through HAProxy; `None` without a backend or an answer.
    pub traffic: Option<super::AppTraffic>,
}

impl Engine {
    pub async fn status(&self, app: &str) -> Result<AppStatus, EngineError> {
        let records = self.store.list(app)?;
        let containers = self.app_containers(app).await?;
        if records.is_empty() && containers.is_empty() {
            return Err(EngineError::NotFound(app.to_string()));
        }
        let snapshot = self.snapshot(app).await;
        let current = records
            .iter()
            .find(|r| r.status() == Status::Succeeded)
            .cloned();
        let latest = records
            .first()
            .filter(|r| Some(&r.id) != current.as_ref().map(|c| &c.id))
            .cloned();
        // An app without a backend yet simply has no routed servers.
        let servers = self.proxy.servers(app).await.unwrap_or_default();
        let mut replicas: Vec<ReplicaStatus> = containers
            .into_iter()
            .map(|c| ReplicaStatus {
                restarts: self.replica_health(&c.name).restarts,
                last_failure: self.replica_health(&c.name).last_failure,
                health: servers
                    .iter()
                    .find(|s| s.name == c.name)
                    .map_or_else(|| "unrouted".to_string(), |s| s.state.to_lowercase()),
                deployment_id: c
                    .labels
                    .get(labels::DEPLOYMENT)
                    .cloned()
                    .unwrap_or_default(),
                name: c.name,
                container_id: c.id,
                state: c.state.as_str(),
            })
            .collect();
        replicas.sort_by(|a, b| a.name.cmp(&b.name));
        let traffic = match self.traffic().await {
            Ok(apps) => apps.into_iter().find(|t| t.now.app == app),
            Err(_) => None,
        };
        Ok(AppStatus {
            traffic,
            app: app.to_string(),
            current,
            latest,
            replicas,
            certificates: self
                .certificates()
                .map(|c| c.status(app))
                .unwrap_or_default(),
            snapshot,
            maintenance: self.store.maintenance(app)?,
        })
    }

    /// Stops every container of the app, taking it out of HAProxy first; with
    /// `remove`, removes them. Run by the app's owner.
    ///
    /// A stop alone keeps the app's certificates (and their renewals): the app is
    /// expected back, and its hosts keep redirecting to HTTPS. Removing the
    /// containers is the app going away, so its certificates are dropped too.
    pub(super) async fn stop_containers(
        &self,
        app: &str,
        options: StopOptions,
    ) -> Result<Stopped, EngineError> {
        let remove = options.remove;
        let containers = self.app_containers(app).await?;
        if containers.is_empty() {
            return Err(EngineError::NotFound(app.to_string()));
        }
        let live = self.live_record(app)?;
        let protected = live.as_ref().is_some_and(|r| r.spec.protected)
            || containers
                .iter()
                .any(|c| c.labels.get(PRESET_LABEL).map(String::as_str) == Some("database"));
        if remove && protected && !options.include_protected {
            return Err(EngineError::Protected {
                app: app.to_string(),
                action: "removing its containers would lose what they hold".into(),
            });
        }
        let grace = self
            .timing(&live.map(|r| r.spec.rollout()).unwrap_or_default())
            .stop_grace;
        let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        self.unroute(app, &names).await;
        let (mut stopped, mut removed) = (Vec::new(), Vec::new());
        for container in containers {
            if container.state == ContainerState::Running {
                self.runtime.stop(&container.id, grace).await?;
                stopped.push(container.name.clone());
            }
            if remove {
                self.runtime.remove(&container.id).await?;
                removed.push(container.name);
            }
        }
        if remove && let Some(certificates) = self.certificates() {
            certificates.want(app, Vec::new());
        }
        Ok(Stopped { stopped, removed })
    }

    /// Log lines of the app's running containers, each tagged with its container name,
    /// interleaved as they arrive.
    pub async fn logs(
        &self,
        app: &str,
        tail: usize,
        follow: bool,
    ) -> Result<BoxStream<'static, Result<(String, LogLine), RuntimeError>>, EngineError> {
        let containers = self.app_containers(app).await?;
        let running: Vec<_> = containers
            .into_iter()
            .filter(|c| c.state == ContainerState::Running)
            .collect();
        if running.is_empty() {
            return Err(EngineError::NotFound(app.to_string()));
        }
        let mut streams = Vec::new();
        for container in running {
            let name = container.name.clone();
            let lines = self.runtime.logs(&container.id, tail, follow).await?;
            streams.push(
                lines
                    .map(move |line| line.map(|l| (name.clone(), l)))
                    .boxed(),
            );
        }
        Ok(stream::select_all(streams).boxed())
    }
}
