//! The fake HAProxy (apps, hosts, servers and their states) and the fake health
//! probe that asks the fake Docker.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{CallLog, FakeRuntime};
use crate::engine::{Answer, HealthProbe, ProbeError};
use crate::proxy::{
    AppRoute, Backend, BackendTraffic, Proxy, ProxyError, ServerCounters, ServerStatus,
};

/// Answers health checks for the containers of a [`FakeRuntime`].
pub struct FakeProbe(pub Arc<FakeRuntime>);

#[async_trait]
impl HealthProbe for FakeProbe {
    async fn probe(
        &self,
        port: u16,
        _host: &str,
        _path: &str,
        _timeout: Duration,
    ) -> Result<Answer, ProbeError> {
        self.0.answer(port)
    }

    async fn connect(&self, port: u16, _timeout: Duration) -> Result<(), ProbeError> {
        self.0.answer(port).map(drop)
    }
}

#[derive(Default)]
pub struct FakeProxy {
    pub apps: Mutex<BTreeMap<String, Vec<ServerStatus>>>,
    /// Server weights set by `set_weight` (or by a route that carries them).
    pub weights: Mutex<BTreeMap<String, u16>>,
    /// What `counters` answers, by server name.
    pub counters: Mutex<BTreeMap<String, ServerCounters>>,
    /// What `traffic` answers: the app backends' counters.
    pub traffic: Mutex<Vec<BackendTraffic>>,
    /// Hosts routed to each app; like HAProxy, a host belongs to one app.
    pub hosts: Mutex<BTreeMap<String, Vec<String>>>,
    /// The maintenance page of each app in maintenance, as routes or
    /// `set_maintenance` last gave it.
    pub maintenance: Mutex<BTreeMap<String, String>>,
    pub log: CallLog,
}

impl FakeProxy {
    async fn record(&self, call: String) -> Result<(), ProxyError> {
        self.log.enter(call).await.map_err(ProxyError::Other)
    }

    /// Routes `route`'s hosts to its app, refusing a host another app has.
    fn route_hosts(&self, route: &AppRoute) -> Result<(), ProxyError> {
        let wanted: Vec<String> = route
            .domains
            .iter()
            .flat_map(|d| std::iter::once(&d.canonical).chain(&d.aliases))
            .cloned()
            .collect();
        let mut hosts = self.hosts.lock().unwrap();
        for (app, taken) in hosts.iter() {
            if let Some(host) = wanted
                .iter()
                .find(|h| app != &route.app && taken.contains(h))
            {
                return Err(ProxyError::Other(format!(
                    "{host} is already routed to app {app}"
                )));
            }
        }
        hosts.insert(route.app.clone(), wanted);
        let mut maintenance = self.maintenance.lock().unwrap();
        match &route.maintenance {
            Some(page) => maintenance.insert(route.app.clone(), page.clone()),
            None => maintenance.remove(&route.app),
        };
        Ok(())
    }

    /// Server names and states of an app, "name state" each.
    pub fn server_states(&self, app: &str) -> Vec<String> {
        self.apps
            .lock()
            .unwrap()
            .get(app)
            .map(|s| {
                s.iter()
                    .map(|s| format!("{} {}", s.name, s.state))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn server_names(&self, app: &str) -> Vec<String> {
        self.apps
            .lock()
            .unwrap()
            .get(app)
            .map(|s| s.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Proxy for FakeProxy {
    async fn sync(&self, routes: &[AppRoute]) -> Result<(), ProxyError> {
        self.record("sync".into()).await?;
        self.hosts.lock().unwrap().clear();
        self.maintenance.lock().unwrap().clear();
        for route in routes {
            self.route_hosts(route)?;
        }
        let mut apps = self.apps.lock().unwrap();
        apps.clear();
        for route in routes {
            apps.insert(
                route.app.clone(),
                route
                    .servers
                    .iter()
                    .map(|s| ServerStatus {
                        name: s.name.clone(),
                        addr: s.addr,
                        state: if s.draining { "drain" } else { "up" }.into(),
                        sessions: 0,
                    })
                    .collect(),
            );
        }
        Ok(())
    }
    async fn ensure_app(&self, route: &AppRoute) -> Result<(), ProxyError> {
        self.record(format!("ensure_app {}", route.app)).await?;
        self.route_hosts(route)?;
        self.apps
            .lock()
            .unwrap()
            .entry(route.app.clone())
            .or_default();
        Ok(())
    }
    async fn add_server(&self, app: &str, server: &Backend) -> Result<(), ProxyError> {
        self.record(format!("add_server {}", server.name)).await?;
        if let Some(weight) = server.weight {
            self.weights
                .lock()
                .unwrap()
                .insert(server.name.clone(), weight);
        }
        let mut apps = self.apps.lock().unwrap();
        let servers = apps.entry(app.to_string()).or_default();
        servers.retain(|s| s.name != server.name);
        servers.push(ServerStatus {
            name: server.name.clone(),
            addr: server.addr,
            state: "up".into(),
            sessions: 0,
        });
        Ok(())
    }
    async fn drain_server(&self, app: &str, name: &str) -> Result<(), ProxyError> {
        self.record(format!("drain_server {name}")).await?;
        let mut apps = self.apps.lock().unwrap();
        for s in apps
            .entry(app.to_string())
            .or_default()
            .iter_mut()
            .filter(|s| s.name == name)
        {
            s.state = "drain".into();
        }
        Ok(())
    }
    async fn remove_server(&self, app: &str, name: &str) -> Result<(), ProxyError> {
        self.record(format!("remove_server {name}")).await?;
        let mut apps = self.apps.lock().unwrap();
        apps.entry(app.to_string())
            .or_default()
            .retain(|s| s.name != name);
        Ok(())
    }
    async fn set_weight(&self, _app: &str, name: &str, weight: u16) -> Result<(), ProxyError> {
        self.record(format!("set_weight {name} {weight}")).await?;
        self.weights
            .lock()
            .unwrap()
            .insert(name.to_string(), weight);
        Ok(())
    }
    async fn set_maintenance(&self, app: &str, page: Option<&str>) -> Result<(), ProxyError> {
        self.record(format!("set_maintenance {app} {}", page.is_some()))
            .await?;
        if !self.apps.lock().unwrap().contains_key(app) {
            return Ok(());
        }
        let mut maintenance = self.maintenance.lock().unwrap();
        match page {
            Some(page) => maintenance.insert(app.to_string(), page.to_string()),
            None => maintenance.remove(app),
        };
        Ok(())
    }
    async fn counters(&self, app: &str) -> Result<Vec<ServerCounters>, ProxyError> {
        let counters = self.counters.lock().unwrap();
        Ok(self
            .server_names(app)
            .into_iter()
            .map(|name| {
                counters.get(&name).cloned().unwrap_or(ServerCounters {
                    name,
                    ..Default::default()
                })
            })
            .collect())
    }
    async fn traffic(&self) -> Result<Vec<BackendTraffic>, ProxyError> {
        if let Some(message) = self.log.failure("traffic") {
            return Err(ProxyError::Other(message));
        }
        Ok(self.traffic.lock().unwrap().clone())
    }
    async fn servers(&self, app: &str) -> Result<Vec<ServerStatus>, ProxyError> {
        if let Some(message) = self.log.failure("servers") {
            return Err(ProxyError::Other(message));
        }
        Ok(self
            .apps
            .lock()
            .unwrap()
            .get(app)
            .cloned()
            .unwrap_or_default())
    }
    async fn remove_app(&self, app: &str) -> Result<(), ProxyError> {
        self.record(format!("remove_app {app}")).await?;
        self.apps.lock().unwrap().remove(app);
        self.hosts.lock().unwrap().remove(app);
        Ok(())
    }
    async fn version(&self) -> Result<String, ProxyError> {
        Ok("fake".into())
    }
}
