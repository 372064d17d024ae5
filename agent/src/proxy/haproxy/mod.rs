//! HAProxy through its master socket and runtime API: the real [`super::Proxy`].
//!
//! HAProxy runs in master-worker mode, daemonized, and outlives haloyd. The driver
//! keeps the desired routing (apps, domains, health paths, servers) and after every
//! change rewrites `haproxy.cfg` and the host maps so that the files always describe
//! what runs: HAProxy forgets runtime changes on reload, and a restart after a crash
//! starts from the files. Servers and map entries change at runtime; anything else
//! (a backend created or removed, a health check path) is a hitless reload through
//! the master socket.
//!
//! Verified against HAProxy 2.6.12:
//! - servers that come from the file can be removed at runtime with `del server`
//!   after a reload, like runtime-added ones; nothing needs marking in the file;
//! - `del server` refuses a server with connections, pooled idle ones included (see
//!   `runtime::remove_server` for how they are closed);
//! - `reload` answers nothing; `show proc` then shows the master's reload count
//!   incremented, and `[failed: N]` non-zero when the new configuration was refused
//!   (the old worker keeps serving);
//! - sessions of a draining server may live on in an old worker after a reload: they
//!   are read there through `@!<pid>` and counted in [`super::Proxy::servers`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::sync::{Mutex, MutexGuard};

use super::{AppRoute, Backend, Proxy, ProxyError, ServerCounters, ServerStatus};
use config::{Files, Paths, render, skeleton};
use routing::{Routing, Server, backend_name, validate_app_name, validate_server};
use socket::MasterCli;

mod certs;
mod config;
mod files;
mod lifecycle;
mod process;
#[cfg(test)]
mod props;
mod routing;
mod runtime;
mod socket;

pub use socket::Processes;

/// Where HAProxy's files live and what it listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxySettings {
    /// `haproxy-config/`: haproxy.cfg, the maps, the sockets and the pid file.
    pub dir: PathBuf,
    /// Where the frontends listen.
    pub bind_address: IpAddr,
    pub http_port: u16,
    /// The HTTPS frontend, serving the certificates of `certs.list`.
    pub https_port: u16,
    /// The unix socket where haloyd answers `/.well-known/acme-challenge/`.
    pub acme_socket: PathBuf,
    /// cert-storage: the certificates, and HAProxy's self-signed default one.
    pub cert_dir: PathBuf,
    /// The API domain HAProxy passes to haloyd's gRPC port, if one is set.
    pub api: Option<ApiRoute>,
    /// The HAProxy binary, "haproxy" by default (host-process mode).
    pub program: PathBuf,
    /// HAProxy runs in a container that Docker starts and restarts: haloyd never
    /// spawns or signals it, knows it is alive by its master socket (pids and pid
    /// files mean nothing across pid namespaces), and lets the master judge a new
    /// configuration on reload (no local binary to run `haproxy -c` with).
    pub in_container: bool,
}

/// HTTPS for `domain` goes to haloyd's API on 127.0.0.1:`port` as HTTP/2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRoute {
    pub domain: String,
    pub port: u16,
}

impl HaproxySettings {
    /// Listening on every IPv4 address, running `haproxy` from `PATH`, certificates
    /// in `<dir>/certs`, no API domain.
    pub fn new(dir: PathBuf, http_port: u16, https_port: u16, acme_socket: PathBuf) -> Self {
        Self {
            cert_dir: dir.join("certs"),
            dir,
            bind_address: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            http_port,
            https_port,
            acme_socket,
            api: None,
            program: PathBuf::from("haproxy"),
            in_container: false,
        }
    }

    /// The self-signed certificate HTTPS answers with for hosts without one.
    pub fn default_cert(&self) -> PathBuf {
        self.cert_dir.join("default.pem")
    }
}

/// The real proxy. All changes are serialised by one lock, so the files written
/// after each change and what HAProxy runs never interleave.
pub struct Haproxy {
    settings: HaproxySettings,
    paths: Paths,
    cli: MasterCli,
    state: Mutex<State>,
}

struct State {
    routing: Routing,
    /// Until the first `sync` the driver does not know what should run, and a change
    /// would rewrite the files without the other apps.
    synced: bool,
    /// A runtime change did not reach the running HAProxy (it stopped answering
    /// part-way, or refused a removal while a connection held the server). `routing`
    /// and the files hold the change all the same; [`Haproxy::ensure_running`] brings
    /// HAProxy in line on the supervisor's next round.
    behind: bool,
}

impl Haproxy {
    /// Checks the settings; starts nothing (see [`Haproxy::ensure_running`]).
    pub fn new(mut settings: HaproxySettings) -> Result<Self, ProxyError> {
        let absolute = |path: &Path| {
            std::path::absolute(path)
                .map_err(|e| ProxyError::Other(format!("cannot resolve {}: {e}", path.display())))
        };
        settings.dir = absolute(&settings.dir)?;
        settings.acme_socket = absolute(&settings.acme_socket)?;
        settings.cert_dir = absolute(&settings.cert_dir)?;
        config::check_path("HAProxy directory", &settings.dir)?;
        config::check_path("ACME socket", &settings.acme_socket)?;
        config::check_path("certificate directory", &settings.cert_dir)?;
        if let Some(api) = &settings.api {
            haloy_api::rules::domain_name(&api.domain)
                .map_err(|v| ProxyError::Other(format!("api_domain: {v}")))?;
        }
        let paths = Paths::new(&settings.dir);
        // sun_path holds 108 bytes; leave room for HAProxy's temporary suffix.
        for socket in [&paths.master_socket, &paths.request_log] {
            if socket.as_os_str().len() > 90 {
                return Err(ProxyError::Other(format!(
                    "{} is too long for a unix socket; use a shorter data directory",
                    socket.display()
                )));
            }
        }
        Ok(Self {
            cli: MasterCli::new(paths.master_socket.clone()),
            paths,
            settings,
            state: Mutex::new(State {
                routing: Routing::default(),
                synced: false,
                behind: false,
            }),
        })
    }

    pub fn settings(&self) -> &HaproxySettings {
        &self.settings
    }

    pub fn config_file(&self) -> &Path {
        &self.paths.config
    }

    /// Where haloyd binds the socket HAProxy logs each request to.
    pub fn request_log_socket(&self) -> &Path {
        &self.paths.request_log
    }

    pub fn pid_file(&self) -> &Path {
        &self.paths.pid_file
    }

    /// Whether the master socket answers.
    pub async fn is_running(&self) -> bool {
        self.cli.processes().await.is_ok()
    }

    /// Whether HAProxy's master process is gone (killed, crashed, never started);
    /// a master that lives but does not answer yet is not gone. In a container its
    /// pid is another namespace's: there, a master socket that does not answer is a
    /// master that is gone (Docker starts it again from the files).
    async fn master_is_gone(&self) -> bool {
        if self.settings.in_container {
            return !self.is_running().await;
        }
        !process::read_pid(&self.paths.pid_file).is_some_and(process::is_alive)
    }

    /// The command line of HAProxy's container: master-worker in the foreground,
    /// the master socket and configuration where haloyd finds them (the data
    /// directory is mounted at the same path in both containers). Written for
    /// images whose entrypoint is haproxy itself or the official image's script,
    /// which passes arguments starting with '-' to haproxy.
    pub fn container_command(&self) -> Vec<String> {
        vec![
            "-W".into(),
            "-db".into(),
            "-S".into(),
            format!("{},mode,600", self.paths.master_socket.display()),
            "-f".into(),
            self.paths.config.display().to_string(),
        ]
    }

    /// Writes the files from no routes unless they exist, with the default
    /// certificate: what a HAProxy container needs to start before haloyd ran.
    pub async fn write_initial_files(&self) -> Result<(), ProxyError> {
        let state = self.state.lock().await;
        self.ensure_default_cert()?;
        if files::read_files(&self.paths).await.is_none() {
            files::write_files(&self.paths, &self.render(&state.routing)).await?;
        }
        Ok(())
    }

    /// The master, its workers and its reload count.
    pub async fn processes(&self) -> Result<Processes, ProxyError> {
        self.cli.processes().await
    }

    /// Reloads since the master started, failed ones included.
    pub async fn reload_count(&self) -> Result<u64, ProxyError> {
        Ok(self.cli.processes().await?.reloads)
    }

    fn render(&self, routing: &Routing) -> Files {
        render(&self.settings, &self.paths, routing)
    }

    /// Makes HAProxy and the files match `next`: a reload when more than servers and
    /// map entries changed, runtime commands otherwise.
    async fn apply(&self, state: &mut State, next: Routing) -> Result<(), ProxyError> {
        if !state.synced {
            return Err(ProxyError::Other(
                "the HAProxy driver does not know the running apps yet; haloyd must call sync first"
                    .into(),
            ));
        }
        let current = self.render(&state.routing);
        let wanted = self.render(&next);
        if self.master_is_gone().await {
            // Nothing to tell a HAProxy that is down; the supervisor starts it from
            // the files, so they say what must run.
            files::write_files(&self.paths, &wanted).await?;
        } else if skeleton(&current.config) != skeleton(&wanted.config) {
            self.reload_with(&wanted, Some(&current)).await?;
            self.drain_again(&next).await?;
        } else {
            let changed = self.change_at_runtime(&state.routing, &next).await;
            files::write_files(&self.paths, &wanted).await?;
            if let Err(e) = changed {
                // What must run is in the files; a removal in particular must not be
                // forgotten, or HAProxy keeps a server whose container is gone.
                tracing::warn!(error = %e, "HAProxy did not take a change at runtime; it is retried until it does");
                state.routing = next;
                state.behind = true;
                return Err(e);
            }
        }
        state.routing = next;
        Ok(())
    }

    /// Map entries and servers that differ between `current` and `next`, through the
    /// runtime API.
    async fn change_at_runtime(&self, current: &Routing, next: &Routing) -> Result<(), ProxyError> {
        let (before, after) = (self.render(current), self.render(next));
        if before.hosts_map != after.hosts_map {
            runtime::reconcile_map(&self.cli, &self.paths.hosts_map, &next.hosts_map()).await?;
        }
        if before.aliases_map != after.aliases_map {
            runtime::reconcile_map(&self.cli, &self.paths.aliases_map, &next.aliases_map()).await?;
        }
        if before.https_map != after.https_map {
            runtime::reconcile_map(&self.cli, &self.paths.https_map, &next.https_map()).await?;
        }
        if before.maintenance_map != after.maintenance_map {
            let map = next.maintenance_map();
            runtime::reconcile_map(&self.cli, &self.paths.maintenance_map, &map).await?;
        }
        for (app, spec) in &next.apps {
            if current.apps.get(app).map(|a| &a.servers) != Some(&spec.servers) {
                runtime::reconcile_servers(&self.cli, &backend_name(app), &spec.servers).await?;
            }
        }
        Ok(())
    }

    /// Every map entry and server of `routing`, whether or not the driver thinks
    /// HAProxy has it.
    async fn catch_up(&self, routing: &Routing) -> Result<(), ProxyError> {
        runtime::reconcile_map(&self.cli, &self.paths.hosts_map, &routing.hosts_map()).await?;
        runtime::reconcile_map(&self.cli, &self.paths.aliases_map, &routing.aliases_map()).await?;
        runtime::reconcile_map(&self.cli, &self.paths.https_map, &routing.https_map()).await?;
        let maintenance = routing.maintenance_map();
        runtime::reconcile_map(&self.cli, &self.paths.maintenance_map, &maintenance).await?;
        for (app, spec) in &routing.apps {
            runtime::reconcile_servers(&self.cli, &backend_name(app), &spec.servers).await?;
        }
        Ok(())
    }

    async fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().await
    }
}

#[async_trait]
impl Proxy for Haproxy {
    async fn sync(&self, routes: &[AppRoute]) -> Result<(), ProxyError> {
        let mut next = Routing::from_routes(routes)?;
        let mut state = self.lock().await;
        next.certificates = state.routing.certificates.clone();
        self.ensure_default_cert()?;
        let wanted = self.render(&next);
        let on_disk = files::read_files(&self.paths).await;
        if !self.is_running().await {
            files::write_files(&self.paths, &wanted).await?;
            self.start(&next).await?;
        } else {
            let backends = runtime::app_backends(&self.cli).await?;
            let same_skeleton = on_disk
                .as_ref()
                .is_some_and(|f| skeleton(&f.config) == skeleton(&wanted.config));
            if backends != next.backends() || !same_skeleton {
                self.reload_with(&wanted, on_disk.as_ref()).await?;
            } else {
                certs::load_missing(&self.paths, &next).await?;
                self.catch_up(&next).await?;
                files::write_files(&self.paths, &wanted).await?;
            }
        }
        state.routing = next;
        state.synced = true;
        state.behind = false;
        Ok(())
    }

    async fn ensure_app(&self, route: &AppRoute) -> Result<(), ProxyError> {
        let mut state = self.lock().await;
        let mut next = state.routing.clone();
        next.upsert(route)?;
        self.apply(&mut state, next).await
    }

    async fn add_server(&self, app: &str, server: &Backend) -> Result<(), ProxyError> {
        validate_server(server)?;
        let mut state = self.lock().await;
        let mut next = state.routing.clone();
        let servers = &mut next.app_mut(app)?.servers;
        match servers.iter_mut().find(|s| s.name == server.name) {
            Some(existing) => *existing = Server::ready(server),
            None => servers.push(Server::ready(server)),
        }
        self.apply(&mut state, next).await
    }

    async fn drain_server(&self, app: &str, name: &str) -> Result<(), ProxyError> {
        let mut state = self.lock().await;
        let mut next = state.routing.clone();
        let server = next
            .app_mut(app)?
            .servers
            .iter_mut()
            .find(|s| s.name == name);
        let Some(server) = server else {
            return Err(ProxyError::Other(format!("app {app} has no server {name}")));
        };
        server.draining = true;
        self.apply(&mut state, next).await
    }

    async fn remove_server(&self, app: &str, name: &str) -> Result<(), ProxyError> {
        let mut state = self.lock().await;
        let mut next = state.routing.clone();
        // Removing what is not there is done already: clean-ups may repeat.
        if let Some(spec) = next.apps.get_mut(app) {
            spec.servers.retain(|s| s.name != name);
        }
        self.apply(&mut state, next).await
    }

    async fn set_weight(&self, app: &str, name: &str, weight: u16) -> Result<(), ProxyError> {
        if !(1..=256).contains(&weight) {
            return Err(ProxyError::Other(format!(
                "weight {weight} for {name} is outside HAProxy's 1-256"
            )));
        }
        let mut state = self.lock().await;
        let mut next = state.routing.clone();
        let server = next
            .app_mut(app)?
            .servers
            .iter_mut()
            .find(|s| s.name == name);
        let Some(server) = server else {
            return Err(ProxyError::Other(format!("app {app} has no server {name}")));
        };
        server.weight = weight;
        self.apply(&mut state, next).await
    }

    async fn set_maintenance(&self, app: &str, page: Option<&str>) -> Result<(), ProxyError> {
        validate_app_name(app)?;
        if let Some(page) = page {
            routing::validate_page(app, page)?;
        }
        let mut state = self.lock().await;
        let mut next = state.routing.clone();
        let Some(spec) = next.apps.get_mut(app) else {
            return Ok(());
        };
        spec.maintenance = page.map(str::to_string);
        self.apply(&mut state, next).await
    }

    async fn counters(&self, app: &str) -> Result<Vec<ServerCounters>, ProxyError> {
        validate_app_name(app)?;
        let backend = backend_name(app);
        if !runtime::app_backends(&self.cli).await?.contains(&backend) {
            return Ok(Vec::new());
        }
        let rows = runtime::server_rows(&self.cli, &backend, None).await?;
        Ok(rows
            .into_iter()
            .map(|row| ServerCounters {
                name: row.server,
                responses: row.responses,
                errors: row.errors_5xx,
            })
            .collect())
    }

    async fn traffic(&self) -> Result<Vec<crate::proxy::BackendTraffic>, ProxyError> {
        runtime::backend_traffic(&self.cli).await
    }

    async fn servers(&self, app: &str) -> Result<Vec<ServerStatus>, ProxyError> {
        validate_app_name(app)?;
        let backend = backend_name(app);
        if !runtime::app_backends(&self.cli).await?.contains(&backend) {
            return Ok(Vec::new());
        }
        let mut rows = runtime::server_rows(&self.cli, &backend, None).await?;
        // After a reload, sessions that started before it are served by the old
        // worker: count them too, or a drain would look finished too early.
        for pid in self.cli.processes().await?.old_workers {
            let Ok(old_rows) = runtime::server_rows(&self.cli, &backend, Some(pid)).await else {
                continue; // the old worker exited meanwhile, or has no such backend
            };
            for old in old_rows {
                if let Some(row) = rows
                    .iter_mut()
                    .find(|r| r.server == old.server && r.addr == old.addr)
                {
                    row.sessions += old.sessions;
                }
            }
        }
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(ServerStatus {
                    addr: row.addr.parse().ok()?,
                    state: runtime::server_state(&row.status),
                    sessions: row.sessions,
                    name: row.server,
                })
            })
            .collect())
    }

    async fn remove_app(&self, app: &str) -> Result<(), ProxyError> {
        validate_app_name(app)?;
        let mut state = self.lock().await;
        let mut next = state.routing.clone();
        next.apps.remove(app);
        self.apply(&mut state, next).await
    }

    async fn version(&self) -> Result<String, ProxyError> {
        let version = self.cli.processes().await?.version;
        // "2.6.12-1+deb12u4" → "2.6.12": the packaging suffix says nothing about HAProxy.
        Ok(version.split('-').next().unwrap_or(&version).to_string())
    }
}
