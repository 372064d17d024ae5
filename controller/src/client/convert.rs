//! The controller's side of the wire edge: Deploy and Rollback stream events become
//! [`Progress`] and [`DeployReport`] (canary answers convert in `haloy_api::convert`). These types
//! are the CLI's view of a deploy and live in this crate (haloyd never sees them),
//! so their conversions sit here, at the client, not in `haloy_api::convert`.

use haloy_api::status::DeploymentStatus;
use haloy_api::v1::{self, deploy_event};

use crate::deployment::{DeployReport, Progress};

/// The events of the Deploy and Rollback streams that are plain progress; the others
/// (upload requests, the result) come back as the error for the caller to handle.
impl TryFrom<deploy_event::Event> for Progress {
    type Error = deploy_event::Event;

    fn try_from(event: deploy_event::Event) -> Result<Self, Self::Error> {
        match event {
            deploy_event::Event::Accepted(a) => Ok(Self::Accepted {
                deployment_id: a.deployment_id,
            }),
            deploy_event::Event::Phase(p) => Ok(Self::Phase {
                name: phase_name(p.phase),
                message: p.message,
            }),
            deploy_event::Event::Agent(message) => Ok(Self::Agent { text: message.text }),
            deploy_event::Event::Log(line) => Ok(Self::Log {
                replica: line.replica,
                text: line.text,
            }),
            other => Err(other),
        }
    }
}

/// The final event of a deploy or rollback stream as a report; the caller adds the
/// bytes it uploaded.
impl From<v1::DeployResult> for DeployReport {
    fn from(result: v1::DeployResult) -> Self {
        let status = DeploymentStatus::from_wire(result.status);
        Self {
            deployment_id: result.deployment_id,
            // A canary that started serving its share is a deploy that did its part.
            succeeded: matches!(
                status,
                DeploymentStatus::Succeeded | DeploymentStatus::Canary
            ),
            status,
            reason: result.reason,
            uploaded_bytes: 0,
        }
    }
}

/// A phase as the CLI prints it: `PHASE_HEALTH_CHECKING` reads "health checking".
fn phase_name(phase: i32) -> String {
    let name = v1::Phase::try_from(phase)
        .map(|p| p.as_str_name())
        .unwrap_or("PHASE_UNKNOWN");
    name.trim_start_matches("PHASE_")
        .to_lowercase()
        .replace('_', " ")
}
