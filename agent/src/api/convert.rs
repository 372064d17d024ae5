//! The agent's side of the wire edge: its engine, store and certificate values
//! become prost messages here and nowhere else. These are haloyd's own types (the
//! root crate cannot name them), so the `From` impls live at the API edge of this
//! crate; values shared with the client convert in `haloy_api::convert`.

use std::time::SystemTime;

use haloy_api::v1::{self, deploy_event};

use crate::certs::CertificateStatus;
use crate::engine::{AppStatus, AppTraffic, CanaryOutcome, Event, Phase, ReplicaStatus};
use crate::ids;
use crate::runtime::LogLine;
use crate::store::maintenance::Maintenance;
use crate::store::{DeploymentRecord, Status as RecordStatus};

impl From<RecordStatus> for v1::DeploymentStatus {
    fn from(status: RecordStatus) -> Self {
        match status {
            RecordStatus::InProgress => Self::InProgress,
            RecordStatus::Succeeded => Self::Succeeded,
            RecordStatus::Failed => Self::Failed,
            RecordStatus::Cancelled => Self::Cancelled,
            RecordStatus::Canary => Self::Canary,
        }
    }
}

impl From<&DeploymentRecord> for v1::Deployment {
    fn from(record: &DeploymentRecord) -> Self {
        Self {
            id: record.id.clone(),
            app: record.app.clone(),
            image: record.image.clone(),
            status: v1::DeploymentStatus::from(record.status()).into(),
            reason: record.reason.clone(),
            started_at: Some(ids::to_system_time(record.started_at_ms).into()),
            finished_at: record
                .finished_at_ms
                .map(|ms| ids::to_system_time(ms).into()),
            phase: record.phase.as_str().to_string(),
            note: record.note.clone(),
        }
    }
}

impl From<ReplicaStatus> for v1::Replica {
    fn from(r: ReplicaStatus) -> Self {
        Self {
            name: r.name,
            container_id: r.container_id,
            deployment_id: r.deployment_id,
            state: r.state,
            health: r.health,
            restarts: r.restarts,
            last_failure: r.last_failure,
        }
    }
}

impl From<CertificateStatus> for v1::Certificate {
    fn from(c: CertificateStatus) -> Self {
        Self {
            domain: c.domain,
            names: c.names,
            not_after: c.not_after.map(Into::into),
            last_error: c.last_error,
        }
    }
}

impl From<AppStatus> for v1::StatusResponse {
    fn from(status: AppStatus) -> Self {
        let domains = status
            .current
            .as_ref()
            .map(|r| {
                r.spec
                    .domains
                    .iter()
                    .map(|(domain, aliases)| v1::Domain {
                        domain: domain.clone(),
                        aliases: aliases.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let snapshot = status.snapshot;
        Self {
            activity: snapshot.activity.map(|(what, running_for)| v1::Activity {
                what,
                running_for_ms: u64::try_from(running_for.as_millis()).unwrap_or(u64::MAX),
            }),
            problem: snapshot.problem.unwrap_or_default(),
            app: status.app,
            current: status.current.as_ref().map(Into::into),
            latest: status.latest.as_ref().map(Into::into),
            replicas: status.replicas.into_iter().map(Into::into).collect(),
            domains,
            certificates: status.certificates.into_iter().map(Into::into).collect(),
            maintenance: status.maintenance.as_ref().map(maintenance_state),
            traffic: status.traffic.map(Into::into),
        }
    }
}

impl From<AppTraffic> for v1::Traffic {
    fn from(t: AppTraffic) -> Self {
        Self {
            requests: t.now.requests,
            errors: t.now.errors,
            window_requests: t.window_requests,
            window_errors: t.window_errors,
            window_ms: u64::try_from(t.window.as_millis()).unwrap_or(u64::MAX),
            response_ms_avg: t.now.response_ms_avg,
            percentiles: t.percentiles.map(|p| {
                let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                v1::ResponsePercentiles {
                    p50_ms: ms(p.p50),
                    p95_ms: ms(p.p95),
                    p99_ms: ms(p.p99),
                }
            }),
        }
    }
}

/// Maintenance mode that is on, as Status and Maintenance answer with it.
pub fn maintenance_state(m: &Maintenance) -> v1::MaintenanceState {
    v1::MaintenanceState {
        since: Some(ids::to_system_time(m.since_ms).into()),
        message: m.message.clone(),
        custom_page: m.page.is_some(),
    }
}

/// A container's log line as the Logs stream sends it (`replica` is the container's
/// name; Docker's own timestamp is not forwarded).
pub fn log_line(replica: String, line: LogLine) -> v1::LogLine {
    wire_log_line(replica, line.stderr, line.text, None)
}

fn wire_log_line(
    replica: String,
    stderr: bool,
    text: String,
    time: Option<SystemTime>,
) -> v1::LogLine {
    let stream = if stderr {
        v1::LogStream::Stderr
    } else {
        v1::LogStream::Stdout
    };
    v1::LogLine {
        replica,
        stream: stream.into(),
        text,
        time: time.map(Into::into),
    }
}

impl From<Phase> for v1::Phase {
    fn from(phase: Phase) -> Self {
        match phase {
            Phase::ReceivingImage => Self::ReceivingImage,
            Phase::PullingImage => Self::PullingImage,
            Phase::LoadingImage => Self::LoadingImage,
            Phase::StoppingOld => Self::StoppingOld,
            Phase::Starting => Self::Starting,
            Phase::HealthChecking => Self::HealthChecking,
            Phase::SwitchingTraffic => Self::SwitchingTraffic,
            Phase::RetiringOld => Self::RetiringOld,
            Phase::Certificates => Self::Certificates,
            Phase::CleaningUp => Self::CleaningUp,
        }
    }
}

/// A deploy's event as it leaves: container lines and haloyd's own messages are
/// stamped with the time they are sent.
impl From<Event> for deploy_event::Event {
    fn from(event: Event) -> Self {
        match event {
            Event::Accepted(deployment_id) => Self::Accepted(v1::DeployAccepted { deployment_id }),
            Event::UploadWanted { have_image, layers } => {
                Self::UploadWanted(v1::UploadWanted { have_image, layers })
            }
            Event::Phase(phase, message) => Self::Phase(v1::PhaseChange {
                phase: v1::Phase::from(phase).into(),
                message,
            }),
            Event::Log {
                replica,
                stderr,
                text,
            } => Self::Log(wire_log_line(
                replica,
                stderr,
                text,
                Some(SystemTime::now()),
            )),
            Event::Agent(text) => Self::Agent(v1::AgentMessage {
                text,
                time: Some(SystemTime::now().into()),
            }),
            Event::Finished(outcome) => Self::Result(v1::DeployResult {
                deployment_id: outcome.deployment_id,
                status: v1::DeploymentStatus::from(outcome.status).into(),
                reason: outcome.reason,
            }),
        }
    }
}

impl From<CanaryOutcome> for v1::CanaryResult {
    fn from(o: CanaryOutcome) -> Self {
        Self {
            deployment_id: o.deployment_id,
            status: v1::DeploymentStatus::from(o.status).into(),
            message: o.message,
        }
    }
}
