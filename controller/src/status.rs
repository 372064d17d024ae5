//! What haloyd reports about an app: its deployments, replicas, domains and
//! certificates ([`StatusReport`]), the versions it can roll back to and its log lines.

use std::time::SystemTime;

use haloy_api::spec::DomainSpec;
use haloy_api::status::{DeploymentStatus, Health};

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
