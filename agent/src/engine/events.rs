//! What the engine tells its callers: the progress of a deploy as it happens, how it
//! ended, and the errors of commands it refuses.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::proxy::ProxyError;
use crate::runtime::RuntimeError;
use crate::store::{Status, StoreError};

/// The steps of a deploy, streamed to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    ReceivingImage,
    PullingImage,
    LoadingImage,
    StoppingOld,
    Starting,
    HealthChecking,
    SwitchingTraffic,
    RetiringOld,
    Certificates,
    CleaningUp,
}

/// Progress of a deploy, in the order it happened. The first event is always
/// `Accepted` and the last `Finished`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The deploy is on record under this id.
    Accepted(String),
    /// What the server needs of an announced upload.
    UploadWanted {
        have_image: bool,
        layers: Vec<String>,
    },
    Phase(Phase, String),
    /// A line of output from a container (`replica` is its name).
    Log {
        replica: String,
        stderr: bool,
        text: String,
    },
    /// A message from haloyd itself about the deploy.
    Agent(String),
    Finished(Outcome),
}

pub type Events = mpsc::Sender<Event>;

/// Set to true to cancel a deploy; honoured until traffic is switched.
pub type Cancel = watch::Receiver<bool>;

/// How a deploy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub deployment_id: String,
    pub status: Status,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "{app} is busy: {activity} has been running for {} s; wait for it to finish and try again",
        running_for.as_secs()
    )]
    Busy {
        app: String,
        /// What runs, e.g. "a deploy (deployment 20261125104631250-ab12)".
        activity: String,
        /// The deployment it is for, when it is one.
        deployment: Option<String>,
        running_for: Duration,
    },
    #[error(
        "{app} is protected (a database, or protected: true): {action}; pass --include-protected to do it anyway"
    )]
    Protected { app: String, action: String },
    #[error(
        "a canary of {app} runs (deployment {deployment}); finish it first with `haloy canary promote` or `haloy canary abort`"
    )]
    CanaryRunning { app: String, deployment: String },
    #[error("{0} has no canary running; start one with `haloy deploy --canary <percent>`")]
    NoCanary(String),
    #[error("app {0} is not deployed on this server")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("haloyd is shutting down; try again when it is back")]
    ShuttingDown,
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a deploy stopped before it succeeded.
pub(super) enum Abort {
    Cancelled,
    Failed(String),
}

impl From<RuntimeError> for Abort {
    fn from(e: RuntimeError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<ProxyError> for Abort {
    fn from(e: ProxyError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<EngineError> for Abort {
    fn from(e: EngineError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<StoreError> for Abort {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.to_string())
    }
}

pub(super) fn check_cancel(cancel: &Cancel) -> Result<(), Abort> {
    if *cancel.borrow() {
        Err(Abort::Cancelled)
    } else {
        Ok(())
    }
}

pub(super) async fn phase(events: &Events, phase: Phase, message: &str) {
    // A closed channel means the client left; the deploy carries on regardless.
    let _ = events.send(Event::Phase(phase, message.to_string())).await;
}

pub(super) async fn log(events: &Events, text: &str) {
    let _ = events.send(Event::Agent(text.to_string())).await;
}

/// What a stop should do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopOptions {
    /// Also remove the containers.
    pub remove: bool,
    /// Removing a protected app's containers is allowed.
    pub include_protected: bool,
}

/// What a stop did: container names stopped and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stopped {
    pub stopped: Vec<String>,
    pub removed: Vec<String>,
}
