//! Start-up: Docker's labels say what runs; the store says which deployment is live.
//! Leftovers of interrupted deploys are removed and HAProxy is made to route exactly
//! the live replicas.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use haloy_api::spec::DomainSpec;

use super::{Engine, EngineError, ROUTE_LABEL};
use crate::ids;
use crate::proxy::{AppRoute, Backend};
use crate::runtime::{ContainerInfo, ContainerState, labels};
use crate::store::Status;

impl Engine {
    /// Rebuilds routing from Docker and the store; returns the routes applied.
    pub async fn reconcile(&self) -> Result<Vec<AppRoute>, EngineError> {
        let containers = self
            .runtime
            .list(&[(labels::INSTANCE, &self.settings.instance)])
            .await?;
        let mut by_app: BTreeMap<String, Vec<ContainerInfo>> = BTreeMap::new();
        for container in containers {
            if let Some(app) = container.labels.get(labels::APP).cloned() {
                by_app.entry(app).or_default().push(container);
            }
        }
        for app in self.store.apps()? {
            // Deploys that were running when haloyd stopped did not finish.
            for mut record in self.store.list(&app)? {
                if record.status == Status::InProgress {
                    record.status = Status::Failed;
                    record.reason = "haloyd stopped during the deploy".into();
                    record.finished_at_ms = Some(ids::now_ms());
                    self.store.put(&record)?;
                }
            }
        }

        let mut routes = Vec::new();
        for (app, containers) in by_app {
            let live = self.live_deployment(&app, &containers)?;
            let mut servers = Vec::new();
            let mut route_label = None;
            for container in containers {
                let deployment = container.labels.get(labels::DEPLOYMENT);
                if deployment != live.as_ref() {
                    tracing::info!(app, container = %container.name, "removing a container of an unfinished or replaced deployment");
                    self.runtime.remove(&container.id).await?;
                    continue;
                }
                route_label = route_label.or_else(|| container.labels.get(ROUTE_LABEL).cloned());
                if let (ContainerState::Running, Some(port)) =
                    (&container.state, container.host_port)
                {
                    servers.push(Backend {
                        name: container.name.clone(),
                        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                    });
                }
            }
            let (domains, health_check_path) = parse_route(route_label.as_deref());
            servers.sort_by(|a, b| a.name.cmp(&b.name));
            routes.push(AppRoute {
                app,
                domains,
                health_check_path,
                servers,
            });
        }
        self.proxy.sync(&routes).await?;
        Ok(routes)
    }

    /// The live deployment: the newest successful one that still has containers, else
    /// the newest deployment among the running containers (a store lost or reset).
    fn live_deployment(
        &self,
        app: &str,
        containers: &[ContainerInfo],
    ) -> Result<Option<String>, EngineError> {
        let has = |id: &str| {
            containers
                .iter()
                .any(|c| c.labels.get(labels::DEPLOYMENT).map(String::as_str) == Some(id))
        };
        let from_store = self
            .store
            .list(app)?
            .into_iter()
            .find(|r| r.status == Status::Succeeded && has(&r.id))
            .map(|r| r.id);
        if from_store.is_some() {
            return Ok(from_store);
        }
        Ok(containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .filter_map(|c| c.labels.get(labels::DEPLOYMENT).cloned())
            .max())
    }
}

fn parse_route(label: Option<&str>) -> (Vec<DomainSpec>, String) {
    #[derive(serde::Deserialize)]
    struct Route {
        domains: Vec<(String, Vec<String>)>,
        health_check_path: String,
    }
    match label.and_then(|l| serde_json::from_str::<Route>(l).ok()) {
        Some(route) => (
            route
                .domains
                .into_iter()
                .map(|(canonical, aliases)| DomainSpec { canonical, aliases })
                .collect(),
            route.health_check_path,
        ),
        None => (Vec::new(), "/".into()),
    }
}
