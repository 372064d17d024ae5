//! Talking to haloyd: one authenticated gRPC connection per server, and the calls the
//! CLI makes, returning plain domain values instead of prost messages.

mod canary;
mod convert;
mod exec;
mod history;
mod identity;
mod maintenance;
mod tunnel;

pub use canary::{CanaryReport, VersionTraffic};
pub use exec::{ExecEvent, ExecExit, ExecInput, ExecRequest};
pub use history::AuditRecord;
pub use maintenance::MaintenanceChange;
pub use tunnel::TunnelTarget;

use haloy_api::spec::{AppSpec, Secret};
use haloy_api::v1::{self, deploy_event, deploy_request, haloy_client::HaloyClient, image_source};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::address::ServerAddress;
use crate::tls::{self, TlsOptions};
use crate::upload;

mod error;

pub use error::ClientError;
use error::classify;

use crate::deployment::{DeployReport, ImageChoice, Progress};
use haloy_api::status::{LogEntry, RollbackTarget, StatusReport};

/// Adds `authorization: Bearer <token>` to every call, and the user and host names
/// haloyd's audit log records.
#[derive(Clone)]
pub struct Bearer {
    token: tonic::metadata::AsciiMetadataValue,
    user: Option<tonic::metadata::AsciiMetadataValue>,
    host: Option<tonic::metadata::AsciiMetadataValue>,
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.token.clone());
        if let Some(user) = &self.user {
            metadata.insert("x-haloy-user", user.clone());
        }
        if let Some(host) = &self.host {
            metadata.insert("x-haloy-host", host.clone());
        }
        Ok(request)
    }
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
        let haloy_dir = crate::env::haloy_config_dir(&vars);
        let options = recorded_tls(haloy_dir.as_deref(), server)?;
        Self::connect_with(server, token, &options).await
    }

    /// Connects to `server` with `token` and explicit TLS settings.
    pub async fn connect_with(
        server: &str,
        token: &Secret,
        options: &TlsOptions,
    ) -> Result<Self, ClientError> {
        let address = ServerAddress::parse(server)?;
        let security = tls::security(server, &address, options)?;
        let channel = tls::channel(&address, &security)
            .await
            .map_err(|e| ClientError::channel(&address.to_string(), e))?;
        let header = format!("Bearer {}", token.expose())
            .parse()
            .map_err(ClientError::TokenHeader)?;
        Ok(Self {
            server: address.to_string(),
            inner: HaloyClient::with_interceptor(
                channel,
                Bearer {
                    token: header,
                    user: identity::user(),
                    host: identity::host(),
                },
            ),
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
            match Progress::try_from(event) {
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
                    return Ok(DeployReport {
                        uploaded_bytes,
                        ..result.into()
                    });
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
        let strategy = haloy_api::convert::history_strategy_name(response.strategy);
        let targets = response
            .targets
            .into_iter()
            .map(RollbackTarget::from)
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
            match event.event.map(Progress::try_from) {
                Some(Ok(p)) => progress(p),
                Some(Err(deploy_event::Event::Result(result))) => return Ok(result.into()),
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
        Ok(response.into())
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
            each(LogEntry::from(line));
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

/// The TLS settings `haloy server add` recorded for `server` in `haloy_dir`; none
/// without a directory or an entry. A `client.yaml` that cannot be read is an error
/// naming it, never "no settings": that would drop a pinned fingerprint.
fn recorded_tls(
    haloy_dir: Option<&std::path::Path>,
    server: &str,
) -> Result<TlsOptions, crate::servers::ServerError> {
    match haloy_dir {
        Some(dir) => Ok(crate::servers::ServerStore::open(Some(dir))?.tls_options(server)),
        None => Ok(TlsOptions::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_client_yaml_is_an_error_naming_it_not_a_dropped_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("client.yaml"),
            "servers:\n  haloy.test:\n    token_env: [unclosed\n",
        )
        .unwrap();
        let err = recorded_tls(Some(dir.path()), "haloy.test").unwrap_err();
        let message = ClientError::from(err).to_string();
        assert!(
            message.contains(&dir.path().join("client.yaml").display().to_string()),
            "{message}"
        );
        assert_eq!(
            recorded_tls(None, "haloy.test").unwrap(),
            TlsOptions::default()
        );
    }
}
