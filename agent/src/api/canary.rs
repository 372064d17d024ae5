//! The canary RPCs: status from HAProxy's counters, promote and abort through the
//! app's owner.

use std::sync::Arc;

use haloy_api::v1;

use super::error::AgentError;
use crate::engine::Engine;

pub async fn status(engine: &Engine, app: &str) -> Result<v1::CanaryStatusResponse, AgentError> {
    Ok(engine.canary_status(app).await?.into())
}

pub async fn promote(engine: &Arc<Engine>, app: &str) -> Result<v1::CanaryResult, AgentError> {
    Ok(engine.canary_promote(app).await?.into())
}

pub async fn abort(engine: &Arc<Engine>, app: &str) -> Result<v1::CanaryResult, AgentError> {
    Ok(engine.canary_abort(app).await?.into())
}
