//! The one conversion from haloyd's errors to gRPC statuses.

use haloy_api::ConversionError;
use tonic::Status;

use crate::engine::EngineError;
use crate::registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("invalid request: {0}")]
    Invalid(#[from] ConversionError),
    #[error("{0}")]
    Protocol(String),
    #[error("deployment {deployment} of {app} does not exist")]
    NoSuchDeployment { app: String, deployment: String },
    #[error("{0}")]
    RollbackUnavailable(String),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}

impl From<AgentError> for Status {
    fn from(error: AgentError) -> Self {
        let message = error.to_string();
        match error {
            AgentError::Engine(
                EngineError::Busy { .. }
                | EngineError::Protected { .. }
                | EngineError::CanaryRunning { .. }
                | EngineError::NoCanary(_),
            ) => Status::failed_precondition(message),
            AgentError::Engine(EngineError::NotFound(_)) | AgentError::NoSuchDeployment { .. } => {
                Status::not_found(message)
            }
            AgentError::Engine(EngineError::Invalid(_))
            | AgentError::Invalid(_)
            | AgentError::Protocol(_) => Status::invalid_argument(message),
            AgentError::RollbackUnavailable(_) => Status::failed_precondition(message),
            AgentError::Engine(
                EngineError::Runtime(_) | EngineError::Proxy(_) | EngineError::ShuttingDown,
            ) => Status::unavailable(message),
            AgentError::Engine(EngineError::Store(_)) => Status::internal(message),
            AgentError::Registry(
                RegistryError::Unreachable { .. } | RegistryError::Protocol { .. },
            ) => Status::unavailable(message),
            AgentError::Registry(RegistryError::Unauthorized { .. }) => {
                Status::permission_denied(message)
            }
            AgentError::Registry(RegistryError::NotFound { .. }) => Status::not_found(message),
        }
    }
}
