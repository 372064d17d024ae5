//! What `Exec` and `Tunnel` share: the bound on how many run at once, and finding
//! the running replica a session is meant for.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use super::{AgentError, ApiLimits};
use crate::engine::{Engine, EngineError};
use crate::runtime::{ContainerInfo, ContainerState};

/// Room for sessions: `api_limits.max_execs` commands and `api_limits.max_tunnels`
/// tunnelled connections at once.
#[derive(Clone)]
pub struct Sessions {
    execs: Arc<Semaphore>,
    max_execs: usize,
    tunnels: Arc<Semaphore>,
    max_tunnels: usize,
}

impl Sessions {
    pub fn new(limits: &ApiLimits) -> Self {
        Self {
            execs: Arc::new(Semaphore::new(limits.max_execs)),
            max_execs: limits.max_execs,
            tunnels: Arc::new(Semaphore::new(limits.max_tunnels)),
            max_tunnels: limits.max_tunnels,
        }
    }

    /// A place for one more command, or RESOURCE_EXHAUSTED.
    pub fn exec(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.execs.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "haloyd already runs {} commands (api_limits.max_execs in haloyd.yaml); wait for one to end or raise the limit",
                self.max_execs
            ))
        })
    }

    /// A place for one more tunnelled connection, or RESOURCE_EXHAUSTED.
    pub fn tunnel(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.tunnels.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "haloyd already forwards {} connections (api_limits.max_tunnels in haloyd.yaml); close some or raise the limit",
                self.max_tunnels
            ))
        })
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new(&ApiLimits::default())
    }
}

/// The `wanted`-th (1-based; 0 is the first) running replica of `app`, in the order
/// `haloy status` lists them, and how many run.
pub async fn replica(
    engine: &Engine,
    app: &str,
    wanted: u32,
) -> Result<(ContainerInfo, u32), Status> {
    let containers = engine
        .app_containers(app)
        .await
        .map_err(|e| AgentError::from(EngineError::from(e)))?;
    if containers.is_empty() {
        return Err(AgentError::from(EngineError::NotFound(app.to_string())).into());
    }
    let running: Vec<ContainerInfo> = containers
        .into_iter()
        .filter(|c| c.state == ContainerState::Running)
        .collect();
    let count = u32::try_from(running.len()).unwrap_or(u32::MAX);
    if running.is_empty() {
        return Err(Status::failed_precondition(format!(
            "no replica of {app} is running; `haloy status` shows why, `haloy deploy` starts it"
        )));
    }
    let index = wanted.max(1);
    match running.into_iter().nth(index as usize - 1) {
        Some(container) => Ok((container, count)),
        None => Err(Status::not_found(format!(
            "{app} has {count} running replica(s), so there is no replica {index}; pick 1 to {count}"
        ))),
    }
}
