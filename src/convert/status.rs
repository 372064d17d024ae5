//! What a server reports, both ways across the wire: `Status`, `Logs`,
//! `RollbackTargets` and `CanaryStatus` answers and [`crate::status`] values. Unknown enum values read as "unknown"
//! (a newer server), never as an error.

use std::time::{Duration, SystemTime};

use crate::spec::DomainSpec;
use crate::status::{
    CanaryReport, CertificateInfo, DeploymentInfo, DeploymentStatus, Health, LogEntry,
    MaintenanceInfo, ReplicaInfo, ResponsePercentiles, RollbackTarget, StatusReport, TrafficInfo,
    VersionTraffic,
};
use crate::v1;

impl From<v1::DeploymentStatus> for DeploymentStatus {
    fn from(pb: v1::DeploymentStatus) -> Self {
        match pb {
            v1::DeploymentStatus::InProgress => Self::InProgress,
            v1::DeploymentStatus::Succeeded => Self::Succeeded,
            v1::DeploymentStatus::Failed => Self::Failed,
            v1::DeploymentStatus::Cancelled => Self::Cancelled,
            v1::DeploymentStatus::Canary => Self::Canary,
            v1::DeploymentStatus::Unspecified => Self::Unknown,
        }
    }
}

impl DeploymentStatus {
    /// A status field as sent (an `i32` on the wire); values this side does not know
    /// are `Unknown`.
    pub fn from_wire(value: i32) -> Self {
        v1::DeploymentStatus::try_from(value).map_or(Self::Unknown, Self::from)
    }
}

impl From<v1::Deployment> for DeploymentInfo {
    fn from(d: v1::Deployment) -> Self {
        Self {
            id: d.id,
            image: d.image,
            status: DeploymentStatus::from_wire(d.status),
            reason: d.reason,
            started_at: d.started_at.and_then(|t| SystemTime::try_from(t).ok()),
            phase: d.phase,
            note: d.note,
        }
    }
}

impl From<v1::Replica> for ReplicaInfo {
    fn from(r: v1::Replica) -> Self {
        Self {
            name: r.name,
            deployment_id: r.deployment_id,
            state: r.state,
            health: Health::parse(&r.health),
            restarts: r.restarts,
            last_failure: r.last_failure,
        }
    }
}

impl From<v1::Certificate> for CertificateInfo {
    fn from(c: v1::Certificate) -> Self {
        Self {
            domain: c.domain,
            names: c.names,
            not_after: c.not_after.and_then(|t| SystemTime::try_from(t).ok()),
            last_error: c.last_error,
        }
    }
}

impl From<v1::StatusResponse> for StatusReport {
    fn from(response: v1::StatusResponse) -> Self {
        Self {
            activity: response
                .activity
                .map(|a| (a.what, Duration::from_millis(a.running_for_ms))),
            problem: response.problem,
            maintenance: response.maintenance.map(Into::into),
            app: response.app,
            current: response.current.map(Into::into),
            latest: response.latest.map(Into::into),
            replicas: response.replicas.into_iter().map(Into::into).collect(),
            domains: response
                .domains
                .into_iter()
                .map(|d| DomainSpec {
                    canonical: d.domain,
                    aliases: d.aliases,
                })
                .collect(),
            certificates: response.certificates.into_iter().map(Into::into).collect(),
            traffic: response.traffic.map(Into::into),
        }
    }
}

impl From<v1::Traffic> for TrafficInfo {
    fn from(t: v1::Traffic) -> Self {
        Self {
            requests: t.requests,
            errors: t.errors,
            window_requests: t.window_requests,
            window_errors: t.window_errors,
            window: Duration::from_millis(t.window_ms),
            response_avg: Duration::from_millis(t.response_ms_avg),
            percentiles: t.percentiles.map(|p| ResponsePercentiles {
                p50: Duration::from_millis(p.p50_ms),
                p95: Duration::from_millis(p.p95_ms),
                p99: Duration::from_millis(p.p99_ms),
            }),
        }
    }
}

impl From<v1::MaintenanceState> for MaintenanceInfo {
    fn from(m: v1::MaintenanceState) -> Self {
        Self {
            since: m.since.and_then(|t| SystemTime::try_from(t).ok()),
            message: m.message,
            custom_page: m.custom_page,
        }
    }
}

impl From<MaintenanceInfo> for v1::MaintenanceState {
    fn from(m: MaintenanceInfo) -> Self {
        Self {
            since: m.since.map(Into::into),
            message: m.message,
            custom_page: m.custom_page,
        }
    }
}

impl From<v1::RollbackTarget> for RollbackTarget {
    fn from(t: v1::RollbackTarget) -> Self {
        Self {
            deployment_id: t.deployment_id,
            image: t.image,
            deployed_at: t.deployed_at.and_then(|ts| SystemTime::try_from(ts).ok()),
            live: t.live,
        }
    }
}

impl From<v1::LogLine> for LogEntry {
    fn from(line: v1::LogLine) -> Self {
        Self {
            replica: line.replica,
            stderr: line.stream == v1::LogStream::Stderr as i32,
            text: line.text,
        }
    }
}

impl From<RollbackTarget> for v1::RollbackTarget {
    fn from(t: RollbackTarget) -> Self {
        Self {
            deployment_id: t.deployment_id,
            image: t.image,
            deployed_at: t.deployed_at.map(Into::into),
            live: t.live,
        }
    }
}

/// A history strategy by the name [`crate::spec::History::strategy`] gives it;
/// any name but "none" and "registry" is the local strategy.
pub fn history_strategy(name: &str) -> v1::HistoryStrategy {
    match name {
        "none" => v1::HistoryStrategy::None,
        "registry" => v1::HistoryStrategy::Registry,
        _ => v1::HistoryStrategy::Local,
    }
}

/// The name of a history strategy as sent; values this side does not know read as
/// "local", the default strategy.
pub fn history_strategy_name(value: i32) -> &'static str {
    match v1::HistoryStrategy::try_from(value) {
        Ok(v1::HistoryStrategy::None) => "none",
        Ok(v1::HistoryStrategy::Registry) => "registry",
        _ => "local",
    }
}

impl From<VersionTraffic> for v1::VersionTraffic {
    fn from(t: VersionTraffic) -> Self {
        Self {
            deployment_id: t.deployment_id,
            image: t.image,
            replicas: t.replicas,
            responses: t.responses,
            errors: t.errors,
        }
    }
}

impl From<v1::VersionTraffic> for VersionTraffic {
    fn from(t: v1::VersionTraffic) -> Self {
        Self {
            deployment_id: t.deployment_id,
            image: t.image,
            replicas: t.replicas,
            responses: t.responses,
            errors: t.errors,
        }
    }
}

impl From<CanaryReport> for v1::CanaryStatusResponse {
    fn from(report: CanaryReport) -> Self {
        Self {
            percent: u32::from(report.percent),
            canary: Some(report.canary.into()),
            stable: report.stable.map(Into::into),
        }
    }
}

/// A percent past 100 (no haloyd sends one) reads as 100.
impl From<v1::CanaryStatusResponse> for CanaryReport {
    fn from(response: v1::CanaryStatusResponse) -> Self {
        Self {
            percent: u8::try_from(response.percent.min(100)).unwrap_or(100),
            canary: response.canary.map(Into::into).unwrap_or_default(),
            stable: response.stable.map(Into::into),
        }
    }
}
