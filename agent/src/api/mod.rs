//! The `haloy.v1.Haloy` gRPC service, with authentication, health and reflection.
//! Handlers validate, then hand the work to the engine, which owns app state.

mod audit;
mod auth;
mod canary;
mod convert;
mod deploy;
mod error;
mod exec;
pub mod guard;
mod rollback;
mod session;
mod tunnel;
mod upload;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use haloy_api::spec::{AppSpec, ImageSource, ImageSpec};
use haloy_api::v1::{self, haloy_server::HaloyServer};
use tonic::{Request, Response, Status, Streaming};

pub use auth::Auth;
pub use error::AgentError;
pub use guard::ApiLimits;
pub use session::Sessions;

use crate::engine::{
    DeployOptions, Engine, ImageInput, ImageRequest, MaintenanceSwitch, StopOptions,
};

/// Largest message accepted or sent; upload chunks are at most 1 MiB.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The HTTP/2 flow-control window for each stream, in bytes.
const UPLOAD_WINDOW: u32 = 8 * 1024 * 1024;

pub struct HaloyService {
    engine: Arc<Engine>,
    /// Bounds on Exec and Tunnel sessions.
    sessions: Sessions,
}

impl HaloyService {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            sessions: Sessions::default(),
        }
    }

    /// Bounds Exec and Tunnel sessions by `api_limits`.
    pub fn with_sessions(mut self, sessions: Sessions) -> Self {
        self.sessions = sessions;
        self
    }

    /// The service wrapped with the size limits.
    pub fn into_server(self) -> HaloyServer<Self> {
        HaloyServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

pub(crate) type EventStream = Pin<Box<dyn Stream<Item = Result<v1::DeployEvent, Status>> + Send>>;
type LogStream = Pin<Box<dyn Stream<Item = Result<v1::LogLine, Status>> + Send>>;

fn app_name(app: &str) -> Result<&str, Status> {
    haloy_api::rules::app_name(app).map_err(|v| Status::invalid_argument(format!("app: {v}")))?;
    Ok(app)
}

#[tonic::async_trait]
impl v1::haloy_server::Haloy for HaloyService {
    type DeployStream = EventStream;
    type LogsStream = LogStream;
    type RollbackStream = EventStream;
    type ExecStream = exec::OutputStream;
    type TunnelStream = tunnel::DataStream;

    async fn exec(
        &self,
        request: Request<Streaming<v1::ExecInput>>,
    ) -> Result<Response<exec::OutputStream>, Status> {
        let caller = audit::caller(request.metadata());
        let output =
            exec::start(&self.engine, &self.sessions, request.into_inner(), caller).await?;
        Ok(Response::new(output))
    }

    async fn tunnel(
        &self,
        request: Request<Streaming<v1::TunnelData>>,
    ) -> Result<Response<tunnel::DataStream>, Status> {
        let data = tunnel::start(&self.engine, &self.sessions, request.into_inner()).await?;
        Ok(Response::new(data))
    }

    async fn deploy(
        &self,
        request: Request<Streaming<v1::DeployRequest>>,
    ) -> Result<Response<EventStream>, Status> {
        let caller = audit::caller(request.metadata());
        let events = deploy::start(&self.engine, request.into_inner(), caller).await?;
        Ok(Response::new(events))
    }

    async fn status(
        &self,
        request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let app = request.into_inner().app;
        let status = self
            .engine
            .status(app_name(&app)?)
            .await
            .map_err(AgentError::from)?;
        Ok(Response::new(status.into()))
    }

    async fn logs(&self, request: Request<v1::LogsRequest>) -> Result<Response<LogStream>, Status> {
        let request = request.into_inner();
        let tail = if request.tail == 0 {
            100
        } else {
            request.tail as usize
        };
        let lines = self
            .engine
            .logs(app_name(&request.app)?, tail, request.follow)
            .await
            .map_err(AgentError::from)?;
        let out = lines.map(|item| match item {
            Ok((replica, line)) => Ok(convert::log_line(replica, line)),
            Err(e) => Err(Status::unavailable(e.to_string())),
        });
        Ok(Response::new(out.boxed()))
    }

    async fn stop(
        &self,
        request: Request<v1::StopRequest>,
    ) -> Result<Response<v1::StopResponse>, Status> {
        let caller = audit::caller(request.metadata());
        let request = request.into_inner();
        let app = app_name(&request.app)?;
        let stopped = self
            .engine
            .stop_with(
                app,
                StopOptions {
                    remove: request.remove_containers,
                    include_protected: request.include_protected,
                },
            )
            .await
            .map_err(AgentError::from);
        let detail = if request.remove_containers {
            "containers removed"
        } else {
            ""
        };
        audit::Audit::new(&self.engine, caller, app, "stop").outcome(detail, &stopped);
        let stopped = stopped?;
        Ok(Response::new(v1::StopResponse {
            stopped: stopped.stopped,
            removed: stopped.removed,
        }))
    }

    async fn rollback_targets(
        &self,
        request: Request<v1::RollbackTargetsRequest>,
    ) -> Result<Response<v1::RollbackTargetsResponse>, Status> {
        let request = request.into_inner();
        let image = request
            .image
            .map(ImageSpec::try_from)
            .transpose()
            .map_err(AgentError::from)?;
        let response = rollback::targets(&self.engine, app_name(&request.app)?, image).await?;
        Ok(Response::new(response))
    }

    async fn rollback(
        &self,
        request: Request<v1::RollbackRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let caller = audit::caller(request.metadata());
        let request = request.into_inner();
        let mut spec: AppSpec = request
            .spec
            .ok_or_else(|| AgentError::Protocol("RollbackRequest.spec is required".into()))?
            .try_into()
            .map_err(AgentError::from)?;
        let audit = audit::Audit::new(&self.engine, caller, &spec.name, "rollback");
        let aimed =
            rollback::aim(&self.engine, &mut spec, &request.deployment_id).and_then(|pull| {
                self.engine.check_spec(&spec)?;
                Ok(pull)
            });
        let target = format!("to {}", request.deployment_id);
        if let Err(e) = &aimed {
            audit.record(&target, Err(&e.to_string()));
        }
        let pull = aimed?;
        let proposed = deploy::proposed_id(
            "RollbackRequest.new_deployment_id",
            &request.new_deployment_id,
        )?;
        let image = if pull && spec.image.source == ImageSource::Registry {
            ImageInput::Pull
        } else {
            ImageInput::Existing
        };
        let events = deploy::run(
            &self.engine,
            spec,
            ImageRequest::Ready(image),
            proposed,
            DeployOptions {
                include_protected: request.include_protected,
                canary_percent: None,
            },
            None,
            audit,
        )
        .await?;
        Ok(Response::new(events))
    }

    async fn prune_images(
        &self,
        request: Request<v1::PruneImagesRequest>,
    ) -> Result<Response<v1::PruneImagesResponse>, Status> {
        let request = request.into_inner();
        let app = app_name(&request.app)?;
        // By the app's owner: no deploy of it changes images meanwhile.
        let pruned = self
            .engine
            .prune(app, request.dry_run)
            .await
            .map_err(AgentError::from)?;
        Ok(Response::new(v1::PruneImagesResponse {
            removed: pruned.removed,
            kept: pruned.kept,
        }))
    }

    async fn version(
        &self,
        _request: Request<v1::VersionRequest>,
    ) -> Result<Response<v1::VersionResponse>, Status> {
        Ok(Response::new(v1::VersionResponse {
            haloyd: env!("CARGO_PKG_VERSION").to_string(),
            api: "v1".to_string(),
            haproxy: self.engine.proxy().version().await.unwrap_or_default(),
            docker: self.engine.runtime().version().await.unwrap_or_default(),
            docker_id: self.engine.runtime().engine_id().await.unwrap_or_default(),
        }))
    }

    async fn canary_status(
        &self,
        request: Request<v1::CanaryRequest>,
    ) -> Result<Response<v1::CanaryStatusResponse>, Status> {
        let app = request.into_inner().app;
        Ok(Response::new(
            canary::status(&self.engine, app_name(&app)?).await?,
        ))
    }

    async fn canary_promote(
        &self,
        request: Request<v1::CanaryRequest>,
    ) -> Result<Response<v1::CanaryResult>, Status> {
        let caller = audit::caller(request.metadata());
        let app = request.into_inner().app;
        let app = app_name(&app)?;
        let result = canary::promote(&self.engine, app).await;
        audit::Audit::new(&self.engine, caller, app, "canary promote").outcome("", &result);
        Ok(Response::new(result?))
    }

    async fn canary_abort(
        &self,
        request: Request<v1::CanaryRequest>,
    ) -> Result<Response<v1::CanaryResult>, Status> {
        let caller = audit::caller(request.metadata());
        let app = request.into_inner().app;
        let app = app_name(&app)?;
        let result = canary::abort(&self.engine, app).await;
        audit::Audit::new(&self.engine, caller, app, "canary abort").outcome("", &result);
        Ok(Response::new(result?))
    }

    async fn maintenance(
        &self,
        request: Request<v1::MaintenanceRequest>,
    ) -> Result<Response<v1::MaintenanceResponse>, Status> {
        let caller = audit::caller(request.metadata());
        let request = request.into_inner();
        let app = app_name(&request.app)?;
        let (action, switch) = if request.on {
            let page = (!request.page.is_empty()).then_some(request.page);
            let detail = audit::maintenance_detail(&request.message, page.is_some());
            let switch = MaintenanceSwitch::On {
                message: request.message,
                page,
            };
            (("maintenance on", detail), switch)
        } else if !request.message.is_empty() || !request.page.is_empty() {
            return Err(Status::invalid_argument(
                "message and page go with on: true; to turn maintenance mode off send neither",
            ));
        } else {
            (("maintenance off", String::new()), MaintenanceSwitch::Off)
        };
        let result = self
            .engine
            .maintenance(app, switch)
            .await
            .map_err(AgentError::from);
        audit::Audit::new(&self.engine, caller, app, action.0).outcome(&action.1, &result);
        Ok(Response::new(v1::MaintenanceResponse {
            state: result?.as_ref().map(convert::maintenance_state),
        }))
    }

    async fn history(
        &self,
        request: Request<v1::HistoryRequest>,
    ) -> Result<Response<v1::HistoryResponse>, Status> {
        Ok(Response::new(audit::history(
            &self.engine,
            request.into_inner(),
        )?))
    }
}

/// Serves the API, health and reflection on `incoming`, under `limits`, until
/// `shutdown` resolves.
pub async fn serve<I, IO, IE, F>(
    engine: Arc<Engine>,
    auth: Auth,
    limits: &ApiLimits,
    incoming: I,
    shutdown: F,
) -> Result<(), tonic::transport::Error>
where
    I: Stream<Item = Result<IO, IE>>,
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: std::future::Future<Output = ()>,
{
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<HaloyServer<HaloyService>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1();
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha();
    let (Ok(reflection_v1), Ok(reflection_v1alpha)) = (reflection_v1, reflection_v1alpha) else {
        // The descriptor sets are compiled in; failing to parse them is a build bug.
        tracing::error!("the compiled-in file descriptor sets are invalid");
        return Ok(());
    };
    let keepalive = Duration::from_secs(limits.keepalive_secs);
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(keepalive))
        .max_concurrent_streams(Some(limits.max_streams_per_connection))
        // Room for several upload chunks in flight: HTTP/2's default 64 KiB window
        // makes the client wait for a window update every 64 KiB.
        .initial_stream_window_size(UPLOAD_WINDOW)
        .initial_connection_window_size(UPLOAD_WINDOW * 2)
        .layer(tonic::service::InterceptorLayer::new(move |r| {
            auth.check(r)
        }))
        .add_service(
            HaloyService::new(engine)
                .with_sessions(Sessions::new(limits))
                .into_server(),
        )
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(guard::guard(incoming, limits), shutdown)
        .await
}

#[cfg(test)]
mod tests;
