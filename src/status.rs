//! What haloyd reports about an app, in domain words: its deployments (with a
//! status to compare, not a string), replicas and their health, domains,
//! certificates ([`StatusReport`]), the versions it can roll back to and its log
//! lines. `convert` builds them from the wire.

use std::fmt;
use std::time::SystemTime;

use crate::spec::DomainSpec;

/// Where a deployment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentStatus {
    InProgress,
    Succeeded,
    Failed,
    Cancelled,
    /// Started beside the old version with a share of the traffic; waits for
    /// `haloy canary promote` or `abort`.
    Canary,
    /// A status this client does not know (a newer server).
    Unknown,
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InProgress => "in progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Canary => "canary",
            Self::Unknown => "unknown",
        })
    }
}

/// A replica's health as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Routed and passing its health checks.
    Up,
    /// Not (yet) in the proxy's backend.
    Unrouted,
    /// Any other proxy state, lower-case (e.g. "down", "maint", "drain").
    Other(String),
}

impl Health {
    /// Reads the health a server reports ("up", "unrouted", "down", ...).
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "up" => Self::Up,
            "unrouted" => Self::Unrouted,
            other => Self::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Up => f.write_str("up"),
            Self::Unrouted => f.write_str("unrouted"),
            Self::Other(state) => f.write_str(state),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentInfo {
    pub id: String,
    pub image: String,
    pub status: DeploymentStatus,
    pub reason: String,
    pub started_at: Option<SystemTime>,
    /// Where the deploy is in haloyd's journal, e.g. "healthy" or "succeeded".
    pub phase: String,
    /// What haloyd did with the deployment after a restart interrupted it.
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaInfo {
    pub name: String,
    pub deployment_id: String,
    pub state: String,
    pub health: Health,
    /// How often haloyd's watchdog restarted it, and why it last failed.
    pub restarts: u32,
    pub last_failure: String,
}

/// One version an app can roll back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackTarget {
    pub deployment_id: String,
    pub image: String,
    pub deployed_at: Option<SystemTime>,
    /// The version serving now.
    pub live: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub app: String,
    pub current: Option<DeploymentInfo>,
    pub latest: Option<DeploymentInfo>,
    pub replicas: Vec<ReplicaInfo>,
    pub domains: Vec<DomainSpec>,
    pub certificates: Vec<CertificateInfo>,
    /// What haloyd is doing with the app now, and for how long.
    pub activity: Option<(String, std::time::Duration)>,
    /// Why haloyd left the app as it was after a restart; empty when nothing.
    pub problem: String,
    /// Set while the app is in maintenance mode.
    pub maintenance: Option<MaintenanceInfo>,
    /// Its requests through HAProxy; `None` when the server reported none.
    pub traffic: Option<TrafficInfo>,
}

/// An app's maintenance mode that is on: its domains answer 503 with a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceInfo {
    /// When it was turned on.
    pub since: Option<SystemTime>,
    /// The message on the page; may be empty.
    pub message: String,
    /// The app's own page is shown rather than the default one.
    pub custom_page: bool,
}

/// An app's requests through HAProxy, as counted by haloyd over a window of up to
/// a minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficInfo {
    /// Requests and 5xx responses since HAProxy's current worker started.
    pub requests: u64,
    pub errors: u64,
    /// Requests and 5xx responses within the window.
    pub window_requests: u64,
    pub window_errors: u64,
    /// Zero until the server has samples a second apart.
    pub window: std::time::Duration,
    /// Average time to the response headers over the last 1,024 requests.
    pub response_avg: std::time::Duration,
    /// Response times within the window; `None` without a window or requests.
    pub percentiles: Option<ResponsePercentiles>,
}

/// Percentiles of requests' total time (HAProxy's `%Ta`) within a window:
/// estimates from a histogram's buckets, linear within a bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponsePercentiles {
    pub p50: std::time::Duration,
    pub p95: std::time::Duration,
    pub p99: std::time::Duration,
}

impl TrafficInfo {
    /// Requests per second over the window; `None` without one.
    pub fn request_rate(&self) -> Option<f64> {
        (!self.window.is_zero()).then(|| self.window_requests as f64 / self.window.as_secs_f64())
    }

    /// 5xx responses per second over the window; `None` without one.
    pub fn error_rate(&self) -> Option<f64> {
        (!self.window.is_zero()).then(|| self.window_errors as f64 / self.window.as_secs_f64())
    }
}

/// A TLS certificate haloyd manages for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub domain: String,
    pub names: Vec<String>,
    /// None until one is issued.
    pub not_after: Option<SystemTime>,
    /// The last issuance or renewal error; empty when the last attempt succeeded.
    pub last_error: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub replica: String,
    pub stderr: bool,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_reads_back_as_reported() {
        for text in ["up", "unrouted", "down", "maint"] {
            assert_eq!(Health::parse(text).to_string(), text);
        }
        assert_eq!(Health::parse("UP"), Health::Up);
        assert_ne!(Health::parse("down"), Health::Up);
    }
}

/// Requests one version answered since its canary started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionTraffic {
    pub deployment_id: String,
    pub image: String,
    pub replicas: Vec<String>,
    pub responses: u64,
    pub errors: u64,
}

/// A running canary (`haloy deploy --canary <percent>`) and the version beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryReport {
    /// The canary's share of requests, 1-99.
    pub percent: u8,
    pub canary: VersionTraffic,
    pub stable: Option<VersionTraffic>,
}
