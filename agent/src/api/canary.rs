//! The canary RPCs: status from HAProxy's counters, promote and abort through the
//! app's owner.

use std::sync::Arc;

use haloy_api::v1;

use super::error::AgentError;
use super::status_to_pb;
use crate::engine::{CanaryOutcome, Engine, VersionTraffic};

fn traffic_to_pb(t: VersionTraffic) -> v1::VersionTraffic {
    v1::VersionTraffic {
        deployment_id: t.deployment_id,
        image: t.image,
        replicas: t.replicas,
        responses: t.responses,
        errors: t.errors,
    }
}

fn outcome_to_pb(o: CanaryOutcome) -> v1::CanaryResult {
    v1::CanaryResult {
        deployment_id: o.deployment_id,
        status: status_to_pb(o.status).into(),
        message: o.message,
    }
}

pub async fn status(engine: &Engine, app: &str) -> Result<v1::CanaryStatusResponse, AgentError> {
    let report = engine.canary_status(app).await?;
    Ok(v1::CanaryStatusResponse {
        percent: u32::from(report.percent),
        canary: Some(traffic_to_pb(report.canary)),
        stable: report.stable.map(traffic_to_pb),
    })
}

pub async fn promote(engine: &Arc<Engine>, app: &str) -> Result<v1::CanaryResult, AgentError> {
    Ok(outcome_to_pb(engine.canary_promote(app).await?))
}

pub async fn abort(engine: &Arc<Engine>, app: &str) -> Result<v1::CanaryResult, AgentError> {
    Ok(outcome_to_pb(engine.canary_abort(app).await?))
}
