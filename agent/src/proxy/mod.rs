//! The traffic seam. The engine changes routing only through [`Proxy`]; `haproxy.rs`
//! drives a real HAProxy through its runtime API, and the engine's unit tests use a
//! recording fake that can fail on demand.

use std::net::SocketAddr;

use async_trait::async_trait;
use haloy_api::spec::DomainSpec;

pub mod haproxy;

/// One app's routing: its domains and the servers (containers) behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoute {
    pub app: String,
    pub domains: Vec<DomainSpec>,
    /// Path HAProxy's own health checks probe, e.g. "/health".
    pub health_check_path: String,
    pub servers: Vec<Backend>,
    /// While the app is in maintenance: the page its domains answer with (503)
    /// instead of reaching the servers; ACME challenges still pass.
    pub maintenance: Option<String>,
}

/// One server in an app's backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The container name; also the HAProxy server name.
    pub name: String,
    pub addr: SocketAddr,
    /// Takes no new requests; sessions in progress finish. Only recovery routes a
    /// server this way, to drain what an interrupted deploy left routed.
    pub draining: bool,
    /// Its share of requests against the other servers (HAProxy's weight, 1-256);
    /// `None` is the default, 1. Canary releases split traffic this way.
    pub weight: Option<u16>,
}

/// A server's state as HAProxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    pub name: String,
    pub addr: SocketAddr,
    /// "up", "down", "drain", "maint", ...
    pub state: String,
    /// Sessions in progress.
    pub sessions: u64,
}

/// Requests a server answered since it was added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerCounters {
    pub name: String,
    /// Every HTTP response.
    pub responses: u64,
    /// Responses with a 5xx status.
    pub errors: u64,
}

/// An app backend's traffic as HAProxy's current worker counts it (a reload starts
/// the counts again from zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendTraffic {
    pub app: String,
    /// HTTP requests the backend received.
    pub requests: u64,
    /// Responses with a 5xx status, its servers' or HAProxy's own (e.g. 503 when no
    /// server is up).
    pub errors: u64,
    /// Average time to the response's headers over the last 1,024 requests, in ms.
    pub response_ms_avg: u64,
    /// The longest time to a response's headers, in ms.
    pub response_ms_max: u64,
    /// Average time of a whole request over the last 1,024 requests, in ms.
    pub total_ms_avg: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(
        "cannot reach HAProxy at {socket}: {reason}; is it running? `haloyadm start` starts it"
    )]
    Unavailable { socket: String, reason: String },
    #[error("HAProxy refused `{command}`: {answer}")]
    Refused { command: String, answer: String },
    #[error("HAProxy reload failed: {0}; the previous configuration keeps serving")]
    ReloadFailed(String),
    #[error("cannot write the HAProxy configuration {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("HAProxy: {0}")]
    Other(String),
    #[error("HAProxy: {0}")]
    Server(#[from] ServerProblem),
    #[error(
        "HAProxy: {what} {} has characters HAProxy's configuration cannot take; use letters, digits and /-._+@~",
        path.display()
    )]
    UnsafePath {
        what: &'static str,
        path: std::path::PathBuf,
    },
    #[error("HAProxy's default certificate: {0}")]
    DefaultCertificate(#[from] crate::certs::selfsigned::SelfSignedError),
}

/// A server HAProxy cannot take as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerProblem {
    #[error(
        "server name {0:?} is invalid; use up to 128 letters, digits, '-', '_' or '.', starting with a letter or digit"
    )]
    Name(String),
    #[error("server {name} has address {addr}; give the IP and port the container is reachable on")]
    Address { name: String, addr: SocketAddr },
}

#[async_trait]
pub trait Proxy: Send + Sync + 'static {
    /// Makes HAProxy route exactly `routes` (apps, domains, servers): writes the
    /// configuration and maps, and reloads (or starts HAProxy) only when the set of
    /// backends changed or HAProxy is not running. Used at start and after restarts.
    async fn sync(&self, routes: &[AppRoute]) -> Result<(), ProxyError>;
    /// Creates the app's backend if needed (a hitless reload) and routes its domains
    /// (map updates, no reload).
    async fn ensure_app(&self, route: &AppRoute) -> Result<(), ProxyError>;
    /// Adds a server to the app's backend and enables it, without a reload.
    async fn add_server(&self, app: &str, server: &Backend) -> Result<(), ProxyError>;
    /// Stops sending new requests to a server; sessions in progress finish.
    async fn drain_server(&self, app: &str, name: &str) -> Result<(), ProxyError>;
    /// Removes a server (it may be drained or not), without a reload. An error means
    /// the running HAProxy has not taken the removal yet; it is not forgotten (the
    /// HAProxy driver retries it until HAProxy answers, see `Haproxy::ensure_running`).
    async fn remove_server(&self, app: &str, name: &str) -> Result<(), ProxyError>;
    /// Sets a server's weight (its share of requests), without a reload; a
    /// reload keeps it.
    async fn set_weight(&self, app: &str, name: &str, weight: u16) -> Result<(), ProxyError>;
    /// Puts the app's domains in maintenance (`Some(page)`: 503 with the page) or
    /// takes them out (`None`), without a reload; a reload or restart keeps it. An
    /// app without a backend has nothing to switch (its route carries the page when
    /// it gets one).
    async fn set_maintenance(&self, app: &str, page: Option<&str>) -> Result<(), ProxyError>;
    /// Response counters of an app's servers.
    async fn counters(&self, app: &str) -> Result<Vec<ServerCounters>, ProxyError>;
    /// Every app backend's traffic. Proxies that count nothing say so with none.
    async fn traffic(&self) -> Result<Vec<BackendTraffic>, ProxyError> {
        Ok(Vec::new())
    }
    /// Servers of an app's backend with state and sessions.
    async fn servers(&self, app: &str) -> Result<Vec<ServerStatus>, ProxyError>;
    /// Removes an app's routes and backend.
    async fn remove_app(&self, app: &str) -> Result<(), ProxyError>;
    /// HAProxy's version, e.g. "2.6.12".
    async fn version(&self) -> Result<String, ProxyError>;
}
