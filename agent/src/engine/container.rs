//! What the engine asks Docker to run for a deployment: container names, labels
//! (the route label lets haloyd rebuild routing from Docker alone) and the server
//! HAProxy gets for a running container.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use haloy_api::spec::{AppSpec, DomainSpec};

use super::Engine;
use super::events::Abort;
use crate::ids;
use crate::proxy::Backend;
use crate::runtime::{ContainerInfo, ContainerSpec, labels};

/// Label holding the app's routing (domains, health path) as JSON, so routes can be
/// rebuilt from Docker alone.
pub const ROUTE_LABEL: &str = "dev.haloy.route";

/// Label naming an accessory's preset (`database`, `service`).
pub const PRESET_LABEL: &str = "dev.haloy.preset";

impl Engine {
    /// `id` as this instance names what it creates for that deployment (containers,
    /// the history tag): a proposed id is the same on every server of a deploy, so
    /// the instance's suffix keeps names apart when servers share one Docker.
    pub(super) fn own_name(&self, id: &str) -> String {
        let suffix = ids::instance_suffix(&self.settings.instance);
        if id.ends_with(&suffix) {
            id.to_string()
        } else {
            format!("{id}-{suffix}")
        }
    }

    /// The name an accessory's replica `n` keeps across deploys.
    pub(super) fn stable_name(&self, app: &str, n: u32) -> String {
        let suffix = ids::instance_suffix(&self.settings.instance);
        if n == 1 {
            format!("{app}-{suffix}")
        } else {
            format!("{app}-{suffix}-{n}")
        }
    }

    pub(super) fn container_spec(
        &self,
        id: &str,
        spec: &AppSpec,
        image: &str,
        n: u32,
    ) -> ContainerSpec {
        let route = serde_json::json!({
            "domains": spec.domains.iter().map(|d| (d.canonical.clone(), d.aliases.clone())).collect::<Vec<_>>(),
            "health_check_path": spec.health_check_path,
        });
        let mut labels = BTreeMap::from([
            (labels::INSTANCE.to_string(), self.settings.instance.clone()),
            (labels::APP.to_string(), spec.name.clone()),
            (labels::DEPLOYMENT.to_string(), id.to_string()),
            (labels::ROLE.to_string(), "app".to_string()),
            (labels::REPLICA.to_string(), n.to_string()),
            (labels::PORT.to_string(), spec.port.to_string()),
            (ROUTE_LABEL.to_string(), route.to_string()),
        ]);
        if let Some(preset) = spec.preset {
            labels.insert(PRESET_LABEL.to_string(), preset.as_str().to_string());
        }
        ContainerSpec {
            name: match spec.preset {
                // Accessories keep one name across deploys (`rename_old` moves the
                // previous container aside) and answer to the app name on the network.
                Some(_) => self.stable_name(&spec.name, n),
                None => format!("{}-{}-{n}", spec.name, self.own_name(id)),
            },
            image: image.to_string(),
            env: spec
                .env
                .iter()
                .map(|v| (v.name.clone(), v.value.expose().to_string()))
                .collect(),
            labels,
            network: spec.network_or_default().to_string(),
            volumes: spec.volumes.clone(),
            resources: spec.resources,
            alias: spec.preset.map(|_| spec.name.clone()),
            port: spec.port,
        }
    }
}

/// The deployment a container belongs to.
pub(super) fn deployment_of(container: &ContainerInfo) -> Option<&str> {
    container.labels.get(labels::DEPLOYMENT).map(String::as_str)
}

/// The HAProxy server for a running container with a published port.
pub(super) fn backend(container: &ContainerInfo) -> Result<Backend, Abort> {
    let port = container.host_port.ok_or_else(|| {
        Abort::Failed(format!(
            "container {} has no published port",
            container.name
        ))
    })?;
    Ok(Backend {
        name: container.name.clone(),
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        draining: false,
        weight: None,
    })
}

/// Domains and health check path from a container's route label; none and `/`
/// when the label is missing or unreadable.
pub(super) fn parse_route(label: Option<&str>) -> (Vec<DomainSpec>, String) {
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
