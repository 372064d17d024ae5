//! Talking to haloyd: one authenticated gRPC connection per server, and the calls the
//! CLI makes, returning plain domain values instead of prost messages.

mod canary;

pub use canary::{CanaryReport, VersionTraffic};

use std::path::PathBuf;
use std::time::SystemTime;

use haloy_api::spec::{AppSpec, DomainSpec, Secret};
use haloy_api::v1::{self, deploy_event, deploy_request, haloy_client::HaloyClient, image_source};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::archive::ArchiveError;
use crate::servers::ServerAddress;
use crate::tls::{self, Security, TlsOptions};
use crate::upload;

pub use crate::tls::DEFAULT_API_PORT;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Address(String),
    #[error("{0}")]
    Plaintext(String),
    #[error(
        "cannot reach haloyd at {server} over TLS: {reason}; if haloyd serves its own self-signed certificate, pin it with `haloy server add {server} <token> --force --fingerprint <sha256 from haloyadm api token>`, or trust its CA with --ca-cert <pem>"
    )]
    Untrusted { server: String, reason: String },
    #[error(
        "cannot reach haloyd at {server}: {reason}; is it running? (`haloyadm start` on the server)"
    )]
    Unreachable { server: String, reason: String },
    #[error(
        "{server} refused the API token; print the right one with `haloyadm api token` on the server and run `haloy server add {server} <token> --force`"
    )]
    Unauthenticated { server: String },
    #[error("{server}: {message}")]
    Call { server: String, message: String },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::AsciiMetadataValue);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Where the image of a deploy comes from.
#[derive(Debug, Clone)]
pub enum ImageChoice {
    /// The server pulls `spec.image` from its registry.
    Pull,
    /// The image is already on the server.
    Existing,
    /// Upload this `docker save` archive of one image; only the layers the server
    /// lacks travel.
    Upload(PathBuf),
    /// Export this image (reference or id) from the workstation's Docker and upload
    /// the layers the server lacks.
    UploadFromDocker(String),
}

/// Progress of a deploy, as the CLI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Accepted {
        deployment_id: String,
    },
    Phase {
        name: String,
        message: String,
    },
    Log {
        replica: String,
        text: String,
    },
    /// The server's answer to an upload: it lacks `layers` of the image's `of`
    /// layers, and `bytes` will travel (0 when it has the image).
    UploadPlanned {
        layers: usize,
        of: usize,
        bytes: u64,
    },
    /// After each chunk of an upload.
    Uploading {
        sent: u64,
        total: u64,
    },
    /// The upload is complete.
    Uploaded {
        bytes: u64,
    },
}

/// How a deploy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployReport {
    pub deployment_id: String,
    pub succeeded: bool,
    /// "succeeded", "failed" or "cancelled".
    pub status: String,
    pub reason: String,
    /// Bytes of image uploaded.
    pub uploaded_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentInfo {
    pub id: String,
    pub image: String,
    pub status: String,
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
    pub health: String,
    /// How often haloyd's watchdog restarted it, and why it last failed.
    pub restarts: u32,
    pub last_failure: String,
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

pub struct Client {
    server: String,
    inner: HaloyClient<InterceptedService<Channel, Bearer>>,
    /// The id deploys and rollbacks through this client ask to be recorded under.
    deployment_id: Option<String>,
    /// Deploys and rollbacks may replace a protected app's container.
    include_protected: bool,
    /// Deploys through this client start a canary with this share of requests.
    canary_percent: Option<u8>,
}

impl Client {
    /// Connects to `server` (`host[:port]`) with `token`, with the TLS settings
    /// `haloy server add` recorded for it in this user's Haloy directory.
    pub async fn connect(server: &str, token: &Secret) -> Result<Self, ClientError> {
        let vars: std::collections::HashMap<String, String> = std::env::vars().collect();
        let options = crate::env::haloy_config_dir(&vars)
            .and_then(|dir| crate::servers::ServerStore::open(Some(&dir)).ok())
            .map(|store| store.tls_options(server))
            .unwrap_or_default();
        Self::connect_with(server, token, &options).await
    }

    /// Connects to `server` with `token` and explicit TLS settings.
    pub async fn connect_with(
        server: &str,
        token: &Secret,
        options: &TlsOptions,
    ) -> Result<Self, ClientError> {
        let address =
            ServerAddress::parse(server).map_err(|e| ClientError::Address(e.to_string()))?;
        let security = tls::security(server, &address, options).map_err(ClientError::Plaintext)?;
        let channel =
            tls::channel(&address, &security)
                .await
                .map_err(|reason| match &security {
                    Security::Tls(_) if is_untrusted(&reason) => ClientError::Untrusted {
                        server: address.to_string(),
                        reason,
                    },
                    _ => ClientError::Unreachable {
                        server: address.to_string(),
                        reason,
                    },
                })?;
        let header = format!("Bearer {}", token.expose()).parse().map_err(|_| {
            ClientError::Address("the API token has characters that cannot go in a header".into())
        })?;
        Ok(Self {
            server: address.to_string(),
            inner: HaloyClient::with_interceptor(channel, Bearer(header)),
            deployment_id: None,
            include_protected: false,
            canary_percent: None,
        })
    }

    /// Asks the server to record the next deploys and rollbacks under `id` (see
    /// [`haloy_api::ids::proposed_id`]), so one deploy to several servers has one id.
    pub fn propose_deployment_id(&mut self, id: Option<String>) {
        self.deployment_id = id;
    }

    /// Makes deploys through this client canaries with `percent` of requests.
    pub fn canary(&mut self, percent: Option<u8>) {
        self.canary_percent = percent;
    }

    /// Lets deploys and rollbacks through this client replace the running
    /// container of a protected app (`--include-protected`).
    pub fn include_protected(&mut self, allowed: bool) {
        self.include_protected = allowed;
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    fn error(&self, status: Status) -> ClientError {
        classify(&self.server, status)
    }

    /// Deploys `spec`, reporting progress as it happens. An upload first announces
    /// the image's layers and then sends only the ones the server lacks; its temporary
    /// files are gone when this returns, whatever the outcome.
    pub async fn deploy(
        &mut self,
        spec: &AppSpec,
        image: ImageChoice,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<DeployReport, ClientError> {
        // Exported and partial archives live in `staged`'s temporary directory.
        let staged = upload::stage(&image).await?;
        let source = match (&image, &staged) {
            (_, Some(staged)) => image_source::Source::Upload(upload::announce(staged)),
            (ImageChoice::Existing, None) => image_source::Source::Existing(v1::Existing {}),
            (_, None) => image_source::Source::Pull(v1::Pull {}),
        };
        let (tx, rx) = mpsc::channel(4);
        let start = v1::DeployRequest {
            message: Some(deploy_request::Message::Start(v1::DeployStart {
                spec: Some(spec.clone().into()),
                image: Some(v1::ImageSource {
                    source: Some(source),
                }),
                deployment_id: self.deployment_id.clone().unwrap_or_default(),
                include_protected: self.include_protected,
                canary_percent: self.canary_percent.map_or(0, u32::from),
            })),
        };
        // The channel has room, and the receiver is alive: this cannot fail.
        let _ = tx.send(start).await;
        let mut events = self
            .inner
            .deploy(ReceiverStream::new(rx))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        let mut sender = Some(tx);
        let mut uploaded_bytes = 0;
        loop {
            let event = events.message().await.map_err(|s| self.error(s))?;
            let Some(event) = event.and_then(|e| e.event) else {
                return Err(self.no_result("deploy"));
            };
            match into_progress(event) {
                Ok(p) => progress(p),
                Err(deploy_event::Event::UploadWanted(wanted)) => {
                    let (Some(tx), Some(staged)) = (sender.take(), &staged) else {
                        continue;
                    };
                    uploaded_bytes = upload::send(&tx, staged, &wanted, &mut progress).await?;
                    progress(Progress::Uploaded {
                        bytes: uploaded_bytes,
                    });
                }
                Err(deploy_event::Event::Result(result)) => {
                    return Ok(report(result, uploaded_bytes));
                }
                Err(_) => {}
            }
        }
    }

    fn no_result(&self, stream: &str) -> ClientError {
        ClientError::Call {
            server: self.server.clone(),
            message: format!("haloyd closed the {stream} stream without a result; check its log"),
        }
    }

    /// Earlier versions `spec.name` can return to, newest first, and the history
    /// strategy ("local", "registry" or "none"). `spec.image` (with its registry
    /// credentials, for the registry strategy's tag list) is the configuration's now.
    pub async fn rollback_targets(
        &mut self,
        spec: &AppSpec,
    ) -> Result<(String, Vec<RollbackTarget>), ClientError> {
        let response = self
            .inner
            .rollback_targets(v1::RollbackTargetsRequest {
                app: spec.name.clone(),
                image: Some(spec.image.clone().into()),
            })
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        let strategy = match v1::HistoryStrategy::try_from(response.strategy) {
            Ok(v1::HistoryStrategy::None) => "none",
            Ok(v1::HistoryStrategy::Registry) => "registry",
            _ => "local",
        };
        let targets = response
            .targets
            .into_iter()
            .map(|t| RollbackTarget {
                deployment_id: t.deployment_id,
                image: t.image,
                deployed_at: t.deployed_at.and_then(|ts| SystemTime::try_from(ts).ok()),
                live: t.live,
            })
            .collect();
        Ok((strategy.to_string(), targets))
    }

    /// Redeploys deployment `id` of `spec.name` through the zero-downtime path;
    /// `spec` carries the freshly resolved configuration (secrets are not kept on
    /// the server).
    pub async fn rollback(
        &mut self,
        spec: &AppSpec,
        id: &str,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<DeployReport, ClientError> {
        let mut events = self
            .inner
            .rollback(v1::RollbackRequest {
                deployment_id: id.to_string(),
                spec: Some(spec.clone().into()),
                new_deployment_id: self.deployment_id.clone().unwrap_or_default(),
                include_protected: self.include_protected,
            })
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        while let Some(event) = events.message().await.map_err(|s| self.error(s))? {
            match event.event.map(into_progress) {
                Some(Ok(p)) => progress(p),
                Some(Err(deploy_event::Event::Result(result))) => return Ok(report(result, 0)),
                _ => {}
            }
        }
        Err(self.no_result("rollback"))
    }

    /// Removes (or with `dry_run` lists) the images of `app`'s deployments outside
    /// its history: (removed image names, kept deployment ids).
    pub async fn prune_images(
        &mut self,
        app: &str,
        dry_run: bool,
    ) -> Result<(Vec<String>, Vec<String>), ClientError> {
        let response = self
            .inner
            .prune_images(v1::PruneImagesRequest {
                app: app.to_string(),
                dry_run,
            })
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok((response.removed, response.kept))
    }

    pub async fn status(&mut self, app: &str) -> Result<StatusReport, ClientError> {
        let response = self
            .inner
            .status(v1::StatusRequest {
                app: app.to_string(),
            })
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(StatusReport {
            activity: response
                .activity
                .map(|a| (a.what, std::time::Duration::from_millis(a.running_for_ms))),
            problem: response.problem,
            app: response.app,
            current: response.current.map(deployment_info),
            latest: response.latest.map(deployment_info),
            replicas: response
                .replicas
                .into_iter()
                .map(|r| ReplicaInfo {
                    name: r.name,
                    deployment_id: r.deployment_id,
                    state: r.state,
                    health: r.health,
                    restarts: r.restarts,
                    last_failure: r.last_failure,
                })
                .collect(),
            domains: response
                .domains
                .into_iter()
                .map(|d| DomainSpec {
                    canonical: d.domain,
                    aliases: d.aliases,
                })
                .collect(),
            certificates: response
                .certificates
                .into_iter()
                .map(|c| CertificateInfo {
                    domain: c.domain,
                    names: c.names,
                    not_after: c.not_after.and_then(|t| SystemTime::try_from(t).ok()),
                    last_error: c.last_error,
                })
                .collect(),
        })
    }

    /// Streams log lines to `each` until the server ends the stream (or forever with
    /// `follow`).
    pub async fn logs(
        &mut self,
        app: &str,
        tail: u32,
        follow: bool,
        mut each: impl FnMut(LogEntry),
    ) -> Result<(), ClientError> {
        let mut lines = self
            .inner
            .logs(v1::LogsRequest {
                app: app.to_string(),
                follow,
                tail,
            })
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        while let Some(line) = lines.message().await.map_err(|s| self.error(s))? {
            each(LogEntry {
                replica: line.replica,
                stderr: line.stream == v1::LogStream::Stderr as i32,
                text: line.text,
            });
        }
        Ok(())
    }

    /// Stops the app; returns (stopped, removed) container names. Removing a
    /// protected app's containers needs `include_protected`.
    pub async fn stop(
        &mut self,
        app: &str,
        remove: bool,
        include_protected: bool,
    ) -> Result<(Vec<String>, Vec<String>), ClientError> {
        let response = self
            .inner
            .stop(v1::StopRequest {
                app: app.to_string(),
                remove_containers: remove,
                include_protected,
            })
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok((response.stopped, response.removed))
    }

    /// The server's Docker Engine ID (empty when haloyd cannot reach Docker).
    pub async fn docker_id(&mut self) -> Result<String, ClientError> {
        let v = self
            .inner
            .version(v1::VersionRequest {})
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(v.docker_id)
    }

    /// (haloyd, HAProxy, Docker) versions.
    pub async fn version(&mut self) -> Result<(String, String, String), ClientError> {
        let v = self
            .inner
            .version(v1::VersionRequest {})
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok((v.haloyd, v.haproxy, v.docker))
    }
}

/// The events of the Deploy and Rollback streams that are plain progress; the others
/// (upload requests, the result) come back for the caller to handle.
fn into_progress(event: deploy_event::Event) -> Result<Progress, deploy_event::Event> {
    match event {
        deploy_event::Event::Accepted(a) => Ok(Progress::Accepted {
            deployment_id: a.deployment_id,
        }),
        deploy_event::Event::Phase(p) => Ok(Progress::Phase {
            name: phase_name(p.phase),
            message: p.message,
        }),
        deploy_event::Event::Log(line) => Ok(Progress::Log {
            replica: line.replica,
            text: line.text,
        }),
        other => Err(other),
    }
}

/// The final event of a deploy or rollback stream as a report.
fn report(result: v1::DeployResult, uploaded_bytes: u64) -> DeployReport {
    let status = v1::DeploymentStatus::try_from(result.status).unwrap_or_default();
    DeployReport {
        deployment_id: result.deployment_id,
        // A canary that started serving its share is a deploy that did its part.
        succeeded: matches!(
            status,
            v1::DeploymentStatus::Succeeded | v1::DeploymentStatus::Canary
        ),
        status: status_name(status),
        reason: result.reason,
        uploaded_bytes,
    }
}

fn deployment_info(d: v1::Deployment) -> DeploymentInfo {
    DeploymentInfo {
        id: d.id,
        image: d.image,
        status: status_name(v1::DeploymentStatus::try_from(d.status).unwrap_or_default()),
        reason: d.reason,
        started_at: d.started_at.and_then(|t| SystemTime::try_from(t).ok()),
        phase: d.phase,
        note: d.note,
    }
}

fn status_name(status: v1::DeploymentStatus) -> String {
    match status {
        v1::DeploymentStatus::InProgress => "in progress",
        v1::DeploymentStatus::Succeeded => "succeeded",
        v1::DeploymentStatus::Failed => "failed",
        v1::DeploymentStatus::Cancelled => "cancelled",
        v1::DeploymentStatus::Canary => "canary",
        v1::DeploymentStatus::Unspecified => "unknown",
    }
    .to_string()
}

fn phase_name(phase: i32) -> String {
    let name = v1::Phase::try_from(phase)
        .map(|p| p.as_str_name())
        .unwrap_or("PHASE_UNKNOWN");
    name.trim_start_matches("PHASE_")
        .to_lowercase()
        .replace('_', " ")
}

/// What a failed call means to the user. A TLS handshake can fail at the first call
/// (the channel connects lazily after a failed attempt); its reason is then in the
/// status's source. Only that transport error is checked for an untrusted
/// certificate: a message from haloyd (say, a registry pull that failed on x509) is
/// the server's answer, not a problem with this connection.
fn classify(server: &str, status: Status) -> ClientError {
    let transport = std::error::Error::source(&status).map(tls::source_chain);
    if let Some(reason) = transport.filter(|r| is_untrusted(r)) {
        return ClientError::Untrusted {
            server: server.to_string(),
            reason,
        };
    }
    match status.code() {
        Code::Unauthenticated => ClientError::Unauthenticated {
            server: server.to_string(),
        },
        Code::Unavailable
            if status.message().contains("transport") || status.message().contains("connect") =>
        {
            ClientError::Unreachable {
                server: server.to_string(),
                reason: status.message().to_string(),
            }
        }
        _ => ClientError::Call {
            server: server.to_string(),
            message: status.message().to_string(),
        },
    }
}

/// Whether a connection error is the server's certificate not being trusted.
fn is_untrusted(reason: &str) -> bool {
    [
        "certificate",
        "fingerprint",
        "UnknownIssuer",
        "not the pinned",
    ]
    .iter()
    .any(|word| reason.contains(word))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_server_message_about_certificates_is_not_a_tls_failure_of_this_connection() {
        let status = Status::internal(
            "cannot pull registry.test/web:v1: x509: certificate signed by unknown authority",
        );
        match classify("haloy.test", status) {
            ClientError::Call { message, .. } => assert!(message.contains("x509"), "{message}"),
            other => panic!("misreported as {other:?}"),
        }
    }

    #[test]
    fn an_untrusted_certificate_in_the_transport_is_reported_as_such() {
        let mut status = Status::unavailable("transport error");
        status.set_source(Arc::new(std::io::Error::other(
            "invalid peer certificate: UnknownIssuer",
        )));
        match classify("haloy.test", status) {
            ClientError::Untrusted { reason, .. } => {
                assert!(reason.contains("UnknownIssuer"), "{reason}")
            }
            other => panic!("reported as {other:?}"),
        }
    }
}
