//! The driver's desired state: which apps HAProxy routes, their domains, health check
//! paths and servers. It is the single source the configuration and map files are
//! rendered from, and every value is validated here before it can reach a file or a
//! runtime API command (one stray space or newline would otherwise inject a config
//! line or a second command).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use haloy_api::rules;
use haloy_api::spec::DomainSpec;

use crate::proxy::{AppRoute, Backend, ProxyError, ServerProblem};

/// Every app HAProxy routes, by app name, and the certificates it serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Routing {
    pub apps: BTreeMap<String, App>,
    /// By canonical domain.
    pub certificates: BTreeMap<String, Certificate>,
}

/// A certificate file in `certs.list` and the hosts it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Certificate {
    pub path: PathBuf,
    pub names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct App {
    pub domains: Vec<DomainSpec>,
    pub health_check_path: String,
    /// In the order they were added, so the rendered file stays stable.
    pub servers: Vec<Server>,
    /// The page the app's hosts answer with (503) while in maintenance.
    pub maintenance: Option<String>,
}

/// The largest maintenance page HAProxy is given, in bytes: base64-encoded in an
/// `add map` command it must fit HAProxy's 16 KiB command buffer (tried with 2.6:
/// 14,680 characters of value pass, 16,680 do not), and a map file line likewise.
pub(super) const MAX_PAGE_BYTES: usize = rules::MAX_MAINTENANCE_ANSWER;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Server {
    pub name: String,
    pub addr: SocketAddr,
    /// Put in drain: no new requests, sessions in progress finish.
    pub draining: bool,
    /// HAProxy's weight when not draining; 1 unless a canary splits traffic.
    pub weight: u16,
}

/// The HAProxy backend of an app. App backends start with `app_` and the driver's own
/// with `haloy_`, so no app name can collide with them.
pub(super) fn backend_name(app: &str) -> String {
    format!("app_{app}")
}

impl Routing {
    /// The desired state for exactly `routes`, every server ready.
    pub fn from_routes(routes: &[AppRoute]) -> Result<Self, ProxyError> {
        let mut routing = Self::default();
        for route in routes {
            validate_route(route)?;
            if routing.apps.contains_key(&route.app) {
                return Err(invalid(&route.app, "the app is listed twice"));
            }
            routing.check_hosts_free(route)?;
            routing
                .apps
                .insert(route.app.clone(), App::from_route(route));
        }
        Ok(routing)
    }

    /// Routes `route`'s domains and health check path; servers it lists that the app
    /// does not have yet are added, and none is removed (a deploy adds the new servers
    /// before it drains the old ones).
    pub fn upsert(&mut self, route: &AppRoute) -> Result<(), ProxyError> {
        validate_route(route)?;
        self.check_hosts_free(route)?;
        match self.apps.get_mut(&route.app) {
            None => {
                self.apps.insert(route.app.clone(), App::from_route(route));
            }
            Some(app) => {
                app.domains = route.domains.clone();
                app.health_check_path = route.health_check_path.clone();
                app.maintenance = route.maintenance.clone();
                for server in &route.servers {
                    if !app.servers.iter().any(|s| s.name == server.name) {
                        app.servers.push(Server::ready(server));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn app_mut(&mut self, app: &str) -> Result<&mut App, ProxyError> {
        self.apps.get_mut(app).ok_or_else(|| {
            ProxyError::Other(format!(
                "app {app:?} has no backend; route it with ensure_app first"
            ))
        })
    }

    /// host → backend, for every canonical domain and alias (aliases need a backend
    /// entry too so that ACME challenges for them are answered).
    pub fn hosts_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for (name, app) in &self.apps {
            for domain in &app.domains {
                for host in std::iter::once(&domain.canonical).chain(&domain.aliases) {
                    map.insert(host.clone(), backend_name(name));
                }
            }
        }
        map
    }

    /// alias → canonical domain.
    pub fn aliases_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for app in self.apps.values() {
            for domain in &app.domains {
                for alias in &domain.aliases {
                    map.insert(alias.clone(), domain.canonical.clone());
                }
            }
        }
        map
    }

    /// host → 1 for every host with a certificate: HTTP for it redirects to HTTPS.
    pub fn https_map(&self) -> BTreeMap<String, String> {
        self.certificates
            .values()
            .flat_map(|c| c.names.iter())
            .map(|name| (name.clone(), "1".to_string()))
            .collect()
    }

    /// host → the maintenance page in base64 (a map value is one word), for every
    /// host of an app in maintenance.
    pub fn maintenance_map(&self) -> BTreeMap<String, String> {
        use base64::Engine as _;
        let mut map = BTreeMap::new();
        for app in self.apps.values() {
            let Some(page) = &app.maintenance else {
                continue;
            };
            let encoded = base64::engine::general_purpose::STANDARD.encode(page);
            for domain in &app.domains {
                for host in std::iter::once(&domain.canonical).chain(&domain.aliases) {
                    map.insert(host.clone(), encoded.clone());
                }
            }
        }
        map
    }

    pub fn backends(&self) -> BTreeSet<String> {
        self.apps.keys().map(|app| backend_name(app)).collect()
    }

    /// A host may belong to one app only; moving it means removing it first.
    fn check_hosts_free(&self, route: &AppRoute) -> Result<(), ProxyError> {
        let hosts = route
            .domains
            .iter()
            .flat_map(|d| std::iter::once(&d.canonical).chain(&d.aliases));
        for host in hosts {
            let owner = self.apps.iter().find(|(name, app)| {
                *name != &route.app
                    && app.domains.iter().any(|d| {
                        &d.canonical == host || d.aliases.iter().any(|alias| alias == host)
                    })
            });
            if let Some((owner, _)) = owner {
                return Err(invalid(
                    &route.app,
                    &format!("{host} is already routed to app {owner}; remove it there first"),
                ));
            }
        }
        Ok(())
    }
}

impl App {
    fn from_route(route: &AppRoute) -> Self {
        Self {
            domains: route.domains.clone(),
            health_check_path: route.health_check_path.clone(),
            servers: route.servers.iter().map(Server::from_backend).collect(),
            maintenance: route.maintenance.clone(),
        }
    }
}

impl Server {
    /// The server taking requests, whatever `backend` says of draining.
    pub fn ready(backend: &Backend) -> Self {
        Self {
            draining: false,
            ..Self::from_backend(backend)
        }
    }

    pub fn from_backend(backend: &Backend) -> Self {
        Self {
            name: backend.name.clone(),
            addr: backend.addr,
            draining: backend.draining,
            weight: backend.weight.unwrap_or(1),
        }
    }
}

fn invalid(app: &str, problem: &str) -> ProxyError {
    ProxyError::Other(format!("cannot route app {app:?}: {problem}"))
}

pub(super) fn validate_app_name(app: &str) -> Result<(), ProxyError> {
    rules::app_name(app).map_err(|v| invalid(app, &v.to_string()))
}

pub(super) fn validate_route(route: &AppRoute) -> Result<(), ProxyError> {
    let app = &route.app;
    validate_app_name(app)?;
    for domain in &route.domains {
        for host in std::iter::once(&domain.canonical).chain(&domain.aliases) {
            rules::domain_name(host).map_err(|v| invalid(app, &v.to_string()))?;
        }
    }
    rules::distinct_hosts(&route.domains).map_err(|v| invalid(app, &v.to_string()))?;
    rules::health_check_path(&route.health_check_path).map_err(|v| invalid(app, &v.to_string()))?;
    if let Some(page) = &route.maintenance {
        validate_page(app, page)?;
    }
    let mut names = BTreeSet::new();
    for server in &route.servers {
        validate_server(server).map_err(|p| invalid(app, &p.to_string()))?;
        if !names.insert(&server.name) {
            return Err(invalid(
                app,
                &format!("server {} is listed twice", server.name),
            ));
        }
    }
    Ok(())
}

/// A maintenance page HAProxy can take: not empty (a map entry needs a value), at
/// most [`MAX_PAGE_BYTES`].
pub(super) fn validate_page(app: &str, page: &str) -> Result<(), ProxyError> {
    if page.is_empty() {
        return Err(invalid(app, "its maintenance page is empty"));
    }
    if page.len() > MAX_PAGE_BYTES {
        return Err(invalid(
            app,
            &format!(
                "its maintenance page has {} bytes, more than HAProxy takes ({MAX_PAGE_BYTES}); use a smaller page",
                page.len()
            ),
        ));
    }
    Ok(())
}

/// Server names as HAProxy allows them (Docker's container names fit).
pub(super) fn validate_server_name(name: &str) -> Result<(), ServerProblem> {
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !starts_well || !chars_ok || name.len() > 128 {
        return Err(ServerProblem::Name(name.to_string()));
    }
    Ok(())
}

pub(super) fn validate_server(server: &Backend) -> Result<(), ServerProblem> {
    validate_server_name(&server.name)?;
    if server.addr.port() == 0 || server.addr.ip().is_unspecified() {
        return Err(ServerProblem::Address {
            name: server.name.clone(),
            addr: server.addr,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(app: &str, hosts: &[&str]) -> AppRoute {
        AppRoute {
            app: app.into(),
            domains: vec![DomainSpec {
                canonical: hosts[0].into(),
                aliases: hosts[1..].iter().map(|h| h.to_string()).collect(),
            }],
            health_check_path: "/health".into(),
            servers: vec![],
            maintenance: None,
        }
    }

    #[test]
    fn maps_list_canonical_domains_and_aliases() {
        let routing = Routing::from_routes(&[route("web", &["a.com", "www.a.com"])]).unwrap();
        let hosts = routing.hosts_map();
        assert_eq!(hosts["a.com"], "app_web");
        assert_eq!(hosts["www.a.com"], "app_web");
        assert_eq!(routing.aliases_map()["www.a.com"], "a.com");
        assert!(!routing.aliases_map().contains_key("a.com"));
    }

    #[test]
    fn refuses_values_that_could_inject_config() {
        let mut bad = route("web", &["a.com"]);
        bad.health_check_path = "/health\n    server x 1.2.3.4:80".into();
        assert!(Routing::from_routes(&[bad]).is_err());
        let mut bad = route("web", &["a.com"]);
        bad.health_check_path = "/h#x".into();
        assert!(Routing::from_routes(&[bad]).is_err());
        assert!(Routing::from_routes(&[route("web app", &["a.com"])]).is_err());
        assert!(Routing::from_routes(&[route("web", &["a.com b.com"])]).is_err());
        assert!(Routing::from_routes(&[route("web", &["A.com"])]).is_err());
        assert!(validate_server_name("web;del server").is_err());
        assert!(validate_server_name("web-1a2b.c_3").is_ok());
    }

    #[test]
    fn a_host_belongs_to_one_app() {
        let mut routing = Routing::from_routes(&[route("one", &["a.com"])]).unwrap();
        let err = routing
            .upsert(&route("two", &["b.com", "a.com"]))
            .unwrap_err();
        assert!(
            err.to_string().contains("already routed to app one"),
            "{err}"
        );
        assert!(
            Routing::from_routes(&[route("one", &["a.com"]), route("one", &["b.com"])]).is_err()
        );
    }

    #[test]
    fn upsert_keeps_servers_and_adds_missing_ones() {
        let mut with_server = route("one", &["a.com"]);
        with_server.servers = vec![Backend {
            name: "one-1".into(),
            addr: "127.0.0.1:9001".parse().unwrap(),
            draining: false,
            weight: None,
        }];
        let mut routing = Routing::from_routes(&[with_server]).unwrap();
        let mut next = route("one", &["b.com"]);
        next.servers = vec![Backend {
            name: "one-2".into(),
            addr: "127.0.0.1:9002".parse().unwrap(),
            draining: false,
            weight: None,
        }];
        routing.upsert(&next).unwrap();
        let app = &routing.apps["one"];
        assert_eq!(app.domains[0].canonical, "b.com");
        let names: Vec<_> = app.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["one-1", "one-2"]);
    }
}
